# SPDX-License-Identifier: Apache-2.0
"""
Robots in the loop: the waypoint follower, between the agents and the robots' drivers.

It speaks the per-robot interface of real drivers: a command out (`robot_<i>/cmd_vel`, Twist or,
as Jazzy's drivers take it, TwistStamped), a pose in from where the lab has it (odometry in the
swarm's frame, a driver's wheel odometry from zero, or motion capture). It turns that pose into
the swarm's frame in one place and publishes it as `robot_<i>/pose`, which every other node reads.
It cannot tell which simulator (ros/swarm_simulator.py), or which real robot, is on the other side.
"""

from __future__ import annotations

import time

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import Bool

from .ignored_input import IgnoredInput
from .lifecycle import parameter_services, run_nodes
from .messages import command_message, command_type, pose_of, pose_stamped, set_heading
from .parameters import read_parameters
from .topics import (arrived_topic, command_topic, held_topic, LATCHED_QOS, robot_namespace,
                     STREAM_PUB_QOS, STREAM_SUB_QOS, swarm_pose_topic, WAYPOINT_QOS,
                     waypoint_topic)
from ..core.motion import Gains, go_to_goal, Limits
from ..core.safety import HeldBack, safe_command, SafetySettings
from ..protocol.node_parameters import FOLLOWER_PARAMETERS
from ..protocol.parameters import arena_of, ParameterError
from ..protocol.pose_source import PoseSource


def robot_ids(ids: list[int]) -> list[int]:
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ParameterError(f"parameter 'robot_ids': needs distinct ids >= 0, got {ids}")
    return ids


