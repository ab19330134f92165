# SPDX-License-Identifier: Apache-2.0
"""When `bildmacro swarm` gives up on a run (launchers/processes.py, session.py, swarm.py)."""

import subprocess
import sys

from bildmacro_ros.core.config import validate
from bildmacro_ros.launch_plan import plan_swarm
from bildmacro_ros.launchers.processes import EndWatch, ManagedProcess, Supervisor
from bildmacro_ros.launchers.session import patience
from bildmacro_ros.launchers.swarm import startup_allowance
from bildmacro_ros.protocol.parameters import AGENT_PARAMETERS


class Clock:
    def __init__(self):
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_a_run_is_hopeless_only_after_the_grace_since_every_agent_ended_without_its_records():
    clock = Clock()
    end = EndWatch(grace=5.0, read=clock)
    assert not end.hopeless(ended=False, complete=False)  # agents still running
    assert not end.hopeless(ended=True, complete=False)  # the last records may be in the reader
    clock.t += 4.9
    assert not end.hopeless(ended=True, complete=False)
    clock.t += 0.2
    assert end.hopeless(ended=True, complete=False)
    assert not end.hopeless(ended=True, complete=True)  # they came after all


def test_an_agent_running_again_starts_the_grace_anew():
    clock = Clock()
    end = EndWatch(grace=5.0, read=clock)
    end.hopeless(ended=True, complete=False)
    clock.t += 4.0
    assert not end.hopeless(ended=False, complete=False)  # a killed agent's process restarted
    clock.t += 2.0
    assert not end.hopeless(ended=True, complete=False)
    clock.t += 5.0
    assert end.hopeless(ended=True, complete=False)


def test_agents_ended_watches_the_agent_processes_only(tmp_path):
    supervisor = Supervisor("", {}, tmp_path / "params.yaml", tmp_path)

    def start(role, seconds):
        proc = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
        supervisor.table.append(ManagedProcess(role, None, proc, tmp_path / f"{role}.log"))
        return proc

    robots = start("robots", 60)
    agent = start("agents", 60)
    quick = start("agents", 0)
    try:
        quick.wait(timeout=30)
        assert not supervisor.agents_ended()
        agent.kill()
        agent.wait(timeout=30)
        assert supervisor.agents_ended()  # whatever the robots' processes do
    finally:
        for proc in (robots, agent):
            proc.kill()
            proc.wait()


def test_round_0_gets_the_agents_startup_rules_beyond_the_stall_timeout():
    # an agent waits startup_timeout for discovery, then as long for a neighbour never heard
    assert patience(60.0, 60.0, recorded=False) == 120.0
    assert patience(60.0, 60.0, recorded=True) == 60.0  # later rounds: the stall timeout alone
    cfg = validate({"agents": 4, "graph": {"type": "complete"}})
    plan = plan_swarm(cfg, recorders=1, run_dir="/tmp/unused")
    default = next(s.default_value for s in AGENT_PARAMETERS if s.name == "startup_timeout")
    assert startup_allowance(plan) == 2 * default
    plan.agents[2].parameters["startup_timeout"] = 45.0
    assert startup_allowance(plan) == 90.0
