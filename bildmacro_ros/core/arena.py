# SPDX-License-Identifier: Apache-2.0
"""The arena: where C = [-1, 1]^2, in which the algorithm runs, lies in the lab (metres)."""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class Arena:
    """
    An affine map from C to the lab: scaled to `size`, turned by `rotation`, moved to `centre`.

    lab = centre + R(rotation) diag(width / 2, height / 2) c. The algorithm never sees it: agents
    turn x_i^k into a waypoint through it, and everything that measures robots (arrival, the
    recorder's KL) turns their lab poses back. The default is the identity: C in metres.
    """

    centre: tuple[float, float] = (0.0, 0.0)
    size: tuple[float, float] = (2.0, 2.0)
    rotation: float = 0.0

    @classmethod
    def of(cls, centre, size, rotation) -> "Arena":
        """Return the arena of config values (arena.centre, arena.size, arena.rotation)."""
        return cls(tuple(float(v) for v in centre), tuple(float(v) for v in size), float(rotation))

    @classmethod
    def from_config(cls, cfg: dict) -> "Arena":
        arena = cfg["arena"]
        return cls.of(arena["centre"], arena["size"], arena["rotation"])

    @property
    def is_identity(self) -> bool:
        return self == Arena()

    @property
    def scale(self) -> float:
        """Metres per unit of C along its shorter side: no two points of C come closer."""
        return min(self.size) / 2

    # Element by element, not a matrix product: a point's image must be the same to the last bit
    # whether it is mapped alone (an agent's waypoint) or in an array (the recorder's), since a
    # held-back robot is recognised by its exact goal.
    def to_lab(self, xy) -> np.ndarray:
        """Return points of C (..., 2) in the lab's frame."""
        xy = np.asarray(xy, dtype=float)
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        u, v = xy[..., 0] * (self.size[0] / 2), xy[..., 1] * (self.size[1] / 2)
        return np.stack([c * u - s * v + self.centre[0], s * u + c * v + self.centre[1]], -1)

    def to_c(self, xy) -> np.ndarray:
        """Return lab points (..., 2) in C's coordinates (outside [-1, 1]^2 if outside)."""
        xy = np.asarray(xy, dtype=float)
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        dx, dy = xy[..., 0] - self.centre[0], xy[..., 1] - self.centre[1]
        return np.stack([(c * dx + s * dy) / (self.size[0] / 2),
                         (c * dy - s * dx) / (self.size[1] / 2)], -1)

    def contains(self, xy, slack: float = 1e-9) -> bool:
        """Tell whether a lab point lies in the arena (within `slack` in C's units)."""
        return bool(np.all(np.abs(self.to_c(xy)) <= 1 + slack))

    def corners(self) -> np.ndarray:
        """Return the arena's four corners in the lab, counter-clockwise from C's (-1, -1)."""
        return self.to_lab(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float))

    def start_poses(self, x0: np.ndarray) -> list[float]:
        """
        Give x, y (m), heading per robot, flat: at x_i^0, headings spread around the circle.

        So the controller starts from every bearing.
        """
        n, xy = len(x0), self.to_lab(x0)
        return [float(v) for i in range(n) for v in (xy[i, 0], xy[i, 1], 2 * np.pi * i / n)]

    def values(self) -> list[float]:
        """Return centre, size and rotation as five numbers (robots.npz keeps them so)."""
        return [*self.centre, *self.size, self.rotation]

    def describe(self) -> str:
        w, h = self.size
        return (f"{w:g} x {h:g} m centred at ({self.centre[0]:g}, {self.centre[1]:g}), turned "
                f"{math.degrees(self.rotation):g} deg")


def misplaced(poses: list[float], error: float, seed: int) -> list[float]:
    """
    Return flat poses moved `error` metres in seeded directions and turned to seeded headings.

    Where hands put robots: the embedded simulator starts them there (robots.placement_error).
    """
    if error == 0:
        return poses
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    out = np.array(poses, float).reshape(-1, 3)
    away = rng.uniform(-np.pi, np.pi, len(out))
    out[:, 0] += error * np.cos(away)
    out[:, 1] += error * np.sin(away)
    out[:, 2] = rng.uniform(-np.pi, np.pi, len(out))
    return [float(v) for v in out.ravel()]
