# SPDX-License-Identifier: Apache-2.0
"""
Rounds with missing neighbours: the late-neighbour policies, and seeded fault injection.

Algorithm 1 is synchronous: agent i steps round k with a_ij-weighted sums over every
in-neighbour's round-k message. A node that waits longer than its deadline steps without the
messages still missing, with one of two policies:

- ``reuse``: the weights stay as they are and j's newest message (an older round) stands in
  for round k. The weight matrix stays doubly stochastic; only the data is old.
- ``drop``: j leaves this round's sums and its weight a_ij moves to the self weight a_ii. Row i
  still sums to 1, so y stays a weighted average, but column j loses a_ij.

A neighbour that stays silent (no message of any round) for `dead_after` deadlines is declared
dead and is then always dropped, without waiting; a waiting agent re-sends its newest rounds
every half deadline, so a live one is never silent that long. Reusing a dead neighbour's last
message forever would make it a stubborn agent that pulls every y towards its frozen one. When
every neighbour of a dead agent drops it and A is symmetric (Metropolis weights are), the
survivors' weights are again doubly stochastic (`survivor_weights` checks it).

What the policies do to the tracking invariants: with a column-stochastic A,
mean_i r_i^k - mean_i grad_y g_i(x_i^k, y_i^k) and mean_i q_i^k - mean_i H(y_i^k) keep their
round-0 value, zero (Theorem 1's initialisation), for ever. A missed message adds a one-off error
to these sums: a_ij (r_j^old - r_j^k) for reuse, a_ij (r_i^k - r_j^k) for drop (the same for q),
and nothing later removes it: gradient tracking keeps whatever offset its sums hold. Both
errors vanish as the swarm converges (successive rounds and neighbours agree), so late
messages cost accuracy early in a run and little near its end. A dead agent leaves the error
grad_y g_j - r_j of its last round: the survivors keep modelling it as a sample at its last
position, where its robot still stands. `reset_tracking` re-applies Theorem 1's initialisation
at the current (x_i, y_i), which sets both errors back to zero; agents that share a reset round
(`tracking_reset` in the config) do it without talking to each other.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from .graph import in_neighbours

LATE_POLICIES = ("reuse", "drop")


def round_weights(self_weight: float, weights: np.ndarray, heard: np.ndarray, stand_in: np.ndarray,
                  policy: str,
                  dead: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """
    Return the weights agent i uses this round, and which neighbours' rows are stale stand-ins.

    heard[j]: round k's message from neighbour j is here. stand_in[j]: an older message from j is
    at hand (reuse needs one). dead[j]: j was declared dead (always dropped).
    Returns (a_ii, a_ij per neighbour with 0 for dropped ones, reused mask).
    """
    weights = np.asarray(weights, dtype=float)
    heard = np.asarray(heard, dtype=bool)
    dead = np.zeros_like(heard) if dead is None else np.asarray(dead, dtype=bool)
    if policy not in LATE_POLICIES:
        raise ValueError(f"late policy must be one of {', '.join(LATE_POLICIES)}, got {policy!r}")
    reused = ~heard & ~dead & np.asarray(stand_in,
                                         dtype=bool) if policy == "reuse" else np.zeros_like(heard)
    used = heard | reused
    kept = np.where(used, weights, 0.0)
    return float(self_weight + weights[~used].sum()), kept, reused


def mix_inputs(neighbours, self_weight: float, weights: np.ndarray, fresh: dict, stale: dict,
               policy: str, dead=frozenset()) -> tuple[float, np.ndarray, list]:
    """
    Return what agent i mixes in a round where some neighbours are late or dead.

    fresh: neighbour id -> its round-k message; stale: id -> its newest older one (for reuse).
    Returns (a_ii, a_ij of the neighbours used, their messages in the same order).
    """
    a_ii, kept, _ = round_weights(self_weight, weights, np.array([j in fresh for j in neighbours]),
                                  np.array([j in stale for j in neighbours]), policy,
                                  np.array([j in dead for j in neighbours]))
    used = np.flatnonzero(kept > 0)
    return a_ii, kept[used], [fresh[neighbours[n]] if neighbours[n] in fresh
                              else stale[neighbours[n]] for n in used]


def survivor_weights(weights: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """
    Return the matrix the survivors mix with once every neighbour drops the dead.

    Each survivor's weights on dead agents move to its self weight (rows and columns of the dead
    are removed).
    """
    weights = np.asarray(weights, dtype=float)
    alive = np.asarray(alive, dtype=bool)
    kept = weights[np.ix_(alive, alive)].copy()
    kept[np.diag_indices_from(kept)] += weights[np.ix_(alive, ~alive)].sum(axis=1)
    return kept


class FaultInjector:
    """
    Seeded message faults for tests and studies.

    Whether the message of round k from j to i is lost, and by how much it is late.

    The draw depends only on (seed, sender, receiver, round), so a re-sent copy of a lost message
    is lost too (the round is gone, as when a robot is out of range), and a run's faults do not
    depend on timing or on how many copies were sent.
    """

    def __init__(self, seed: int = 0, drop: float = 0.0, delay: float = 0.0):
        if not 0.0 <= drop < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {drop}")
        if not (np.isfinite(delay) and delay >= 0.0):
            raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay}")
        self.seed, self.drop, self.delay = int(seed), float(drop), float(delay)

    @property
    def active(self) -> bool:
        return self.drop > 0 or self.delay > 0

    def _uniforms(self, sender: int, receiver: int, k: int) -> tuple[float, float]:
        # a hash, not a Generator per message: ~1 us, and identical on every platform and numpy
        digest = hashlib.blake2b(struct.pack("<qqqq", self.seed, sender, receiver, k),
                                 digest_size=16).digest()
        a, b = struct.unpack("<QQ", digest)
        return a / 2.0**64, b / 2.0**64

    def lost(self, sender: int, receiver: int, k: int) -> bool:
        return self.drop > 0 and self._uniforms(sender, receiver, k)[0] < self.drop

    def latency(self, sender: int, receiver: int, k: int) -> float:
        """Extra seconds before the message is handed to the receiver: uniform in [0, delay]."""
        return self.delay * self._uniforms(sender, receiver, k)[1] if self.delay > 0 else 0.0

    def lossy_rounds(self, weights: np.ndarray, iterations: int) -> np.ndarray:
        """
        Agent i's rounds that lost an in-neighbour's message: (N, iterations) bool.

        Such a round k cannot be stepped on time. Its sum is the fewest late agent-rounds a run can
        have.
        """
        n = len(weights)
        lossy = np.zeros((n, iterations), dtype=bool)
        if self.drop > 0:
            for i in range(n):
                for j in in_neighbours(weights, i):
                    lossy[i] |= [self.lost(int(j), i, k) for k in range(iterations)]
        return lossy
