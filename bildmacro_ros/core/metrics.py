# SPDX-License-Identifier: Apache-2.0
"""The quantities the paper plots (algorithm.md, "Metrics"), from a swarm's stacked state."""

from __future__ import annotations

import numpy as np

from .problem import BilevelProblem, ThetaSolution

# stand_ins: agents whose record of the round never reached a distributed run's recorder, stood in
# by their newest earlier record (always 0 offline)
COLUMNS = ("iteration", "lower_grad_norm", "step_norm", "consensus_error", "kl", "stand_ins")


def default_log_every(iterations: int) -> int:
    """About a thousand metrics rows per run."""
    return max(1, iterations // 1000)


def snapshot_iterations(iterations: int) -> list[int]:
    """0, then roughly K/10, K/4, K/2 and K: early motion is fast, so sample it more densely."""
    return sorted({int(round(f * iterations)) for f in (0.0, 0.1, 0.25, 0.5, 1.0)})


def metric_rounds(iterations: int, log_every: int) -> list[int]:
    """Return the rounds with a metrics row: every log_every-th, the last step K-1, and K."""
    return sorted(set(range(0, iterations, log_every)) | {max(iterations - 1, 0), iterations})


def recorded_rounds(iterations: int, log_every: int) -> set[int]:
    """Every round a run's files need: metrics rows, snapshots, and the final state K."""
    return set(metric_rounds(iterations,
                             log_every)) | set(snapshot_iterations(iterations)) | {iterations}


def lower_grad_norm(problem: BilevelProblem, x: np.ndarray, y: np.ndarray,
                    mean: np.ndarray) -> float:
    """
    sqrt(sum_i ||grad_y g(x, y_i)||^2).

    The full lower-level gradient at each agent's estimate.
    """
    phibar = problem.phi(x).mean(axis=0)
    return float(np.linalg.norm(-phibar + mean + problem.omega * y))


def step_norm(x_hat: np.ndarray, x: np.ndarray) -> float:
    return float(np.linalg.norm(x_hat - x))


def consensus_error(y: np.ndarray) -> float:
    """max_i ||y_i - ybar||."""
    return float(np.linalg.norm(y - y.mean(axis=0), axis=1).max())


class ObjectiveTracker:
    """l(x) = f(theta(x)) along a run; each Newton solve starts from the last theta (cheap)."""

    def __init__(self, problem: BilevelProblem):
        self.problem = problem
        self.solution: ThetaSolution | None = None

    def __call__(self, x: np.ndarray) -> float:
        start = None if self.solution is None else self.solution.theta
        self.solution = self.problem.theta(x, start)
        return float(self.solution.stats.kl[0])
