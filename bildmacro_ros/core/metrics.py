"""The quantities the paper plots (algorithm.md, "Metrics"), from a swarm's stacked state."""

from __future__ import annotations

import numpy as np

from .problem import BilevelProblem, ThetaSolution

COLUMNS = ("iteration", "lower_grad_norm", "step_norm", "consensus_error", "kl")


def lower_grad_norm(problem: BilevelProblem, x: np.ndarray, y: np.ndarray, mean: np.ndarray) -> float:
    """sqrt(sum_i ||grad_y g(x, y_i)||^2): the full lower-level gradient at each agent's estimate."""
    phibar = problem.phi(x).mean(axis=0)
    return float(np.linalg.norm(-phibar + mean + problem.omega * y))


def step_norm(x_hat: np.ndarray, x: np.ndarray) -> float:
    return float(np.linalg.norm(x_hat - x))


def consensus_error(y: np.ndarray) -> float:
    """max_i ||y_i - ybar||."""
    return float(np.linalg.norm(y - y.mean(axis=0), axis=1).max())


class ObjectiveTracker:
    """l(x) = f(theta(x)) along a run; each Newton solve starts from the last theta, so it is cheap."""

    def __init__(self, problem: BilevelProblem):
        self.problem = problem
        self.solution: ThetaSolution | None = None

    def __call__(self, x: np.ndarray) -> float:
        start = None if self.solution is None else self.solution.theta
        self.solution = self.problem.theta(x, start)
        return float(self.solution.stats.kl[0])
