# SPDX-License-Identifier: Apache-2.0
"""Tensor Legendre basis phi(c) on [-1, 1]^2 and the quadrature grid (algorithm.md, "Domain")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre as npleg

QUADRATURES = ("trapezoid", "riemann")


def legendre(c: np.ndarray, order: int) -> np.ndarray:
    """
    P_0..P_order at every entry of c; shape c.shape + (order + 1,).

    Uses k P_k = (2k-1) c P_{k-1} - (k-1) P_{k-2}, the recurrence the paper prints.
    """
    c = np.asarray(c, dtype=float)
    if c.size <= SMALL:
        return _legendre_small(c, order)
    out = np.empty(c.shape + (order + 1,))
    out[..., 0] = 1.0
    if order >= 1:
        out[..., 1] = c
    for k in range(2, order + 1):
        out[..., k] = ((2 * k - 1) * c * out[..., k - 1] - (k - 1) * out[..., k - 2]) / k
    return out


# An agent evaluates the basis at its own two coordinates: on so few numbers each numpy operation
# costs a microsecond of overhead, and plain floats do the same IEEE operations in the same order
# (so both paths give the same bits; test_basis checks it).
SMALL = 8


def _legendre_small(c: np.ndarray, order: int) -> np.ndarray:
    rows = []
    for value in c.ravel().tolist():
        row = [1.0, value]
        for k in range(2, order + 1):
            row.append(((2 * k - 1) * value * row[k - 1] - (k - 1) * row[k - 2]) / k)
        rows.append(row[:order + 1])
    return np.array(rows).reshape(c.shape + (order + 1,))


def _legendre_derivative_small(c: np.ndarray, order: int, p: np.ndarray) -> np.ndarray:
    rows = []
    for values in p.reshape(-1, order + 1).tolist():
        row = [0.0, 1.0]
        for k in range(2, order + 1):
            row.append(row[k - 2] + (2 * k - 1) * values[k - 1])
        rows.append(row[:order + 1])
    return np.array(rows).reshape(c.shape + (order + 1,))


def legendre_derivative(c: np.ndarray, order: int, values: np.ndarray | None = None) -> np.ndarray:
    """P'_0..P'_order at c, from P'_k = P'_{k-2} + (2k-1) P_{k-1} (no division by c^2 - 1)."""
    c = np.asarray(c, dtype=float)
    p = legendre(c, order) if values is None else values
    if c.size <= SMALL:
        return _legendre_derivative_small(c, order, p)
    out = np.zeros(c.shape + (order + 1,))
    if order >= 1:
        out[..., 1] = 1.0
    for k in range(2, order + 1):
        out[..., k] = out[..., k - 2] + (2 * k - 1) * p[..., k - 1]
    return out


def linearization_coefficients(order: int) -> np.ndarray:
    """
    C[k, l, j] with P_k P_l = sum_j C[k, l, j] P_j, j = 0..2*order.

    The identity is exact for polynomials, so it also holds on every grid point; it turns
    the second moment of phi into a small moment matrix of P_0..P_{2 order}.
    """
    size = 2 * order + 1
    coeffs = np.zeros((order + 1, order + 1, size))
    for k in range(order + 1):
        for j in range(order + 1):
            prod = npleg.legmul(np.eye(order + 1)[k], np.eye(order + 1)[j])
            coeffs[k, j, :prod.size] = prod
    return coeffs


@dataclass(frozen=True)
class Grid:
    """Tensor grid over [-1, 1]^2 with per-axis quadrature weights (weights sum to 4)."""

    points: np.ndarray  # (G,) axis coordinates g_a
    axis_weights: np.ndarray  # (G,) so that w_ab = axis_weights[a] * axis_weights[b]
    step: float
    quadrature: str

    @classmethod
    def build(cls, step: float = 0.05, quadrature: str = "trapezoid") -> "Grid":
        if quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {QUADRATURES}, got {quadrature!r}")
        intervals = 2.0 / step
        count = int(round(intervals))
        if count < 2 or abs(intervals - count) > 1e-9 * max(1.0, intervals):
            raise ValueError("grid step must divide 2 into a whole number (>= 2) of intervals, "
                             f"got {step}")
        points = -1.0 + step * np.arange(count + 1)
        points[-1] = 1.0
        weights = np.full(count + 1, step)
        if quadrature == "trapezoid":
            weights[0] = weights[-1] = step / 2
        else:  # left Riemann sum: the last point carries no weight
            weights[-1] = 0.0
        return cls(points=points, axis_weights=weights, step=step, quadrature=quadrature)

    @property
    def size(self) -> int:
        return self.points.size

    @property
    def weights(self) -> np.ndarray:
        """w_ab as a (G, G) array; index [a, b] is the point (g_a, g_b)."""
        return np.outer(self.axis_weights, self.axis_weights)

    @property
    def log_weights(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.weights)


class TensorBasis:
    """phi(c) = kron(P(c1), P(c2)): phi[k*(order+1) + l] = P_k(c1) P_l(c2)."""

    def __init__(self, order: int = 6):
        if order < 1:
            raise ValueError(f"basis order must be >= 1, got {order}")
        self.order = order
        self.size_1d = order + 1
        self.m = self.size_1d**2

    def values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """P(x1), P(x2), P'(x1), P'(x2), each (n, order + 1), for positions x of shape (n, 2)."""
        x = np.asarray(x, dtype=float)
        p = legendre(x, self.order)  # (n, 2, K)
        dp = legendre_derivative(x, self.order, p)
        return p[:, 0], p[:, 1], dp[:, 0], dp[:, 1]

    def phi(self, x: np.ndarray) -> np.ndarray:
        """Evaluate the features phi at every row x_i of x (n, 2): (n, m)."""
        p = legendre(np.asarray(x, dtype=float), self.order)  # (n, 2, K); no derivatives needed
        return (p[:, 0, :, None] * p[:, 1, None, :]).reshape(len(p), self.m)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Jphi(x_i), shape (n, m, 2); the paper's nabla phi(x_i) is its transpose."""
        p1, p2, d1, d2 = self.values(x)
        n = len(p1)
        j1 = (d1[:, :, None] * p2[:, None, :]).reshape(n, self.m)
        j2 = (p1[:, :, None] * d2[:, None, :]).reshape(n, self.m)
        return np.stack([j1, j2], axis=-1)

    def jacobian_transpose_times(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Jphi(x_i)^T z_i for each row, (n, 2), without forming the (m, 2) Jacobians."""
        p1, p2, d1, d2 = self.values(x)
        zz = np.asarray(z).reshape(len(p1), self.size_1d, self.size_1d)
        first = np.einsum("nk,nkl,nl->n", d1, zz, p2)
        second = np.einsum("nk,nkl,nl->n", p1, zz, d2)
        return np.stack([first, second], axis=-1)
