# SPDX-License-Identifier: Apache-2.0
"""
The compiled step's linear algebra (numba): z = P_{>=omega}[q]^{-1} rhs from q's packed row.

numba's cache checks the source of the file a cached function is defined in, not of the files it
calls: kernel.drop_stale_cache deletes kernel_numba's cached functions when this file changes (a
cache in NUMBA_CACHE_DIR is yours to clear).
"""

import llvmlite.binding as llvm
import numba
from numba import types
from numba.extending import get_cython_function_address
import numpy as np

jit = numba.njit(cache=True, nogil=True)
# for the factorisations' and solves' dot products: reassociated, they vectorise; the rounding
# then differs from LAPACK's as LAPACK's own blocking does, within the tests' tolerance
dots = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
_EPS = np.finfo(np.float64).eps

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


@dots
def _cholesky(q, m, shift, low):
    """
    Factor q[1:, 1:] - shift I = L L^T into low's lower triangle; False if not positive definite.

    q is the packed row (upper triangle row by row), read in place: the block's column j below
    the diagonal is its packed row j. Column by column, as LAPACK's unblocked dpotf2 (with its
    test: a pivot not > 0), without LAPACK's call, copies and zeroed triangle. Four rows of a
    column at a time: their sums share one loop and each load of row j. 48 x 48 in 3.2 µs
    here, against 3.9 a row at a time and 8.0 through numpy's.
    """
    n = m - 1
    for j in range(n):
        start = m + j * n - j * (j - 1) // 2  # q[1 + j, 1 + j] in the packed row
        total = q[start] - shift
        for p in range(j):
            total -= low[j, p] * low[j, p]
        if not total > 0.0:
            return False
        pivot = np.sqrt(total)
        low[j, j] = pivot
        i = j + 1
        while i + 4 <= n:
            at = start + i - j
            t0, t1, t2, t3 = q[at], q[at + 1], q[at + 2], q[at + 3]
            for p in range(j):
                known = low[j, p]
                t0 -= low[i, p] * known
                t1 -= low[i + 1, p] * known
                t2 -= low[i + 2, p] * known
                t3 -= low[i + 3, p] * known
            low[i, j], low[i + 1, j] = t0 / pivot, t1 / pivot
            low[i + 2, j], low[i + 3, j] = t2 / pivot, t3 / pivot
            i += 4
        for i in range(i, n):
            total = q[start + i - j]
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
    for i in range(size - 1, -1, -1):  # L^T z = w by rows of L: each an axpy, not a gather
        b[i] /= low[i, i]
        known = b[i]
        for p in range(i):
            b[p] -= low[i, p] * known


@dots
def smallest_eigenvalue_bound(low, floor=0.0):
    """
    Return a number at or below the smallest eigenvalue of L L^T, from its Cholesky factor L.

    lambda_min = 1 / ||L^-1||_2^2 and ||L^-1||_2^2 <= ||L^-1||_1 ||L^-1||_inf; the comparison
    matrix M(L) (|l_ii| on the diagonal, -|l_ij| off it) bounds |L^-1| by M(L)^-1 >= 0, so the
    two norms are at most the largest entries of M(L)^-1 e and M(L)^-T e: two triangular solves
    (Higham, Accuracy and Stability, 8.3). It can be far below lambda_min: a bound, not an
    estimate. Every term is positive, so its rounding is relative, of order n eps.

    0.0 where the bound is at or below `floor`, found as early as it can be: each entry of
    M(L)^-T e is at least 1 / l_pp, so the largest entry of M(L)^-1 e so far bounds the result
    from above, and the solves stop where that passes floor (a settled swarm's bound is 1e-11,
    the caller's floor about 2 omega).
    """
    n = low.shape[0]
    smallest = np.inf
    for i in range(n):
        smallest = min(smallest, low[i, i])
    rows, cols = np.empty(n), np.ones(n)
    widest = 0.0
    for i in range(n):  # M(L) w = e
        total = 1.0
        for p in range(i):
            total += abs(low[i, p]) * rows[p]
        rows[i] = total / low[i, i]
        widest = max(widest, rows[i])
        if widest * floor >= smallest:  # bound <= smallest / widest <= floor
            return 0.0
    for p in range(n - 1, -1, -1):  # M(L)^T v = e, by rows of L
        cols[p] /= low[p, p]
        known = cols[p]
        if known * widest * floor >= 1.0:  # bound <= 1 / (widest known) <= floor
            return 0.0
        for i in range(p):
            cols[i] += abs(low[p, i]) * known
    bound = 1.0 / (widest * cols.max())
    return bound if bound > floor else 0.0


