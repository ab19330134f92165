# SPDX-License-Identifier: Apache-2.0
"""Faults over real DDS: seeded message loss, a killed agent, a restarted one; hard timeouts."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from bildmacro_ros.core.faults import FaultInjector
from bildmacro_ros.core.scenario import build_scenario, load_run_inputs
from bildmacro_ros.protocol.outcome import read_outcomes
from bildmacro_ros.protocol.rounds import MAX_LEAD
from bildmacro_ros.ros.bag import read_messages
from bildmacro_ros.ros.topics import STATE_QOS, state_topic
from helpers import (AGENT_0, agent_command, assert_same_run, bildmacro, interrupt_after_rows,
                     node_pids, outcomes, ROOT, spinning, stop_as_it_starts)

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.usefixtures("no_leftover_processes")]

# With 10% of rounds lost per link, a 6-agent swarm's final KL stays within this fraction of the
# fault-free run's (0.461). Measured over DDS beside two busy loops: 0.36 to 0.42 in 12 runs.
# Before the swarm started together, 5 of 21 such runs ended at 2.0 to 2.4: an agent whose
# neighbours waited on a late starter stepped past them, alone, for 15 rounds (docs/faults.md).
KL_MARGIN = 0.5
# Late agent-rounds against those that lost a message (the fewest possible). Measured 1.04-1.06;
# it was about 2 when a neighbour waiting on a lost message made its own neighbours late in turn.
# One CI run measured 2.6 with a 0.05 s deadline, before deadlines stopped counting the time an
# agent's process was itself stopped (RunningClock); the deadline is now 0.1 s for more margin.
LATE_MARGIN = 1.3


def run_swarm(out, *extra, timeout=150, iterations=300):
    return bildmacro("swarm", "--config", "demo", "--agents", 6, "--iterations", iterations,
                     "--seed", 3, "--simulator", "none", "--log-every", 10, "--out", out,
                     "--no-plots", "--quiet", *extra, timeout=timeout)


def final_kl(folder):
    with np.load(folder / "final_state.npz") as final:
        return float(final["kl"])


def test_ten_percent_loss_still_finishes_near_the_fault_free_kl(tmp_path):
    ref = bildmacro("simulate", "--config", "demo", "--agents", 6, "--iterations", 300, "--seed",
                    3, "--out", tmp_path / "ref", "--no-plots", "--quiet")
    assert ref.returncode == 0, ref.stderr
    res = run_swarm(tmp_path / "lossy", "--drop", 0.1, "--fault-seed", 5, "--deadline", 0.1)
    assert res.returncode == 0, res.stdout + res.stderr
    reports = outcomes(tmp_path / "lossy")
    assert all(reports[i].finished and reports[i].rounds == 300 for i in range(6)), reports
    for log in (tmp_path / "lossy" / "logs").glob("agent_*.log"):  # the swarm started together
        assert "starting anyway" not in log.read_text(), log.read_text()
    late = sum(r.late_rounds for r in reports.values())
    cfg, base, _, _ = load_run_inputs("demo", {"agents": 6, "iterations": 300, "seed": 3})
    lossy = FaultInjector(5, 0.1).lossy_rounds(build_scenario(cfg, base).weights, 300)
    assert all(r.dropped.get("injected_loss", 0) > 0 for r in reports.values()), reports
    # each lost message makes one late round, and only its receiver's: no cascade to the neighbours
    assert 0.9 * lossy.sum() <= late <= LATE_MARGIN * lossy.sum(), {
        "late": late, "lossy per agent": lossy.sum(axis=1).tolist(),
        "late per agent": [reports[i].late_rounds for i in range(6)],
        "declared dead": [reports[i].declared_dead for i in range(6)],
        "caught up": [reports[i].catch_ups for i in range(6)], "stdout": res.stdout}
    lossy, fault_free = final_kl(tmp_path / "lossy"), final_kl(tmp_path / "ref")
    assert abs(lossy - fault_free) <= KL_MARGIN * fault_free, (lossy, fault_free)


def test_a_killed_agent_is_declared_dead_and_every_other_agent_finishes(tmp_path):
    out = tmp_path / "killed"
    # 600 rounds: the launcher's kill is cued on agent 2's round as it hears it, and beside two
    # busy loops it came up to 125 rounds late; in one run of 300 rounds no agent declared it
    # dead, the run over in half the usual time (the kill, most likely, after the last round)
    res = run_swarm(out, "--kill", "2@100", "--deadline", 0.3,
                    iterations=600)  # a hang fails on the timeout
    assert res.returncode == 0, res.stdout + res.stderr
    assert "killed agent 2's process" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == [0, 1, 3, 4, 5] and summary["killed"] == [2], summary
    reports = outcomes(out)
    assert 2 not in reports  # SIGKILL: it could not say goodbye
    assert all(reports[i].rounds == 600 for i in (0, 1, 3, 4, 5)), reports
    declared = [i for i, r in reports.items() if any(d["neighbour"] == 2 for d in r.declared_dead)]
    assert declared, "no neighbour declared agent 2 dead"
    with np.load(out / "final_state.npz") as final:
        assert int(final["iteration"]) == 600 and np.all(np.isfinite(final["y"]))
        assert np.all(np.abs(final["x"][2]) <= 1)  # agent 2 stands where it died
    # the agents' warnings reached the recorder's picture (their /rosout), as the live view's
    # log: in the bag, each from the agent that declared it
    logs = [msg for _, _, msg in read_messages(out, ["/swarm_log"])]
    dead = {log.name for log in logs if "agent 2 has been silent" in log.msg}
    assert dead and dead <= {f"agent_{i}" for i in declared}, [log.msg for log in logs]


def test_a_restarted_agent_resumes_from_its_checkpoint_and_catches_up(tmp_path):
    out = tmp_path / "restarted"
    # long enough that the others still run when it is back: unpaced, 3000 rounds were over
    # before a restarted process had started on a CI run (900 rounds/s). Injected delays (inside
    # the deadline) pace them: with up to 4 ms a CI run was over before the restarted agent was
    # back, when a killed process harmed its neighbours' shared memory for 20 s (now 5 s:
    # config/fastdds_one_machine.xml). Up to 8 ms: 11 and 37 s beside two busy loops, the
    # restarted agent back by round 872 and 161
    iterations = 3000
    res = bildmacro("swarm", "--config", "demo", "--agents", 6, "--iterations", iterations,
                    "--seed", 3, "--simulator", "none", "--log-every", 10, "--out", out,
                    "--no-plots", "--quiet", "--kill", "2@100", "--restart-after", 0.2,
                    "--deadline", 0.3, "--delay", 0.008, timeout=200)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "restarted agent 2's process" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == list(range(6)) and summary["killed"] == [], summary
    restarted = outcomes(out)[2]  # the restarted process's report
    # its last periodic checkpoint (every 100 rounds): killed once it sent round 100, it may have
    # run a few rounds further before the launcher saw it, past round 200 on a busy machine
    assert restarted.resumed_from in range(100, 700, 100) and restarted.catch_ups, restarted
    # it rejoined before the end, and then stepped with its neighbours
    assert restarted.catch_ups[0]["to_round"] < iterations
    assert restarted.finished and restarted.rounds == iterations


def test_an_agent_process_that_hangs_as_it_starts_is_restarted_and_the_run_completes(tmp_path):
    out = tmp_path / "hung"
    # a process is hung once it has used no CPU for --hang-timeout s
    proc = subprocess.Popen([sys.executable, "-m", "bildmacro_ros.cli", "swarm", "--config",
                             "demo", "--agents", "4", "--iterations", "200", "--seed", "3",
                             "--simulator", "none", "--log-every", "10", "--out", str(out),
                             "--no-plots", "--quiet", "--hang-timeout", "4"],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        frozen = stop_as_it_starts(out, "agent_1")
        _, stderr = proc.communicate(timeout=150)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "restarted the process of agents [1]" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["restarted"] == [1] and summary["finished"] == [0, 1, 2, 3], summary
    assert (out / "logs" / "agent_1.restarted.log").is_file()
    assert not os.path.exists(f"/proc/{frozen}")  # killed, and reaped by the launcher
    # back before its neighbours' round 0 went on without it: nobody declared it dead
    assert not any(r.declared_dead for r in outcomes(out).values()), outcomes(out)


def test_an_agent_stopped_with_ctrl_c_keeps_the_round_it_reached_for_a_resume(tmp_path):
    out = tmp_path / "stopped"
    code, _, stderr = interrupt_after_rows(["swarm", "--config", "demo", "--agents", 3,
                                            "--iterations", 30000, "--simulator", "none",
                                            "--log-every", 7, "--out", out, "--no-plots",
                                            "--quiet"], out, rows=15)
    assert code == 130, stderr
    reached = {i: o.rounds for i, o in outcomes(out).items()}
    assert sorted(reached) == [0, 1, 2] and min(reached.values()) > 100, reached
    # not the last periodic checkpoint (every 100 rounds): the round itself
    for i, k in reached.items():
        with np.load(out / "checkpoints" / f"agent_{i}.npz") as checkpoint:
            assert int(checkpoint["iteration"]) == k and np.all(np.isfinite(checkpoint["q"]))


def stop_now_and_then(stopped: float, running: float, done: threading.Event, stops: list,
                      every: int, started):
    """
    Stop every node process at once, and continue them `stopped` s later, until `done`.

    As when a VM loses its CPU or a laptop sleeps: only while all `every` node processes run and
    once the swarm has `started()`. Stopping processes while some still start is a different
    fault, which does make rounds late: two CI runs had a late round at round 2, the second
    after this waited only for the processes to exist.
    """
    # not preempted between two signals by the busy machine (CI runs as root; elsewhere, best
    # effort)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (PermissionError, OSError):
        pass
    while not done.wait(running):
        pids = list(node_pids())
        if len(pids) < every or not started():
            continue
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            stops.append(len(pids))
            time.sleep(stopped)
        except ProcessLookupError:
            pass
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass


def test_a_machine_that_stops_now_and_then_steps_no_round_late_and_kills_no_one(tmp_path):
    # 1500 rounds, to last five stops: 300 were over after four in a CI run, 600 after six, and
    # 900 after four in 2 of 10 runs beside busy loops. (Paced by injected delays instead, the
    # test passed 16 of 16 runs alone, four beside four busy loops, and failed in both full
    # suites it ran in, each time with late rounds, for a reason not found.)
    ref = bildmacro("simulate", "--config", "demo", "--agents", 6, "--iterations", 1500, "--seed",
                    3, "--log-every", 10, "--out", tmp_path / "ref", "--no-plots", "--quiet")
    assert ref.returncode == 0, ref.stderr
    done, stops = threading.Event(), []
    # each stop is four deadlines long: it outlasts dead_after (3) deadlines. A deadline of 0.3 s,
    # not less: a loaded CI machine can keep one agent off the CPU for a few tenths of a second,
    # which is lateness, not the fault this test is about
    metrics = tmp_path / "stopped" / "metrics.csv"

    def started() -> bool:  # metrics.csv has round 10's row: every agent is past round 10
        return metrics.exists() and len(metrics.read_text().splitlines()) > 2

    stopper = threading.Thread(target=stop_now_and_then, args=(1.2, 0.6, done, stops, 6,
                                                               started))
    stopper.start()
    try:
        res = run_swarm(tmp_path / "stopped", "--deadline", 0.3, iterations=1500)
    finally:
        done.set()
        stopper.join()
    assert res.returncode == 0, res.stdout + res.stderr
    assert sum(n >= 6 for n in stops) >= 5, stops  # every agent was stopped, at least five times
    reports = outcomes(tmp_path / "stopped")
    assert sorted(reports) == list(range(6))
    for i, report in reports.items():
        assert report.finished and report.rounds == 1500, report
        assert report.late_rounds == 0 and not report.declared_dead, report
    # no round stepped late, so every agent ran Algorithm 1 exactly
    assert_same_run(tmp_path / "ref", tmp_path / "stopped")


class ScriptedNeighbours(Node):
    """
    Agent 0's two in-neighbours, played by the test.

    Agent 1 answers every round at once, with agent 0's own state (any valid state will do); agent
    2 sends rounds 0 and 1, then only re-sends round 1, as a heartbeat, until told to fall silent.
    """

    def __init__(self, context):
        super().__init__("scripted_neighbours", context=context)
        self.pubs = {j: self.create_publisher(Float64MultiArray, state_topic(j), STATE_QOS)
                     for j in (1, 2)}
        self.create_subscription(Float64MultiArray, state_topic(0), self.on_state, STATE_QOS)
        self.rounds: list[int] = []  # agent 0's rounds, from its state messages
        self.slow_round: Float64MultiArray | None = None
        self.slow_alive = True
        self.create_timer(0.05, self.heartbeat)

    def send_as(self, j: int, msg: Float64MultiArray):
        out = Float64MultiArray()
        out.layout = msg.layout
        out.data = msg.data
        out.data[1] = float(j)
        self.pubs[j].publish(out)
        return out

    def on_state(self, msg: Float64MultiArray):
        k = int(msg.data[0])
        self.rounds.append(k)
        self.send_as(1, msg)
        if k <= 1:
            self.slow_round = self.send_as(2, msg)

    def heartbeat(self):
        if self.slow_alive and self.slow_round is not None and int(self.slow_round.data[0]) == 1:
            self.pubs[2].publish(self.slow_round)


def test_a_live_neighbour_far_behind_is_waited_for_and_stepped_past_once_silent(tmp_path):
    log = tmp_path / "agent_0.log"
    with spinning(ScriptedNeighbours) as neighbours, open(log, "w") as handle:
        proc = subprocess.Popen(agent_command(*AGENT_0, "iterations:=40", "deadline:=0.1",
                                              "listeners:=1", f"outcome_dir:={tmp_path}"),
                                stdout=handle, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not any(k >= 2 for k in neighbours.rounds) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(3.0)  # 30 deadlines: without waiting, agent 0 would be past round 30 by now
            behind = max(neighbours.rounds)
            neighbours.slow_alive = False
            assert proc.wait(timeout=60) == 0, log.read_text()
        finally:
            proc.kill()
    text = log.read_text()
    # agent 2 stayed at round 1: agent 0 stepped at most MAX_LEAD rounds past it, then waited
    assert behind == 1 + MAX_LEAD + 1, (behind, text)
    report = read_outcomes(tmp_path)[0]
    assert [d["neighbour"] for d in report.declared_dead] == [2], text
    assert report.declared_dead[0]["round"] == behind, text
    assert report.finished and report.rounds == 40, text
