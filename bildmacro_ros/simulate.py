# SPDX-License-Identifier: Apache-2.0
"""`bildmacro simulate`: the whole swarm in one process; its metrics, state and figures on disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import time

import numpy as np

from .core.bildmacro import initial_state, Mixer, projected_point, reset_tracking, swarm_step
from .core.centralized import centralized_step
from .core.kernel import kernel_in_use, prepare_kernel
from .core.metrics import (consensus_error, default_log_every, lower_grad_norm, ObjectiveTracker,
                           snapshot_iterations, step_norm)
from .core.scenario import Scenario
from .core.symmetric import unpack
from .progress import Progress
from .run_folder import RunWriter

METHODS = ("distributed", "centralized")


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
            row = self._row(before, result.x_hat)
        self.k += 1
        self.state, self.x_hat = reset_tracking(self.problem, result.state, self.k,
                                                self.reset_every), result.x_hat
        self.clipped += int(result.clipped.sum())
        return row

    def _row(self, state, x_hat) -> dict:
        return {"lower_grad_norm": lower_grad_norm(self.problem, state.x, state.y, state.mean),
                "step_norm": step_norm(x_hat, state.x),
                "consensus_error": consensus_error(state.y), "kl": self.objective(state.x)}

    def last_row(self) -> dict:
        """Row K: iterate K, with the step (6a) would take from it."""
        return self._row(self.state, projected_point(self.problem, self.steps, self.state))

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
        row = self._row(x_hat) if measure else None
        self.x, self.x_hat, self.solution = x_next, x_hat, solution
        return row

    def _row(self, x_hat) -> dict:
        n = len(self.x)
        theta = np.broadcast_to(self.solution.theta, (n, self.problem.m))
        mean = np.broadcast_to(self.solution.stats.mean[0], (n, self.problem.m))
        return {"lower_grad_norm": lower_grad_norm(self.problem, self.x, theta, mean),
                "step_norm": step_norm(x_hat, self.x), "consensus_error": 0.0,
                "kl": float(self.solution.stats.kl[0])}

    def last_row(self) -> dict:
        """Row K: iterate K, with the step the method would take from it."""
        return self._row(centralized_step(self.problem, self.steps, self.x, self.solution)[0])

    def kl(self) -> float:
        return float(self.solution.stats.kl[0])

    def final_arrays(self) -> dict:
        n, m = len(self.x), self.problem.m
        theta = self.solution.theta
        grad = self.problem.local_gradient(self.problem.phi(self.x), theta[None],
                                           self.solution.stats.mean)
        h = self.problem.hessian(self.solution.stats.cov)
        return {"x": self.x, "x_hat": self.x_hat, "y": np.tile(theta, (n, 1)), "r": grad,
                "q": np.broadcast_to(h, (n, m, m)).copy()}


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
    kernel: str = field(default_factory=kernel_in_use)  # the step that ran: numpy or numba

    def describe(self) -> str:
        status = ("interrupted" if self.interrupted else f"diverged ({self.diverged})"
                  if self.diverged
                  else "finished")
        rate = self.iterations / self.seconds if self.seconds > 0 else float("nan")
        return (f"{self.method} run {status} after {self.iterations}/{self.requested} iterations "
                "in "
                f"{self.seconds:.1f} s ({rate:,.{0 if rate >= 10 else 2}f} it/s); KL "
                f"{self.initial_kl:.4f} -> "
                f"{self.final_kl:.4f}; "
                f"outputs in {self.out}"
                + (f"; step: {self.kernel} (BILDMACRO_KERNEL)" if self.kernel != "numpy" else ""))


def run(scenario: Scenario, out: Path, method: str = "distributed", log_every: int | None = None,
        plots: bool = True, progress: bool = True, overwrite: bool = False,
        stream=None) -> RunSummary:
    """Run `method` for config['iterations'] iterations and write every output into `out`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    writer = RunWriter(out, scenario, method, overwrite, progress=progress)
    iterations = scenario.config["iterations"]
    log_every = log_every or default_log_every(iterations)
    algo = Distributed(scenario) if method == "distributed" else Centralized(scenario)
    snap_at = set(snapshot_iterations(iterations))
    meter = Progress(f"simulate {method} N={scenario.agents}", iterations, stream, progress)
    if method == "distributed":  # BILDMACRO_KERNEL=numba: compiled before the clock starts
        prepare_kernel(scenario.problem, scenario.steps, batch=True, note=meter.note)
        meter.restart()
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
    if k == iterations:  # the last point of Fig. 1, and the final KL, in the table too
        writer.row(k, algo.last_row())
    files = writer.finish(k, algo.final_arrays(), final_kl, plots)
    return RunSummary(out=writer.out, method=method, iterations=k, requested=iterations,
                      final_kl=final_kl, initial_kl=final_kl if iterations == 0
                      else writer.first_kl,
                      seconds=time.monotonic() - started, interrupted=interrupted,
                      diverged=diverged, clipped=getattr(algo, "clipped", 0), files=files)
