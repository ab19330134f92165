"""The `agent` node: one robot's BILD-MACRO, fed by its in-neighbours' messages over DDS.

Each round k it publishes (x_i^k, y_i^k, r_i^k, q_i^k) on agent_<i>/state, waits until it holds
round-k messages from every in-neighbour, steps with the core's per-agent update, and publishes
its waypoint x_i^{k+1} (agent_<i>/waypoint) and projected point x_hat_i^k (agent_<i>/x_hat).
`agent_group` runs several such nodes in one process on one executor.
"""

from __future__ import annotations

import array
import dataclasses
import heapq
import itertools
import os
import sys
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from ..core.bildmacro import agent_step, initial_state, reset_tracking
from ..core.faults import PARAMETER_NAMES, FaultInjector, RunningClock, mix_inputs
from ..core.metrics import recorded_rounds
from ..core.scenario import build_problem
from .common import (RECORD_QOS, STATE_QOS, STREAM_SUB_QOS, WAYPOINT_QOS, ParameterError, declare,
                     declare_density_model, density_config, odom_topic, pose_of, projected_topic, record_topic,
                     run_nodes, state_topic, waypoint_topic)
from .wire import (MAX_AHEAD, Inbox, MalformedMessage, NeighbourState, decode, decode_message, encode, layout_label,
                   message_length)

CATCH_UP_LEAD = 2  # rounds a catching-up agent lands ahead of its neighbours' newest, so they take its message
# rounds an agent may step past a live neighbour's newest: its messages then still fit that neighbour's inbox
MAX_LEAD = MAX_AHEAD - 2


