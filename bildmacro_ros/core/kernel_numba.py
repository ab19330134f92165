# SPDX-License-Identifier: Apache-2.0
"""The compiled step's functions (numba); imported only when BILDMACRO_KERNEL=numba asks."""

import llvmlite.binding as llvm
import numba
from numba import types
from numba.extending import get_cython_function_address
import numpy as np

from .family import EXP_FLOOR

# cache: compiled once per machine into __pycache__ (numba's cache, keyed by the source)
jit = numba.njit(cache=True, nogil=True)
# for the triangular solves' dot products: reassociated, they vectorise; the rounding then
# differs from LAPACK's as LAPACK's own blocking does, within the tests' tolerance
dots = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})


# LAPACK's dsyevr (scipy's), which numba does not offer, called by a symbol's name rather than
# by an address, so that the functions calling it stay in numba's cache: the name is bound to
# this process's address here, before any of them is loaded
llvm.add_symbol("bildmacro_dsyevr",
                get_cython_function_address("scipy.linalg.cython_lapack", "dsyevr"))
_dsyevr = types.ExternalFunction("bildmacro_dsyevr", types.void(*([types.voidptr] * 21)))


@jit
def _eigen_below(a, bound):
    """
    Return (info, eigenvalues, eigenvectors as rows) of the symmetric `a` at or below `bound`.

    LAPACK's dsyevr for a range of values: the clip needs only the few eigenpairs below omega,
    and skipping the others costs a fifth of a full eigh (32 against 160 µs at m = 49). `a` is
    overwritten.
    """
    n = a.shape[0]
    chars = np.empty(3, np.int8)
    chars[0], chars[1], chars[2] = 86, 86, 76  # jobz 'V', range 'V', uplo 'L'
    ints = np.empty(9, np.int32)  # n, lda, il, iu, m, ldz, info, lwork, liwork
    ints[0] = ints[1] = ints[5] = n
    ints[2] = ints[3] = 1
    ints[7], ints[8] = 40 * n, 10 * n  # LAPACK's minimum is 26 n and 10 n
    reals = np.empty(3)  # vl, vu, abstol (0: LAPACK's default)
    reals[0], reals[1], reals[2] = -np.inf, bound, 0.0
    values, vectors = np.empty(n), np.empty((n, n))
    support, work, iwork = np.empty(2 * n, np.int32), np.empty(40 * n), np.empty(10 * n, np.int32)
    _dsyevr(chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, ints[0:].ctypes, a.ctypes,
            ints[1:].ctypes, reals[0:].ctypes, reals[1:].ctypes, ints[2:].ctypes,
            ints[3:].ctypes, reals[2:].ctypes, ints[4:].ctypes, values.ctypes, vectors.ctypes,
            ints[5:].ctypes, support.ctypes, work.ctypes, ints[7:].ctypes, iwork.ctypes,
            ints[8:].ctypes, ints[6:].ctypes)
    # Fortran's columns are C's rows: vectors[j] is the j-th eigenvector
    return ints[6], values[:ints[4]], vectors[:ints[4]]


@jit
def _legendre(c, k, p, d):
    """P_0..P_{k-1} and their derivatives at c, by the recurrences of core/basis.py."""
    p[0], d[0] = 1.0, 0.0
    if k > 1:
        p[1], d[1] = c, 1.0
    for j in range(2, k):
        p[j] = ((2 * j - 1) * c * p[j - 1] - (j - 1) * p[j - 2]) / j
        d[j] = d[j - 2] + (2 * j - 1) * p[j - 1]


@dots
def _cholesky(a, shift, low):
    """
    Factor a - shift I = L L^T into low's lower triangle; False if it is not positive definite.

    Column by column, as LAPACK's unblocked dpotf2 (with its test: a pivot not > 0), without
    LAPACK's call, copies and zeroed triangle: 48 x 48 in 4.3 µs here, against 8.0 through it.
    """
    n = a.shape[0]
    for j in range(n):
        total = a[j, j] - shift
        for p in range(j):
            total -= low[j, p] * low[j, p]
        if not total > 0.0:
            return False
        pivot = np.sqrt(total)
        low[j, j] = pivot
        for i in range(j + 1, n):
            total = a[i, j]
            for p in range(j):
                total -= low[i, p] * low[j, p]
            low[i, j] = total / pivot
    return True


@dots
def _cholesky_solve(low, b):
    """Solve L L^T z = b in place."""
    size = low.shape[0]
    for i in range(size):
        total = b[i]
        for p in range(i):
            total -= low[i, p] * b[p]
        b[i] = total / low[i, i]
    for i in range(size - 1, -1, -1):
        total = b[i]
        for p in range(i + 1, size):
            total -= low[p, i] * b[p]
        b[i] = total / low[i, i]


