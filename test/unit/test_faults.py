# SPDX-License-Identifier: Apache-2.0
"""Late-neighbour policies, survivor weights, seeded fault injection, the tracking invariants."""

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from bildmacro_ros.core import graph
from bildmacro_ros.core.bildmacro import initial_state, Mixer, reset_tracking, swarm_step
from bildmacro_ros.core.bildmacro import StepSizes
from bildmacro_ros.core.config import DEFAULTS
from bildmacro_ros.core.faults import FaultInjector, mix_inputs, round_weights, survivor_weights
from bildmacro_ros.protocol.clock import RunningClock


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8).flatmap(lambda d: st.tuples(
    st.lists(st.floats(0.01, 1.0), min_size=d, max_size=d),
    st.lists(st.booleans(), min_size=d, max_size=d),
    st.lists(st.booleans(), min_size=d, max_size=d),
    st.lists(st.booleans(), min_size=d, max_size=d), st.sampled_from(["reuse", "drop"]))))
def test_round_weights_keep_the_row_stochastic(case):
    raw, heard, stand_in, dead, policy = case
    weights = np.array(raw) / (1.0 + sum(raw))  # with a_ii they sum to 1
    a_ii, kept, reused = round_weights(1.0 - weights.sum(), weights, heard, stand_in, policy, dead)
    assert a_ii + kept.sum() == pytest.approx(1.0, abs=1e-12)
    heard, stand_in, dead = map(np.array, (heard, stand_in, dead))
    assert np.all(kept[heard] == weights[heard])  # what came is used as it is
    expect_reused = ~heard & ~dead & stand_in & (policy == "reuse")
    assert np.array_equal(reused, expect_reused)
    assert np.all(kept[~heard & ~expect_reused] == 0)  # everything else is dropped, weight to self


def test_round_weights_refuse_an_unknown_policy():
    with pytest.raises(ValueError, match="late policy"):
        round_weights(0.5, [0.5], [False], [True], "guess")


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 15), st.integers(0, 2**31), st.data())
def test_survivors_of_a_symmetric_swarm_mix_doubly_stochastically(n, seed, data):
    adjacency = graph.erdos_renyi(n, 0.5, np.random.default_rng(seed))
    weights = graph.metropolis_weights(adjacency)
    alive = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if alive.sum() < 1:
        alive[0] = True
    kept = survivor_weights(weights, alive)
    assert np.all(kept >= 0)
    assert np.allclose(kept.sum(axis=0), 1) and np.allclose(kept.sum(axis=1), 1)


def test_injected_faults_are_seeded_and_at_the_asked_rate():
    a, b, other = FaultInjector(7, 0.2,
                                0.3), FaultInjector(7, 0.2, 0.3), FaultInjector(8, 0.2, 0.3)
    keys = [(j, i, k) for j in range(5) for i in range(5) for k in range(800) if i != j]
    lost = np.array([a.lost(*key) for key in keys])
    assert np.array_equal(lost, [b.lost(*key) for key in keys])  # a re-sent copy is lost again
    assert not np.array_equal(lost, [other.lost(*key) for key in keys])
    assert abs(lost.mean() - 0.2) < 0.015  # 16 000 draws: 4 standard deviations
    delays = np.array([a.latency(*key) for key in keys[:2000]])
    assert delays.min() >= 0 and delays.max() <= 0.3 and abs(delays.mean() - 0.15) < 0.01
    assert not FaultInjector().active and not any(FaultInjector(1, 0.0).lost(*key)
                                                  for key in keys[:100])
    for bad in ({"drop": 1.0}, {"drop": -0.1}, {"delay": float("nan")}):
        with pytest.raises(ValueError):
            FaultInjector(0, **bad)


