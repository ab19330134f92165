# SPDX-License-Identifier: Apache-2.0
"""The robots' measured poses along a run, sampled, and robots.npz written from them."""

from __future__ import annotations

import numpy as np

from ..core.arena import Arena
from ..core.metrics import ObjectiveTracker
from ..core.problem import BilevelProblem


class RobotTrack:
    """
    The robots' measured poses.

    The newest per robot, and samples of the whole swarm over time, in the arena's frame (m).
    """

    def __init__(self, robots: int, arena: Arena = Arena(), period: float = 0.1):
        self.arena = arena
        self.latest = np.full((robots, 3), np.nan)
        self.period = period
        self.times: list[float] = []
        self.poses: list[np.ndarray] = []
        # the round every agent had recorded at each sample (-1: none yet)
        self.rounds: list[int] = []

    def update(self, robot: int, pose) -> None:
        self.latest[robot] = pose

    @property
    def seen_all(self) -> bool:
        return bool(np.all(np.isfinite(self.latest)))

    def sample(self, t: float, force: bool = False, round_k: int = -1) -> bool:
        """
        Keep the swarm's poses at time t.

        (in round round_k) if every robot has reported and a period has passed.
        """
        if not self.seen_all or (self.times and t - self.times[-1] < self.period and not force):
            return False
        self.times.append(t)
        self.poses.append(self.latest.copy())
        self.rounds.append(int(round_k))
        return True

    def error(self, x: np.ndarray) -> np.ndarray:
        """Each robot's distance (m) from the algorithm's x_i in C (nan for one never heard)."""
        return np.hypot(*(self.latest[:, :2] - self.arena.to_lab(x)).T)

    def arrays(self) -> dict[str, np.ndarray]:
        n = len(self.latest)
        return {"time": np.array(self.times), "pose": np.array(self.poses).reshape(-1, n, 3),
                "round": np.array(self.rounds, dtype=np.int64),
                "arena": np.array(self.arena.values())}


def save_robot_track(path, problem: BilevelProblem, track: dict, x: np.ndarray,
                     curve_points: int = 200, extra: dict | None = None) -> dict:
    """
    Write robots.npz and return what it holds.

    Sampled poses, the final poses against the algorithm's x (both in the arena's metres, x_i in
    C under "x_c"), and the KL of the robots' measured positions, turned back into C, over time
    (at most curve_points Newton solves).
    """
    times, poses = track["time"], track["pose"]
    values = np.asarray(track.get("arena", Arena().values()), float)
    arena = Arena.of(values[:2], values[2:4], values[4])
    x_c, x = x, arena.to_lab(x)
    picks = np.unique(np.linspace(0, len(times) - 1,
                                  min(curve_points, len(times))).round().astype(int)) \
        if len(times) else np.array([], dtype=int)
    objective = ObjectiveTracker(problem)
    kl = np.array([objective(np.clip(arena.to_c(poses[n, :, :2]), -1, 1)) for n in picks])
    final = poses[-1] if len(times) else np.full((len(x), 3), np.nan)
    result = {"time": times, "pose": poses, "round": track.get("round", np.full(len(times), -1)),
              "kl_time": times[picks] if len(times) else times, "kl": kl,
              "final_pose": final, "x": x, "x_c": x_c, "arena": np.array(arena.values()),
              "error": np.hypot(*(final[:, :2] - x).T),
              "final_kl": np.float64(kl[-1] if len(kl) else np.nan), **(extra or {})}
    np.savez(path, **result)
    return result
