# SPDX-License-Identifier: Apache-2.0
"""
The `recorder` node: listens to every agent's record topic and records the run to disk.

It writes the same files as `bildmacro simulate` (metrics.csv, final_state.npz, figures), so a
distributed run and an offline one compare directly. `bildmacro swarm` and `bildmacro record`
run it in-process; in a ROS launch it is a process of its own (launch argument `record:=DIR`,
launchers/recorder_node.py).
"""

from __future__ import annotations

from collections import Counter
import time

from geometry_msgs.msg import PoseStamped
import numpy as np
from rcl_interfaces.msg import Log
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, Int64MultiArray

from .bag import BagWriter
from .ignored_input import IgnoredInput
from .lifecycle import parameter_services
from .messages import pose_of, pose_stamped
from .picture import SwarmPicture
from .topics import (BODIES_PERIOD, bodies_topic, held_topic, LATCHED_QOS, QUIET_SUB,
                     RECORD_QOS, record_topic, recorder_progress_topic, ROSOUT_QOS,
                     STREAM_PUB_QOS, STREAM_SUB_QOS, swarm_pose_topic, WAYPOINT_QOS,
                     waypoint_topic)
from ..core.arena import Arena
from ..core.scenario import Scenario
from ..protocol.pacing import PROGRESS_STEP
from ..protocol.recorder import Recorder
from ..protocol.robot_track import RobotTrack, save_robot_track
from ..protocol.wire import decode_message, MalformedMessage
from ..run_folder import RunWriter


