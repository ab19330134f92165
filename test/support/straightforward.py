# SPDX-License-Identifier: Apache-2.0
"""
A straightforward BILD-MACRO, written from the paper's formulas with no tricks, as a yardstick.

Dense 1681 x m features, one agent at a time, eigh for every projection. It shares nothing with
bildmacro_ros.core except the inputs (grid points, weights, target), so it is also an
independent oracle: the tests check that both produce the same iterates.
"""

from __future__ import annotations

import numpy as np


def legendre_1d(c, order):
    out = [np.ones_like(c), c]
    for k in range(2, order + 1):
        out.append(((2 * k - 1) * c * out[k - 1] - (k - 1) * out[k - 2]) / k)
    return np.stack(out[: order + 1], axis=-1)


def legendre_1d_derivative(c, order):
    p = legendre_1d(c, order)
    out = [np.zeros_like(c), np.ones_like(c)]
    for k in range(2, order + 1):
        out.append(out[k - 2] + (2 * k - 1) * p[..., k - 1])
    return np.stack(out[: order + 1], axis=-1)


class Straightforward:
    def __init__(self, order, grid_points, grid_weights_2d, target, weights, gamma_x, gamma_y,
                 omega, delta):
        self.order = order
        c1, c2 = np.meshgrid(grid_points, grid_points, indexing="ij")
        self.points = np.stack([c1.ravel(), c2.ravel()], axis=1)  # (1681, 2)
        self.features = np.stack([self.phi(p) for p in self.points])  # (1681, m) dense
        self.w = grid_weights_2d.ravel()
        self.log_target = np.log(target.ravel())
        self.A = weights
        self.neighbours = [np.flatnonzero(row) for row in weights]
        self.gamma_x, self.gamma_y, self.omega, self.delta = gamma_x, gamma_y, omega, delta
        self.m = self.features.shape[1]

    def phi(self, x):
        return np.kron(legendre_1d(np.array(x[0]), self.order),
                       legendre_1d(np.array(x[1]), self.order))

    def jphi(self, x):
        p1, p2 = legendre_1d(np.array(x[0]), self.order), legendre_1d(np.array(x[1]), self.order)
        d1 = legendre_1d_derivative(np.array(x[0]), self.order)
        d2 = legendre_1d_derivative(np.array(x[1]), self.order)
        return np.stack([np.kron(d1, p2), np.kron(p1, d2)], axis=1)  # (m, 2)

    def moments(self, y):
        e = self.features @ y
        log_z = np.log(np.sum(self.w * np.exp(e - e.max()))) + e.max()
        log_p = e - log_z
        pi = self.w * np.exp(log_p)
        mu = pi @ self.features
        second = (self.features * pi[:, None]).T @ self.features
        cov = second - np.outer(mu, mu)
        dev = log_p - self.log_target
        kl = pi @ dev
        grad_f = (self.features * pi[:, None]).T @ (dev - kl)
        return mu, cov, grad_f

    def init(self, x0, y0):
        self.x, self.y = x0.copy(), y0.copy()
        n = len(x0)
        self.r = np.zeros_like(y0)
        self.q = np.zeros((n, self.m, self.m))
        # each step needs them at y^k and y^k+1
        self.cache = [self.moments(y0[i]) for i in range(n)]
        for i in range(n):
            mu, cov, _ = self.cache[i]
            self.r[i] = -self.phi(x0[i]) + mu + self.omega * y0[i]
            self.q[i] = cov + self.omega * np.eye(self.m)

    def step(self):
        n = len(self.x)
        x_new, y_new, r_new, q_new = self.x.copy(), self.y.copy(), self.r.copy(), self.q.copy()
        x_hat = np.empty_like(self.x)
        for i in range(n):
            mu, cov, grad_f = self.cache[i]
            qs = 0.5 * (self.q[i] + self.q[i].T)
            lam, vec = np.linalg.eigh(qs)
            projected = (vec * np.maximum(lam, self.omega)) @ vec.T
            z = np.linalg.solve(projected, grad_f)
            x_hat[i] = np.clip(self.x[i] - self.gamma_x * self.jphi(self.x[i]).T @ z, -1, 1)
            x_new[i] = self.x[i] + self.delta * (x_hat[i] - self.x[i])
            near = self.neighbours[i]  # itself and its in-neighbours
            a = self.A[i, near]
            y_mix = np.tensordot(a, self.y[near], axes=1)
            r_mix = np.tensordot(a, self.r[near], axes=1)
            q_mix = np.tensordot(a, self.q[near], axes=1)
            y_new[i] = y_mix - self.gamma_y * self.r[i]
            self.cache[i] = mu_new, cov_new, _ = self.moments(y_new[i])
            r_new[i] = (r_mix + (-self.phi(x_new[i]) + mu_new + self.omega * y_new[i])
                        - (-self.phi(self.x[i]) + mu + self.omega * self.y[i]))
            q_new[i] = q_mix + cov_new - cov
        self.x, self.y, self.r, self.q = x_new, y_new, r_new, q_new
        return x_hat
