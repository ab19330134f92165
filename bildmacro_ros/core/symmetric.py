# SPDX-License-Identifier: Apache-2.0
"""Packed symmetric matrices and the eigenvalue-clipping projection P_{>=omega} of (6a)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def triu_indices(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major upper triangle (0,0), (0,1), ..., (0,m-1), (1,1), ...: the packed order on the wire."""
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


def _solve_block(q: np.ndarray, omega: float, rhs: np.ndarray, z: np.ndarray, clipped: np.ndarray) -> None:
    """Fill z for a batch: Cholesky-proven rows by a batched solve; failing rows found by bisection."""
    shifted = q.copy()
    diagonal = np.einsum("nii->ni", shifted)  # a writable view of every diagonal
    diagonal -= omega
    try:
        np.linalg.cholesky(shifted)
    except np.linalg.LinAlgError:
        if len(q) > 1:
            half = len(q) // 2
            _solve_block(q[:half], omega, rhs[:half], z[:half], clipped[:half])
            _solve_block(q[half:], omega, rhs[half:], z[half:], clipped[half:])
            return
        lam, vec = np.linalg.eigh(q[0])
        z[0] = vec @ ((vec.T @ rhs[0]) / np.maximum(lam, omega))
        clipped[0] = True
        return
    z[:] = np.linalg.solve(q, rhs[..., None])[..., 0]


def solve_projected(q_packed: np.ndarray, omega: float, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    z_i = (P_{>=omega}[q_i])^{-1} rhs_i for each row; also which rows needed a real clip.

    phi_0 = P_0 P_0 = 1 is constant, so e_0 is an exact eigenvector of every H(y) with eigenvalue
    omega and, because (9) adds only differences of H's to a convex combination, of every q_i.
    Rounding leaves that eigenvalue a hair above or below omega, which would send about half the
    agents to an eigendecomposition for a clip that changes nothing; so e_0 is taken at its exact
    value and the projection acts on the remaining block. There, a Cholesky of q - omega I that
    succeeds proves every eigenvalue exceeds omega (the clip is the identity) and a plain solve
    suffices; only rows that fail (found by bisection) pay for eigh. A row's result does not
    depend on the batch it is in, so an agent's node and the vectorised swarm agree.
    """
    q = unpack(np.asarray(q_packed, dtype=float), skip=1)
    rhs = np.asarray(rhs, dtype=float)
    z = np.empty_like(rhs)
    z[:, 0] = rhs[:, 0] / omega
    clipped = np.zeros(len(q), dtype=bool)
    _solve_block(q, omega, rhs[:, 1:], z[:, 1:], clipped)
    return z, clipped