def read_parameters(node: Node) -> dict:
    """Declare and check every agent parameter; raises ParameterError naming the one at fault."""
    p = {}
    p["agent_id"] = declare(node, "agent_id", int, "this agent's id i (0-based)", low=0, high=1_000_000)
    p["agents"] = declare(node, "agents", int, "swarm size N", 2, low=2, high=1_000_000)
    p["neighbours"] = declare(node, "neighbours", "int[]", "in-neighbour ids j (a_ij > 0, j != i)")
    p["neighbour_weights"] = declare(node, "neighbour_weights", "float[]", "a_ij, aligned with neighbours")
    p["self_weight"] = declare(node, "self_weight", float, "a_ii", low=0.0, high=1.0)
    p["gamma_x"] = declare(node, "gamma_x", float, "step size of (6a)", 1e-3, low=0.0, high=1e6)
    p["gamma_y"] = declare(node, "gamma_y", float, "step size of (7); stable near 0.9/N", 0.045, low=0.0, high=1e6)
    p["omega"] = declare(node, "omega", float, "regulariser and eigenvalue floor of P_{>=omega}", 1e-4,
                         low=0.0, high=1e6)
    p["delta"] = declare(node, "delta", float, "convex-combination factor of (6b)", 0.02, low=0.0, high=1.0)
    p.update(declare_density_model(node))
    p["initial_x"] = declare(node, "initial_x", "float[]", "x_i^0 in [-1,1]^2")
    p["initial_y"] = declare(node, "initial_y", "float[]", "y_i^0, m values")
    p["iterations"] = declare(node, "iterations", int, "iterations K to run", 20000, low=0, high=2**31 - 1)
    p["listeners"] = declare(node, "listeners", int, "subscribers to wait for before round 0 (-1: one per "
                             "neighbour)", -1, low=-1, high=1_000_000)
    p["record_every"] = declare(node, "record_every", int, "publish agent_<i>/record every this many rounds, for "
                                "a recorder (0: never)", 0, low=0, high=2**31 - 1)
    p["recorders"] = declare(node, "recorders", int, "record subscribers to wait for before round 0", 0,
                             low=0, high=1000)
    p["startup_timeout"] = declare(node, "startup_timeout", float, "seconds to wait for discovery before "
                                   "starting anyway", 30.0, low=0.0, high=3600.0)
    p["republish_period"] = declare(node, "republish_period", float, "seconds a round may wait before this agent "
                                    "re-sends its last two rounds (heals a lost message)", 30.0, low=0.01, high=3600.0)
    p["frame_id"] = declare(node, "frame_id", str, "frame of the published waypoints", "map")
    p["wait_for_robot"] = declare(node, "wait_for_robot", bool, "step round k only once the robot's odometry "
                                  "(robot_<i>/odom) is within arrival_tolerance of x_i^k", False)
    p["arrival_tolerance"] = declare(node, "arrival_tolerance", float, "metres; see wait_for_robot", 0.02,
                                     low=1e-6, high=1.0)
    p["deadline"] = declare(node, "deadline", float, "seconds a round waits for a neighbour's message before "
                            "stepping without it (0: for ever)", 2.0, low=0.0, high=3600.0)
    p["late_policy"] = declare(node, "late_policy", str, "for a late neighbour: reuse (its newest message stands "
                               "in) or drop (its weight moves to self_weight)", "drop")
    p["dead_after"] = declare(node, "dead_after", int, "a neighbour silent for this many deadlines is declared "
                              "dead and no longer waited for", 3, low=1, high=1_000_000)
    p["tracking_reset"] = declare(node, "tracking_reset", int, "re-initialise r_i and q_i (Theorem 1) on every "
                                  "round that is a multiple of this (0: never)", 0, low=0, high=2**31 - 1)
    p["drop_probability"] = declare(node, "drop_probability", float, "fault injection: probability that a "
                                    "neighbour's round never arrives (seeded)", 0.0, low=0.0, high=1.0)
    p["delay"] = declare(node, "delay", float, "fault injection: neighbour messages arrive after a seeded "
                         "uniform delay in [0, delay] s", 0.0, low=0.0, high=60.0)
    p["fault_seed"] = declare(node, "fault_seed", int, "seed of the injected faults", 0, low=0, high=2**32 - 1)
    p["checkpoint_dir"] = declare(node, "checkpoint_dir", str, "folder where this agent saves its state "
                                  "(agent_<i>.npz) every checkpoint_every rounds ('': none)", "")
    p["checkpoint_every"] = declare(node, "checkpoint_every", int, "rounds between checkpoints", 100,
                                    low=1, high=2**31 - 1)
    p["resume"] = declare(node, "resume", bool, "start from its checkpoint (a restarted robot); the agent "
                          "then catches up with its neighbours' round", False)
    i, near, w = p["agent_id"], p["neighbours"], p["neighbour_weights"]
    if i >= p["agents"]:
        raise ParameterError(f"parameter 'agent_id': {i} is not below agents = {p['agents']}")
    if not near:
        raise ParameterError("parameter 'neighbours': an agent needs at least one in-neighbour")
    if len(set(near)) != len(near) or i in near or min(near) < 0 or max(near) >= p["agents"]:
        raise ParameterError(f"parameter 'neighbours': {near} must be distinct ids in [0, {p['agents'] - 1}] "
                             f"other than agent_id {i}")
    if len(w) != len(near):
        raise ParameterError(f"parameter 'neighbour_weights': {len(w)} weights for {len(near)} neighbours")
    if min(w) <= 0 or p["self_weight"] <= 0:
        raise ParameterError("parameters 'neighbour_weights', 'self_weight': every weight must be > 0")
    if abs(p["self_weight"] + sum(w) - 1) > 1e-9:
        raise ParameterError(f"parameters 'self_weight' + 'neighbour_weights' must sum to 1 (row of a doubly "
                             f"stochastic matrix), got {p['self_weight'] + sum(w):.12g}")
    p["config"] = density_config(p, {
        "agents": p["agents"], "iterations": p["iterations"],
        "algorithm": {k: p[k] for k in ("gamma_x", "gamma_y", "omega", "delta")},
        "faults": {key: p[name] for key, name in PARAMETER_NAMES.items()}})
    m = (p["basis_order"] + 1) ** 2
    x0, y0 = np.array(p["initial_x"], dtype=float), np.array(p["initial_y"], dtype=float)
    if x0.shape != (2,) or not np.all(np.isfinite(x0)) or np.any(np.abs(x0) > 1):
        raise ParameterError(f"parameter 'initial_x': needs 2 finite values in [-1, 1], got {p['initial_x']}")
    if y0.shape != (m,) or not np.all(np.isfinite(y0)):
        raise ParameterError(f"parameter 'initial_y': needs {m} finite values for basis_order "
                             f"{p['basis_order']}, got {y0.size}")
    p["x0"], p["y0"] = x0, y0
    return p


