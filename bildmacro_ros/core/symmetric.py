# SPDX-License-Identifier: Apache-2.0
"""Packed symmetric matrices and the eigenvalue-clipping projection P_{>=omega} of (6a)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg.lapack import dppsv, dpptrf


@lru_cache(maxsize=None)
def triu_indices(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major upper triangle (0,0), (0,1), ..., (1,1), ...: the packed order on the wire."""
    return np.triu_indices(m)


@lru_cache(maxsize=None)
def _flat_maps(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Index maps for np.take (a gather; fancy indexing is ~8x slower at these sizes)."""
    rows, cols = triu_indices(m)
    packed_of = np.empty((m, m), dtype=np.intp)
    packed_of[rows, cols] = packed_of[cols, rows] = np.arange(len(rows))
    return rows * m + cols, packed_of.ravel()


def packed_size(m: int) -> int:
    return m * (m + 1) // 2


def size_from_packed(length: int) -> int:
    m = int(round((np.sqrt(8 * length + 1) - 1) / 2))
    if packed_size(m) != length:
        raise ValueError(f"{length} is not a triangular number m(m+1)/2")
    return m


def pack(q: np.ndarray) -> np.ndarray:
    """(..., m, m) -> (..., m(m+1)/2): the upper triangle, row by row."""
    m = q.shape[-1]
    upper, _ = _flat_maps(m)
    return np.take(q.reshape(q.shape[:-2] + (m * m,)), upper, axis=-1)


def unpack(packed: np.ndarray, skip: int = 0) -> np.ndarray:
    """
    (..., m(m+1)/2) -> (..., m, m), symmetric: the symmetrised q the projection acts on.

    skip > 0 returns only the trailing block [skip:, skip:], gathered contiguously in one pass.
    """
    m = size_from_packed(packed.shape[-1])
    _, full = _flat_maps(m)
    if skip:
        full = full.reshape(m, m)[skip:, skip:].ravel()
    size = m - skip
    return np.take(packed, full, axis=-1).reshape(packed.shape[:-1] + (size, size))


def packed_identity(m: int) -> np.ndarray:
    rows, cols = triu_indices(m)
    return (rows == cols).astype(float)


@lru_cache(maxsize=None)
def _block_diagonal(m: int) -> np.ndarray:
    """Mark the diagonal within the packed block q[1:, 1:] (q_packed[m:]) as a 0/1 mask."""
    size = m - 1
    mask = np.zeros(packed_size(size))
    mask[np.concatenate([[0], np.cumsum(np.arange(size, 1, -1))])] = 1.0
    return mask


def solve_projected(q_packed: np.ndarray, omega: float,
                    rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    z_i = (P_{>=omega}[q_i])^{-1} rhs_i for each row; also which rows needed a real clip.

    phi_0 = P_0 P_0 = 1 is constant, so e_0 is an exact eigenvector of every H(y) with eigenvalue
    omega and, because (9) adds only differences of H's to a convex combination, of every q_i.
    Rounding leaves that eigenvalue a hair above or below omega, which would send about half the
    agents to an eigendecomposition for a clip that changes nothing; so e_0 is taken at its exact
    value and the projection acts on the remaining block. There, a Cholesky of q - omega I that
    succeeds proves every eigenvalue exceeds omega, so the clip is the identity and q itself is
    positive definite: a Cholesky solve with q follows (no LU). Only rows whose test fails pay
    for eigh.

    The packed upper triangle, row by row, is LAPACK's packed lower triangle column by column, and
    the block q[1:, 1:] is the packed row minus its first m entries: LAPACK's packed routines
    (dpptrf, dppsv) take it as it is, with nothing unpacked. Row by row, so a row's result does
    not depend on the batch it is in and an agent's node and the vectorised swarm agree; for
    48 x 48 blocks, direct LAPACK calls cost a third of numpy's batched linalg, which copies
    every matrix in and out around the same routines.
    """
    q_packed = np.asarray(q_packed, dtype=float)
    rhs = np.asarray(rhs, dtype=float)
    n, m = rhs.shape
    block = q_packed[:, m:].copy()  # LAPACK factorises in place
    shifted = block - omega * _block_diagonal(m)  # q - omega I, every row at once
    z = np.empty_like(rhs)
    z[:, 0] = rhs[:, 0] / omega
    clipped = np.zeros(n, dtype=bool)
    for i in range(n):
        _, info = dpptrf(m - 1, shifted[i], lower=1, overwrite_ap=1)
        if info == 0:
            solution, info = dppsv(m - 1, block[i], rhs[i, 1:, None], lower=1)
            if info == 0:
                z[i, 1:] = solution[:, 0]
                continue
        lam, vec = np.linalg.eigh(unpack(q_packed[i], skip=1))
        z[i, 1:] = vec @ ((vec.T @ rhs[i, 1:]) / np.maximum(lam, omega))
        clipped[i] = True
    return z, clipped
