# SPDX-License-Identifier: Apache-2.0
"""theta(x) by Newton, its Jacobian, and the hypergradient, each against finite differences."""

import numpy as np

from helpers import make_problem


def test_newton_reaches_optimality(problem, rng):
    x = rng.uniform(-1, 1, (12, 2))
    sol = problem.theta(x)
    assert sol.grad_norm <= 1e-13
    phibar = problem.phi(x).mean(axis=0)
    grad = -phibar + sol.stats.mean[0] + problem.omega * sol.theta
    assert np.linalg.norm(grad) <= 1e-13
    # strong convexity: theta is the minimiser, so any perturbation raises g
    for _ in range(5):
        d = rng.standard_normal(49) * 1e-3
        assert problem.lower_value(x, sol.theta + d) > problem.lower_value(x, sol.theta)


def test_newton_with_paper_omega(family, rng):
    """With omega = 1e-4, cond(H) ~ 1e4; Newton still reaches ~1e-14 from a cold start."""
    problem = make_problem(family, 1e-4)
    sol = problem.theta(rng.uniform(-1, 1, (20, 2)))
    assert sol.grad_norm <= 1e-12


def test_theta_jacobian_finite_difference(problem, rng):
    x = rng.uniform(-0.9, 0.9, (5, 2))
    sol = problem.theta(x)
    jac = problem.theta_jacobian(x, sol)  # (N, m, 2)
    h = 1e-5
    for i in range(5):
        for d in range(2):
            xp, xm = x.copy(), x.copy()
            xp[i, d] += h
            xm[i, d] -= h
            fd = (problem.theta(xp,
                                sol.theta).theta - problem.theta(xm, sol.theta).theta) / (2 * h)
            assert np.allclose(jac[i, :, d], fd, rtol=1e-5, atol=1e-7), (i, d)


def test_hypergradient_finite_difference(problem, rng):
    x = rng.uniform(-0.9, 0.9, (6, 2))
    sol = problem.theta(x)
    grad = problem.hypergradient(x, sol)
    h = 1e-5
    fd = np.zeros_like(x)
    for i in range(6):
        for d in range(2):
            xp, xm = x.copy(), x.copy()
            xp[i, d] += h
            xm[i, d] -= h
            fd[i, d] = (problem.objective(xp,
                                          sol.theta) - problem.objective(xm, sol.theta)) / (2 * h)
    assert np.allclose(grad, fd, rtol=1e-5, atol=1e-9)
    # and it is the chain rule: grad l = (d theta / dx)^T grad f(theta)
    chain = np.einsum("nmd,m->nd", problem.theta_jacobian(x, sol), sol.stats.grad_f[0])
    assert np.allclose(grad, chain, atol=1e-12)
