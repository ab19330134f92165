"""`bildmacro simulate`: the whole swarm in one process, with metrics, final state and figures on disk."""

from __future__ import annotations

import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core.bildmacro import Mixer, initial_state, swarm_step
from .core.centralized import centralized_step
from .core.config import dump_config
from .core.metrics import COLUMNS, ObjectiveTracker, consensus_error, lower_grad_norm, step_norm
from .core.scenario import Scenario
from .core.symmetric import unpack

METHODS = ("distributed", "centralized")
OUTPUT_FILES = ("metrics.csv", "final_state.npz", "config.yaml", "snapshots.npz", "initial_state.npz",
                "weights.npy", "convergence.png", "snapshots.png")


class Diverged(RuntimeError):
    pass


class Distributed:
    """BILD-MACRO for all agents at once (the vectorised form of Algorithm 1)."""

    def __init__(self, scenario: Scenario):
        self.problem, self.steps = scenario.problem, scenario.steps
        self.state = initial_state(self.problem, scenario.x0, scenario.y0)
        self.x_hat = self.state.x.copy()
        self.mixer = Mixer(scenario.weights)
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
        self.state, self.x_hat = result.state, result.x_hat
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


def snapshot_iterations(iterations: int, count: int = 5) -> list[int]:
    """0, then roughly K/10, K/4, K/2 and K: early motion is fast, so sample it more densely."""
    marks = [0.0, 0.1, 0.25, 0.5, 1.0] if count == 5 else list(np.linspace(0, 1, count))
    return sorted({int(round(f * iterations)) for f in marks})


def default_log_every(iterations: int) -> int:
    return max(1, iterations // 1000)


class Progress:
    """A progress line on stderr: rewritten in place on a terminal, a new line every few seconds otherwise."""

    def __init__(self, label: str, total: int, stream=None, enabled: bool = True):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.every = 0.25 if self.tty else 5.0

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
    out.mkdir(parents=True, exist_ok=True)
    return out


def run(scenario: Scenario, out: Path, method: str = "distributed", log_every: int | None = None,
        plots: bool = True, progress: bool = True, overwrite: bool = False, stream=None) -> RunSummary:
    """Run `method` for config['iterations'] iterations and write every output into `out`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    out = prepare_output(out, overwrite)
    iterations = scenario.config["iterations"]
    log_every = log_every or default_log_every(iterations)
    (out / "config.yaml").write_text(dump_config(scenario.config))
    np.save(out / "weights.npy", scenario.weights)
    np.savez(out / "initial_state.npz", x=scenario.x0, y=scenario.y0)

    algo = Distributed(scenario) if method == "distributed" else Centralized(scenario)
    snap_at = set(snapshot_iterations(iterations))
    snaps_k, snaps_x, snaps_y = [], [], []

    def snapshot(iteration: int):
        snaps_k.append(iteration)
        snaps_x.append(algo.x.copy())
        snaps_y.append(algo.learned().copy())

    meter = Progress(f"simulate {method} N={scenario.agents}", iterations, stream, progress)
    started = time.monotonic()
    k = 0
    interrupted, diverged = False, None
    initial_kl = last_kl = float("nan")
    with open(out / "metrics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        try:
            for k in range(iterations):
                if k in snap_at:
                    snapshot(k)
                row = algo.advance(measure=(k % log_every == 0 or k == iterations - 1))
                if row is not None:
                    writer.writerow([k] + [repr(row[c]) for c in COLUMNS[1:]])
                    handle.flush()
                    last_kl = row["kl"]
                    if k == 0:
                        initial_kl = last_kl
                meter.update(k + 1, f"KL {last_kl:.4f}")
            k = iterations
        except KeyboardInterrupt:
            interrupted = True
        except (Diverged, FloatingPointError, np.linalg.LinAlgError) as exc:
            diverged = str(exc)
    completed = k
    final_kl = algo.kl() if diverged is None else float("nan")
    if iterations == 0:
        initial_kl = final_kl
    meter.update(completed, f"KL {final_kl:.4f}", force=True)
    if completed not in snaps_k and diverged is None:
        snapshot(completed)
    arrays = algo.final_arrays()
    np.savez(out / "final_state.npz", iteration=np.int64(completed), kl=np.float64(final_kl), **arrays)
    np.savez(out / "snapshots.npz", iteration=np.array(snaps_k, dtype=np.int64), x=np.array(snaps_x),
             y=np.array(snaps_y), target=scenario.problem.target)
    summary = RunSummary(out=out, method=method, iterations=completed, requested=iterations, final_kl=final_kl,
                         initial_kl=initial_kl, seconds=time.monotonic() - started, interrupted=interrupted,
                         diverged=diverged, clipped=getattr(algo, "clipped", 0))
    if plots:
        from .plots import plot_run

        plot_run(out, scenario.problem.family)
    summary.files = sorted(p.name for p in out.iterdir())
    return summary

