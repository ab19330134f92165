# SPDX-License-Identifier: Apache-2.0
"""Exponential-family moments against the dense formulas, and derivatives by finite differences."""

import numpy as np
import pytest

from bildmacro_ros.core.symmetric import pack, packed_identity, solve_projected, unpack
from helpers import make_problem
from straightforward import Straightforward


def dense_oracle(problem):
    fam = problem.family
    return Straightforward(fam.order, fam.grid.points, fam.grid.weights, problem.target, np.eye(1),
                           1e-3, 0.01, problem.omega, 0.02)


@pytest.mark.parametrize("quadrature", ["trapezoid", "riemann"])
def test_moments_match_dense_form(quadrature, rng):
    from bildmacro_ros.core.family import ExponentialFamily

    problem = make_problem(ExponentialFamily(6, 0.05, quadrature), 1e-4)
    oracle = dense_oracle(problem)
    y = rng.standard_normal((4, 49)) * 2.0
    stats = problem.evaluate(y)
    for i in range(4):
        mu, cov, grad_f = oracle.moments(y[i])
        assert np.allclose(stats.mean[i], mu, atol=1e-13)
        assert np.allclose(unpack(stats.cov[i]), cov, atol=1e-13)
        assert np.allclose(stats.grad_f[i], grad_f, atol=1e-12)


def test_density_is_normalised(problem, rng):
    y = rng.standard_normal((3, 49))
    p = np.exp(problem.family.log_density(y))
    assert np.allclose((problem.family.grid.weights * p).sum(axis=(1, 2)), 1.0, atol=1e-13)
    assert np.isclose((problem.family.grid.weights * problem.target).sum(), 1.0)


def test_kl_of_uniform_density_and_positivity(problem, rng):
    """
    The density at y = 0 is uniform, 1/4 on C.

    Its KL has a closed form, and every KL is >= 0.
    """
    w = problem.family.grid.weights
    uniform_kl = np.sum(w / 4 * (np.log(1 / 4) - problem.log_target))
    assert np.isclose(problem.evaluate(np.zeros((1, 49))).kl[0], uniform_kl, atol=1e-12)
    assert np.all(problem.evaluate(rng.standard_normal((5, 49))).kl > 0)


def test_grad_f_finite_difference(problem, rng):
    y = 0.5 * rng.standard_normal(49)
    grad = problem.evaluate(y).grad_f[0]
    h = 1e-6
    basis = np.eye(49)
    fd = np.array([(problem.evaluate(y
                                     + h * e).kl[0] - problem.evaluate(y - h * e).kl[0]) / (2 * h)
                   for e in basis])
    assert np.allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_hessian_finite_difference(problem, rng):
    """H(y) = cov + omega I is the Jacobian of grad_y g_i(x_i, y) (for any x_i)."""
    x = rng.uniform(-1, 1, (1, 2))
    y = 0.5 * rng.standard_normal(49)
    phi = problem.phi(x)

    def grad(yy):
        return problem.local_gradient(phi, yy[None], problem.evaluate(yy[None], cov=False).mean)[0]

    h = 1e-6
    fd = np.stack([(grad(y + h * e) - grad(y - h * e)) / (2 * h) for e in np.eye(49)], axis=1)
    hess = problem.hessian(problem.evaluate(y).cov)[0]
    assert np.allclose(hess, fd, atol=1e-7)
    assert np.allclose(hess, hess.T)


def test_lower_gradient_finite_difference(problem, rng):
    x = rng.uniform(-1, 1, (6, 2))
    y = 0.3 * rng.standard_normal(49)
    phibar = problem.phi(x).mean(axis=0)
    grad = -phibar + problem.evaluate(y, cov=False).mean[0] + problem.omega * y
    h = 1e-6
    fd = np.array([(problem.lower_value(x, y
                                        + h * e) - problem.lower_value(x, y - h * e)) / (2 * h)
                   for e in np.eye(49)])
    assert np.allclose(grad, fd, atol=1e-8)


def test_pack_roundtrip(rng):
    a = rng.standard_normal((3, 49, 49))
    a = a + np.swapaxes(a, 1, 2)
    packed = pack(a)
    assert packed.shape == (3, 1225)
    assert np.array_equal(unpack(packed), a)
    assert packed[0, 1] == a[0, 0, 1]  # row-major upper triangle: (0,0), (0,1), ...
    assert np.array_equal(unpack(packed_identity(49)[None])[0], np.eye(49))


def _clipped_solve(q, omega, g):
    lam, vec = np.linalg.eigh(q)
    return np.linalg.solve((vec * np.maximum(lam, omega)) @ vec.T, g)


def test_solve_projected_matches_eigen_clipping(problem, rng):
    """Rows with eigenvalues below omega are clipped; the others are plain solves."""
    omega = 1e-2
    y = rng.standard_normal((6, 49))
    h = problem.hessian(problem.evaluate(y).cov)  # e_0 has eigenvalue exactly omega
    perturb = rng.standard_normal((6, 48, 48)) * 0.02
    # indefinite enough to need the clip
    h[:3, 1:, 1:] += perturb[:3] + np.swapaxes(perturb[:3], 1, 2)
    g = rng.standard_normal((6, 49))
    z, clipped = solve_projected(pack(h), omega, g)
    for i in range(6):
        assert np.allclose(z[i], _clipped_solve(h[i], omega, g[i]), rtol=1e-9, atol=1e-9)
    assert clipped[:3].all() and not clipped[3:].any()
    # each row's answer does not depend on the batch around it
    for i in range(6):
        alone, _ = solve_projected(pack(h[i:i + 1]), omega, g[i:i + 1])
        assert np.array_equal(alone[0], z[i])
