# SPDX-License-Identifier: Apache-2.0
"""
Robot motion, pure numpy: unicycles, a saturated go-to-goal controller, turtlesim's frame.

Poses are (x, y, heading) rows in the arena's frame, in metres (core/arena.py; by default C =
[-1, 1]^2 itself). Every function works on one robot or on many at once (leading axes broadcast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Limits:
    """What the robots can do: forward speed (m/s) and turn rate (rad/s), both symmetric."""

    max_speed: float = 0.5
    max_turn_rate: float = 3.0

    def __post_init__(self):
        if not (self.max_speed > 0 and self.max_turn_rate > 0):
            raise ValueError(f"limits must be > 0, got max_speed={self.max_speed}, "
                             f"max_turn_rate={self.max_turn_rate}")

    def clip(self, v, w):
        return np.clip(v, -self.max_speed,
                       self.max_speed), np.clip(w, -self.max_turn_rate, self.max_turn_rate)


@dataclass(frozen=True)
class Gains:
    """
    Go-to-goal controller: v = distance_gain * d * max(cos a, 0), w = heading_gain * a, saturated.

    heading_gain > distance_gain makes the heading settle before the distance does, so a robot
    turns towards its goal rather than spiralling around it.
    """

    distance_gain: float = 1.5
    heading_gain: float = 4.0
    tolerance: float = 0.01  # metres: a robot this close to its goal has arrived and stops

    def __post_init__(self):
        if not (self.distance_gain > 0 and self.heading_gain > 0 and self.tolerance > 0):
            raise ValueError(f"gains and tolerance must be > 0, got {self}")


def wrap_angle(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def body_frame_error(pose, goal) -> tuple[np.ndarray, np.ndarray]:
    """Return the goal seen from the robot: (ahead, left) in metres."""
    pose, goal = np.asarray(pose, float), np.asarray(goal, float)
    dx, dy = goal[..., 0] - pose[..., 0], goal[..., 1] - pose[..., 1]
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    return c * dx + s * dy, -s * dx + c * dy


def go_to_goal(pose, goal, limits: Limits,
               gains: Gains) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Body-frame command (v, w) towards goal, and the distance left.

    The heading error a is the goal's bearing in the body frame, so it is right whichever way
    the robot faces. v is scaled by max(cos a, 0): a robot never drives away from its goal, and a
    goal behind it is turned to in place. Within tolerance the command is zero (arrived).
    """
    ahead, left = body_frame_error(pose, goal)
    distance = np.hypot(ahead, left)
    bearing = np.arctan2(left, ahead)
    v = gains.distance_gain * distance * np.maximum(np.cos(bearing), 0.0)
    w = gains.heading_gain * bearing
    v, w = limits.clip(v, w)
    moving = distance > gains.tolerance
    return np.where(moving, v, 0.0), np.where(moving, w, 0.0), distance


def unicycle_step(pose, v, w, dt: float) -> np.ndarray:
    """Exact unicycle motion over dt at constant (v, w): an arc, or a straight line when w = 0."""
    pose = np.asarray(pose, float)
    x, y, th = pose[..., 0], pose[..., 1], pose[..., 2]
    v, w = np.broadcast_to(v, th.shape), np.broadcast_to(w, th.shape)
    th1 = th + w * dt
    turning = np.abs(w) > 1e-9
    safe_w = np.where(turning, w, 1.0)
    # arc: x += v/w (sin th1 - sin th); straight: x += v cos th dt (its limit as w -> 0)
    dx = np.where(turning, v / safe_w * (np.sin(th1) - np.sin(th)), v * np.cos(th) * dt)
    dy = np.where(turning, -v / safe_w * (np.cos(th1) - np.cos(th)), v * np.sin(th) * dt)
    return np.stack([x + dx, y + dy, wrap_angle(th1)], axis=-1)


@dataclass(frozen=True)
class TurtlesimFrame:
    """
    C = [-1, 1]^2 onto turtlesim's square window (0..11.089 m on both axes), with a margin.

    turtlesim's origin is the window's lower-left corner and its y axis points up, like C's, so
    the map is a scale and a shift; headings are unchanged. Velocities scale by `scale`.
    """

    # turtlesim's window: (500 - 1) px at 45 px per metre (ros/ros_tutorials
    # turtlesim/src/turtle_frame.cpp:149-150, its width_in_meters_)
    size: float = 499 / 45
    margin: float = 0.1  # fraction of the window left free on each side

    def __post_init__(self):
        if not 0 <= self.margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {self.margin}")

    @property
    def scale(self) -> float:
        """Return turtlesim metres per metre of C."""
        return self.size * (1 - 2 * self.margin) / 2

    def to_turtlesim(self, xy):
        return self.size / 2 + self.scale * np.asarray(xy, float)

    def from_turtlesim(self, xy):
        return (np.asarray(xy, float) - self.size / 2) / self.scale
