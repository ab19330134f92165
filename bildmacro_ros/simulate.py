"""`bildmacro simulate`: the whole swarm in one process, with metrics, final state and figures on disk."""

from __future__ import annotations

import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core.bildmacro import Mixer, initial_state, reset_tracking, swarm_step
from .core.centralized import centralized_step
from .core.config import dump_config
from .core.metrics import (COLUMNS, ObjectiveTracker, consensus_error, default_log_every, lower_grad_norm,
                           snapshot_iterations, step_norm)
from .core.scenario import Scenario
from .core.symmetric import unpack

METHODS = ("distributed", "centralized")
OUTPUT_FILES = ("metrics.csv", "final_state.npz", "config.yaml", "snapshots.npz", "initial_state.npz",
                "weights.npy", "convergence.png", "snapshots.png", "agents.params.yaml", "robots.npz", "robots.png",
                "swarm.gif", "run.mcap")


class Diverged(RuntimeError):
    pass


class Distributed:
    """BILD-MACRO for all agents at once (the vectorised form of Algorithm 1)."""

    def __init__(self, scenario: Scenario):
        self.problem, self.steps = scenario.problem, scenario.steps
        self.state = initial_state(self.problem, scenario.x0, scenario.y0)
        self.x_hat = self.state.x.copy()
        self.mixer = Mixer(scenario.weights)
        self.reset_every = scenario.config["faults"]["tracking_reset"]
        self.k = 0
        self.objective = ObjectiveTracker(self.problem)
        self.clipped = 0  # agent-iterations in which P_{>=omega} was not the identity

    @property
    def x(self) -> np.ndarray:
        return self.state.x

    def learned(self) -> np.ndarray:
        """y_1: the density the first agent has learned, as in the paper's Fig. 2a."""
        return self.state.y[0]

    def advance(self, measure: bool) -> dict | None:
        before = self.state
        result = swarm_step(self.problem, self.steps, before, self.mixer)
        row = None
        if measure:
            if not np.all(np.isfinite(result.state.y)):
                raise Diverged("y became non-finite")
            row = {"lower_grad_norm": lower_grad_norm(self.problem, before.x, before.y, before.mean),
                   "step_norm": step_norm(result.x_hat, before.x),
                   "consensus_error": consensus_error(before.y),
                   "kl": self.objective(before.x)}
        self.k += 1
        self.state, self.x_hat = reset_tracking(self.problem, result.state, self.k, self.reset_every), result.x_hat
        self.clipped += int(result.clipped.sum())
        return row

    def kl(self) -> float:
        return self.objective(self.state.x)

    def final_arrays(self) -> dict:
        s = self.state
        return {"x": s.x, "x_hat": self.x_hat, "y": s.y, "r": s.r, "q": unpack(s.q)}


class Centralized:
    """The projected hypergradient method with exact theta(x) (core/centralized.py)."""

    def __init__(self, scenario: Scenario):
        self.problem, self.steps = scenario.problem, scenario.steps
        self.x = scenario.x0.copy()
        self.x_hat = self.x.copy()
        self.solution = self.problem.theta(self.x)

    def learned(self) -> np.ndarray:
        return self.solution.theta

    def advance(self, measure: bool) -> dict | None:
        x_hat, x_next, solution = centralized_step(self.problem, self.steps, self.x, self.solution)
        row = None
        if measure:
            n = len(self.x)
            theta = np.broadcast_to(self.solution.theta, (n, self.problem.m))
            mean = np.broadcast_to(self.solution.stats.mean[0], (n, self.problem.m))
            row = {"lower_grad_norm": lower_grad_norm(self.problem, self.x, theta, mean),
                   "step_norm": step_norm(x_hat, self.x), "consensus_error": 0.0,
                   "kl": float(self.solution.stats.kl[0])}
        self.x, self.x_hat, self.solution = x_next, x_hat, solution
        return row

    def kl(self) -> float:
        return float(self.solution.stats.kl[0])

    def final_arrays(self) -> dict:
        n, m = len(self.x), self.problem.m
        theta = self.solution.theta
        grad = self.problem.local_gradient(self.problem.phi(self.x), theta[None], self.solution.stats.mean)
        h = self.problem.hessian(self.solution.stats.cov)
        return {"x": self.x, "x_hat": self.x_hat, "y": np.tile(theta, (n, 1)), "r": grad,
                "q": np.broadcast_to(h, (n, m, m)).copy()}


class Progress:
    """A progress line on stderr: rewritten in place on a terminal, a new line every few seconds otherwise."""

    def __init__(self, label: str, total: int, stream=None, enabled: bool = True):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.every = 0.25 if self.tty else 5.0

    def note(self, text: str) -> None:
        """An event worth its own line (shown even without a progress line)."""
        self.stream.write(("\n" if self.tty and self.enabled else "") + f"{self.label}: {text}\n")
        self.stream.flush()

    def update(self, done: int, note: str = "", force: bool = False):
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.every):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else math.inf
        pct = 100.0 * done / self.total if self.total else 100.0
        line = (f"{self.label}: {done}/{self.total} iterations ({pct:.0f}%), {rate:,.0f} it/s, "
                f"ETA {eta:,.0f} s{', ' + note if note else ''}")
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
            if force:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


