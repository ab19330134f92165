# SPDX-License-Identifier: Apache-2.0
"""
Recording a swarm into a run folder: in `bildmacro swarm`, and alone on any computer (`bildmacro record`).

`Recording` holds the monitor node, its executor and the stall clock that both launchers use;
`record_plan` is `bildmacro record --plan PLAN --out RUN`: it records a swarm that the robots'
own commands started, into the same run folder `bildmacro swarm` writes.
"""

from __future__ import annotations

from pathlib import Path
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from .launch_plan import stop_tolerance
from .plan_folder import read_plan
from .progress import Progress
from .protocol.outcome import read_outcomes
from .ros.lifecycle import StopRequests
from .run_folder import RunWriter

METHOD = "distributed over DDS"


class Recording:
    """A monitor node on an executor of its own, fed in slices between a launcher's housekeeping."""

    def __init__(self, scenario, writer: RunWriter, log_every: int, robots: bool, namespace: str,
                 away_after: float = 0.0, node_name: str = "bildmacro_monitor"):
        from .ros.monitor import MonitorNode  # rclpy-heavy; only when a swarm really runs

        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C is ours
        self.monitor = MonitorNode(scenario, writer, log_every, context=self.context, robots=robots,
                                   node_name=node_name, namespace=namespace or None, away_after=away_after)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.monitor)
        self.recorder = self.monitor.recorder
        self.last_progress, self.last_change = -2, time.monotonic()

    def spin(self, stops: StopRequests, seconds: float = 0.1) -> int:
        """
        Take records for a while and return the newest round every agent has recorded.

        In slices: the recorder shares the cores with the agents, and per-message bookkeeping would
        slow the whole swarm.
        """
        until = time.monotonic() + seconds
        while time.monotonic() < until and not self.recorder.complete and not stops.requested:
            self.executor.spin_once(timeout_sec=0.02)
        done = self.recorder.progress
        if done != self.last_progress:
            self.last_progress, self.last_change = done, time.monotonic()
        return done

    def stalled(self, timeout: float, logs) -> str | None:
        """Say why the run counts as stalled: no recorded round for `timeout` seconds; None if it is not."""
        if time.monotonic() - self.last_change <= timeout:
            return None
        latest = self.recorder.latest
        behind = [i for i, k in enumerate(latest) if k == latest.min()]
        return (f"no progress for {timeout:.0f} s at round {max(self.last_progress, 0)}; agents still at that "
                f"round: {behind[:20]}; see {logs}")

    def settle(self, cfg: dict, timeout: float, stops: StopRequests) -> None:
        self.monitor.settle(self.executor, stop_tolerance(cfg), timeout, stops)

    def finish(self, plots: bool, animation: bool, stops: StopRequests) -> dict:
        """Write the run's files and return what a summary takes from the recording."""
        k, kl, _ = self.monitor.finish(plots, animation, stops)
        robots = getattr(self.monitor, "robots", None)
        measured = robots is not None and len(robots["time"])
        result = {"iterations": max(k, 0), "final_kl": kl, "dropped": dict(self.monitor.dropped),
                  "missing_rows": len([r for r in self.recorder.missing_rows if r < k]), "stale": self.recorder.stale,
                  "stood_in": dict(self.recorder.stood_in),
                  "robot_error": float(np.nanmax(robots["error"])) if measured else None,
                  "robot_kl": float(robots["final_kl"]) if measured else None,
                  "contacts": int(robots["contacts"]) if measured and "contacts" in robots else None,
                  "closest": float(robots["closest"]) if measured and "closest" in robots else None}
        self.monitor.destroy_node()
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)
        return result


def record_plan(plan_dir: Path, out: Path, overwrite: bool = False, stall_timeout: float = 60.0,
                away_after: float = 10.0, plots: bool = True, animation: bool = False, progress: bool = True,
                settle_timeout: float = 30.0, stream=None):
    """
    Record the swarm of a plan folder into `out`, until every agent still there has finished.

    An agent silent for away_after seconds while others record is recorded without (its last record
    stands in, and the summary names it); it is taken back with its next record. No recorded round
    for stall_timeout seconds ends the recording as a failure, with the rounds so far written.
    """
    from .swarm import SwarmSummary

    plan = read_plan(plan_dir)
    if not plan.index["recorder"]:
        raise ValueError(f"the plan in {plan.folder} was made with --no-record: its agents publish no records")
    scenario = plan.scenario()
    cfg = scenario.config
    robots = cfg["robots"]["simulator"] != "none"
    writer = RunWriter(out, scenario, METHOD, overwrite, progress=progress)
    recording = Recording(scenario, writer, int(plan.index["record_every"]), robots, plan.namespace, away_after)
    meter = Progress(f"record N={plan.agents}", cfg["iterations"], stream, progress)
    started = time.monotonic()
    interrupted, failure = False, None
    stops = StopRequests().install()
    try:
        while True:
            meter.update(max(recording.spin(stops), 0))
            if stops.requested:
                interrupted = True
                break
            if recording.recorder.complete:
                break
            failure = recording.stalled(stall_timeout, plan.folder)
            if failure:
                break
        if failure is None and not interrupted and robots:
            recording.settle(cfg, settle_timeout, stops)
        meter.update(max(recording.recorder.progress, 0), force=True)
        result = recording.finish(plots, animation, stops)
    finally:
        stops.restore()
    summary = SwarmSummary(out=writer.out, agents=plan.agents, processes=0, requested=cfg["iterations"],
                           seconds=time.monotonic() - started, interrupted=interrupted, failure=failure,
                           tolerance=cfg["robots"]["tolerance"], outcomes=read_outcomes(writer.out / "outcomes"),
                           **result)
    summary.write()
    return summary
