# SPDX-License-Identifier: Apache-2.0
"""
Algorithm 1: the per-agent step, the vectorised step, an independent oracle, Theorem 1.

Per-agent step == vectorised step, agreement with an independent implementation, Theorem 1's
tracking invariants, and the centralised method as the consensus limit.
"""

import numpy as np
import pytest

from bildmacro_ros.core import graph
from bildmacro_ros.core.bildmacro import (agent_step, agent_steps, AgentState, initial_state,
                                          Mixer, StepSizes, swarm_step)
from bildmacro_ros.core.centralized import centralized_step
from bildmacro_ros.core.kernel import kernel_in_use, KERNEL_VARIABLE
from bildmacro_ros.core.symmetric import pack, unpack
from straightforward import Straightforward

STEPS = StepSizes(gamma_x=1e-3, gamma_y=0.05, omega=1e-2, delta=0.02)


def swarm(problem, n, seed=3, p=0.5):
    rng = np.random.default_rng(seed)
    weights = graph.metropolis_weights(graph.erdos_renyi(n, p, rng))
    x0 = rng.uniform(-1, 1, (n, 2))
    y0 = rng.standard_normal((n, problem.m))
    return weights, initial_state(problem, x0, y0)


def test_initialisation_is_theorem_1(problem):
    _, state = swarm(problem, 5)
    for i in range(5):
        stats = problem.evaluate(state.y[i])
        grad = -problem.phi(state.x[i:i + 1])[0] + stats.mean[0] + problem.omega * state.y[i]
        assert np.allclose(state.r[i], grad, atol=1e-14)
        assert np.allclose(unpack(state.q[i]), problem.hessian(stats.cov)[0], atol=1e-14)


def test_agent_step_equals_vectorised_step(problem):
    """A node's update from its neighbours' rows is the swarm step's row, for many iterations."""
    weights, state = swarm(problem, 7)
    mixer = Mixer(weights)
    for _ in range(25):
        result = swarm_step(problem, STEPS, state, mixer)
        for i in range(7):
            near = graph.in_neighbours(weights, i)
            alone = agent_step(problem, STEPS, state.rows(i), weights[i, i], weights[i, near],
                               state.y[near], state.r[near], state.q[near])
            for name in ("x", "y", "r", "q", "mean", "cov", "grad_f", "phi"):
                assert np.allclose(getattr(alone.state, name)[0], getattr(result.state, name)[i],
                                   rtol=1e-12, atol=1e-13), name
            assert np.allclose(alone.x_hat[0], result.x_hat[i], rtol=0, atol=1e-15)
        state = result.state


def test_a_groups_batched_steps_equal_each_agents_own_step(problem):
    """agent_steps (a group's ready agents in one call) gives each agent its own agent_step."""
    weights, state = swarm(problem, 7)
    for _ in range(5):
        some = [5, 0, 3]  # any agents, in any order
        inputs = [(weights[i, i], weights[i, graph.in_neighbours(weights, i)],
                   state.y[graph.in_neighbours(weights, i)],
                   state.r[graph.in_neighbours(weights, i)],
                   state.q[graph.in_neighbours(weights, i)]) for i in some]
        together = agent_steps(problem, STEPS, [state.rows(i) for i in some], inputs)
        for i, args, batched in zip(some, inputs, together):
            alone = agent_step(problem, STEPS, state.rows(i), *args)
            # equal to rounding: BLAS tiles a batch's products differently from one row's
            for name in ("x", "y", "r", "q", "mean", "cov", "grad_f", "kl", "phi"):
                assert np.allclose(getattr(alone.state, name), getattr(batched.state, name),
                                   rtol=1e-12, atol=1e-13), name
            assert np.allclose(alone.x_hat, batched.x_hat, rtol=0, atol=1e-15)
            assert np.array_equal(alone.clipped, batched.clipped)
        state = swarm_step(problem, STEPS, state, Mixer(weights)).state


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
def test_matches_straightforward_implementation(problem, kernel, monkeypatch):
    """Iterates equal a dense, loop-per-agent implementation written from the formulas alone."""
    if kernel == "numba":
        pytest.importorskip("numba", reason="numba is not installed here")
    monkeypatch.setenv(KERNEL_VARIABLE, kernel)  # the compiled step (core/kernel.py) too
    weights, state = swarm(problem, 6)
    fam = problem.family
    oracle = Straightforward(fam.order, fam.grid.points, fam.grid.weights, problem.target, weights,
                             STEPS.gamma_x, STEPS.gamma_y, STEPS.omega, STEPS.delta)
    oracle.init(state.x, state.y)
    mixer = Mixer(weights)
    for _ in range(30):
        x_hat = oracle.step()
        result = swarm_step(problem, STEPS, state, mixer)
        state = result.state
        assert np.allclose(result.x_hat, x_hat, atol=1e-12)
    assert kernel_in_use() == kernel
    assert np.allclose(state.x, oracle.x, atol=1e-12)
    assert np.allclose(state.y, oracle.y, rtol=1e-10, atol=1e-10)
    assert np.allclose(state.r, oracle.r, rtol=1e-10, atol=1e-10)
    assert np.allclose(unpack(state.q), oracle.q, rtol=1e-10, atol=1e-10)


