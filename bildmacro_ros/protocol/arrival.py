# SPDX-License-Identifier: Apache-2.0
"""When agent i's robot counts as at a waypoint: the rule that a round waiting for it asks."""

from __future__ import annotations

import numpy as np

from ..core.arena import Arena


class Arrival:
    """
    The robot's newest measured position, and its follower's word on being held back.

    At a waypoint: no robot is waited for; or its position is within tolerance of it; or its
    follower says the robot's neighbours hold it back from exactly this waypoint (bodies with a
    safety filter, which may keep a robot short of its goal for good). Positions, waypoints and
    the tolerance are in the arena's metres; the x asked about is in C.
    """

    def __init__(self, wait: bool, tolerance: float, arena: Arena = Arena()):
        self.wait, self.tolerance, self.arena = wait, tolerance, arena
        self.xy: np.ndarray | None = None
        self.held_at: np.ndarray | None = None

    def pose(self, xy) -> None:
        """Note a measured position; a non-finite one is ignored and the last one stands."""
        xy = np.asarray(xy, dtype=float)
        if np.all(np.isfinite(xy)):
            self.xy = xy

    def held(self, xy) -> None:
        """Note the follower's word that neighbours hold the robot back from waypoint xy."""
        self.held_at = np.asarray(xy, dtype=float)

    def at(self, x: np.ndarray) -> bool:
        """Tell whether the robot is at x's waypoint (x in C)."""
        if not self.wait:
            return True
        xy = self.arena.to_lab(x)
        if self.held_at is not None and np.array_equal(self.held_at, xy):
            return True
        return self.xy is not None and float(np.hypot(*(self.xy - xy))) <= self.tolerance
