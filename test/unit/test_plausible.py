# SPDX-License-Identifier: Apache-2.0
"""The plausibility bounds: every honest message passes, each kind of absurd one is named."""

import numpy as np
import pytest

from bildmacro_ros.core.config import load_config
from bildmacro_ros.core.kernel import KERNEL_VARIABLE, prepare_kernel
from bildmacro_ros.core.scenario import build_scenario
from bildmacro_ros.core.symmetric import pack, unpack
from bildmacro_ros.protocol.plausible import Bounds, INITIAL_Y, SAFETY
from bildmacro_ros.protocol.wire import decode, encode, MalformedMessage, NeighbourState
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


def verdicts(payloads, m: int, bounds: Bounds) -> list:
    """Each payload's fate through decoding and the bounds: a reason, or None, with its norms."""
    out = []
    for payload in payloads:
        try:
            msg = decode(payload, m, 1)  # from agent 1's topic
        except MalformedMessage as exc:
            out.append((exc.reason, None))
            continue
        out.append((bounds.check(msg), msg.norms))
    return out


def test_the_compiled_pass_gives_every_message_the_numpy_paths_verdict(swarm, monkeypatch):
    """BILDMACRO_KERNEL=numba reads a message's numbers in one compiled pass: same verdicts."""
    scenario, bounds = swarm
    m, run = scenario.problem.m, Distributed(scenario)
    payloads = []
    for k in range(40):  # honest messages of a run: the clip's rounds, then the settled ones
        s = run.state
        payloads += [encode(k, 1, s.x[i], s.x[i], s.y[i], s.r[i], s.q[i])
                     for i in range(scenario.agents)]
        run.advance(measure=False)
    rng = np.random.default_rng(4)
    y, r, q = 8, 8 + m, 8 + 2 * m  # where the segments start
    for index, value in [(y + 3, 1e300), (y, -1e6), (r + 5, 41.0), (r, -41.0), (q + 7, 1e300),
                         (q, bounds.q * 1.01), (4, 1.5), (7, -1.01), (60, np.nan), (99, np.inf),
                         (q + 1000, -np.inf), (0, 2.5), (1, 9.0), (2, 36.0), (3, 2.0)]:
        forged = payloads[rng.integers(len(payloads))].copy()
        forged[index] = value
        payloads.append(forged)
    honest = payloads[7]
    for packed in (pack(-10 * (np.ones((m, m)) - np.eye(m))),  # indefinite: entries 10
                   pack(-0.5 * bounds.q_floor / m * (np.ones((m, m)) - np.eye(m))),
                   pack(np.full((m, m), 10.0)), pack(np.full((m, m), bounds.q))):
        payloads.append(np.concatenate([honest[:q], packed]))
    monkeypatch.setenv(KERNEL_VARIABLE, "numpy")
    numpy = verdicts(payloads, m, bounds)
    monkeypatch.setenv(KERNEL_VARIABLE, "numba")
    assert prepare_kernel(scenario.problem, scenario.steps) is not None
    compiled = verdicts(payloads, m, bounds)
    assert [v for v, _ in compiled] == [v for v, _ in numpy]
    reasons = {v for v, _ in numpy}
    assert {None, "implausible_y", "implausible_r", "implausible_q", "indefinite_q", "non_finite",
            "position_outside", "bad_iteration", "wrong_sender", "wrong_layout"} <= reasons
    for payload, (_, norms) in zip(payloads, compiled):
        if norms is not None:
            maxima = [np.abs(payload[start:end]).max()
                      for start, end in ((y, r), (r, q), (q, None))]
            assert list(norms[:3]) == maxima  # exact: a compare on them is numpy's compare
            full = unpack(payload[q:])
            with np.errstate(over="ignore"):  # an entry of 1e300: both are infinite
                assert norms[3] == pytest.approx(np.sum(full * full), rel=1e-12)
