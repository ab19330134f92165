# SPDX-License-Identifier: Apache-2.0
"""
The centralised yardstick: the projected hypergradient method (11) with exact theta(x).

Its step is written as the reduced system (18) of the paper, x+ = x + delta (x_hat - x) with
x_hat = P_C[x - gamma_x N grad l(x)]: exactly what (6) does once every agent holds y_i = theta(x)
and q_i = H(theta(x)). So with the same gamma_x and delta it is the trajectory BILD-MACRO tracks,
and its KL after K iterations is the one to compare against.
"""

from __future__ import annotations

import numpy as np

from .bildmacro import microscopic_step, StepSizes
from .problem import BilevelProblem, ThetaSolution


def centralized_step(problem: BilevelProblem, steps: StepSizes, x: np.ndarray,
                     solution: ThetaSolution):
    """One iteration from x with theta(x) known; returns (x_hat, x_next, theta(x_next))."""
    z = np.broadcast_to(problem.implicit_weights(solution), (len(x), problem.m))
    x_hat, x_next = microscopic_step(problem, x, z, steps.gamma_x, steps.delta)
    return x_hat, x_next, problem.theta(x_next, solution.theta)
