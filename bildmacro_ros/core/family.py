# SPDX-License-Identifier: Apache-2.0
"""The exponential family p(c, y) = exp(y^T phi(c)) / Z(y) on the grid, batched over many y."""

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


# exp(x) for x below this is under 1e-304: nothing next to the peak's exp(0) = 1 (see evaluate)
EXP_FLOOR = -700.0


@dataclass
class _Scratch:
    """Intermediates of one evaluation of n rows; overwritten by the next one."""

    yu: np.ndarray  # (n, K, G)  Y U^T
    s: np.ndarray  # (n, G, G)  the exponent S, then S - ln p* weighted by the density
    e: np.ndarray  # (n, G, G)  exp(S - peak)
    eu: np.ndarray  # (n, G, J)
    m2: np.ndarray  # (n, J, J)
    lm: np.ndarray  # (n, pairs, J)
    pairs: np.ndarray  # (n, pairs, pairs)
    outer: np.ndarray  # (n, m(m+1)/2)
    outer2: np.ndarray
    du: np.ndarray  # (n, G, K)
    proj: np.ndarray  # (n, K, K)

    @classmethod
    def make(cls, n: int, k: int, g: int, j: int, pairs: int, m: int) -> "_Scratch":
        empty = np.empty
        return cls(yu=empty((n, k, g)), s=empty((n, g, g)), e=empty((n, g, g)),
                   eu=empty((n, g, j)), m2=empty((n, j, j)), lm=empty((n, pairs, j)),
                   pairs=empty((n, pairs, pairs)), outer=empty((n, packed_size(m))),
                   outer2=empty((n, packed_size(m))), du=empty((n, g, k)), proj=empty((n, k, k)))


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
        # quadrature weights folded into the projections: sum_ab w_ab F_ab P_j(g_a) P_j'(g_b) =
        # (Uw^T F Uw)_jj'
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
        # E2[(k,l),(k',l')] = sum_jj' C[k,k',j] C[l,l',j'] M2[j,j'] = A[pair(k,k'), pair(l,l')]
        # with
        # A = C M2 C^T; gather only the packed upper triangle of E2 out of A
        rows, cols = triu_indices(self.m)
        k1, l1 = np.divmod(rows, k)
        k2, l2 = np.divmod(cols, k)
        self._gather = pair_index[k1, k2] * len(pair_k) + pair_index[l1, l2]
        self._rows, self._cols = rows, cols
        self._buffers: dict[int, _Scratch] = {}  # not thread-safe: one family per node or run

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
    def evaluate(self, y: np.ndarray, log_target: np.ndarray | None = None,
                 cov: bool = True) -> FamilyStats:
        """
        Moments of p(., y_i) for each row y_i; with log_target also f(y_i) and grad f(y_i).

        Every pass over the (n, G, G) grid costs about as much as all the moments together, so
        the masses pi are never formed: the weights live in Uw, and Z is the (0, 0) moment. The
        grid-sized intermediates live in buffers kept per batch size (`_scratch`): allocated
        afresh, each was a new mapping of memory whose pages faulted in at every step.
        """
        y = np.ascontiguousarray(np.atleast_2d(np.asarray(y, dtype=float)))
        n, k, g = len(y), self.basis.size_1d, self.grid.size
        b = self._scratch(n)
        # S = U Y U^T, with Y U^T as one product over every row
        np.matmul(y.reshape(n * k, k), self.U.T, out=b.yu.reshape(n * k, g))
        s = np.matmul(self.U, b.yu, out=b.s)
        peak = s[:, self._support, self._support].max(axis=(1, 2))
        e = np.subtract(s, peak[:, None, None], out=b.e)
        # exp(S - peak): the unnormalised density, in (0, 1]. Below e^-700 a value is below a
        # 1e-300th of the peak's and vanishes in every sum, but libm's exp takes a slow path
        # for results that underflow (2 to 4x per element), so such exponents are raised to it.
        np.maximum(e, EXP_FLOOR, out=e)
        np.exp(e, out=e)
        # (Uw2^T E Uw2)_jj' = Z e^-peak times the moments of P_j(c1) P_j'(c2)
        np.matmul(e.reshape(n * g, g), self.U2w, out=b.eu.reshape(n * g, -1))
        m2 = np.matmul(self.U2w.T, b.eu, out=b.m2)
        total = m2[:, 0, 0].copy()
        log_z = peak + np.log(total)
        m2 /= total[:, None, None]
        mean = np.ascontiguousarray(m2[:, :k, :k]).reshape(n, self.m)
        stats = FamilyStats(log_z=log_z, mean=mean)
        if cov:
            np.matmul(self._lin, m2, out=b.lm)
            pairs = np.matmul(b.lm, self._lin.T, out=b.pairs).reshape(n, -1)
            # np.take: fancy indexing along axis 1 is ~8x slower for these sizes
            stats.cov = np.take(pairs, self._gather, axis=1)
            outer = np.take(mean, self._rows, axis=1, out=b.outer)
            outer *= np.take(mean, self._cols, axis=1, out=b.outer2)
            stats.cov -= outer
        if log_target is not None:
            # with dev = ln p - ln p* = S - ln Z - ln p* (from the exponent: no 0 log 0),
            # f = E[dev] and grad f = cov_p[phi, dev] = E[phi (S - ln p*)] - (ln Z + f) mu
            dev = np.subtract(s, log_target, out=b.s)
            dev *= e
            np.matmul(dev.reshape(n * g, g), self.Uw, out=b.du.reshape(n * g, k))
            proj = np.matmul(self.Uw.T, b.du, out=b.proj)
            proj /= total[:, None, None]
            kl = proj[:, 0, 0] - log_z
            stats.kl = kl
            stats.grad_f = proj.reshape(n, self.m) - (log_z + kl)[:, None] * mean
        return stats

    def _scratch(self, n: int) -> "_Scratch":
        """Return the buffers for a batch of n rows, made on first use (a node needs one size)."""
        scratch = self._buffers.get(n)
        if scratch is None:
            if len(self._buffers) >= 4:  # a caller cycling through sizes: keep memory bounded
                self._buffers.clear()
            scratch = self._buffers[n] = _Scratch.make(n, self.basis.size_1d, self.grid.size,
                                                       self.U2.shape[1], len(self._lin), self.m)
        return scratch

    def packed_size(self) -> int:
        return packed_size(self.m)