def test_lossy_rounds_are_the_rounds_that_lost_an_in_neighbours_message():
    weights = graph.metropolis_weights(graph.erdos_renyi(7, 0.4, np.random.default_rng(2)))
    injector = FaultInjector(3, 0.15)
    lossy = injector.lossy_rounds(weights, 60)
    assert lossy.shape == (7, 60)
    for i, k in [(0, 0), (3, 17), (6, 59), (2, 31)]:
        assert lossy[i, k] == any(injector.lost(j, i, k) for j in range(7) if j != i
                                  and weights[i, j] > 0)
    # 1 - 0.85^d of each agent's rounds, within 5 standard deviations
    degree = (weights > 0).sum(axis=1) - 1
    expected = 1 - 0.85 ** degree
    spread = 5 * np.sqrt(expected * (1 - expected) / 60) + 1e-9
    assert np.all(np.abs(lossy.mean(axis=1) - expected) <= spread)
    assert not FaultInjector(3, 0.0).lossy_rounds(weights, 60).any()


def tracking_error(problem, state):
    """sum_i r_i - sum_i grad_y g_i(x_i, y_i): zero under Theorem 1's invariant."""
    return (state.r - problem.local_gradient(state.phi, state.y, state.mean)).sum(axis=0)


def test_a_dead_agent_leaves_its_last_tracking_error_until_a_reset(problem):
    n, rng = 6, np.random.default_rng(3)
    weights = graph.metropolis_weights(graph.erdos_renyi(n, 0.7, rng))
    steps = StepSizes(**{**DEFAULTS["algorithm"], "gamma_y": 0.9 / n, "omega": problem.omega})
    state = initial_state(problem, rng.uniform(-0.8, 0.8, (n, 2)),
                          rng.standard_normal((n, problem.m)) * 0.1)
    for _ in range(5):
        state = swarm_step(problem, steps, state, Mixer(weights)).state
    # Theorem 1's invariant, all alive
    assert np.allclose(tracking_error(problem, state), 0, atol=1e-9)
    alive = np.arange(n) != 2
    survivors = state.rows(np.flatnonzero(alive))
    ghost = tracking_error(problem, survivors)
    assert np.abs(ghost).max() > 1e-3  # agent 2's share of the sums stays with the survivors
    mixer = Mixer(survivor_weights(weights, alive))
    for k in range(6, 13):
        survivors = reset_tracking(problem, swarm_step(problem, steps, survivors, mixer).state, k,
                                   every=10)
        # kept (not amplified) until round 10's reset zeroes it
        expected = ghost if k < 10 else 0 * ghost
        assert np.allclose(tracking_error(problem, survivors), expected, atol=1e-9), k


@pytest.mark.parametrize("policy", ["drop", "reuse"])
def test_mix_inputs_use_fresh_rows_then_stand_ins_per_policy(policy):
    neighbours, weights = [4, 7, 9], np.array([0.2, 0.3, 0.1])
    fresh, stale = {4: "y4 now"}, {7: "y7 before", 9: "y9 before"}
    a_ii, used, rows = mix_inputs(neighbours, 0.4, weights, fresh, stale, policy, dead={9})
    # 7 is late and stands in with its older message; dead 9 is dropped anyway
    if policy == "reuse":
        assert rows == ["y4 now",
                        "y7 before"] and np.allclose(used,
                                                     [0.2, 0.3]) and a_ii == pytest.approx(0.5)
    else:
        assert rows == ["y4 now"] and np.allclose(used, [0.2]) and a_ii == pytest.approx(0.8)
    assert a_ii + used.sum() == pytest.approx(1.0)


def test_running_clock_takes_out_only_the_excess_of_a_stop():
    readings = iter([0.0, 0.01, 0.02, 1.02, 1.03, 1.049, 1.1])
    clock = RunningClock(stall=0.02, read=lambda: next(readings))
    assert clock.now() == pytest.approx(0.01)
    assert clock.now() == pytest.approx(0.02)  # a gap of stall or less is running time
    assert clock.now() == pytest.approx(0.04)  # a stop of 1 s counts as 0.02
    assert [clock.now() for _ in range(3)] == pytest.approx([0.05, 0.069, 0.069 + 0.02])
    with pytest.raises(ValueError, match="stall"):
        RunningClock(stall=0.0)
