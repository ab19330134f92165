# SPDX-License-Identifier: Apache-2.0
"""
Robots in the loop: the embedded swarm simulator and the waypoint follower.

Both speak the per-robot interface of real robot drivers: a command in (`robot_<i>/cmd_vel`,
geometry_msgs/Twist or, as Jazzy's drivers take it, TwistStamped; body frame), `robot_<i>/odom`
(nav_msgs/Odometry, pose in the shared `map` frame) out. The follower turns agent i's waypoints
into robot i's commands and cannot tell which simulator, or which real robot, is on the other
side; the simulator emulates the drivers' command contracts (docs/robots.md).
"""

from __future__ import annotations

import time

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import Bool, Float64MultiArray

from .ignored_input import IgnoredInput
from .lifecycle import parameter_services, run_nodes
from .messages import command_message, command_of, command_type, pose_of, pose_stamped, set_heading
from .parameters import read_parameters
from .topics import (arrived_topic, BODIES_PERIOD, bodies_topic, command_topic, held_topic,
                     LATCHED_QOS, odom_topic, robot_namespace, STREAM_PUB_QOS, STREAM_SUB_QOS,
                     WAYPOINT_QOS, waypoint_topic)
from ..core.motion import Gains, go_to_goal, Limits, unicycle_step
from ..core.safety import BodyWatch, HeldBack, safe_command, SafetySettings
from ..protocol.node_parameters import FOLLOWER_PARAMETERS, SIMULATOR_PARAMETERS
from ..protocol.parameters import ParameterError


def robot_ids(ids: list[int]) -> list[int]:
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ParameterError(f"parameter 'robot_ids': needs distinct ids >= 0, got {ids}")
    return ids


