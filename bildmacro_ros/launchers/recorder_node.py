# SPDX-License-Identifier: Apache-2.0
"""The `recorder` executable of a ROS launch: the run recorded as `bildmacro swarm` records it."""

from __future__ import annotations

import math
import os
from pathlib import Path
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from .session import METHOD, RecorderSession
from ..core.metrics import default_log_every
from ..core.scenario import build_scenario, load_run_inputs
from ..progress import Progress
from ..protocol.agent import FINISH_WAIT
from ..protocol.node_parameters import RECORDER_PARAMETERS
from ..protocol.outcome import outcome_path
from ..protocol.parameters import ParameterError
from ..ros.lifecycle import end_with_parent, StopRequests
from ..ros.parameters import read_parameters
from ..run_folder import RunWriter

OUTCOME_WAIT = 2 * FINISH_WAIT  # an agent gives up on its last acks after FINISH_WAIT


def main() -> int:
    """
    Record a swarm: `ros2 run bildmacro_ros recorder --ros-args -p config:=C -p out:=RUN`.

    The agents' record_every must equal this node's log_every (the launch file sets both). It ends
    by itself once every agent has recorded its last round and the robots have settled, and
    writes what `bildmacro swarm` writes, summary.json too. Ctrl-C ends it too, with the rounds
    recorded so far written out; exit code 0 either way.
    """
    stops = StopRequests().install()
    end_with_parent(os.getppid())  # killed outright, a launcher leaves no recorder behind
    # the launch's --ros-args (parameters file, namespace, node name, log folder) for every node
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    session = None
    try:
        helper = Node("recorder_setup", context=context)
        try:
            p = read_parameters(helper, RECORDER_PARAMETERS)
        finally:
            helper.destroy_node()
        overrides = {name: getattr(p, name) for name in ("agents", "seed", "iterations")}
        cfg, base, init_arrays, weight_matrix = load_run_inputs(
            p.config, {k: v for k, v in overrides.items() if v}, p.init, p.weights)
        scenario = build_scenario(cfg, base, init_arrays, weight_matrix)
        # the launch prepared the folder and wrote the agents' parameters into it
        writer = RunWriter(Path(p.out), scenario, METHOD, overwrite=True,
                           keep=("agents.params.yaml",), inputs=False)
        session = RecorderSession(scenario, writer, p.log_every or default_log_every(
            cfg["iterations"]), p.robots, "", context=context,
            live=(p.live_address, p.live_port) if p.live else None)
        meter = Progress("record", cfg["iterations"], enabled=False)
        # no stall limit: under a launch, the launch decides when a run has failed
        interrupted, failure = session.record(stops, meter, math.inf, writer.out / "logs")
        if p.robots and not interrupted:
            session.settle(p.settle_timeout, stops)
        # Each agent writes its outcome once its last messages are acknowledged, this node's
        # among them: wait until every outcome is there (summary.json reads them), as `bildmacro
        # swarm` waits for its agent processes to end.
        outcomes = [outcome_path(writer.out / "outcomes", i) for i in range(scenario.agents)]
        until = time.monotonic() + OUTCOME_WAIT
        while not all(path.exists() for path in outcomes) and time.monotonic() < until \
                and not stops.requested:
            session.executor.spin_once(timeout_sec=0.1)
        summary = session.close(True, False, stops, agents=scenario.agents, processes=0,
                                interrupted=interrupted, failure=failure)
        session = None
        print(f"recorded {summary.iterations} rounds in {summary.seconds:.1f} s; final KL "
              f"{summary.final_kl:.4f}; files in {p.out}"
              + ("; figures skipped" if writer.figures_skipped else ""), flush=True)
        return 0
    except (ParameterError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        stops.ignore()
        if session is not None:
            session.node.destroy_node()
        rclpy.try_shutdown(context=context)


if __name__ == "__main__":
    sys.exit(main())
