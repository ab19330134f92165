# SPDX-License-Identifier: Apache-2.0
"""Real agent nodes in separate processes over real DDS (loopback, this run's own domain)."""

import json
import os
from pathlib import Path
import signal
import subprocess
import time

import numpy as np
import pytest
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from bildmacro_ros.core.symmetric import pack, packed_size
from bildmacro_ros.protocol.wire import decode_message, encode, layout_label, message_length
from bildmacro_ros.ros.lifecycle import TEARDOWN_TIMEOUT
from bildmacro_ros.ros.topics import STATE_QOS
from bildmacro_ros.scheduling import agent_cpus
from helpers import (AGENT_0, agent_command, assert_same_run, bildmacro, interrupt_after_rows,
                     node_processes, outcomes, spinning)

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.usefixtures("no_leftover_processes")]
ROOT = Path(__file__).resolve().parents[2]


def reference(tmp_path, agents, iterations, seed):
    ref = tmp_path / "simulate"
    res = bildmacro("simulate", "--agents", agents, "--iterations", iterations, "--seed", seed,
                    "--log-every", 10, "--out", ref, "--no-plots", "--quiet")
    assert res.returncode == 0, res.stderr
    return ref


def test_swarm_equals_simulate(tmp_path):
    """Five agent processes over DDS compute the paper's algorithm and nothing else."""
    ref = reference(tmp_path, 5, 100, 4)
    out = tmp_path / "swarm"
    res = bildmacro("swarm", "--agents", 5, "--iterations", 100, "--log-every", 10, "--init",
                    ref / "initial_state.npz", "--weights", ref / "weights.npy", "--out", out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "finished after 100/100 rounds" in res.stdout
    assert_same_run(ref, out)
    assert (out / "snapshots.png").exists() and (out / "convergence.png").exists()
    reports = outcomes(out)
    assert sorted(reports) == list(range(5))
    for report in reports.values():
        assert report.finished and report.rounds == 100 and report.late_rounds == 0
        # re-sent rounds arrive twice; nothing else may be rejected in a clean run
        assert set(report.dropped) <= {"duplicate", "stale"}, report.dropped
    # each agent process a batch job, kept on the CPU its launcher chose (launch_plan.agent_cpus)
    allowed = sorted(os.sched_getaffinity(0))
    for i, cpu in enumerate(agent_cpus(5, allowed)):
        assert reports[i].scheduling == "batch"
        assert reports[i].cpus == (allowed if cpu is None else [cpu])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == list(range(5)) and summary["iterations"] == 100


def test_a_swarm_on_the_compiled_step_computes_what_simulate_computes(tmp_path, monkeypatch):
    """BILDMACRO_KERNEL=numba: compiled once by the launcher, loaded by every agent process."""
    pytest.importorskip("numba", reason="numba is not installed here")
    ref = reference(tmp_path, 5, 100, 4)  # the numpy path, in one process
    out = tmp_path / "swarm"
    monkeypatch.setenv("BILDMACRO_KERNEL", "numba")
    res = bildmacro("swarm", "--agents", 5, "--iterations", 100, "--log-every", 10, "--init",
                    ref / "initial_state.npz", "--weights", ref / "weights.npy", "--out", out,
                    "--no-plots")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "step: numba (BILDMACRO_KERNEL)" in res.stdout  # what every agent reported
    assert "not available" not in res.stdout + res.stderr  # no agent fell back to numpy
    assert_same_run(ref, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kernel"] == "numba"
    assert {report["kernel"] for report in summary["outcomes"].values()} == {"numba"}
    logs = "".join(p.read_text() for p in (out / "logs").glob("*.log"))
    assert "Traceback" not in logs and "not available" not in logs


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
def test_agent_groups_equal_simulate(tmp_path, monkeypatch, kernel):
    """
    Several agent nodes per process on one executor give the same numbers.

    Also with the tracking reset of core/faults.py on rounds 15 and 30. Compiled, each agent of
    a group reads its neighbours' messages where they lie, shared by the group's listeners.
    """
    if kernel == "numba":
        pytest.importorskip("numba", reason="numba is not installed here")
    config = tmp_path / "reset.yaml"
    config.write_text("faults: {tracking_reset: 15}\n")
    ref = tmp_path / "simulate"
    res = bildmacro("simulate", "--config", config, "--agents", 7, "--iterations", 40, "--seed", 2,
                    "--log-every", 10, "--out", ref, "--no-plots", "--quiet")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "grouped"
    monkeypatch.setenv("BILDMACRO_KERNEL", kernel)  # simulate's reference stays numpy's
    res = bildmacro("swarm", "--config", config, "--agents", 7, "--iterations", 40, "--seed", 2,
                    "--log-every", 10, "--simulator", "none", "--agents-per-process", 3,
                    "--namespace", "team", "--out", out, "--no-plots")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "in 3 processes" in res.stdout
    assert ("step: numba (BILDMACRO_KERNEL)" in res.stdout) == (kernel == "numba")
    assert_same_run(ref, out)


class Intruder(Node):
    """Publishes junk on agent 0's state topic while the real agent 0 runs."""

    FAR_FUTURE = 10**6  # a round no test run reaches, so never within MAX_AHEAD of an agent

    def __init__(self, context, m=49):
        super().__init__("intruder", context=context)
        self.m, self.latest, self.count, self.listeners = m, -1, 0, 0
        self.pub = self.create_publisher(Float64MultiArray, "agent_0/state", STATE_QOS)
        self.create_subscription(Float64MultiArray, "agent_0/state", self.watch, STATE_QOS)
        self.layout = [MultiArrayDimension(label=layout_label(m), size=message_length(m),
                                           stride=message_length(m))]
        # a misbehaving peer, not a flood (flooding is issue 5's)
        self.create_timer(0.02, self.send)

    def watch(self, msg):
        k = msg.data[0]
        # follow the real agent 0, not this node's own junk; a slow intruder may see the real agent
        # hundreds of rounds further on, so the far-future junk is far beyond any real round
        # instead
        if msg.data[1] == 0 and k == int(k) and k < self.FAR_FUTURE:
            self.latest = max(self.latest, int(k))

    def junk(self):
        rng = np.random.default_rng(self.count)
        good = encode(max(self.latest, 0), 0, [0.1, 0.2], [0.1, 0.2], rng.standard_normal(self.m),
                      rng.standard_normal(self.m), rng.standard_normal(packed_size(self.m)))
        kinds = [good[:-7],                                               # wrong size
                 np.where(np.arange(good.size) == 30, np.nan, good),      # NaN
                 np.where(np.arange(good.size) == 1, 2.0, good),          # someone else's id
                 np.where(np.arange(good.size) == 0, self.FAR_FUTURE, good)]  # far future
        if self.latest >= 2:  # old round: stale for every agent once agent 0 is two rounds on
            kinds.append(np.where(np.arange(good.size) == 0, self.latest - 2, good))
        return kinds

    def send(self):
        # every kind on every tick: a starved intruder still shows the agents each kind of junk
        self.count += 1
        # agents 1 and 2 (a node's own subscription is not counted)
        self.listeners = max(self.listeners, self.pub.get_subscription_count())
        for junk in self.junk():
            msg = Float64MultiArray()
            msg.layout.dim = self.layout
            msg.data = junk.tolist()
            self.pub.publish(msg)


def test_malformed_and_old_messages_are_ignored_and_counted(tmp_path):
    # The run must last while the intruder's junk arrives: unpaced, 1500 rounds took 1.7 s in a CI
    # run, over before the agents heard any junk. A few milliseconds of injected delay per message
    # (far inside the deadline, so the rounds are the same) make it last at least 1500 timer ticks
    # of 5 ms, whatever the machine.
    ref = reference(tmp_path, 3, 1500, 6)
    out = tmp_path / "attacked"
    with spinning(Intruder) as intruder:
        res = bildmacro("swarm", "--agents", 3, "--iterations", 1500, "--log-every", 10,
                        "--simulator", "none", "--init", ref / "initial_state.npz", "--weights",
                        ref / "weights.npy", "--out", out, "--no-plots", "--delay", 0.004,
                        # the bounds alone: a pinned topic would refuse agent 0 with the junk
                        "--no-pin-writers")
    assert res.returncode == 0, res.stdout + res.stderr
    assert intruder.count > 20 and intruder.listeners == 2, intruder.listeners
    assert_same_run(ref, out, metrics=False)  # the junk changed nothing the agents computed
    reports = outcomes(out)
    for reason in ("wrong_size", "non_finite", "wrong_sender", "too_far_ahead", "stale"):
        assert any(reports[i].dropped.get(reason, 0) > 0 for i in (1, 2)), (reason, reports)


class Forger(Node):
    """
    Publishes well-formed but absurd agent_1/state messages, one round ahead of the real agent 1.

    Ahead, so that without the plausibility bounds a forgery would be the message its neighbours
    use.
    """

    def __init__(self, context, m=49):
        super().__init__("forger", context=context)
        eye = np.eye(m)
        self.kinds = {"implausible_y": {"y": np.full(m, 1e300)},
                      "implausible_r": {"r": np.full(m, 1e300)},
                      "implausible_q": {"q": pack(-1000 * eye)},  # far below positive semidefinite
                      # every entry within H's size, the smallest eigenvalue -480
                      "indefinite_q": {"q": pack(-10 * (np.ones((m, m)) - eye))}}
        self.m, self.sent = m, 0
        self.pub = self.create_publisher(Float64MultiArray, "agent_1/state", STATE_QOS)
        self.create_subscription(Float64MultiArray, "agent_1/state", self.forge, STATE_QOS)
        self.layout = [MultiArrayDimension(label=layout_label(m), size=message_length(m),
                                           stride=message_length(m))]

    def forge(self, msg):
        state = decode_message(msg, self.m)
        forged = state.y.max() > 1e299 or state.r.max() > 1e299 or state.q.min() < -9
        if state.sender != 1 or forged:
            return  # its own forgery, heard back
        for kind in self.kinds.values():
            values = {"y": state.y, "r": state.r, "q": state.q, **kind}
            forged = Float64MultiArray()
            forged.layout.dim = self.layout
            forged.data = encode(state.iteration + 1, 1, state.x, state.x_hat, values["y"],
                                 values["r"], values["q"]).tolist()
            self.pub.publish(forged)
            self.sent += 1


def test_absurd_values_on_an_agents_topic_are_dropped_counted_and_warned_about(tmp_path):
    """Without the bounds, such messages drove every y to 1e301 and the KL from 0.28 to 5.47."""
    # paced as the intruder's run is: at 200 rounds/s, 300 rounds were over before the forger had
    # heard agent 1 four times
    ref = reference(tmp_path, 4, 1500, 3)
    out = tmp_path / "forged"
    with spinning(Forger) as forger:
        res = bildmacro("swarm", "--agents", 4, "--iterations", 1500, "--log-every", 10,
                        "--simulator", "none", "--init", ref / "initial_state.npz", "--weights",
                        ref / "weights.npy", "--out", out, "--no-plots", "--delay", 0.004,
                        "--no-pin-writers")  # the bounds alone, as the intruder's run
    assert res.returncode == 0, res.stdout + res.stderr
    assert forger.sent > 100
    assert_same_run(ref, out, metrics=False)  # every forgery dropped: the run is the honest one
    weights = np.load(ref / "weights.npy")
    listeners = [i for i in range(4) if i != 1 and weights[i, 1] > 0]
    reports = outcomes(out)
    for i in listeners:
        for reason in forger.kinds:
            assert reports[i].dropped.get(reason, 0) > 0, (i, reason, reports[i].dropped)
            assert "agent 1's" in (out / "logs" / f"agent_{i}.log").read_text()
        log = (out / "logs" / f"agent_{i}.log").read_text()
        assert all(reason.replace("_", " ") in log for reason in forger.kinds), log[-2000:]


@pytest.mark.parametrize("sig,repeat",
                         [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 3)],
                         ids=["ctrl-c", "sigterm", "three-quick-ctrl-c"])
def test_ctrl_c_or_sigterm_stops_every_process_and_keeps_the_run(tmp_path, sig, repeat):
    out = tmp_path / "interrupted"
    code, stdout, stderr = interrupt_after_rows(["swarm", "--agents", 4, "--iterations", 10**6,
                                                 "--log-every", 20, "--out", out], out, rows=4,
                                                sig=sig, repeat=repeat)
    assert code == 130, stdout + stderr
    assert "interrupted after" in stdout
    with np.load(out / "final_state.npz") as final:
        reached = int(final["iteration"])
        assert reached >= 60 and np.all(np.isfinite(final["y"]))
    reports = outcomes(out)  # each agent still says how far it got
    assert sorted(reports) == list(range(4)), reports
    assert all(not r.finished and r.rounds >= reached for r in reports.values()), reports
    assert (out / "snapshots.png").exists()
    # the autouse fixture then checks that no agent process is left


def test_a_launcher_killed_outright_leaves_no_node_running(tmp_path):
    out = tmp_path / "killed"
    code, _, _ = interrupt_after_rows(["swarm", "--agents", 4, "--iterations", 10**6,
                                       "--log-every", 20, "--out", out], out, rows=2,
                                      sig=signal.SIGKILL)
    assert code == -signal.SIGKILL
    # each node is told by the kernel that its launcher died, and stops; one whose DDS teardown
    # hangs (Fast DDS#6502) ends itself after TEARDOWN_TIMEOUT
    deadline = time.monotonic() + TEARDOWN_TIMEOUT + 5
    while node_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert node_processes() == []


def agent(*params):
    return subprocess.run(agent_command(*params), capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


@pytest.mark.parametrize("change,message", [
    (["neighbour_weights:=[0.25, 0.5]"], "must sum to 1"),
    (["neighbours:=[1, 1]"], "parameter 'neighbours'"),
    (["neighbours:=[0, 2]"], "parameter 'neighbours'"),
    (["gamma_x:=-1.0"], "parameter 'gamma_x'"),
    (["initial_x:=[3.0, 0.0]"], "parameter 'initial_x'"),
    (["initial_y:=[0.0, 1.0]"], "parameter 'initial_y': needs 49"),
    (["target:='{type: gaussian_mixture, components: []}'"], "parameter 'target'"),
    (["target:='{type: image, path: /no/such.png}'"], "parameter 'target'"),
    (["quadrature:=simpson"], "parameter 'quadrature'"),
])
def test_bad_parameter_is_a_clear_startup_error(change, message):
    names = {c.split(":=")[0] for c in change}
    res = agent(*[p for p in AGENT_0 if p.split(":=")[0] not in names], *change)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_required_parameter():
    res = agent(*[p for p in AGENT_0 if not p.startswith("neighbours:=")])
    assert res.returncode == 2
    assert "parameter 'neighbours' is required" in res.stderr


def test_unparseable_ros_arguments():
    res = agent(*AGENT_0, "target:={type: oops")
    assert res.returncode == 2 and "could not start ROS" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_swarm_finds_itself_past_rmws_32_participants(tmp_path):
    """
    Participants past the 32nd on the machine find each other (LOCALHOST discovery).

    rmw_fastrtps announces a participant to the first 32 participants' ports only; here the
    first 28 ports are taken, so the launcher and 7 agent processes, all neighbours, get slots
    28 to 35, and four agents sit past 32. Before the run's profile listed those ports, they
    waited for each other until the stall timeout (as 9 of a 40-process swarm did).
    """
    import socket

    from bildmacro_ros.dds_profiles import discovery_port

    domain = int(os.environ["ROS_DOMAIN_ID"])
    taken = []
    try:
        for slot in range(28):  # Fast DDS moves a participant on to the next free port pair
            for port in (discovery_port(domain, slot), discovery_port(domain, slot) + 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("127.0.0.1", port))
                taken.append(sock)
        out = tmp_path / "swarm"
        res = bildmacro("swarm", "--agents", 7, "--iterations", 20, "--edge-probability", 1.0,
                        "--log-every", 10, "--simulator", "none", "--stall-timeout", 40,
                        "--out", out, "--no-plots", "--quiet", timeout=200)
    finally:
        for sock in taken:
            sock.close()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "finished after 20/20 rounds" in res.stdout
    logs = "".join(p.read_text() for p in (out / "logs").glob("*.log"))
    assert "discovery incomplete" not in logs


def test_a_waypoint_nobody_reads_is_held_and_reaches_a_subscriber_that_comes_later():
    """
    An agent builds its waypoint and projected point only for a subscriber (outbox.Unheard).

    Agent 0 starts round 0 with nobody on either topic, so both points are held; they must still
    reach RViz or a robot that subscribes later, as the transient-local topics promise.
    """
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from bildmacro_ros.ros.topics import STATE_SUB_QOS, WAYPOINT_QOS

    # its neighbours never come: round 0 starts after 0.5 s and then waits for them for ever
    params = [p for p in AGENT_0 if not p.startswith("iterations")] + [
        "iterations:=5", "startup_timeout:=0.5", "deadline:=0.0", "arena_centre:=[2.0, 1.0]",
        "arena_size:=[4.0, 2.0]"]
    proc = subprocess.Popen(agent_command(*params), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

    class Late(Node):
        def __init__(self, context):
            super().__init__("late_subscriber", context=context)
            self.rounds, self.points = [], {}
            # round 0's state, sent after its waypoint in the same round: the point is held now
            self.create_subscription(Float64MultiArray, "agent_0/state",
                                     lambda m: self.rounds.append(m.data[0]), STATE_SUB_QOS)

        def subscribe(self):
            # a follower's latched subscription, and RViz's default for a display: reliable,
            # volatile, depth 5 (rviz_common/include/rviz_common/ros_topic_display.hpp:74,
            # jazzy), which only a point published after it matched can reach
            rviz = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)
            for topic, qos in (("agent_0/waypoint", WAYPOINT_QOS), ("agent_0/x_hat", rviz)):
                self.create_subscription(PoseStamped, topic, lambda m, t=topic: self.points.update(
                    {t: (m.pose.position.x, m.pose.position.y, m.header.frame_id)}), qos)

    try:
        with spinning(Late) as late:
            deadline = time.monotonic() + 60
            while not late.rounds and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert late.rounds == [0.0], proc.stderr.read() if proc.poll() is not None else ""
            late.subscribe()
            deadline = time.monotonic() + 20
            while len(late.points) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    # x_0^0 = (0.1, -0.2) of C, the arena 4 m x 2 m around (2, 1): (2.2, 0.8) in the lab
    assert late.points.get("agent_0/waypoint") == pytest.approx((2.2, 0.8, "map"))
    assert late.points.get("agent_0/x_hat", (None,))[2] == "map"