@jit
def _certified_above(low, q, m, omega):
    """
    Tell whether q[1:, 1:] = L L^T has every eigenvalue above omega by a wide margin.

    True only where the bound clears 2 omega and L L^T's distance from q (the factorisation's
    backward error, at most (n + 1) eps trace(q) and here a thousand times that): the Cholesky
    of q - omega I that the numpy path runs would then succeed too, and both paths agree that
    the clip is the identity. Otherwise the caller runs that Cholesky itself.
    """
    n = m - 1
    trace = 0.0
    for j in range(n):
        trace += q[m + j * n - j * (j - 1) // 2]
    margin = 1000.0 * (n + 1) * _EPS * trace
    floor = 2.0 * omega + margin
    return smallest_eigenvalue_bound(low, floor) > floor


@jit
def _unpacked_block(q, m):
    """q[1:, 1:] as a full matrix, from the packed row."""
    size = m - 1
    full = np.empty((size, size))
    index = m
    for i in range(size):
        for j in range(i, size):
            full[i, j] = full[j, i] = q[index]
            index += 1
    return full


@jit
def solve_projected(q, omega, rhs, m, z):
    """
    Solve z = P_{>=omega}[q]^{-1} rhs for one row (core/symmetric.py's solve_projected).

    Returns whether the clip changed q. As there: e_0 at its exact eigenvalue omega; on the
    block q[1:, 1:], a clip that is the identity leaves a Cholesky solve with q, else eigh.
    numpy's path proves the identity by a Cholesky of q - omega I; here the factor of q that
    the solve needs proves it first where it can (_certified_above, the usual case once the
    swarm has settled), and that second factorisation runs only where it cannot.
    """
    size = m - 1
    z[0] = rhs[0] / omega
    low = np.empty((size, size))
    if _cholesky(q, m, 0.0, low):
        if _certified_above(low, q, m, omega) or \
                _cholesky(q, m, omega, np.empty((size, size))):
            solution = rhs[1:].copy()  # no clip: the solve with q itself
            _cholesky_solve(low, solution)
            z[1:] = solution
            return False
    # the clip raises the eigenvalues below omega to omega: P = q + sum (omega - lam) v v^T,
    # from those eigenpairs alone, then a Cholesky solve with P
    full = _unpacked_block(q, m)
    info, lam, vec = _eigen_below(full.copy(), omega)
    if info == 0:
        projected = np.empty(size * (size + 1) // 2 + m)  # P's block, packed as q's
        index = m
        for a in range(size):
            for b in range(a, size):
                total = full[a, b]
                for j in range(len(lam)):
                    total += (omega - lam[j]) * vec[j, a] * vec[j, b]
                projected[index] = total
                index += 1
        if _cholesky(projected, m, 0.0, low):
            solution = rhs[1:].copy()
            _cholesky_solve(low, solution)
            z[1:] = solution
            return True
    # LAPACK failed, or P's Cholesky did: the whole eigendecomposition, as the numpy path does
    lam, vec = np.linalg.eigh(full)
    weights = np.ascontiguousarray(vec.T) @ np.ascontiguousarray(rhs[1:])
    for i in range(size):
        weights[i] /= max(lam[i], omega)
    z[1:] = np.ascontiguousarray(vec) @ weights
    return True