class FollowerNode(Node):
    """
    Drives robot i to agent i's newest waypoint with the saturated go-to-goal controller.

    For every i in robot_ids; it reports arrival on robot_<i>/arrived (latched Bool). With a
    radius, each command passes the safety filter (core/safety.py) against the poses of every robot
    of the swarm within sensing_range, its own or another computer's (their robot_<j>/pose). A
    robot its neighbours hold back short of its goal counts as arrived, and robot_<i>/held (latched
    PoseStamped) names the goal it was held back from, for an agent waiting on its robot.

    Every robot gets a command every control period: zero while it has no goal or its odometry is
    older than odom_timeout, and zero when the node stops (Ctrl-C, SIGTERM, the run's end), since
    gz-sim's DiffDrive and TurtleBot3 drive on at their last command for ever.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__("waypoint_follower", **kwargs)
        p = read_parameters(self, FOLLOWER_PARAMETERS)
        self.ids, rate, radius = robot_ids(p.robot_ids), p.rate, p.radius
        self.limits = Limits(p.max_speed, p.max_turn_rate)
        self.gains = Gains(p.distance_gain, p.heading_gain, p.tolerance)
        self.odom_timeout, self.arena = p.odom_timeout, arena_of(p)
        self.safety = SafetySettings(radius=radius, sensing_range=p.sensing_range) \
            if radius > 0 and p.safety else None
        self.swarm = sorted(set(p.swarm_ids or ()) | set(self.ids))
        n, total = len(self.ids), len(self.swarm)
        self.own = [self.swarm.index(i) for i in self.ids]  # each slot's row in the swarm's poses
        self.pose = np.zeros((total, 3))
        self.goal = np.full((n, 2), np.nan)
        self.pose_at = np.full(total, -np.inf)
        self.arrived = [None] * n
        self.holds = [HeldBack(still=self.gains.tolerance) for _ in self.ids]
        self.last_goal: list[tuple | None] = [None] * n
        self.held_goal: list[tuple | None] = [None] * n
        self.filtered = 0  # control steps whose command the filter changed
        self.ignored = IgnoredInput(self)
        # Its own robots' poses from their source, turned into the swarm's frame here and
        # published for every other node (robot_<i>/pose); another robot's, only for the filter.
        starts = np.array(p.initial_poses if p.initial_poses else [np.nan] * 3 * n).reshape(-1, 3)
        if len(starts) != n:
            raise ParameterError(f"parameter 'initial_poses': needs 3 values per robot "
                                 f"({3 * n}), got {starts.size}")
        self.sources = [PoseSource.of(p.pose_source, p.pose_frame, i,
                                      starts[slot] if p.initial_poses else None)
                        for slot, i in enumerate(self.ids)]
        self.pose_pubs = [self.create_publisher(PoseStamped, swarm_pose_topic(i), STREAM_PUB_QOS)
                          for i in self.ids]
        source_type = PoseStamped if p.pose_source == "mocap" else Odometry
        for slot, i in enumerate(self.ids):
            self.create_subscription(source_type, p.pose_topic.format(i=i),
                                     self._on_source(slot, p.pose_topic.format(i=i)),
                                     STREAM_SUB_QOS)
        for row, i in enumerate(self.swarm):
            if i not in self.ids and self.safety is not None:
                self.create_subscription(PoseStamped, swarm_pose_topic(i), self._on_pose(row),
                                         STREAM_SUB_QOS)
        for slot, i in enumerate(self.ids):
            self.create_subscription(PoseStamped, waypoint_topic(i), self._on_waypoint(slot),
                                     WAYPOINT_QOS)
        self.kind = p.command_type
        self.topics = [command_topic(i, p.command_topic) for i in self.ids]
        self.cmd_pubs = [self.create_publisher(command_type(self.kind), topic, STREAM_PUB_QOS)
                         for topic in self.topics]
        self.bases = [f"{robot_namespace(i)}/base_link" for i in self.ids]
        self.mismatched: set[tuple[str, str]] = set()
        self.type_timer = self.create_timer(1.0, self._check_types)
        self.arrived_pubs = [self.create_publisher(Bool, arrived_topic(i), LATCHED_QOS)
                             for i in self.ids]
        self.held_pubs = [self.create_publisher(PoseStamped, held_topic(i), LATCHED_QOS)
                          for i in self.ids]
        self.timer = self.create_timer(1.0 / rate, self._tick)
        if self.safety is not None:
            self.get_logger().info(f"safety filter on: bodies of radius {radius:g} m, robots "
                                   "within "
                                   f"{self.safety.sensing_range:g} m")

    def _on_source(self, slot: int, topic: str):
        source, row = self.sources[slot], self.own[slot]

        def on_source(msg):
            pose = pose_of(msg)
            refused = source.refuses(msg.header.frame_id)
            if refused is not None:  # never steered by: one warning, then every 5 s
                self.ignored(topic, f"{refused} {msg.header.frame_id!r}, not {source.frame!r}")
            elif self.ignored.finite(topic, pose):
                self.pose[row], self.pose_at[row] = source.to_swarm(*pose), time.monotonic()
                out = pose_stamped(msg.header.stamp, "map", self.pose[row])
                set_heading(out.pose.orientation, float(self.pose[row, 2]))
                self.pose_pubs[slot].publish(out)
        return on_source

    def _on_pose(self, row: int):
        topic = swarm_pose_topic(self.swarm[row])

        def on_pose(msg: PoseStamped):
            pose = pose_of(msg)
            if self.ignored.finite(topic, pose):
                self.pose[row], self.pose_at[row] = pose, time.monotonic()
        return on_pose

    def _on_waypoint(self, slot: int):
        topic = waypoint_topic(self.ids[slot])

        def on_waypoint(msg: PoseStamped):
            goal = (msg.pose.position.x, msg.pose.position.y)
            # a peer's waypoint must not drive a robot out of the arena
            if self.ignored.waypoint(topic, goal, self.arena):
                self.goal[slot] = goal
        return on_waypoint

    def _tick(self):
        now = time.monotonic()
        fresh = now - self.pose_at <= self.odom_timeout
        live = fresh[self.own] & np.isfinite(self.goal[:, 0])
        mine = self.pose[self.own]
        v, w, distance = go_to_goal(mine, np.nan_to_num(self.goal), self.limits, self.gains)
        stamp = self.get_clock().now().to_msg()
        for slot in np.flatnonzero(~live):  # no goal, or a pose too old to steer by
            self.cmd_pubs[slot].publish(command_message(self.kind, 0.0, 0.0, stamp,
                                                        self.bases[slot]))
        for slot in np.flatnonzero(live):
            held, goal = False, tuple(float(c) for c in self.goal[slot])
            if self.safety is not None:
                others = self.pose[fresh & (np.arange(len(self.swarm)) != self.own[slot])]
                v[slot], w[slot], changed = safe_command(mine[slot], v[slot], w[slot], others,
                                                         self.safety, self.limits.max_speed,
                                                         self.limits.max_turn_rate)
                self.filtered += changed
                if distance[slot] <= self.gains.tolerance:
                    self.holds[slot].clear()  # there: not held back from its next goal
                else:
                    held = self.holds[slot].update(now, changed, float(distance[slot]),
                                                   new_goal=goal != self.last_goal[slot])
                self.last_goal[slot] = goal
            self.cmd_pubs[slot].publish(command_message(self.kind, v[slot], w[slot], stamp,
                                                        self.bases[slot]))
            # as close to this goal as its neighbours let it
            if held and self.held_goal[slot] != goal:
                self.held_goal[slot] = goal
                self.held_pubs[slot].publish(pose_stamped(self.get_clock().now().to_msg(), "map",
                                                          goal))
            arrived = bool(distance[slot] <= self.gains.tolerance or held)
            if arrived != self.arrived[slot]:
                self.arrived[slot] = arrived
                self.arrived_pubs[slot].publish(Bool(data=arrived))

    def _check_types(self):
        """Name, once, a command subscriber of another type: DDS never connects the two."""
        ours = command_type(self.kind)
        ours = f"{ours.__module__.split('.')[0]}/msg/{ours.__name__}"
        for topic in self.topics:
            for info in self.get_subscriptions_info_by_topic(self.resolve_topic_name(topic)):
                if info.topic_type != ours and (topic, info.topic_type) not in self.mismatched:
                    self.mismatched.add((topic, info.topic_type))
                    other = "twist_stamped" if info.topic_type.endswith("TwistStamped") else None
                    self.get_logger().error(
                        f"{topic} has a subscriber of type {info.topic_type} ({info.node_name}), "
                        f"but this follower publishes {ours}: no command reaches it; set "
                        f"robots.command_type: {other or 'twist'} (--command-type, launch "
                        f"argument command_type:=, follower parameter command_type)")

    def close(self):
        """Command zero to every robot and wait (up to 1 s) until the subscribers have it."""
        if not self.context.ok():  # shut down from outside: nothing can be sent any more
            return
        stamp = self.get_clock().now().to_msg()
        for pub, base in zip(self.cmd_pubs, self.bases):
            pub.publish(command_message(self.kind, 0.0, 0.0, stamp, base))
        for pub in self.cmd_pubs:
            pub.wait_for_all_acked(Duration(seconds=1.0 / len(self.cmd_pubs)))


def follower_main() -> int:
    """`ros2 run bildmacro_ros follower --ros-args -p robot_ids:=[3]` (one robot, or many)."""
    return run_nodes(lambda: [FollowerNode()])
