# SPDX-License-Identifier: Apache-2.0
"""When `bildmacro swarm` gives up on a run (launchers/processes.py, session.py, swarm.py)."""

import subprocess
import sys
import time
from types import SimpleNamespace

from bildmacro_ros.core.config import validate
from bildmacro_ros.launch_plan import plan_swarm
from bildmacro_ros.launchers.processes import (EndWatch, HangWatch, ManagedProcess, process_cpu,
                                               Supervisor)
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


def process(agents, role="agents", running=True):
    """Return a launcher's table entry as HangWatch reads it: role, agents, killed, poll()."""
    return SimpleNamespace(role=role, agents=agents, killed=False,
                           process=SimpleNamespace(poll=lambda: None if running else 0))


class Work:
    """The CPU seconds each process has used, moved on by hand."""

    def __init__(self):
        self.used = {}

    def __call__(self, entry):
        return self.used.setdefault(id(entry), 1.0)

    def add(self, entry, seconds):
        self.used[id(entry)] = self(entry) + seconds


NOT_YET = set().__contains__  # no agent has finished


def test_a_process_that_uses_no_cpu_is_hung_after_the_limit_and_restarted_at_most_twice():
    clock, work = Clock(), Work()
    watch = HangWatch(limit=10.0, tries=2, read=clock)
    stuck, alive = process([3]), process([4])
    assert watch.hung([stuck, alive], work, NOT_YET) == []
    for _ in range(3):
        clock.t += 3.3
        work.add(stuck, 0.005)  # a deadlocked thread's timed lock wakes now and then
        work.add(alive, 0.03)  # a live agent's timers: 0.09 s and more in 10 s
        assert watch.hung([stuck, alive], work, NOT_YET) == []
    clock.t += 0.2
    assert watch.hung([stuck, alive], work, NOT_YET) == [stuck]
    for _ in range(2):
        watch.restarted(stuck)
        assert watch.hung([stuck], work, NOT_YET) == []  # the new process's limit is whole
        clock.t += 10.1
    assert watch.hung([stuck], work, NOT_YET) == []  # twice is all: the agents' rules go on


def test_a_slow_start_that_computes_is_not_hung():
    clock, work = Clock(), Work()
    watch = HangWatch(limit=10.0, read=clock)
    slow = process([0])
    for _ in range(6):  # 30 processes on 2 cores: 15 s and more to load the step
        watch.hung([slow], work, NOT_YET)
        clock.t += 5.0
        work.add(slow, 0.5)
        assert watch.hung([slow], work, NOT_YET) == []
    clock.t += 10.0  # then it stops computing: hung
    assert watch.hung([slow], work, NOT_YET) == [slow]


def test_finished_ended_killed_unreadable_and_robot_processes_are_never_hung():
    clock, work = Clock(), Work()
    watch = HangWatch(limit=10.0, read=clock)
    finished, robot = process([0, 1]), process([], role="robots")
    ended, killed, unread = process([2], running=False), process([3]), process([4])
    killed.killed = True  # --kill, awaiting its restart
    entries = [finished, robot, ended, killed, unread]
    cpu = lambda entry: None if entry is unread else work(entry)  # noqa: E731 - no /proc here
    watch.hung(entries, cpu, {0, 1}.__contains__)
    clock.t += 100.0  # the finished group's teardown may hang: its own bound ends it
    assert watch.hung(entries, cpu, {0, 1}.__contains__) == []
    watch.hung([finished], cpu, {0}.__contains__)  # agent 1 still runs: watched from now
    clock.t += 10.0
    assert watch.hung([finished], cpu, {0}.__contains__) == [finished]


def test_a_process_cpu_is_read_from_proc_and_grows_as_it_computes():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        entry = SimpleNamespace(process=busy)
        first = process_cpu(entry)
        time.sleep(0.5)
        assert process_cpu(entry) > first
    finally:
        busy.kill()
        busy.wait()
    assert process_cpu(SimpleNamespace(process=SimpleNamespace(pid=busy.pid))) is None


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