class AgentNode(Node):
    """Agent i of Algorithm 1. Rounds are driven by message arrival; nothing sleeps."""

    def __init__(self, node_name: str = "agent", bus: "ProcessBus | None" = None, **kwargs):
        # Parameter services would add ~7 waitables to every wake-up of the executor, and an agent
        # wakes once per neighbour message; its parameters are read-only after startup anyway.
        kwargs.setdefault("start_parameter_services", False)
        super().__init__(node_name, **kwargs)
        p = read_parameters(self)
        self.id, self.iterations = p["agent_id"], p["iterations"]
        self.neighbours = p["neighbours"]
        self.self_weight, self.weights = p["self_weight"], np.array(p["neighbour_weights"])
        try:
            self.problem, self.steps = build_problem(p["config"])
        except (ValueError, OSError) as exc:  # e.g. an image target that cannot be read
            raise ParameterError(f"parameter 'target': {exc}") from None
        self.m = self.problem.m
        self.state = initial_state(self.problem, p["x0"][None], p["y0"][None])
        self.x_hat = p["x0"].copy()
        self.k = 0
        self.checkpoint = Path(p["checkpoint_dir"]) / f"agent_{self.id}.npz" if p["checkpoint_dir"] else None
        self.checkpoint_every = p["checkpoint_every"]
        if p["resume"]:
            self._resume()
        faults = p["config"]["faults"]
        self.deadline, self.late_policy = faults["deadline"], faults["late_policy"]
        self.dead_after, self.reset_every = faults["dead_after"], faults["tracking_reset"]
        self.injector = FaultInjector(faults["seed"], faults["drop"], faults["delay"])
        self.newest = {j: -1 for j in self.neighbours}  # newest plausible round heard from each neighbour
        self.last_used: dict[int, NeighbourState] = {}  # each neighbour's newest message used in a round
        self.dead: set[int] = set()
        # one timer: every waitable costs once per message received
        tick = min(self.deadline / 4, 0.05) if self.deadline > 0 else p["republish_period"] / 2
        # deadlines and deaths count only the time this process ran (core/faults.py); the tick
        # reads the clock often enough for a longer gap to be a stop
        self.clock = RunningClock(stall=2 * tick)
        self.heard_at = {j: self.clock.now() for j in self.neighbours}  # last message of any round
        self.reached_at = dict(self.heard_at)  # first message of the newest round
        self.late_rounds = 0
        self.delayed: list = []
        self.sequence = itertools.count()
        self.frame_id = p["frame_id"]
        self.inbox = Inbox(self.neighbours, self.m)
        self.done = Future()
        self.label = layout_label(self.m)
        self.layout = [MultiArrayDimension(label=self.label, size=message_length(self.m),
                                           stride=message_length(self.m))]

        # The executor rebuilds its wait set on every wake-up and an agent wakes once per neighbour
        # message, so every waitable costs once per message: the default QoS-event handlers of the
        # high-rate entities are left out (incompatible QoS shows as "no progress" with the topic).
        quiet_pub, quiet_sub = PublisherEventCallbacks(use_default_callbacks=False), SubscriptionEventCallbacks(
            use_default_callbacks=False)
        self.state_pub = self.create_publisher(Float64MultiArray, state_topic(self.id), STATE_QOS,
                                               event_callbacks=quiet_pub)
        self.recorded = recorded_rounds(self.iterations, p["record_every"]) if p["record_every"] else set()
        self.recorders = p["recorders"]
        self.record_pub = self.create_publisher(Float64MultiArray, record_topic(self.id), RECORD_QOS,
                                                event_callbacks=quiet_pub) if self.recorded else None
        self.waypoint_pub = self.create_publisher(PoseStamped, waypoint_topic(self.id), WAYPOINT_QOS,
                                                  event_callbacks=quiet_pub)
        self.projected_pub = self.create_publisher(PoseStamped, projected_topic(self.id), WAYPOINT_QOS,
                                                   event_callbacks=quiet_pub)
        self.bus = bus
        if bus is None:
            self.subs = [self.create_subscription(Float64MultiArray, state_topic(j), self._receiver(j), STATE_QOS,
                                                  event_callbacks=quiet_sub) for j in self.neighbours]
        else:
            bus.register(self)
            self.subs = []  # the bus subscribes once per process to each remote neighbour
        self.listeners = len(self.neighbours) if p["listeners"] < 0 else p["listeners"]
        self.startup_timeout = p["startup_timeout"]
        self.startup_deadline = time.monotonic() + p["startup_timeout"]
        self.started = self.advancing = False
        self.started_at = self.first_round_at = None
        self.last_sent = self.round_started = 0.0
        self.recent: list[Float64MultiArray] = []
        self.republish_period = p["republish_period"]
        # Physical-robot mode: x_i^k is where the robot must be before round k is stepped, so the
        # algorithm never runs ahead of the measured pose and stays exactly Algorithm 1.
        self.wait_for_robot, self.arrival_tolerance = p["wait_for_robot"], p["arrival_tolerance"]
        self.robot_xy: np.ndarray | None = None
        if self.wait_for_robot:
            self.create_subscription(Odometry, odom_topic(self.id), self._on_odom, STREAM_SUB_QOS,
                                     event_callbacks=quiet_sub)
        self.ready_timer = self.create_timer(0.01, self._try_start)
        # With a deadline a waiting agent re-sends every half deadline: the heartbeat by which
        # its neighbours tell it from a dead one (waiting_itself, _note_late).
        self.resend_period = min(self.republish_period, self.deadline / 2) if self.deadline > 0 \
            else self.republish_period
        self.tick_timer = self.create_timer(tick, self._on_tick)
        if self.injector.delay > 0:
            self.delay_timer = self.create_timer(0.005, self._release_delayed)
        self.get_logger().info(f"agent {self.id}: {len(self.neighbours)} in-neighbours {self.neighbours}, "
                               f"{self.iterations} iterations, waiting for discovery")

    # -- rounds ----------------------------------------------------------------------------
    def _try_start(self):
        """Round 0 is sent once every listener and every neighbour has matched (or at the deadline)."""
        links = self.subs if self.bus is None else self.bus.remote_links(self.neighbours)
        matched = (self.state_pub.get_subscription_count() >= self.listeners
                   and all(sub.get_publisher_count() > 0 for sub in links)
                   and (self.record_pub is None or self.record_pub.get_subscription_count() >= self.recorders))
        if not matched and time.monotonic() < self.startup_deadline:
            return
        if not matched:
            self.get_logger().warning("discovery incomplete at startup_timeout; starting, re-sending until heard")
        self.destroy_timer(self.ready_timer)  # a cancelled timer would stay in every wait set
        self.started = True
        self.started_at = time.monotonic()
        self._publish_waypoints()  # x_i^0: with wait_for_robot, round 0 waits for the robot to get there
        self._publish_state()
        if self.k >= self.iterations:
            self._finish()
        else:
            self._advance()

    def _on_odom(self, msg: Odometry):
        xy = np.array(pose_of(msg)[:2])
        if np.all(np.isfinite(xy)):
            self.robot_xy = xy
            if self.started:
                self._advance()

    def robot_at(self, xy: np.ndarray) -> bool:
        """True when no robot is waited for, or the measured pose is within tolerance of xy."""
        if not self.wait_for_robot:
            return True
        return self.robot_xy is not None and float(np.hypot(*(self.robot_xy - xy))) <= self.arrival_tolerance

    def _receiver(self, sender: int):
        def on_message(msg: Float64MultiArray):
            try:
                state = decode_message(msg, self.m, sender)
            except MalformedMessage as exc:
                self._filed(sender, self.inbox.reject(exc.reason))
                return
            self.deliver(state)
        return on_message

    def deliver(self, msg: NeighbourState):
        """A decoded neighbour message (from DDS, or handed over in-process by an agent group)."""
        if self.injector.active:
            if self.injector.lost(msg.sender, self.id, msg.iteration):
                self._filed(msg.sender, self.inbox.reject("injected_loss"))
                return
            wait = self.injector.latency(msg.sender, self.id, msg.iteration)
            if wait > 0:
                heapq.heappush(self.delayed, (time.monotonic() + wait, next(self.sequence), msg))
                return
        self._file(msg)

    def _release_delayed(self):
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            self._file(heapq.heappop(self.delayed)[2])

    def _file(self, msg: NeighbourState):
        j = msg.sender
        if j in self.newest and msg.iteration <= self.iterations:
            now = self.clock.now()
            if msg.iteration > self.newest[j]:
                self.newest[j], self.reached_at[j] = msg.iteration, now
            self.heard_at[j] = now
            if j in self.dead and msg.iteration >= self.k - 1:  # alive, and keeping up with this agent
                self.dead.discard(j)
                self.get_logger().info(f"agent {self.id}: agent {j} is back at round {msg.iteration}")
        self._filed(j, self.inbox.offer_decoded(msg, self.k))

    def _on_tick(self):
        self.clock.now()  # a reading per tick: a longer gap is a stop of this process
        if self.started and self.k < self.iterations:
            if self.deadline > 0:
                self._advance()
            self._republish()

    def _filed(self, sender: int, status: str):
        if status not in ("accepted", "duplicate", "stale", "injected_loss"):
            self.get_logger().warning(f"dropped a message from agent {sender}: {status} "
                                      f"(dropped so far: {dict(self.inbox.dropped)})", throttle_duration_sec=2.0)
        if self.started:
            self._advance()

    def _advance(self):
        # Not re-entrant: an in-process neighbour may answer while this agent publishes; the loop
        # below re-checks the inbox after every round, so it sees what arrived meanwhile.
        if self.advancing:
            return
        self.advancing = True
        try:
            self._run_rounds()
        finally:
            self.advancing = False

    def _run_rounds(self):
        while self.k < self.iterations and self.robot_at(self.state.x[0]):
            late = [j for j in self.inbox.missing(self.k) if j not in self.dead]
            if late and not self._overdue(late):
                return
            if late and self._catch_up():
                continue
            self._step(late)

    def _overdue(self, late: list[int]) -> bool:
        now = self.clock.now()
        if self.deadline <= 0 or now - self.round_started < self.deadline:
            return False
        # A neighbour never heard past round 0 may still be starting (discovering its own
        # neighbours, up to startup_timeout), and the first rounds wait on the slowest starter.
        if time.monotonic() - self.started_at < self.startup_timeout and all(self.newest[j] < 1 for j in late):
            return False
        # a silent neighbour is stepped past (and declared dead in _note_late) whatever its round
        heard = [j for j in late if now - self.heard_at[j] < self.dead_after * self.deadline]
        return not any(self.waiting_itself(j, now) or self.far_behind(j) for j in heard)

    def waiting_itself(self, j: int, now: float) -> bool:
        """Neighbour j reached round k-1 less than two deadlines ago and has sent nothing newer: it
        is likely waiting on a late message of its own, and sends as soon as its deadline runs out.
        Stepping without it would pass one lost message on as a late round at every hop of the
        graph. A chain of such waits ends at the agent whose deadline runs out first. Two agents
        that each lost the other's round-k message both look one round behind to each other; the
        two-deadline bound ends that wait."""
        return self.newest[j] == self.k - 1 and now - self.reached_at[j] < 2 * self.deadline

    def far_behind(self, j: int) -> bool:
        """Neighbour j, heard but more than MAX_LEAD rounds behind, is slow, not late: it is waited
        for. Stepping past it would take this agent out of j's inbox window, after which neither
        gets the other's messages in time again: the swarm splits into two groups rounds apart,
        each stepping every round a deadline late without the other. A heavily loaded machine's
        startup made such a split, and it lasted to the end of the run."""
        return self.newest[j] < self.k - MAX_LEAD

    def _catch_up(self) -> bool:
        """After a restart or a long stall this agent is far behind: its neighbours' messages no
        longer fit its inbox, and no round will complete. It jumps ahead of them with its state
        as it is (like a late message, the state is a few rounds old)."""
        # Only when every live neighbour heard from is ahead: one neighbour running ahead alone
        # (say, after wrongly declaring its only neighbour dead) must not drag the swarm along.
        heard = [k for j, k in self.newest.items() if k >= 0 and j not in self.dead]
        if not heard or min(heard) <= self.k + MAX_AHEAD:
            return False
        target = min(min(heard) + CATCH_UP_LEAD, self.iterations)
        self.get_logger().warning(f"agent {self.id}: behind at round {self.k}; catching up with its neighbours "
                                  f"at round {target}")
        self.k = target
        self.inbox.forget_before(target)
        self._publish_waypoints()
        self._publish_state()
        if self.k >= self.iterations:
            self._finish()
        return True

    def _step(self, late: list[int]):
        """Round k: Algorithm 1 with what came; neighbours still missing after the deadline follow
        the late policy, dead ones are dropped (core/faults.py)."""
        got = self.inbox.take(self.k)
        if late or self.dead:
            if late:
                self._note_late(late)
            self_weight, weights, rows = mix_inputs(self.neighbours, self.self_weight, self.weights, got,
                                                    self.last_used, self.late_policy, self.dead)
        else:  # every message came: Algorithm 1 as it stands
            self_weight, weights, rows = self.self_weight, self.weights, [got[j] for j in self.neighbours]
        self.last_used.update(got)
        before = self.state
        packed = self.state.q.shape[1]
        result = agent_step(self.problem, self.steps, self.state, self_weight, weights,
                            np.array([g.y for g in rows]).reshape(len(rows), self.m),
                            np.array([g.r for g in rows]).reshape(len(rows), self.m),
                            np.array([g.q for g in rows]).reshape(len(rows), packed))
        self.state, self.x_hat = result.state, result.x_hat[0]
        if self.k in self.recorded:  # round k with the x_hat^k its step produced
            self._publish(self.record_pub, self.k, before, self.x_hat)
        self.k += 1
        self.state = reset_tracking(self.problem, self.state, self.k, self.reset_every)
        if self.k == 1:  # round 0 also waits for the slowest neighbour's startup: time from here
            self.first_round_at = time.monotonic()
        self._publish_waypoints()
        self._publish_state()
        if self.checkpoint is not None and self.k % self.checkpoint_every == 0:
            self._save_checkpoint()
        if self.k >= self.iterations:
            self._finish()

    def _note_late(self, late: list[int]):
        self.late_rounds += 1
        self.get_logger().warning(f"agent {self.id}: round {self.k} stepped without agents {late} after the "
                                  f"{self.deadline:g} s deadline ({self.late_policy})", throttle_duration_sec=2.0)
        # Dead means silent, not late: a neighbour that is waiting on a lost message of its own
        # steps after its deadline and is heard again, so lateness alone never kills a live one.
        now = self.clock.now()
        for j in late:
            silent = now - self.heard_at[j]
            if silent >= self.dead_after * self.deadline:
                self.dead.add(j)
                self.get_logger().warning(f"agent {self.id}: agent {j} has been silent for {silent:.1f} s "
                                          f"({self.dead_after} deadlines) and is declared dead at round {self.k}: "
                                          f"dropped from the sums until it is heard again")

    # -- checkpoints ---------------------------------------------------------------------------
    def _save_checkpoint(self):
        s = self.state
        tmp = self.checkpoint.with_suffix(".tmp.npz")
        np.savez(tmp, iteration=self.k, x=s.x[0], x_hat=self.x_hat, y=s.y[0], r=s.r[0], q=s.q[0])
        os.replace(tmp, self.checkpoint)  # a reader (or a crash) never sees half a file

    def _resume(self):
        """Start from the checkpoint: the tracking sums r_i, q_i carry this agent's share of the
        swarm's averages, so restoring them (not re-initialising) keeps the invariants nearly whole."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            self.get_logger().warning(f"agent {self.id}: no checkpoint to resume from; starting from x_i^0, y_i^0")
            return
        try:
            with np.load(self.checkpoint, allow_pickle=False) as saved:
                k = int(saved["iteration"])
                x, x_hat, y, r, q = (np.asarray(saved[n], dtype=float) for n in ("x", "x_hat", "y", "r", "q"))
        except (OSError, KeyError, ValueError) as exc:
            raise ParameterError(f"parameter 'checkpoint_dir': cannot read {self.checkpoint}: {exc}") from None
        shapes = {"x": (x, (2,)), "x_hat": (x_hat, (2,)), "y": (y, (self.m,)), "r": (r, (self.m,)),
                  "q": (q, self.state.q.shape[1:])}
        for name, (value, shape) in shapes.items():
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ParameterError(f"parameter 'checkpoint_dir': {name} in {self.checkpoint} is not {shape} finite")
        fresh = initial_state(self.problem, x[None], y[None])
        self.state = dataclasses.replace(fresh, r=r[None], q=q[None])
        self.x_hat, self.k = x_hat, max(0, min(k, self.iterations))
        self.get_logger().info(f"agent {self.id}: resumed from round {self.k} ({self.checkpoint})")

    def _finish(self):
        if self.record_pub is not None:  # round K's state is the run's final state
            self._publish(self.record_pub, self.k, self.state, self.x_hat)
        # Stay until the last messages are acknowledged (polled: agents in one process share this
        # executor thread, so a blocking wait would stall the others).
        self.tick_timer.cancel()
        self.finish_deadline = time.monotonic() + (30.0 if self.wait_for_robot else 5.0)
        self.ack_timer = self.create_timer(0.02, self._await_acks)

    def _await_acks(self):
        # neighbours may still need this agent's last rounds, and the recorder its last record
        pubs = [self.state_pub] + ([self.record_pub] if self.record_pub is not None else [])
        acked = all(pub.wait_for_all_acked(Duration(seconds=0)) for pub in pubs)
        if not (acked and self.robot_at(self.state.x[0])) and time.monotonic() < self.finish_deadline:
            return
        if not self.robot_at(self.state.x[0]):
            self.get_logger().warning(f"agent {self.id}: the robot did not reach its last waypoint in time")
        self.ack_timer.cancel()
        elapsed = time.monotonic() - self.started_at
        steady = time.monotonic() - (self.first_round_at or self.started_at)
        rate = (self.k - 1) / steady if self.k > 1 and steady > 0 else float("nan")
        self.get_logger().info(f"agent {self.id}: finished {self.k} iterations in {elapsed:.1f} s "
                               f"({rate:.1f} rounds/s after round 1); {self.late_rounds} rounds stepped late; "
                               f"dropped messages: {dict(self.inbox.dropped) or 'none'}")
        self.done.set_result(True)

    def _republish(self):
        """A stalled round re-sends this agent's last two rounds. Neighbours are at most one round
        behind or ahead, so whichever message one of them lost is among these two."""
        if self.k >= self.iterations or time.monotonic() - self.last_sent < self.resend_period:
            return
        for msg in self.recent:
            self.state_pub.publish(msg)
        self.last_sent = time.monotonic()
        waited = self.clock.now() - self.round_started
        if waited > 5.0:
            missing = self.inbox.missing(self.k)
            what = f"agents {missing}" if missing else (f"the robot to reach {np.round(self.state.x[0], 3)} "
                                                        f"(odometry: {self.robot_xy})")
            self.get_logger().warning(f"round {self.k} has waited {waited:.0f} s for {what}",
                                      throttle_duration_sec=5.0)

    # -- messages ------------------------------------------------------------------------------
    def _publish(self, publisher, k: int, state, x_hat) -> tuple[Float64MultiArray, np.ndarray]:
        payload = encode(k, self.id, state.x[0], x_hat, state.y[0], state.r[0], state.q[0])
        msg = Float64MultiArray()
        msg.layout.dim = self.layout
        msg.data = array.array("d", payload.tobytes())
        publisher.publish(msg)
        return msg, payload

    def _publish_state(self):
        msg, payload = self._publish(self.state_pub, self.k, self.state, self.x_hat)
        self.recent = (self.recent + [msg])[-2:]
        self.last_sent, self.round_started = time.monotonic(), self.clock.now()
        if self.bus is not None:
            self.bus.published(self.id, payload)

    def _pose(self, xy) -> PoseStamped:
        msg = PoseStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        msg.pose.position.x, msg.pose.position.y = float(xy[0]), float(xy[1])
        msg.pose.orientation.w = 1.0
        return msg

    def _publish_waypoints(self):
        self.waypoint_pub.publish(self._pose(self.state.x[0]))
        self.projected_pub.publish(self._pose(self.x_hat))


class ProcessBus:
    """Neighbour messages among the agents of one process, without a DDS round trip.

    An agent's own state is handed to its local listeners directly; each remote agent's topic is
    subscribed once per process, decoded once, and fanned out. Every agent still publishes on DDS,
    for remote agents, the recorder and RViz. Hand-overs are queued and drained by the outermost
    call, so one agent's publish never runs another agent's round inside it.
    """

    def __init__(self, node: Node):
        self.node, self.m = node, None
        self.local: dict[int, AgentNode] = {}
        self.listeners: dict[int, list[AgentNode]] = {}
        self.subs: dict[int, object] = {}
        self.dropped: Counter[str] = Counter()
        self.queue: deque[NeighbourState] = deque()
        self.draining = False

    def register(self, agent: "AgentNode") -> None:
        if self.m is not None and agent.m != self.m:
            raise ParameterError(f"parameter 'basis_order': agents of one process must share it (agent {agent.id})")
        self.m = agent.m
        self.local[agent.id] = agent
        for j in agent.neighbours:
            self.listeners.setdefault(j, []).append(agent)

    def connect(self) -> None:
        """Subscribe to the remote neighbours of all local agents (call after every register)."""
        quiet = SubscriptionEventCallbacks(use_default_callbacks=False)
        for j in self.listeners:
            if j not in self.local:
                self.subs[j] = self.node.create_subscription(Float64MultiArray, state_topic(j), self._remote(j),
                                                             STATE_QOS, event_callbacks=quiet)

    def remote_links(self, neighbours) -> list:
        return [self.subs[j] for j in neighbours if j in self.subs]

    def _remote(self, sender: int):
        def on_message(msg: Float64MultiArray):
            try:
                state = decode_message(msg, self.m, sender)
            except MalformedMessage as exc:
                self.dropped[exc.reason] += 1
                for agent in self.listeners[sender]:
                    agent.inbox.reject(exc.reason)
                self.node.get_logger().warning(f"dropped a message from agent {sender}: {exc.reason}",
                                               throttle_duration_sec=2.0)
                return
            self._hand_over(state)
        return on_message

    def published(self, sender: int, payload: np.ndarray) -> None:
        self._hand_over(decode(payload, self.m, sender))

    def _hand_over(self, state: NeighbourState) -> None:
        self.queue.append(state)
        if self.draining:
            return
        self.draining = True
        try:
            while self.queue:
                msg = self.queue.popleft()
                for agent in self.listeners.get(msg.sender, ()):
                    agent.deliver(msg)
        finally:
            self.draining = False


def _agents_done(nodes) -> list[Future]:
    return [node.done for node in nodes if isinstance(node, AgentNode)]


def main() -> int:
    """`ros2 run bildmacro_ros agent --ros-args -p agent_id:=3 ...`"""
    return run_nodes(lambda: [AgentNode()], _agents_done)


def group_main() -> int:
    """`agent_group`: the agents named by agent_ids in one process; each takes its parameters by
    node name (agent_<i>) from the --params-file the launcher passes."""

    def make():
        helper = Node("agent_group", start_parameter_services=False)
        ids = declare(helper, "agent_ids", "int[]", "agent ids to run in this process")
        if not ids or len(set(ids)) != len(ids):
            raise ParameterError(f"parameter 'agent_ids': needs distinct agent ids, got {ids}")
        bus = ProcessBus(helper)
        agents = [AgentNode(f"agent_{i}", bus=bus) for i in ids]
        bus.connect()
        return [helper] + agents

    return run_nodes(make, _agents_done)


if __name__ == "__main__":
    sys.exit(main())
