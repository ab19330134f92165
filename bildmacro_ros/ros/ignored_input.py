# SPDX-License-Identifier: Apache-2.0
"""Counting, per reason, the input a robot node refuses to act on."""

from __future__ import annotations

from collections import Counter
import math
import time

from ..core.arena import Arena


class IgnoredInput:
    """
    Counts, per reason, the messages a robot node ignores, and warns (throttled).

    A robot never acts on a NaN or on a waypoint outside the arena, and an ignored message is
    never silent.
    """

    def __init__(self, node):
        self.node = node
        self.counts: Counter[str] = Counter()
        self.said: dict[tuple[str, str], float] = {}

    def __call__(self, topic: str, reason: str) -> None:
        self.counts[reason] += 1
        # each new kind of trouble is shown at once, repeats at most every 5 s (rclpy's own
        # throttle shows the first repeat at once too)
        now = time.monotonic()
        if now - self.said.get((topic, reason), -math.inf) >= 5.0:
            self.said[(topic, reason)] = now
            self.node.get_logger().warning(f"ignored a message on {topic}: {reason} (ignored so "
                                           f"far: {dict(self.counts)})")

    def finite(self, topic: str, values) -> bool:
        """Return True when every value is finite; otherwise counts it as non_finite."""
        if all(math.isfinite(v) for v in values):
            return True
        self(topic, "non_finite")
        return False

    def waypoint(self, topic: str, xy, arena: Arena) -> bool:
        """Return True for a finite point in the arena, where every agent's waypoint lies."""
        if not self.finite(topic, xy):
            return False
        if not arena.contains(xy):
            self(topic, "position_outside")
            return False
        return True