@jit
def _solve_block(block, rhs, z, low):
    """Solve block z[1:] = rhs[1:] by Cholesky (into low); False (z untouched) if not PD."""
    ok = _cholesky(block, 0.0, low)
    if ok:
        solution = rhs[1:].copy()
        _cholesky_solve(low, solution)
        z[1:] = solution
    return ok


@jit
def _solve_projected(q, omega, rhs, m, z):
    """
    Solve z = P_{>=omega}[q]^{-1} rhs for one row (core/symmetric.py's solve_projected).

    Returns whether the clip changed q. As there: e_0 at its exact eigenvalue omega; on the
    block q[1:, 1:], a Cholesky of q - omega I that succeeds proves the clip is the identity,
    and a Cholesky solve with q follows; else eigh.
    """
    size = m - 1
    z[0] = rhs[0] / omega
    full = np.empty((size, size))
    index = m
    for i in range(size):  # the packed row-major upper triangle of q[1:, 1:]
        for j in range(i, size):
            full[i, j] = full[j, i] = q[index]
            index += 1
    low = np.empty((size, size))
    if _cholesky(full, omega, low) and _solve_block(full, rhs, z, low):  # no clip; q is PD
        return False
    # the clip raises the eigenvalues below omega to omega: P = q + sum (omega - lam) v v^T,
    # from those eigenpairs alone, then a Cholesky solve with P
    info, lam, vec = _eigen_below(full.copy(), omega)
    if info == 0:
        projected = full.copy()
        for j in range(len(lam)):
            raise_by = omega - lam[j]
            for a in range(size):
                for b in range(size):
                    projected[a, b] += raise_by * vec[j, a] * vec[j, b]
        if _solve_block(projected, rhs, z, low):
            return True
    # LAPACK failed, or P's Cholesky did: the whole eigendecomposition, as the numpy path does
    lam, vec = np.linalg.eigh(full)
    weights = np.ascontiguousarray(vec.T) @ np.ascontiguousarray(rhs[1:])
    for i in range(size):
        weights[i] /= max(lam[i], omega)
    z[1:] = np.ascontiguousarray(vec) @ weights
    return True


@jit
def row_step(x, y, r, q, mean, cov, grad_f, phi, y_mix, r_mix, q_mix,
             u, u_t, u2w, u2w_t, uw, uw_t, lin, lin_t, gather, rows, cols, lo, hi, log_target, k,
             omega, gamma_x, gamma_y, delta,
             x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, phi_out, kl_out, x_hat):
    """local_step (core/bildmacro.py) for one agent; returns whether P_{>=omega} clipped q."""
    m = k * k
    z = np.empty(m)
    clipped = _solve_projected(q, omega, grad_f, m, z)
    # (6a)-(6b): Jphi(x)^T z from the 1-D values and derivatives
    p1, p2, d1, d2 = np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    _legendre(x[0], k, p1, d1)
    _legendre(x[1], k, p2, d2)
    first = second = 0.0
    for a in range(k):
        row1 = row2 = 0.0
        for b in range(k):
            row1 += z[a * k + b] * p2[b]
            row2 += z[a * k + b] * d2[b]
        first += d1[a] * row1
        second += p1[a] * row2
    x_hat[0] = min(max(x[0] - gamma_x * first, -1.0), 1.0)
    x_hat[1] = min(max(x[1] - gamma_x * second, -1.0), 1.0)
    for c in range(2):
        x_out[c] = x[c] + delta * (x_hat[c] - x[c])
    # (7): y_{k+1} and the moments of p(., y_{k+1}) (ExponentialFamily.evaluate)
    for j in range(m):
        y_out[j] = y_mix[j] - gamma_y * r[j]
    s = u @ (y_out.reshape(k, k) @ u_t)
    peak = -np.inf
    for a in range(lo, hi):
        for b in range(lo, hi):
            peak = max(peak, s[a, b])
    e = np.empty_like(s)
    g = s.shape[0]
    for a in range(g):
        for b in range(g):
            e[a, b] = np.exp(max(s[a, b] - peak, EXP_FLOOR))
    m2 = u2w_t @ (e @ u2w)
    total = m2[0, 0]
    log_z = peak + np.log(total)
    m2 /= total
    for a in range(k):
        for b in range(k):
            mean_out[a * k + b] = m2[a, b]
    pairs = (lin @ m2) @ lin_t
    flat = pairs.ravel()
    for j in range(len(gather)):
        cov_out[j] = flat[gather[j]] - mean_out[rows[j]] * mean_out[cols[j]]
    dev = (s - log_target) * e
    proj = (uw_t @ (dev @ uw)) / total
    kl = proj[0, 0] - log_z
    kl_out[0] = kl
    for a in range(k):
        for b in range(k):
            grad_out[a * k + b] = proj[a, b] - (log_z + kl) * mean_out[a * k + b]
    # (8)-(9): the trackers, from phi at x_{k+1} and at x_k
    q1, q2 = np.empty(k), np.empty(k)
    _legendre(x_out[0], k, q1, d1)
    _legendre(x_out[1], k, q2, d2)
    for a in range(k):
        for b in range(k):
            j = a * k + b
            phi_out[j] = q1[a] * q2[b]
            grad_next = -phi_out[j] + mean_out[j] + omega * y_out[j]
            grad_now = -phi[j] + mean[j] + omega * y[j]
            r_out[j] = r_mix[j] + grad_next - grad_now
    for j in range(len(q)):
        q_out[j] = q_mix[j] + cov_out[j] - cov[j]
    return clipped


