# SPDX-License-Identifier: Apache-2.0
"""
The processes a launch starts, started from the same plan as `ros2 launch` starts them.

The launch file turns plan_from_arguments' nodes into Node actions with the plan's parameters
file; here the same commands run under the launchers' Supervisor, since launch itself cannot run
without a ROS install (test/system/test_launch.py runs the real one where it can).
"""

import json
import time

import pytest

from bildmacro_ros.launch_arguments import plan_from_arguments
from bildmacro_ros.launchers.processes import Supervisor
from bildmacro_ros.ros.bag import read_messages
from bildmacro_ros.run_folder import prepare_swarm_folder
from helpers import assert_same_run, bildmacro

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("no_leftover_processes")]


def test_a_launched_recorder_writes_the_run_and_its_summary_as_bildmacro_swarm_does(tmp_path):
    out = tmp_path / "run"
    plan, _ = plan_from_arguments(agents="4", iterations="60", seed="2", simulator="none",
                                  record=str(out), namespace="team")
    ref = tmp_path / "simulate"  # metrics every record_every rounds, as the launched agents record
    res = bildmacro("simulate", "--config", "demo", "--agents", 4, "--iterations", 60, "--seed",
                    2, "--log-every", plan.agents[0].parameters["record_every"], "--out", ref,
                    "--no-plots", "--quiet")
    assert res.returncode == 0, res.stderr
    (out / "logs").mkdir(parents=True)
    supervisor = Supervisor(plan.namespace, plan.environment,
                            prepare_swarm_folder(plan, out, inputs=True), out / "logs")
    try:
        for spec in plan.nodes():
            supervisor.start("node", spec)
        deadline = time.monotonic() + 120
        while any(e.process.poll() is None for e in supervisor.table) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        codes = {e.spec.name: e.process.poll() for e in supervisor.table}
    finally:
        supervisor.stop()
    assert set(codes.values()) == {0}, (codes, (out / "logs" / "recorder.log").read_text())
    assert_same_run(ref, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 60 and summary["finished"] == [0, 1, 2, 3]
    assert "recorded 60 rounds" in (out / "logs" / "recorder.log").read_text()
    assert (out / "convergence.png").is_file()
    # every topic of the bag under the namespace, the picture's as the agents'
    topics = {topic for topic, _, _ in read_messages(out / "run.mcap")}
    assert {"/team/agent_0/record", "/team/swarm_markers", "/team/swarm_metrics",
            "/team/target_density"} <= topics and all(t.startswith("/team/") for t in topics), \
        topics
