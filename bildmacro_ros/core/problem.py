# SPDX-License-Identifier: Apache-2.0
"""The bilevel problem: the fit g, its minimiser theta(x), the KL objective f and l = f o theta."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .family import ExponentialFamily, FamilyStats
from .symmetric import unpack


@dataclass
class ThetaSolution:
    theta: np.ndarray  # (m,)
    grad_norm: float  # ||grad_y g(x, theta)|| reached
    iterations: int
    stats: FamilyStats  # of p(., theta), with cov, kl and grad_f


class BilevelProblem:
    """g_i(x_i, y) = -y^T phi(x_i) + ln Z(y) + omega/2 ||y||^2 and f(y) = KL(p(., y) || p*)."""

    def __init__(self, family: ExponentialFamily, target: np.ndarray, omega: float):
        target = np.asarray(target, dtype=float)
        if target.shape != (family.grid.size,) * 2:
            raise ValueError(f"target must be a ({family.grid.size}, {family.grid.size}) grid "
                             "density")
        if np.any(target <= 0) or not np.all(np.isfinite(target)):
            raise ValueError("target density must be positive and finite on the grid "
                             "(add a floor)")
        self.family = family
        self.target = family.normalise(target)
        self.log_target = np.log(self.target)
        self.omega = float(omega)
        self.m = family.m

    def evaluate(self, y: np.ndarray, cov: bool = True) -> FamilyStats:
        return self.family.evaluate(y, self.log_target, cov=cov)

    def phi(self, x: np.ndarray) -> np.ndarray:
        return self.family.basis.phi(x)

    # -- lower level -------------------------------------------------------------------------
    def lower_value(self, x: np.ndarray, y: np.ndarray) -> float:
        """g(x, y) = (1/N) sum_i g_i(x_i, y) for one parameter vector y."""
        phibar = self.phi(x).mean(axis=0)
        log_z = self.family.evaluate(y, cov=False).log_z[0]
        return float(-y @ phibar + log_z + 0.5 * self.omega * y @ y)

    def local_gradient(self, phi_x: np.ndarray, y: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """grad_y g_i(x_i, y_i) = -phi(x_i) + mu(y_i) + omega y_i, row by row."""
        return -phi_x + mean + self.omega * y

    def hessian(self, cov_packed: np.ndarray) -> np.ndarray:
        """H(y) = cov_p[phi] + omega I as full matrices, from packed covariances."""
        return unpack(cov_packed) + self.omega * np.eye(self.m)

    def theta(self, x: np.ndarray, start: np.ndarray | None = None, tol: float = 1e-14,
              max_iter: int = 200) -> ThetaSolution:
        """
        Solve for argmin_y g(x, y) by damped Newton, to ||grad|| <= tol where rounding allows.

        Derivatives of theta are sensitive to the stopping point when cond(H) ~ 1e4, hence the
        tight default. When rounding stops progress short of tol, the best iterate is returned.
        """
        phibar = self.phi(np.asarray(x, dtype=float)).mean(axis=0)
        y = np.zeros(self.m) if start is None else np.array(start, dtype=float)

        def value(stats: FamilyStats, yy: np.ndarray) -> float:
            return float(-yy @ phibar + stats.log_z[0] + 0.5 * self.omega * yy @ yy)

        stats = self.evaluate(y)
        grad = -phibar + stats.mean[0] + self.omega * y
        norm = float(np.linalg.norm(grad))
        stalls = 0
        for it in range(1, max_iter + 1):
            if norm <= tol:
                return ThetaSolution(y, norm, it - 1, stats)
            direction = np.linalg.solve(self.hessian(stats.cov)[0], grad)
            current = value(stats, y)
            step = 1.0
            while True:
                trial = y - step * direction
                trial_stats = self.evaluate(trial)
                # near the optimum values agree to rounding, so accept the full Newton step there
                sufficient = value(trial_stats, trial) <= current - 1e-4 * step * grad @ direction
                if norm < 1e-6 or sufficient or step < 1e-10:
                    break
                step *= 0.5
            trial_grad = -phibar + trial_stats.mean[0] + self.omega * trial
            trial_norm = float(np.linalg.norm(trial_grad))
            if trial_norm >= norm and norm < 1e-8:
                stalls += 1
                if stalls >= 3:
                    return ThetaSolution(y, norm, it, stats)
                continue
            y, stats, grad, norm = trial, trial_stats, trial_grad, trial_norm
        if norm > 1e-8:
            raise RuntimeError(f"Newton for theta(x) did not converge: ||grad|| = {norm:.3e} "
                               f"after {max_iter} steps")
        return ThetaSolution(y, norm, max_iter, stats)

    # -- upper level -------------------------------------------------------------------------
    def objective(self, x: np.ndarray, start: np.ndarray | None = None) -> float:
        """l(x) = f(theta(x)): the KL the swarm's positions induce."""
        return float(self.theta(x, start).stats.kl[0])

    def theta_jacobian(self, x: np.ndarray, solution: ThetaSolution) -> np.ndarray:
        """Return d theta / d x_i = (1/N) H(theta)^{-1} Jphi(x_i), stacked as (N, m, 2)."""
        x = np.asarray(x, dtype=float)
        h = self.hessian(solution.stats.cov)[0]
        jac = self.family.basis.jacobian(x)  # (N, m, 2)
        sol = np.linalg.solve(h,
                              jac.transpose(1, 0,
                                            2).reshape(self.m, -1)).reshape(self.m, len(x), 2)
        return sol.transpose(1, 0, 2) / len(x)

    def implicit_weights(self, solution: ThetaSolution) -> np.ndarray:
        """Return z = H(theta)^{-1} grad f(theta); agent i's hypergradient is Jphi(x_i)^T z / N."""
        return np.linalg.solve(self.hessian(solution.stats.cov)[0], solution.stats.grad_f[0])

    def hypergradient(self, x: np.ndarray, solution: ThetaSolution | None = None) -> np.ndarray:
        """[grad l(x)]_i = (1/N) Jphi(x_i)^T H(theta)^{-1} grad f(theta), (N, 2)."""
        x = np.asarray(x, dtype=float)
        solution = solution or self.theta(x)
        z = np.broadcast_to(self.implicit_weights(solution), (len(x), self.m))
        return self.family.basis.jacobian_transpose_times(x, z) / len(x)
