# SPDX-License-Identifier: Apache-2.0
"""
The recorder in a launcher's process: its node on an executor of its own, and the recording loop.

`bildmacro swarm` and `bildmacro record` both record through a RecorderSession: `record` takes
records until the swarm has finished, a stop is requested, no round is recorded for a while, or
the launcher's own check (a crashed or killed process) names a failure; `close` writes the run's
files and its summary.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64MultiArray

from .summary import SwarmSummary
from ..launch_plan import stop_tolerance
from ..live import LiveView
from ..progress import Progress
from ..protocol.outcome import read_outcomes
from ..ros.lifecycle import bounded_teardown, StopRequests
from ..ros.topics import STATE_SUB_QOS, state_topic
from ..run_folder import RunWriter

METHOD = "distributed over DDS"


def patience(timeout: float, startup: float, recorded: bool) -> float:
    """
    Return the seconds without a recorded round after which a run counts as stalled.

    Before the first recorded round, `startup` more: the time the agents' own rules may take to
    step round 0 without a neighbour DDS never matched (launchers/swarm.py). A launcher that gave
    up sooner failed runs that one missed match would have cost a neighbour declared dead.
    """
    return timeout + (0.0 if recorded else startup)


class RecorderSession:
    """A recorder node fed in slices between a launcher's housekeeping."""

    def __init__(self, scenario, writer: RunWriter, log_every: int, robots: bool, namespace: str,
                 away_after: float = 0.0, context: rclpy.Context | None = None,
                 live: tuple[str, int] | None = None):
        from ..ros.recorder import RecorderNode  # rclpy-heavy; only when a swarm really runs

        self.writer, self.config = writer, scenario.config
        # a context of its own, or one the caller made with its --ros-args (a launched recorder)
        self.context = context or rclpy.Context()
        if context is None:  # Ctrl-C is the launcher's
            rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        # --live: the picture the recorder keeps, served (live.py); a port in use costs one line
        say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        view = LiveView.start(*live, say=say) if live is not None else None
        self.live = None if view is None else f"ws://{live[0]}:{view.port}"
        if view is not None:
            say(f"live view on {self.live}: in Foxglove or Lichtblick, open a connection to it "
                "(Foxglove WebSocket), layout config/foxglove_layout.json (docs/live.md)")
        self.node = RecorderNode(scenario, writer, log_every, context=self.context, robots=robots,
                                 namespace=namespace or None, away_after=away_after, live=view)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.recorder = self.node.recorder
        self.last_progress, self.last_change = -2, time.monotonic()
        self.started = time.monotonic()

    def watch(self, agent: int) -> Callable[[], int]:
        """
        Follow an agent's own round, on its state topic; return a reader of the newest (-1: none).

        Its records can trail it by up to RECORD_LEAD of them on a loaded machine (500 rounds at
        --log-every 10): a kill cued on them came after the agent had finished.
        """
        newest = [-1]

        def on_state(msg: Float64MultiArray):
            newest[0] = max(newest[0], int(msg.data[0]))

        self.node.create_subscription(Float64MultiArray, state_topic(agent), on_state,
                                      STATE_SUB_QOS)
        return lambda: newest[0]

    def spin(self, stops: StopRequests, seconds: float = 0.1) -> int:
        """
        Take records for a while and return the newest round every agent has recorded.

        In slices: the recorder shares the cores with the agents, and per-message bookkeeping
        would slow the whole swarm.
        """
        until = time.monotonic() + seconds
        while time.monotonic() < until and not self.recorder.complete and not stops.requested:
            self.executor.spin_once(timeout_sec=0.02)
        done = self.recorder.progress
        if done != self.last_progress:
            self.last_progress, self.last_change = done, time.monotonic()
        return done

    def stalled(self, timeout: float, logs, startup: float = 0.0) -> str | None:
        """Say why the run counts as stalled: no recorded round for long enough (else None)."""
        waited = patience(timeout, startup, recorded=self.last_progress >= 0)
        if time.monotonic() - self.last_change <= waited:
            return None
        # a killed agent is not waited for, and is not named (a CI run named it instead of the
        # survivor whose last records never came)
        return (f"no progress for {waited:.0f} s at round {max(self.last_progress, 0)}; agents "
                f"still at that round: {self.recorder.behind[:20]}; see {logs}")

    def record(self, stops: StopRequests, meter: Progress, stall_timeout: float, logs,
               check: Callable[[], str | None] = lambda: None,
               startup: float = 0.0) -> tuple[bool, str | None]:
        """
        Take records until the end; return (interrupted, failure).

        check: the launcher's own look at its processes between two slices (kill, restart,
        crash), which names a failure or returns None. startup: seconds the first recorded round
        may take beyond stall_timeout (`patience`).
        """
        while True:
            meter.update(max(self.spin(stops), 0))
            if stops.requested:
                return True, None
            failure = check()
            if failure is None and not self.recorder.complete:
                failure = self.stalled(stall_timeout, logs, startup)
            if failure is not None or self.recorder.complete:
                return False, failure

    def settle(self, timeout: float, stops: StopRequests) -> None:
        self.node.settle(self.executor, stop_tolerance(self.config), timeout, stops)

    def close(self, plots: bool, animation: bool, stops: StopRequests, **summary) -> SwarmSummary:
        """Write the run's files and summary.json; summary: the launcher's fields of it."""
        k, kl, _ = self.node.finish(plots, animation, stops)
        robots = getattr(self.node, "robots", None)
        measured = robots is not None and len(robots["time"])
        recorder = self.recorder
        reports = read_outcomes(self.writer.out / "outcomes")
        kernels = "+".join(sorted({report.kernel for report in reports.values()}))
        result = SwarmSummary(
            out=self.writer.out, requested=self.config["iterations"],
            seconds=time.monotonic() - self.started, tolerance=self.config["robots"]["tolerance"],
            outcomes=reports, iterations=max(k, 0), **({"kernel": kernels} if kernels else {}),
            final_kl=kl, dropped=dict(self.node.dropped),
            missing_rows=len([r for r in recorder.missing_rows if r < k]), stale=recorder.stale,
            stood_in=dict(recorder.stood_in),
            robot_error=float(np.nanmax(robots["error"])) if measured else None,
            robot_kl=float(robots["final_kl"]) if measured else None,
            contacts=int(robots["contacts"]) if measured and "contacts" in robots else None,
            live=self.live,
            closest=float(robots["closest"]) if measured and "closest" in robots else None,
            **summary)
        result.write()  # first: whatever DDS does below, the run is complete
        with bounded_teardown():
            self.node.destroy_node()
            self.executor.shutdown()
            rclpy.try_shutdown(context=self.context)
        return result