class SwarmSimulatorNode(Node):
    """
    N unicycle robots with speed and turn-rate limits, integrated at a fixed rate.

    A robot whose last command is older than command_timeout stops, as most drivers do (0: it
    drives on for ever, as gz-sim's DiffDrive and TurtleBot3 do). A TwistStamped command is
    timed from its stamp, and one already older than the timeout is ignored, as ros2_control's
    diff_drive_controller and the Create 3 do; a zero stamp counts as now. With a radius, it
    watches the bodies at its own rate: every contact (two bodies overlapping) is logged, and
    simulator/bodies (latched) reports the contacts so far and the closest two bodies came.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__("swarm_simulator", **kwargs)
        p = read_parameters(self, SIMULATOR_PARAMETERS)
        self.ids, poses, rate = robot_ids(p.robot_ids), p.initial_poses, p.rate
        self.limits = Limits(p.max_speed, p.max_turn_rate)
        self.command_timeout, self.frame_id, self.radius = p.command_timeout, p.frame_id, p.radius
        if len(poses) != 3 * len(self.ids) or not np.all(np.isfinite(poses)):
            raise ParameterError(f"parameter 'initial_poses': needs 3 finite values per robot "
                                 f"({3 * len(self.ids)}), got {len(poses)}")
        self.pose = np.array(poses, float).reshape(-1, 3)
        self.command = np.zeros((len(self.ids), 2))
        self.heard = np.full(len(self.ids), -np.inf)
        self.dt = 1.0 / rate
        self.ignored = IgnoredInput(self)
        self.topic_name = p.command_topic
        for slot, i in enumerate(self.ids):
            self.create_subscription(command_type(p.command_type),
                                     command_topic(i, p.command_topic), self._on_command(slot),
                                     STREAM_SUB_QOS)
        self.odom_pubs = [self.create_publisher(Odometry, odom_topic(i), STREAM_PUB_QOS)
                          for i in self.ids]
        self.timer = self.create_timer(self.dt, self._tick)
        self.bodies = BodyWatch(len(self.ids), self.radius)
        if self.radius > 0:
            self.bodies_pub = self.create_publisher(Float64MultiArray, bodies_topic(), LATCHED_QOS)
            self.bodies_timer = self.create_timer(BODIES_PERIOD, self._report_bodies)
        self.get_logger().info(f"simulating {len(self.ids)} robots at {rate:g} Hz "
                               f"(max {self.limits.max_speed:g} m/s, "
                               f"{self.limits.max_turn_rate:g} rad/s)")

    def _on_command(self, slot: int):
        topic = command_topic(self.ids[slot], self.topic_name)

        def on_command(msg):
            v, w, stamp = command_of(msg)
            if not self.ignored.finite(topic, (v, w)):  # a NaN would poison the pose for good
                return
            heard = time.monotonic()
            if stamp:  # diff_drive_controller.cpp:118-131, 469-485 (jazzy): from the stamp
                heard -= self.get_clock().now().nanoseconds * 1e-9 - stamp
                if self.command_timeout > 0 and time.monotonic() - heard > self.command_timeout:
                    self.ignored(topic, "stale_stamp")
                    return
            self.command[slot], self.heard[slot] = self.limits.clip(v, w), heard
        return on_command

    def _tick(self):
        fresh = (time.monotonic() - self.heard) <= (self.command_timeout or np.inf)
        v, w = np.where(fresh, self.command[:, 0], 0.0), np.where(fresh, self.command[:, 1], 0.0)
        self.pose = unicycle_step(self.pose, v, w, self.dt)
        for a, b, gap in self.bodies.step(self.pose[:, :2]):
            self.get_logger().warning(f"contact: robots {self.ids[a]} and {self.ids[b]} overlap "
                                      f"({gap:.4f} m apart, "
                                      f"bodies of radius {self.radius:g} m)",
                                      throttle_duration_sec=1.0)
        stamp = self.get_clock().now().to_msg()
        for slot, pub in enumerate(self.odom_pubs):
            msg = Odometry()
            msg.header.stamp, msg.header.frame_id = stamp, self.frame_id
            msg.child_frame_id = f"{robot_namespace(self.ids[slot])}/base_link"
            position = msg.pose.pose.position
            position.x, position.y = float(self.pose[slot, 0]), float(self.pose[slot, 1])
            set_heading(msg.pose.pose.orientation, float(self.pose[slot, 2]))
            msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(v[slot]), float(w[slot])
            pub.publish(msg)

    def _report_bodies(self):
        self.bodies_pub.publish(Float64MultiArray(data=[float(self.bodies.contacts),
                                                        self.bodies.closest,
                                                        float(self.bodies.steps)]))


class FollowerNode(Node):
    """
    Drives robot i to agent i's newest waypoint with the saturated go-to-goal controller.

    For every i in robot_ids; it reports arrival on robot_<i>/arrived (latched Bool). With a
    radius, each command passes the safety filter (core/safety.py) against the poses of every robot
    of the swarm within sensing_range, its own or another computer's (their robot_<j>/odom). A
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
        self.odom_timeout = p.odom_timeout
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
        # another robot's odometry is needed only for the filter
        for row, i in enumerate(self.swarm):
            if i in self.ids or self.safety is not None:
                self.create_subscription(Odometry, odom_topic(i), self._on_odom(row),
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

    def _on_odom(self, row: int):
        topic = odom_topic(self.swarm[row])

        def on_odom(msg: Odometry):
            pose = pose_of(msg)
            if self.ignored.finite(topic, pose):
                self.pose[row], self.pose_at[row] = pose, time.monotonic()
        return on_odom

    def _on_waypoint(self, slot: int):
        topic = waypoint_topic(self.ids[slot])

        def on_waypoint(msg: PoseStamped):
            goal = (msg.pose.position.x, msg.pose.position.y)
            # a peer's waypoint must not drive a robot out of C
            if self.ignored.waypoint(topic, goal):
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


def simulator_main() -> int:
    """Run `ros2 run bildmacro_ros swarm_simulator --ros-args -p robot_ids:=[0,1] ...`."""
    return run_nodes(lambda: [SwarmSimulatorNode()])


def follower_main() -> int:
    """`ros2 run bildmacro_ros follower --ros-args -p robot_ids:=[3]` (one robot, or many)."""
    return run_nodes(lambda: [FollowerNode()])
