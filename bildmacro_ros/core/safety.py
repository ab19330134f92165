# SPDX-License-Identifier: Apache-2.0
"""
A safety filter for unicycle robots with bodies: barrier certificates, one robot at a time.

After Wang, Ames and Egerstedt, "Safety barrier certificates for collision-free multirobot
systems" (IEEE T-RO 2017), as the Robotarium runs them. Each robot is steered through a point
`projection` metres ahead of its axle, which moves as a single integrator u (the near-identity
map below turns u into (v, w) exactly). For every robot j within sensing range, the barrier
h_ij = |p_i - p_j|^2 - D^2 must satisfy dh/dt >= -gain h; robot i takes half of that duty,

    -2 (p_i - p_j) . u_i <= gain h_ij / 2,

so that the pair's constraint holds whatever j does within its own half, with no message
between them. D covers both bodies and both projection offsets: two robots whose points are D
apart have bodies at least 2 radius + margin apart.

The quadratic program min |u - u_nominal|^2 subject to those half-planes has two unknowns, so its
optimum lies on at most two active constraints: `closest_feasible` finds it exactly by trying
each constraint and each pair, which for a few dozen neighbours costs less than a solver's set-up.
Pure numpy; the follower node runs it per robot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE = 1e-12


@dataclass(frozen=True)
class SafetySettings:
    """The filter's parameters, in metres and seconds."""

    radius: float  # each robot's body: a disc of this radius (0: points, no filter)
    margin: float = 0.02  # extra clearance between two bodies
    # how far ahead of the axle the controlled point lies: the point's sideways speed is at most
    # projection * max_turn_rate (15 cm/s at 3 rad/s), so a shorter one cannot dodge
    projection: float = 0.05
    gain: float = 4.0  # barrier gain (1/s): how fast a pair may approach its safety distance
    # neighbours farther than this are not considered: at 0.5 m a pair's constraint allows an
    # approach at 0.44 m/s, almost the top speed, so farther ones cost time and change nothing
    sensing_range: float = 0.5

    def __post_init__(self):
        if not (self.radius >= 0 and self.margin >= 0 and self.projection > 0 and self.gain > 0
                and self.sensing_range > 0):
            raise ValueError("safety settings must be >= 0 (radius, margin) and > 0 (the rest), "
                             f"got {self}")

    @property
    def safety_distance(self) -> float:
        """
        Return D, the distance the controlled points keep.

        Bodies, clearance and both offsets.
        """
        return 2 * self.radius + self.margin + 2 * self.projection


def projected_point(pose: np.ndarray, projection: float) -> np.ndarray:
    """Return the point `projection` ahead of each pose's axle, (..., 2)."""
    pose = np.asarray(pose, float)
    return pose[..., :2] + projection * np.stack([np.cos(pose[..., 2]), np.sin(pose[..., 2])],
                                                 axis=-1)


def unicycle_to_point(pose: np.ndarray, v, w, projection: float) -> np.ndarray:
    """Return the velocity of the projected point under (v, w)."""
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    return np.stack([v * c - projection * w * s, v * s + projection * w * c], axis=-1)


def point_to_unicycle(pose: np.ndarray, u: np.ndarray,
                      projection: float) -> tuple[np.ndarray, np.ndarray]:
    """
    Return (v, w) that move the projected point at velocity u.

    The inverse of unicycle_to_point.
    """
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    return c * u[..., 0] + s * u[..., 1], (-s * u[..., 0] + c * u[..., 1]) / projection


def closest_feasible(nominal: np.ndarray, normals: np.ndarray,
                     bounds: np.ndarray) -> np.ndarray | None:
    """
    Return argmin |u - nominal| s.t. normals[k] . u <= bounds[k], exactly; None if infeasible.

    The optimum is the nominal itself, its projection onto one constraint's line, or the crossing
    of two lines: the feasible candidate nearest the nominal. At least one constraint active at the
    optimum is one the nominal breaks (their multipliers give |nominal - u|^2 > 0), so only the
    projections onto broken ones and the crossings of a broken one with any other are candidates.
    """
    nominal = np.asarray(nominal, float)
    normals, bounds = np.asarray(normals, float).reshape(-1, 2), np.asarray(bounds, float).ravel()
    slack = TOLERANCE * (1 + np.abs(bounds).max(initial=0.0))
    broken = normals @ nominal - bounds > slack
    if not broken.any():
        return nominal
    squared = (normals * normals).sum(axis=1)
    usable = squared > TOLERANCE
    n, b, sq, broken = normals[usable], bounds[usable], squared[usable], broken[usable]
    nb, bb, sqb = n[broken], b[broken], sq[broken]
    candidates = [nominal - ((nb @ nominal - bb) / sqb)[:, None] * nb]  # onto each broken line
    # the crossing of each broken line with every other line, by Cramer's rule
    det = nb[:, None, 0] * n[None, :, 1] - nb[:, None, 1] * n[None, :, 0]
    ok = np.abs(det) > TOLERANCE
    safe_det = np.where(ok, det, 1.0)
    x = (bb[:, None] * n[None, :, 1] - b[None, :] * nb[:, None, 1]) / safe_det
    y = (nb[:, None, 0] * b[None, :] - n[None, :, 0] * bb[:, None]) / safe_det
    candidates.append(np.stack([x[ok], y[ok]], axis=1))
    points = np.concatenate(candidates)
    points = points[np.max(points @ normals.T - bounds, axis=1) <= slack]
    if not len(points):
        return None
    gaps = points - nominal
    return points[np.argmin((gaps * gaps).sum(axis=1))]


