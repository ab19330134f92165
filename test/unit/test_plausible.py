# SPDX-License-Identifier: Apache-2.0
"""The plausibility bounds: every honest message passes, each kind of absurd one is named."""

import numpy as np
import pytest

from bildmacro_ros.core.config import load_config
from bildmacro_ros.core.scenario import build_scenario
from bildmacro_ros.core.symmetric import pack
from bildmacro_ros.protocol.plausible import Bounds, INITIAL_Y, SAFETY
from bildmacro_ros.protocol.wire import NeighbourState
from bildmacro_ros.simulate import Distributed


def message(state, i: int, k: int) -> NeighbourState:
    return NeighbourState(k, i, state.x[i], state.x[i], state.y[i], state.r[i], state.q[i])


@pytest.fixture(scope="module")
def swarm():
    cfg, base = load_config("demo", {"agents": 6, "iterations": 150})
    scenario = build_scenario(cfg, base)
    bounds = Bounds.of(scenario.problem.m, scenario.steps.omega, scenario.steps.gamma_y,
                       float(np.abs(scenario.y0).max()))
    return scenario, bounds


def test_every_honest_message_of_a_run_is_plausible(swarm):
    scenario, bounds = swarm
    run = Distributed(scenario)
    for k in range(scenario.config["iterations"] + 1):
        for i in range(scenario.agents):
            assert bounds.check(message(run.state, i, k)) is None, (k, i)
        run.advance(measure=False)


@pytest.mark.parametrize("field,value,reason", [
    ("y", 1e300, "implausible_y"), ("y", -1e6, "implausible_y"), ("r", 1e300, "implausible_r"),
    ("r", -41.0, "implausible_r"), ("q", 1e300, "implausible_q"),
])
def test_an_absurd_entry_is_dropped_under_its_reason(swarm, field, value, reason):
    scenario, bounds = swarm
    honest = message(Distributed(scenario).state, 2, 0)
    values = {name: getattr(honest, name).copy() for name in ("y", "r", "q")}
    values[field][3] = value
    forged = NeighbourState(0, 2, honest.x, honest.x_hat, values["y"], values["r"], values["q"])
    assert bounds.check(forged) == reason


def test_a_q_far_from_positive_semidefinite_is_dropped_though_its_entries_are_small(swarm):
    scenario, bounds = swarm
    m = scenario.problem.m
    honest = message(Distributed(scenario).state, 0, 0)
    far = pack(-10 * (np.ones((m, m)) - np.eye(m)))  # entries 10, smallest eigenvalue -480
    assert np.abs(far).max() <= bounds.q
    assert bounds.check(NeighbourState(0, 0, honest.x, honest.x, honest.y, honest.r,
                                       far)) == "indefinite_q"
    # smallest eigenvalue -q_floor/2
    near = pack(-0.5 * bounds.q_floor / m * (np.ones((m, m)) - np.eye(m)))
    assert bounds.check(NeighbourState(0, 0, honest.x, honest.x, honest.y, honest.r, near)) is None
    # large (||q||_F = 490, past the shortcut that skips the factorisation) but semidefinite:
    # plausible
    big = pack(np.full((m, m), 10.0))
    assert bounds.check(NeighbourState(0, 0, honest.x, honest.x, honest.y, honest.r, big)) is None


def test_the_y_bound_starts_from_the_swarms_initial_y_and_grows_as_7_allows():
    bounds = Bounds.of(m=4, omega=1e-2, gamma_y=0.1, initial_y=2.0)
    assert bounds.initial_y == INITIAL_Y  # at least 5: N(0, I) draws of 100 agents stay below it
    assert bounds.y(0) == SAFETY * INITIAL_Y
    assert bounds.y(100) == pytest.approx(SAFETY * (INITIAL_Y + 100 * 0.1 * 4))
    assert Bounds.of(m=4, omega=1e-2, gamma_y=0.1, initial_y=8.0).y(0) == SAFETY * 8.0
