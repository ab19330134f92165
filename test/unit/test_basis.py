# SPDX-License-Identifier: Apache-2.0
"""Legendre basis, its derivatives, the product expansion and the quadrature grid."""

import numpy as np
from numpy.polynomial import legendre as npleg
import pytest

from bildmacro_ros.core.basis import (Grid, legendre, legendre_derivative,
                                      linearization_coefficients, TensorBasis)


def test_legendre_matches_numpy_and_normalisation(rng):
    c = rng.uniform(-1, 1, 50)
    values = legendre(c, 6)
    for k in range(7):
        assert np.allclose(values[:, k], npleg.legval(c, np.eye(7)[k]), atol=1e-14)
    assert np.allclose(legendre(np.array([1.0]), 6), 1.0)  # P_k(1) = 1


def test_legendre_derivative_finite_difference(rng):
    c = rng.uniform(-0.99, 0.99, 20)
    h = 1e-6
    fd = (legendre(c + h, 6) - legendre(c - h, 6)) / (2 * h)
    assert np.allclose(legendre_derivative(c, 6), fd, atol=1e-7)


def test_phi_order_is_kron(rng):
    basis = TensorBasis(6)
    x = rng.uniform(-1, 1, (5, 2))
    for i in range(5):
        expected = np.kron(legendre(x[i, 0], 6), legendre(x[i, 1], 6))
        assert np.allclose(basis.phi(x)[i], expected, atol=1e-15)


def test_jacobian_finite_difference(rng):
    basis = TensorBasis(6)
    x = rng.uniform(-0.9, 0.9, (4, 2))
    h = 1e-6
    jac = basis.jacobian(x)
    for d in range(2):
        e = np.zeros(2)
        e[d] = h
        fd = (basis.phi(x + e) - basis.phi(x - e)) / (2 * h)
        assert np.allclose(jac[:, :, d], fd, atol=1e-6)
    z = rng.standard_normal((4, basis.m))
    assert np.allclose(basis.jacobian_transpose_times(x, z), np.einsum("nmd,nm->nd", jac, z),
                       atol=1e-12)


def test_linearization_is_exact(rng):
    c = rng.uniform(-1, 1, 30)
    coeffs = linearization_coefficients(6)
    p, p2 = legendre(c, 6), legendre(c, 12)
    for k in range(7):
        for j in range(7):
            assert np.allclose(p[:, k] * p[:, j], p2 @ coeffs[k, j], atol=1e-13)


def test_grid_trapezoid():
    grid = Grid.build(0.05)
    assert grid.size == 41
    assert grid.points[0] == -1.0 and grid.points[-1] == 1.0
    assert np.allclose(np.diff(grid.points), 0.05)
    assert grid.weights.sum() == pytest.approx(4.0, abs=1e-13)
    assert grid.weights[0, 0] == pytest.approx(0.05**2 / 4)
    assert grid.weights[0, 5] == pytest.approx(0.05**2 / 2)


def test_grid_riemann_and_bad_step():
    assert Grid.build(0.05, "riemann").weights.sum() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="whole number"):
        Grid.build(0.03)
    with pytest.raises(ValueError, match="quadrature"):
        Grid.build(0.05, "simpson")
