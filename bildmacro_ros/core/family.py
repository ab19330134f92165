# SPDX-License-Identifier: Apache-2.0
"""The exponential family p(c, y) = exp(y^T phi(c)) / Z(y) on the grid, batched over parameters y."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .basis import Grid, legendre, linearization_coefficients, TensorBasis
from .symmetric import packed_size, triu_indices


@dataclass
class FamilyStats:
    """What one evaluation of p(., y_i) gives, one row per parameter vector."""

    log_z: np.ndarray  # (n,)
    mean: np.ndarray  # (n, m) E_p[phi]
    cov: np.ndarray | None = None  # (n, m(m+1)/2) cov_p[phi], packed upper triangle
    kl: np.ndarray | None = None  # (n,) f(y_i) = KL(p(., y_i) || p*)
    grad_f: np.ndarray | None = None  # (n, m)


class ExponentialFamily:
    """
    Moments of phi under p(., y) by the tensor structure of basis and grid.

    With U[a, k] = P_k(g_a) and Y = reshape(y): the exponent is U Y U^T, the mean U^T W U.
    The second moment E[phi phi^T] needs products P_k P_l, which are Legendre series of degree
    <= 2 order; so it follows from the (2 order + 1)^2 moments of P_j(c1) P_j'(c2), far fewer
    flops than the dense 1681 x 49 form (and the mean is among those moments).
    """

    def __init__(self, order: int = 6, step: float = 0.05, quadrature: str = "trapezoid"):
        self.basis = TensorBasis(order)
        self.grid = Grid.build(step, quadrature)
        self.order = order
        self.m = self.basis.m
        k = self.basis.size_1d
        self.U = legendre(self.grid.points, order)  # (G, K)
        self.U2 = legendre(self.grid.points, 2 * order)  # (G, J)
        self.log_w = self.grid.log_weights  # (G, G)
        # quadrature weights folded into the projections: sum_ab w_ab F_ab P_j(g_a) P_j'(g_b) = (Uw^T F Uw)_jj'
        w1 = self.grid.axis_weights
        self.U2w = w1[:, None] * self.U2
        self.Uw = w1[:, None] * self.U
        positive = np.flatnonzero(w1 > 0)
        self._support = slice(positive[0], positive[-1] + 1)
        # P_k P_k' as Legendre series, one row per unordered pair k <= k'
        pair_k, pair_l = np.triu_indices(k)
        pair_index = np.zeros((k, k), dtype=int)
        pair_index[pair_k, pair_l] = pair_index[pair_l, pair_k] = np.arange(len(pair_k))
        self._lin = linearization_coefficients(order)[pair_k, pair_l]  # (pairs, J)
        # E2[(k,l),(k',l')] = sum_jj' C[k,k',j] C[l,l',j'] M2[j,j'] = A[pair(k,k'), pair(l,l')] with
        # A = C M2 C^T; gather only the packed upper triangle of E2 out of A
        rows, cols = triu_indices(self.m)
        k1, l1 = np.divmod(rows, k)
        k2, l2 = np.divmod(cols, k)
        self._gather = pair_index[k1, k2] * len(pair_k) + pair_index[l1, l2]
        self._rows, self._cols = rows, cols

    # -- densities ---------------------------------------------------------------------------
    def exponent(self, y: np.ndarray) -> np.ndarray:
        """y^T phi(c_ab) on the grid, (n, G, G)."""
        k = self.basis.size_1d
        yy = np.asarray(y, dtype=float).reshape(-1, k, k)
        return self.U @ yy @ self.U.T

    def log_density(self, y: np.ndarray) -> np.ndarray:
        """Return ln p(c_ab, y_i), (n, G, G)."""
        s = self.exponent(y)
        return s - self._log_z(s)[:, None, None]

    def _log_z(self, s: np.ndarray) -> np.ndarray:
        t = s + self.log_w
        peak = t.max(axis=(1, 2))
        return peak + np.log(np.exp(t - peak[:, None, None]).sum(axis=(1, 2)))

    def normalise(self, density: np.ndarray) -> np.ndarray:
        """Scale a non-negative grid function so that sum w_ab p_ab = 1 (same quadrature as Z)."""
        total = float((self.grid.weights * density).sum())
        if not np.isfinite(total) or total <= 0:
            raise ValueError("density has no mass on the grid")
        return density / total

    # -- moments ---------------------------------------------------------------------------
    def evaluate(self, y: np.ndarray, log_target: np.ndarray | None = None, cov: bool = True) -> FamilyStats:
        """
        Moments of p(., y_i) for each row y_i; with log_target also f(y_i) and grad f(y_i).

        Every pass over the (n, G, G) grid costs about as much as all the moments together, so
        the masses pi are never formed: the weights live in Uw, and Z is the (0, 0) moment.
        """
        y = np.atleast_2d(np.asarray(y, dtype=float))
        n = len(y)
        s = self.exponent(y)
        peak = s[:, self._support, self._support].max(axis=(1, 2))
        e = s - peak[:, None, None]
        np.exp(e, out=e)  # exp(S - peak): unnormalised density, in (0, 1]
        raw = self.U2w.T @ e @ self.U2w  # (n, J, J): Z e^-peak times the moments of P_j(c1) P_j'(c2)
        total = raw[:, 0, 0].copy()
        log_z = peak + np.log(total)
        m2 = raw / total[:, None, None]
        k = self.basis.size_1d
        mean = m2[:, :k, :k].reshape(n, self.m)
        stats = FamilyStats(log_z=log_z, mean=mean)
        if cov:
            pairs = (self._lin @ m2 @ self._lin.T).reshape(n, -1)
            # np.take: fancy indexing along axis 1 is ~8x slower for these sizes
            outer = np.take(mean, self._rows, axis=1) * np.take(mean, self._cols, axis=1)
            stats.cov = np.take(pairs, self._gather, axis=1) - outer
        if log_target is not None:
            # with dev = ln p - ln p* = S - ln Z - ln p* (from the exponent: no 0 log 0),
            # f = E[dev] and grad f = cov_p[phi, dev] = E[phi (S - ln p*)] - (ln Z + f) mu
            dev = s - log_target
            dev *= e
            proj = (self.Uw.T @ dev @ self.Uw) / total[:, None, None]
            kl = proj[:, 0, 0] - log_z
            stats.kl = kl
            stats.grad_f = proj.reshape(n, self.m) - (log_z + kl)[:, None] * mean
        return stats

    def packed_size(self) -> int:
        return packed_size(self.m)