def test_tracking_invariants(problem):
    """Doubly stochastic mixing keeps mean(r) = mean grad_y g_i(x_i, y_i), mean q = mean H(y_i)."""
    weights, state = swarm(problem, 8)
    mixer = Mixer(weights)
    for _ in range(40):
        state = swarm_step(problem, STEPS, state, mixer).state
    grads = problem.local_gradient(problem.phi(state.x), state.y, problem.evaluate(state.y).mean)
    assert np.allclose(state.r.mean(axis=0), grads.mean(axis=0), atol=1e-12)
    hessians = problem.hessian(problem.evaluate(state.y).cov)
    assert np.allclose(unpack(state.q).mean(axis=0), hessians.mean(axis=0), atol=1e-12)


def test_consensus_state_steps_like_centralised_method(problem, rng):
    """With y_i = theta(x) and q_i = H(theta) for all i, (6) is exactly the centralised step."""
    x = rng.uniform(-1, 1, (9, 2))
    sol = problem.theta(x)
    n = len(x)
    theta = np.tile(sol.theta, (n, 1))
    cov = np.tile(sol.stats.cov, (n, 1))
    state = AgentState(x=x, y=theta, r=np.zeros_like(theta),
                       q=np.repeat(pack(problem.hessian(sol.stats.cov)), n, axis=0),
                       mean=np.tile(sol.stats.mean, (n, 1)), cov=cov,
                       grad_f=np.tile(sol.stats.grad_f, (n, 1)), kl=np.repeat(sol.stats.kl, n),
                       phi=problem.phi(x))
    result = swarm_step(problem, STEPS, state, Mixer(np.full((n, n), 1 / n)))
    x_hat, x_next, _ = centralized_step(problem, STEPS, x, sol)
    assert np.allclose(result.x_hat, x_hat, atol=1e-13)
    assert np.allclose(result.state.x, x_next, atol=1e-15)
    # and that direction is N times the hypergradient: a descent direction for l
    assert np.allclose((x - x_hat) / STEPS.gamma_x, n * problem.hypergradient(x, sol), atol=1e-9)


def test_step_sizes_validated():
    with pytest.raises(ValueError, match="gamma_y"):
        StepSizes(1e-3, 0.0, 1e-4, 0.02)
    with pytest.raises(ValueError, match="delta"):
        StepSizes(1e-3, 0.1, 1e-4, 1.5)


def test_sparse_mixer_equals_dense(rng):
    weights = graph.metropolis_weights(graph.erdos_renyi(200, 0.05, rng))
    values = rng.standard_normal((200, 30))
    assert np.allclose(Mixer(weights)(values), weights @ values, atol=1e-14)
