# SPDX-License-Identifier: Apache-2.0
"""Robot i's pose in the swarm's frame, from the source a lab has for it."""

from __future__ import annotations

from dataclasses import dataclass
import math

from .parameters import ParameterError


@dataclass(frozen=True)
class PoseSource:
    """
    One robot's pose source: shared-frame odometry, wheel odometry, or motion capture.

    Every driver's wheel odometry starts at (0, 0, 0) where the robot was switched on, in its own
    frame (TurtleBot3 `src/odometry.cpp:75-80`, diff_drive_controller.cpp:498-532, gz-sim's
    DiffDrive.cc:515-518): its pose in the swarm's frame is the pose it was placed at (`start`)
    composed with the odometry. A pose in another frame than the source's is refused: read as the
    swarm's, a driver's odometry put each robot where it was switched on, rotated by its heading.
    """

    kind: str  # odometry, wheel_odometry or mocap (core/config.py POSE_SOURCES)
    frame: str  # the frame_id its poses must carry
    start: tuple[float, float, float] | None = None  # (x, y, heading) placed at: wheel odometry

    @classmethod
    def of(cls, kind: str, frame_pattern: str, robot: int, start=None) -> "PoseSource":
        """Robot `robot`'s source; `start` is needed, and only used, for wheel odometry."""
        if kind == "wheel_odometry":
            if start is None or len(start) != 3 or not all(map(math.isfinite, start)):
                raise ParameterError(f"robot {robot}: wheel_odometry needs the pose the robot was "
                                     f"placed at (parameter 'initial_poses': x, y, heading per "
                                     f"robot), got {start}")
            start = tuple(float(v) for v in start)
        return cls(kind, frame_pattern.format(i=robot),
                   start if kind == "wheel_odometry" else None)

    def refuses(self, frame_id: str) -> str | None:
        """Say why a pose in frame_id cannot be used (None: it can)."""
        return None if frame_id == self.frame else "wrong_frame"

    def to_swarm(self, x: float, y: float, heading: float) -> tuple[float, float, float]:
        """Return a pose of this source in the swarm's frame."""
        if self.start is None:
            return x, y, heading
        x0, y0, h0 = self.start
        c, s = math.cos(h0), math.sin(h0)
        turned = math.atan2(math.sin(h0 + heading), math.cos(h0 + heading))
        return x0 + c * x - s * y, y0 + s * x + c * y, turned

    def from_swarm(self, x: float, y: float, heading: float) -> tuple[float, float, float]:
        """Return a swarm-frame pose as this source reports it (what a driver would publish)."""
        if self.start is None:
            return x, y, heading
        x0, y0, h0 = self.start
        c, s = math.cos(h0), math.sin(h0)
        dx, dy = x - x0, y - y0
        turned = math.atan2(math.sin(heading - h0), math.cos(heading - h0))
        return c * dx + s * dy, -s * dx + c * dy, turned
