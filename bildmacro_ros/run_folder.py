# SPDX-License-Identifier: Apache-2.0
"""
A run folder: the files every run writes.

(metrics, final state, snapshots, figures), whatever ran it.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
import shutil

import numpy as np
from scipy import sparse

from .core.config import dump_config
from .core.metrics import COLUMNS
from .core.scenario import Scenario
from .launch_plan import params_file_content, SwarmPlan

# what a run starts from: with them, a recorder or `bildmacro simulate --init --weights` rebuilds
# it
INPUT_FILES = ("config.yaml", "weights.npy", "initial_state.npz")
OUTPUT_FILES = ("metrics.csv", "final_state.npz", "config.yaml", "snapshots.npz",
                "initial_state.npz", "weights.npy", "weights.npz", "convergence.png",
                "snapshots.png",
                "agents.params.yaml", "robots.npz", "robots.png", "swarm.gif", "run.mcap",
                "metadata.yaml", "summary.json")


def write_inputs(out: Path, config: dict, weights, x0: np.ndarray, y0: np.ndarray):
    """
    Write INPUT_FILES: the one writer of a run's or a plan's inputs.

    A sparse graph's weights go to weights.npz instead (scipy's format, O(N) numbers; N = 10 000
    dense would be 800 MB), which --weights reads too.
    """
    (out / "config.yaml").write_text(dump_config(config))
    if sparse.issparse(weights):
        sparse.save_npz(out / "weights.npz", sparse.csr_array(weights))
    else:
        np.save(out / "weights.npy", weights)
    np.savez(out / "initial_state.npz", x=x0, y=y0)


def old_run(out: Path, keep=()) -> list[str]:
    """Name the files of an earlier run in `out` (none of `keep`); [] for a new or empty folder."""
    out = Path(out)
    return [name for name in OUTPUT_FILES if (out / name).exists() and name not in keep] \
        if out.is_dir() else []


def prepare_output(out: Path, overwrite: bool, keep=()) -> Path:
    """
    Refuse to mix a new run into an old one unless asked to replace it (keep.

    Files of this run).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        old = old_run(out, keep)
        if old and not overwrite:
            raise ValueError(f"--out {out} already holds a run ({', '.join(old)}); choose another "
                             "folder "
                             f"or pass --overwrite")
        for name in old:  # nothing of the old run may pass for part of the new one
            (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


class RunWriter:
    """The files of a run, in the same formats whichever method or front end produced them."""

    def __init__(self, out: Path, scenario: Scenario, method: str, overwrite: bool = False,
                 keep=(), progress: bool = True, inputs: bool = True):
        """
        Prepare the folder; inputs: write INPUT_FILES (False.

        A launch wrote them, they stay).
        """
        self.out = prepare_output(out, overwrite, keep if inputs else (*keep, *INPUT_FILES))
        self.progress = progress  # a line on stderr per figure drawn
        self.scenario, self.method = scenario, method
        if inputs:
            write_inputs(self.out, scenario.config, scenario.weights, scenario.x0, scenario.y0)
        self._handle = open(self.out / "metrics.csv", "w", newline="")
        self._csv = csv.writer(self._handle)
        self._csv.writerow(COLUMNS)
        self.snaps_k, self.snaps_x, self.snaps_y = [], [], []
        self.first_kl = self.last_kl = float("nan")
        self.figures_skipped = False  # a Ctrl-C while they were drawn

    def row(self, iteration: int, values: dict):
        self._csv.writerow([iteration] + [repr(float(values[c])) for c in COLUMNS[1:-1]]
                           + [int(values.get("stand_ins", 0))])
        self._handle.flush()  # a run cut short still leaves every row computed so far
        self.last_kl = values["kl"]
        if iteration == 0:
            self.first_kl = values["kl"]

    def snapshot(self, iteration: int, x: np.ndarray, learned: np.ndarray):
        if iteration not in self.snaps_k:
            self.snaps_k.append(iteration)
            self.snaps_x.append(np.array(x, copy=True))
            self.snaps_y.append(np.array(learned, copy=True))

    def finish(self, iteration: int, arrays: dict, kl: float, plots: bool, animation: bool = False,
               allow_interrupt=None) -> list[str]:
        """
        Write the final state and the snapshots, then (plots) draw the figures.

        The data comes first, so that nothing can stop the figures from costing it. A Ctrl-C while
        the figures are drawn skips them and keeps the data; allow_interrupt() (a context manager,
        for a process whose signals are counted rather than raised) lets that Ctrl-C through.
        """
        self._handle.close()
        np.savez(self.out / "final_state.npz", iteration=np.int64(iteration), kl=np.float64(kl),
                 **arrays)
        np.savez(self.out / "snapshots.npz", iteration=np.array(self.snaps_k, dtype=np.int64),
                 x=np.array(self.snaps_x), y=np.array(self.snaps_y),
                 target=self.scenario.problem.target, method=np.array(self.method))
        if plots:
            from .plots import plot_run

            interruptible = allow_interrupt or contextlib.nullcontext
            try:
                with interruptible():
                    plot_run(self.out, self.scenario.problem.family, animation, self.progress)
            except KeyboardInterrupt:
                self.figures_skipped = True
        return sorted(p.name for p in self.out.iterdir())


def prepare_swarm_folder(plan: SwarmPlan, out: Path, inputs: bool = False) -> Path:
    """
    Prepare a swarm run's folder: node parameters, and empty logs/, checkpoints/, outcomes/.

    inputs: also write INPUT_FILES (a launch, whose recorder reads them; `bildmacro swarm`'s
    RunWriter has written them). Shared by `bildmacro swarm` and the launch file, so both leave the
    same folder. Returns the parameters file.
    """
    out = Path(out)
    for folder in ("logs", "checkpoints", "outcomes"):
        # nothing of an old run may pass for this one's
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir(parents=True)
    if inputs:
        write_inputs(out, plan.scenario.config, plan.weights, plan.scenario.x0, plan.scenario.y0)
    params = out / "agents.params.yaml"
    params.write_text(params_file_content(plan))
    for path, text in plan.files.items():  # a Gazebo world and models, under out/gazebo
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return params