class RecorderNode(Node):
    """Feeds agent_<i>/record, i = 0..N-1 (every log_every rounds), to a Recorder and RunWriter."""

    def __init__(self, scenario: Scenario, writer: RunWriter, log_every: int,
                 node_name: str = "recorder", robots: bool = False, bag: bool = True,
                 away_after: float = 0.0, live=None, **kwargs):
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__(node_name, **kwargs)
        self.scenario, self.writer = scenario, writer
        n, iterations = scenario.agents, scenario.config["iterations"]
        self.recorder = Recorder(scenario.problem, scenario.steps, n, iterations, log_every)
        self.m = scenario.problem.m
        self.dropped: Counter[str] = Counter()
        self.ignored = IgnoredInput(self)
        self.subs = [self.create_subscription(Float64MultiArray, record_topic(i),
                                              self._receiver(i), RECORD_QOS,
                                              event_callbacks=QUIET_SUB) for i in range(n)]
        # Backpressure (protocol/pacing.py): the agents hold their rounds while this node is too
        # many records behind, so a loaded machine slows the swarm instead of costing rows
        self.progress_pub = self.create_publisher(Int64MultiArray, recorder_progress_topic(),
                                                  LATCHED_QOS)
        self.taken = np.full(n, -1)  # each agent's newest record taken, of any round
        self.since_told = np.zeros(n, dtype=int)  # records taken per agent since the last word
        self.told_at = -np.inf
        self.progress_timer = self.create_timer(0.05, self._tell_progress)
        # run.mcap and metadata.yaml, a rosbag2 bag: every record (every round's, when the agents
        # record every round), the waypoints they hold and sampled odometry; `ros2 bag play RUN`
        self.bag = None
        if bag:
            try:
                self.bag = BagWriter(writer.out)
            except ImportError:
                self.get_logger().warning("no run.mcap: the rosbags library is missing "
                                          "(pip install rosbags)")
        self.arena = Arena.from_config(scenario.config)  # robots and waypoints are there
        self.track = RobotTrack(n, self.arena) if robots else None
        self.poses: list[PoseStamped | None] = [None] * n
        self.held = np.full((n, 2), np.nan)  # the goal each robot's neighbours hold it back from
        # the simulator's contacts, closest distance and steps
        self.bodies: list[float] | None = None
        if robots:
            for i in range(n):
                self.create_subscription(PoseStamped, swarm_pose_topic(i), self._on_pose(i),
                                         STREAM_SUB_QOS, event_callbacks=QUIET_SUB)
                self.create_subscription(PoseStamped, held_topic(i), self._on_held(i), LATCHED_QOS)
            self.create_subscription(Float64MultiArray, bodies_topic(), self._on_bodies,
                                     LATCHED_QOS)
            self.sample_timer = self.create_timer(self.track.period, self._sample)
        # Standing alone (not under `bildmacro swarm`, which knows whom it killed), an agent whose
        # records stop is taken as gone after away_after seconds, and back with its next record.
        self.away_after = away_after
        if away_after > 0:
            self.away_timer = self.create_timer(min(1.0, away_after / 4), self._check_silent)
        # what the live view (live: a LiveView) and the bag show of each recorded round, and
        # the agents' warnings from /rosout
        self.picture = SwarmPicture(scenario, self, self.bag, live, robots) \
            if self.bag is not None or live is not None else None
        if self.picture is not None:
            self.create_subscription(Log, "/rosout", self._on_rosout, ROSOUT_QOS,
                                     event_callbacks=QUIET_SUB)

    def _tell_progress(self):
        # Every word wakes every agent, which costs it about as much as a neighbour's message: so
        # only once an agent has PROGRESS_STEP more records taken (far inside its lead of
        # RECORD_LEAD), or a second after any change; the first when all are up (Agent.start)
        now, told = time.monotonic(), self.since_told
        if told.max() >= PROGRESS_STEP or (told.any() and now - self.told_at >= 1.0) or (
                self.told_at == -np.inf and self.matched()):
            self.progress_pub.publish(Int64MultiArray(data=[int(k) for k in self.taken]))
            self.since_told[:] = 0
            self.told_at = now

    def _check_silent(self):
        for i in self.recorder.silent(time.monotonic(), self.away_after):
            self.recorder.leave(i)
            self.get_logger().warning(f"agent_{i}: no record for {self.away_after:g} s; recording "
                                      f"on without it (its round-{self.recorder.latest[i]} "
                                      f"record stands in until it is back)")
        self._write_ready()

    def _write_ready(self):
        recorder = self.recorder
        for k, values in recorder.ready_rows():
            self.writer.row(k, values)
            if self.picture is not None:
                self.picture.show(k, values, recorder.stack(k, "x"), recorder.stack(k, "x_hat"),
                                  recorder.stack(k, "y")[0], last=k == recorder.iterations)
        for k, x, learned in self.recorder.ready_snapshots():
            self.writer.snapshot(k, x, learned)

    def _bag_record(self, state, msg: Float64MultiArray) -> None:
        """Bag the record, and its x_i^k as the agent's waypoint (what RViz replays)."""
        now = self.get_clock().now()
        pose = pose_stamped(now.to_msg(), "map", self.arena.to_lab(state.x))
        self.bag.write(self.resolve_topic_name(waypoint_topic(state.sender)), pose,
                       now.nanoseconds, WAYPOINT_QOS)
        self.bag.write(self.resolve_topic_name(record_topic(state.sender)), msg, now.nanoseconds,
                       RECORD_QOS)

    def _on_pose(self, robot: int):
        def on_pose(msg: PoseStamped):
            pose = pose_of(msg)
            if self.ignored.finite(swarm_pose_topic(robot), pose):
                self.track.update(robot, pose)
                self.poses[robot] = msg
        return on_pose

    def _on_held(self, robot: int):
        def on_held(msg: PoseStamped):
            self.held[robot] = (msg.pose.position.x, msg.pose.position.y)
        return on_held

    def _on_bodies(self, msg: Float64MultiArray):
        if len(msg.data) == 3 and np.all(np.isfinite(msg.data[:1])):
            self.bodies = list(msg.data)

    def _show_stand_ins(self, k: int, values: dict) -> None:
        recorder = self.recorder
        if self.picture is not None and k in recorder.stood_in:
            self.picture.show(k, values, recorder.stack(k, "x"), recorder.stack(k, "x_hat"),
                              recorder.stack(k, "y")[0], last=True)
            self.picture.log("warning", self.get_name(), f"round {k} recorded with stand-ins "
                             f"for agents {recorder.stood_in[k]}, whose records never came")

    def _on_rosout(self, msg: Log):
        if msg.level >= Log.WARN:
            self.picture.log("error" if msg.level >= Log.ERROR else "warning", msg.name, msg.msg)

    def _sample(self):
        if self.picture is not None:
            self.picture.robot_poses([pose_of(msg) if msg is not None else (np.nan,) * 3
                                      for msg in self.poses], self.held)
        now = self.get_clock().now().nanoseconds
        if self.track.sample(now * 1e-9, round_k=self.recorder.progress) and self.bag is not None:
            for i, msg in enumerate(self.poses):
                self.bag.write(self.resolve_topic_name(swarm_pose_topic(i)), msg, now,
                               STREAM_PUB_QOS)

    def _receiver(self, sender: int):
        def on_message(msg: Float64MultiArray):
            try:
                state = decode_message(msg, self.m, sender)
            except MalformedMessage as exc:
                self.dropped[exc.reason] += 1
                return
            recorder = self.recorder
            back = sender in recorder.away and sender not in recorder.rejoining
            if self.away_after > 0 and back:
                recorder.rejoin(sender)
                self.get_logger().info(f"agent_{sender} is back at round {state.iteration}")
            if state.iteration > recorder.iterations:
                self.dropped["not_this_run"] += 1
                return
            self.taken[sender] = max(self.taken[sender], state.iteration)
            self.since_told[sender] += 1
            if self.bag is not None:
                self._bag_record(state, msg)
            # records of rounds without a row or snapshot (agents recording every round): bag only
            if state.iteration in recorder.rounds and recorder.add(state, time.monotonic()):
                self._write_ready()
        return on_message

    def matched(self) -> bool:
        """Every agent's record writer is up, and every robot's pose heard: the swarm may start."""
        return all(sub.get_publisher_count() > 0 for sub in self.subs) and (
            self.track is None or self.track.seen_all)

    def settle(self, executor, stopped_within: float, timeout: float, stops=None) -> None:
        """
        After the last round, let the robots catch up with their last waypoints, then sample them.

        They may run behind the algorithm: wait until each has stopped within stopped_within of it,
        timeout passes, or a stop is requested.
        """
        k, arrays = self.recorder.final()
        if k < 0 or self.track is None:
            return
        deadline = time.monotonic() + timeout
        stopped = lambda: stops is not None and stops.requested  # noqa: E731
        while time.monotonic() < deadline and not stopped():
            executor.spin_once(timeout_sec=0.05)
            # as close as their neighbours let them
            held = np.all(self.held == self.arena.to_lab(arrays["x"]), axis=1)
            if np.all((self.track.error(arrays["x"]) <= stopped_within) | held):
                break
        # the settled poses
        self.track.sample(self.get_clock().now().nanoseconds * 1e-9, force=True, round_k=k)
        # and a report on the bodies from after that: the one heard may predate the last contacts
        heard, until = self.bodies and self.bodies[2], time.monotonic() + 3 * BODIES_PERIOD
        while heard and self.bodies[2] == heard and time.monotonic() < until and not stopped():
            executor.spin_once(timeout_sec=0.05)

    def finish(self, plots: bool = True, animation: bool = False,
               stops=None) -> tuple[int, float, list[str]]:
        """
        Write final_state.npz (round K, or the newest heard), robots.npz, run.mcap, then figures.

        With stops (signals counted, not raised), a further Ctrl-C while the figures are drawn
        skips them; the data is on disk by then.
        """
        k, arrays = self.recorder.final()
        # a round some record of which never came is still written, its stand-ins counted in the
        # row (and said in the live view and the bag)
        for item in self.recorder.fill(k) if k >= 0 else ():
            if item[0] == "row":
                self.writer.row(*item[1:])
                self._show_stand_ins(*item[1:])
            else:
                self.writer.snapshot(*item[1:])
        if self.picture is not None:
            self.picture.close()
        if self.bag is not None:
            self.bag.close()
        if k < 0:
            return k, float("nan"), []
        if self.recorder.stood_in:
            self.get_logger().warning(f"{len(self.recorder.stood_in)} rounds recorded with "
                                      "stand-ins for "
                                      f"records that never came (metrics.csv, column stand_ins)")
        kl = self.recorder.objective(arrays["x"])
        self.writer.snapshot(k, arrays["x"], arrays["y"][0])
        if self.track is not None:
            bodies = {} if self.bodies is None else {
                "contacts": np.int64(self.bodies[0]), "closest": np.float64(self.bodies[1]),
                "simulator_steps": np.int64(self.bodies[2])}
            self.robots = save_robot_track(self.writer.out / "robots.npz", self.scenario.problem,
                                           self.track.arrays(), arrays["x"], extra=bodies)
        return k, kl, self.writer.finish(k, arrays, kl, plots, animation,
                                         allow_interrupt=stops.raising if stops is not None
                                         else None)