@dataclass
class RunSummary:
    out: Path
    method: str
    iterations: int  # completed
    requested: int
    final_kl: float
    initial_kl: float
    seconds: float
    interrupted: bool = False
    diverged: str | None = None
    clipped: int = 0
    files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        status = ("interrupted" if self.interrupted else f"diverged ({self.diverged})" if self.diverged
                  else "finished")
        rate = self.iterations / self.seconds if self.seconds > 0 else float("nan")
        return (f"{self.method} run {status} after {self.iterations}/{self.requested} iterations in "
                f"{self.seconds:.1f} s ({rate:,.0f} it/s); KL {self.initial_kl:.4f} -> {self.final_kl:.4f}; "
                f"outputs in {self.out}")


def prepare_output(out: Path, overwrite: bool) -> Path:
    """Refuse to mix a new run into an old one unless asked to replace it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        old = [name for name in OUTPUT_FILES if (out / name).exists()]
        if old and not overwrite:
            raise ValueError(f"--out {out} already holds a run ({', '.join(old)}); choose another folder "
                             f"or pass --overwrite")
        for name in old:  # nothing of the old run may pass for part of the new one
            (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


class RunWriter:
    """The files of a run, in the same formats whichever method or front end produced them."""

    def __init__(self, out: Path, scenario: Scenario, method: str, overwrite: bool = False):
        self.out = prepare_output(out, overwrite)
        self.scenario, self.method = scenario, method
        (self.out / "config.yaml").write_text(dump_config(scenario.config))
        np.save(self.out / "weights.npy", scenario.weights)
        np.savez(self.out / "initial_state.npz", x=scenario.x0, y=scenario.y0)
        self._handle = open(self.out / "metrics.csv", "w", newline="")
        self._csv = csv.writer(self._handle)
        self._csv.writerow(COLUMNS)
        self.snaps_k, self.snaps_x, self.snaps_y = [], [], []
        self.first_kl = self.last_kl = float("nan")

    def row(self, iteration: int, values: dict):
        self._csv.writerow([iteration] + [repr(float(values[c])) for c in COLUMNS[1:]])
        self._handle.flush()  # a run cut short still leaves every row computed so far
        self.last_kl = values["kl"]
        if iteration == 0:
            self.first_kl = values["kl"]

    def snapshot(self, iteration: int, x: np.ndarray, learned: np.ndarray):
        if iteration not in self.snaps_k:
            self.snaps_k.append(iteration)
            self.snaps_x.append(np.array(x, copy=True))
            self.snaps_y.append(np.array(learned, copy=True))

    def finish(self, iteration: int, arrays: dict, kl: float, plots: bool, animation: bool = False) -> list[str]:
        self._handle.close()
        np.savez(self.out / "final_state.npz", iteration=np.int64(iteration), kl=np.float64(kl), **arrays)
        np.savez(self.out / "snapshots.npz", iteration=np.array(self.snaps_k, dtype=np.int64),
                 x=np.array(self.snaps_x), y=np.array(self.snaps_y), target=self.scenario.problem.target,
                 method=np.array(self.method))
        if plots:
            from .plots import plot_run

            plot_run(self.out, self.scenario.problem.family, animation)
        return sorted(p.name for p in self.out.iterdir())


def run(scenario: Scenario, out: Path, method: str = "distributed", log_every: int | None = None,
        plots: bool = True, progress: bool = True, overwrite: bool = False, stream=None) -> RunSummary:
    """Run `method` for config['iterations'] iterations and write every output into `out`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    writer = RunWriter(out, scenario, method, overwrite)
    iterations = scenario.config["iterations"]
    log_every = log_every or default_log_every(iterations)
    algo = Distributed(scenario) if method == "distributed" else Centralized(scenario)
    snap_at = set(snapshot_iterations(iterations))
    meter = Progress(f"simulate {method} N={scenario.agents}", iterations, stream, progress)
    started = time.monotonic()
    k = 0
    interrupted, diverged = False, None
    try:
        for k in range(iterations):
            if k in snap_at:
                writer.snapshot(k, algo.x, algo.learned())
            row = algo.advance(measure=(k % log_every == 0 or k == iterations - 1))
            if row is not None:
                writer.row(k, row)
            meter.update(k + 1, f"KL {writer.last_kl:.4f}")
        k = iterations
    except KeyboardInterrupt:
        interrupted = True
    except (Diverged, FloatingPointError, np.linalg.LinAlgError) as exc:
        diverged = str(exc)
    final_kl = algo.kl() if diverged is None else float("nan")
    meter.update(k, f"KL {final_kl:.4f}", force=True)
    if diverged is None:
        writer.snapshot(k, algo.x, algo.learned())
    files = writer.finish(k, algo.final_arrays(), final_kl, plots)
    return RunSummary(out=writer.out, method=method, iterations=k, requested=iterations, final_kl=final_kl,
                      initial_kl=final_kl if iterations == 0 else writer.first_kl,
                      seconds=time.monotonic() - started, interrupted=interrupted, diverged=diverged,
                      clipped=getattr(algo, "clipped", 0), files=files)