def safe_command(pose: np.ndarray, v: float, w: float, others: np.ndarray,
                 settings: SafetySettings, max_speed: float,
                 max_turn_rate: float = np.inf) -> tuple[float, float, bool]:
    """
    Filter one robot's command (v, w) against the poses of the robots near it.

    Returns (v, w, changed), within both limits. A robot with no safe command (already inside a
    neighbour's safety distance, with every way out blocked) stops.
    """
    pose = np.asarray(pose, float)
    others = np.asarray(others, float).reshape(-1, 3)
    if settings.radius <= 0 or not len(others):
        return float(v), float(w), False
    l_ = settings.projection
    here = projected_point(pose, l_)
    there = projected_point(others, l_)
    near = np.hypot(*(there - here).T) <= settings.sensing_range
    if not np.any(near):
        return float(v), float(w), False
    gap = here - there[near]
    h = np.einsum("ij,ij->i", gap, gap) - settings.safety_distance ** 2
    nominal = unicycle_to_point(pose, np.float64(v), np.float64(w), l_)
    u = closest_feasible(nominal, -2 * gap, settings.gain * h / 2)
    if u is None:
        return 0.0, 0.0, True
    changed = not np.allclose(u, nominal, rtol=0, atol=1e-12)
    v_safe, w_safe = point_to_unicycle(pose, u, l_)
    # Within the limits by scaling u towards 0, which keeps every half-plane 0 satisfies (h >= 0);
    # clipping v and w apart would send the point where the filter did not check
    scale = min(1.0, max_speed / max(abs(v_safe), 1e-12), max_turn_rate / max(abs(w_safe), 1e-12))
    return float(v_safe * scale), float(w_safe * scale), changed


class HeldBack:
    """
    When a robot short of its goal counts as arrived: its neighbours hold it back.

    With bodies, a waypoint may be where another robot stands, and the filter then keeps the robot
    off it for good: an agent waiting for its robot (wait_for_robot) would wait for ever. A robot
    is held back once, for `after` seconds, it has come no closer to its goal than `still` metres
    while the filter changed its command at least once (so a robot turning in place is not held).
    It stays held for the next goal, which in wait mode is a few centimetres on, until it comes
    `still` closer to one: then the clock starts again. Times come from the caller's clock (tested
    with a scripted one).
    """

    def __init__(self, after: float = 1.0, still: float = 0.01):
        self.after, self.still = after, still
        self.since: float | None = None
        self.best = np.inf  # the closest it came to its goal since `since`
        self.filtered = False  # the filter acted since `since`
        self.held = False

    def clear(self) -> None:
        """Forget everything: the robot reached its goal."""
        self.since, self.best, self.filtered, self.held = None, np.inf, False, False

    def update(self, now: float, filtered: bool, distance: float, new_goal: bool = False) -> bool:
        """
        Take one control step (filtered.

        The filter changed the command); return whether it is held back.
        """
        if new_goal:
            self.since, self.best, self.filtered = now, distance, filtered
            # held back from the last goal: from this one too, until it makes progress
            return self.held
        if self.since is None or distance < self.best - self.still:
            self.since, self.best, self.filtered, self.held = now, distance, filtered, False
            return False
        self.filtered = self.filtered or filtered
        self.held = self.held or (self.filtered and now - self.since >= self.after)
        return self.held


class BodyWatch:
    """
    Contacts among bodies of one radius, step by step.

    New overlapping pairs, and the closest distance.
    """

    def __init__(self, robots: int, radius: float):
        self.radius = radius
        self.touching = np.zeros((robots, robots), dtype=bool)
        # pairs that came into contact (one pair touching for many steps counts once)
        self.contacts = 0
        self.closest = float("inf")  # the smallest distance between two robots' centres so far
        self.steps = 0

    def step(self, xy: np.ndarray) -> list[tuple[int, int, float]]:
        """
        Take the positions after one step.

        Return the pairs (a, b, distance) that came into contact.
        """
        self.steps += 1
        xy = np.asarray(xy, float)
        if len(xy) < 2:
            return []
        gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(gaps, np.inf)
        self.closest = min(self.closest, float(gaps.min()))
        touching = gaps < 2 * self.radius
        new = np.argwhere(np.triu(touching & ~self.touching, 1))
        self.touching = touching
        self.contacts += len(new)
        return [(int(a), int(b), float(gaps[a, b])) for a, b in new]
