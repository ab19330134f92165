# SPDX-License-Identifier: Apache-2.0
"""
An agent's checkpoint.

(k, x, x_hat, y, r, q) on disk, so a restarted robot resumes its share.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .parameters import ParameterError
from ..core.bildmacro import AgentState, initial_state
from ..core.problem import BilevelProblem


def checkpoint_path(folder: str | Path, agent: int) -> Path:
    return Path(folder) / f"agent_{agent}.npz"


def save_checkpoint(path: Path, k: int, state: AgentState, x_hat: np.ndarray) -> None:
    """
    Row 0 of `state` at round k.

    Written whole or not at all: a reader (or a crash) never sees half a file.
    """
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, iteration=k, x=state.x[0], x_hat=x_hat, y=state.y[0], r=state.r[0], q=state.q[0])
    os.replace(tmp, path)


def load_checkpoint(path: Path, problem: BilevelProblem,
                    iterations: int) -> tuple[int, AgentState, np.ndarray]:
    """
    (k, state, x_hat) from a checkpoint; ValueError says what is wrong with the file.

    The tracking sums r_i, q_i carry this agent's share of the swarm's averages, so they are
    restored as saved, not re-initialised: that keeps the invariants nearly whole.
    """
    try:
        with np.load(path, allow_pickle=False) as saved:
            k = int(saved["iteration"])
            x, x_hat, y, r, q = (np.asarray(saved[n], dtype=float)
                                 for n in ("x", "x_hat", "y", "r", "q"))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    m = problem.m
    packed = m * (m + 1) // 2
    shapes = {"x": (x, (2,)), "x_hat": (x_hat, (2,)), "y": (y, (m,)), "r": (r, (m,)),
              "q": (q, (packed,))}
    for name, (value, shape) in shapes.items():
        if value.shape != shape or not np.all(np.isfinite(value)):
            raise ValueError(f"{name} in {path} is not {shape} finite")
    fresh = initial_state(problem, x[None], y[None])
    return max(0, min(k, iterations)), dataclasses.replace(fresh, r=r[None], q=q[None]), x_hat


def resume_from(path: Path | None, problem: BilevelProblem,
                iterations: int) -> tuple[int, AgentState, np.ndarray] | None:
    """Return (k, state, x_hat) to resume from, None without a checkpoint; a bad one is refused."""
    if path is None or not path.is_file():
        return None
    try:
        return load_checkpoint(path, problem, iterations)
    except ValueError as exc:
        raise ParameterError(f"parameter 'checkpoint_dir': {exc}") from None
