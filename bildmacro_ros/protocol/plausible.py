# SPDX-License-Identifier: Apache-2.0
"""
Plausibility bounds on a neighbour's (y, r, q): what the model allows an honest agent to send.

Decoding (wire.py) accepts any finite numbers of the right layout, so a peer on the DDS domain
could send y = 1e300 and ruin every model it reaches. The model bounds what an honest agent can
send (docs/security.md, "Plausible messages", derives each bound):

- |phi_j(c)| <= 1 on C (Legendre, P_k(1) = 1), so every entry of mu(y) = E[phi] and of cov_p[phi]
  lies in [-1, 1], and H = cov + omega I has eigenvalues in [omega, m + omega].
- r (8) tracks grad_y g = -phi_bar + mu + omega y, whose entries are at most 2 + omega |y|; near
  theta, omega |theta|_inf = |phi_bar - mu(theta)|_inf <= 2, so GRADIENT = 4 bounds them.
- q (9) tracks H: entries within 1 + omega. Tracking errors make an honest q indefinite (measured
  down to -11.5 for m = 49), so its smallest eigenvalue is bounded below by sqrt(m) (1 + omega),
  the size of an m x m error whose entries are H's size, not by 0.
- y (7) moves per round by a convex combination of the neighbours' y less gamma_y r: the largest
  |y| entry over the swarm grows by at most gamma_y |r|_inf per round from round 0's.

Each bound is an envelope times SAFETY; a message outside one is dropped under its own reason.
benchmarks/study_bounds.py measures the largest honest value against each bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.linalg import lapack

from .wire import NeighbourState
from ..core.symmetric import triu_indices, unpack

SAFETY = 10.0
GRADIENT = 4.0  # envelope of |grad_y g_i|_inf, see above
INITIAL_Y = 5.0  # |y_i^0|_inf floor: N(0, I) draws of a swarm of 100 stay below it


@dataclass(frozen=True)
class Bounds:
    """The envelopes (before SAFETY) of an honest message, for one model and swarm."""

    m: int
    omega: float
    gamma_y: float
    initial_y: float  # the largest |y_j^0| entry over the swarm

    @classmethod
    def of(cls, m: int, omega: float, gamma_y: float, initial_y: float = 0.0) -> "Bounds":
        return cls(m, float(omega), float(gamma_y), max(float(initial_y), INITIAL_Y))

    @cached_property
    def r(self) -> float:
        return SAFETY * GRADIENT

    @cached_property
    def q(self) -> float:
        return SAFETY * (1 + self.omega)

    @cached_property
    def q_floor(self) -> float:
        """Return how far below 0 an honest q's smallest eigenvalue may lie."""
        return SAFETY * np.sqrt(self.m) * (1 + self.omega)

    def y(self, k: int) -> float:
        """Return the bound on |y_j^k|_inf: round 0's, grown by gamma_y |r|_inf per round (7)."""
        return SAFETY * (self.initial_y + k * self.gamma_y * GRADIENT)

    def check(self, msg: NeighbourState) -> str | None:
        """
        Return why a message is implausible.

        (a drop counter's key), or None if it is plausible.
        """
        q, norms = msg.q, msg.norms
        if norms is None:  # the numpy path, the reference: the compiled pass reads the same
            norms = (np.abs(msg.y).max(initial=0.0), np.abs(msg.r).max(initial=0.0),
                     np.abs(q).max(initial=0.0), None)
        if norms[0] > self.y(msg.iteration):
            return "implausible_y"
        if norms[1] > self.r:
            return "implausible_r"
        if norms[2] > self.q:
            return "implausible_q"
        # |lambda_min(q)| <= ||q||_F: an honest q (||q||_F of a few units) needs no factorisation
        frobenius = np.dot(self._frobenius_weights, q * q) if norms[3] is None else norms[3]
        if frobenius <= self.q_floor ** 2:
            return None
        # q + q_floor I positive definite <=> lambda_min(q) > -q_floor; only the verdict is kept
        _, info = lapack.dpotrf(unpack(q) + self.q_floor * np.eye(self.m), lower=0, overwrite_a=1,
                                clean=0)
        return None if info == 0 else "indefinite_q"

    @cached_property
    def _frobenius_weights(self) -> np.ndarray:
        """Weights w with w . q_packed^2 = ||q||_F^2: 1 on the diagonal, 2 off it."""
        rows, cols = triu_indices(self.m)
        return np.where(rows == cols, 1.0, 2.0)