@jit
def agent_row_step(x, y, r, q, mean, cov, grad_f, phi, self_weight, weights, ys, rs, qs,
                   u, u_t, u2w, u2w_t, uw, uw_t, lin, lin_t, gather, rows, cols, lo, hi,
                   log_target, k, omega, gamma_x, gamma_y, delta,
                   x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, phi_out, kl_out,
                   x_hat):
    """row_step for one agent from its neighbours' rows: sum_j a_ij (y_j, r_j, q_j) first."""
    y_mix, r_mix, q_mix = self_weight * y, self_weight * r, self_weight * q
    for j in range(len(weights)):
        a = weights[j]
        for c in range(len(y)):
            y_mix[c] += a * ys[j, c]
            r_mix[c] += a * rs[j, c]
        for c in range(len(q)):
            q_mix[c] += a * qs[j, c]
    return row_step(x, y, r, q, mean, cov, grad_f, phi, y_mix, r_mix, q_mix, u, u_t, u2w, u2w_t,
                    uw, uw_t, lin, lin_t, gather, rows, cols, lo, hi, log_target, k, omega,
                    gamma_x, gamma_y, delta, x_out, y_out, r_out, q_out, mean_out, cov_out,
                    grad_out, phi_out, kl_out, x_hat)


@numba.njit(cache=True, nogil=True, parallel=True)
def rows_step(x, y, r, q, mean, cov, grad_f, phi, y_mix, r_mix, q_mix,
              u, u_t, u2w, u2w_t, uw, uw_t, lin, lin_t, gather, rows, cols, lo, hi, log_target,
              k, omega, gamma_x, gamma_y, delta,
              x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, phi_out, kl_out, x_hat,
              clipped):
    """row_step for every row of a batch (a swarm's step), the rows shared among the cores."""
    for i in numba.prange(x.shape[0]):
        clipped[i] = row_step(x[i], y[i], r[i], q[i], mean[i], cov[i], grad_f[i], phi[i],
                              y_mix[i], r_mix[i], q_mix[i], u, u_t, u2w, u2w_t, uw, uw_t, lin,
                              lin_t, gather, rows, cols, lo, hi, log_target, k, omega, gamma_x,
                              gamma_y, delta, x_out[i], y_out[i], r_out[i], q_out[i],
                              mean_out[i], cov_out[i], grad_out[i], phi_out[i],
                              kl_out[i:i + 1], x_hat[i])


@numba.njit(cache=True, nogil=True, parallel=True)
def mixed_rows_step(indptr, indices, data, x, y, r, q, mean, cov, grad_f, phi,
                    u, u_t, u2w, u2w_t, uw, uw_t, lin, lin_t, gather, rows, cols, lo, hi,
                    log_target, k, omega, gamma_x, gamma_y, delta,
                    x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, phi_out, kl_out,
                    x_hat, clipped):
    """
    rows_step with the mixing in it: row i sums a_ij (y_j, r_j, q_j) over row i of the weights.

    The weights in CSR (indptr, indices, data), as scipy's product takes them and in its order;
    no swarm-sized mix is made, and the rows' mixing is shared among the cores with their steps.
    """
    for i in numba.prange(x.shape[0]):
        y_mix, r_mix, q_mix = np.zeros(y.shape[1]), np.zeros(r.shape[1]), np.zeros(q.shape[1])
        for p in range(indptr[i], indptr[i + 1]):
            j, a = indices[p], data[p]
            for c in range(y.shape[1]):
                y_mix[c] += a * y[j, c]
                r_mix[c] += a * r[j, c]
            for c in range(q.shape[1]):
                q_mix[c] += a * q[j, c]
        clipped[i] = row_step(x[i], y[i], r[i], q[i], mean[i], cov[i], grad_f[i], phi[i],
                              y_mix, r_mix, q_mix, u, u_t, u2w, u2w_t, uw, uw_t, lin, lin_t,
                              gather, rows, cols, lo, hi, log_target, k, omega, gamma_x,
                              gamma_y, delta, x_out[i], y_out[i], r_out[i], q_out[i],
                              mean_out[i], cov_out[i], grad_out[i], phi_out[i],
                              kl_out[i:i + 1], x_hat[i])
