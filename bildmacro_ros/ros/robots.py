# SPDX-License-Identifier: Apache-2.0
"""
Robots in the loop: the embedded swarm simulator and the waypoint follower.

Both speak the per-robot interface of Gazebo's diff-drive plugin and of real robot drivers:
`robot_<i>/cmd_vel` (geometry_msgs/Twist, body frame) in, `robot_<i>/odom` (nav_msgs/Odometry,
pose in the shared `map` frame) out. The follower turns agent i's waypoints into robot i's
cmd_vel and cannot tell which simulator, or which real robot, is on the other side.
"""

from __future__ import annotations

import time

from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
import numpy as np
from rclpy.node import Node
from std_msgs.msg import Bool, Float64MultiArray

from .ignored_input import IgnoredInput
from .lifecycle import parameter_services, run_nodes
from .messages import pose_of, pose_stamped, set_heading
from .parameters import read_parameters
from .topics import (arrived_topic, BODIES_PERIOD, bodies_topic, cmd_vel_topic, held_topic,
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

    A robot whose last command is older than command_timeout stops, as real drivers do. With a
    radius, it watches the bodies at its own rate: every contact (two bodies overlapping) is
    logged, and simulator/bodies (latched) reports the contacts so far and the closest two bodies
    came.
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
        for slot, i in enumerate(self.ids):
            self.create_subscription(Twist, cmd_vel_topic(i), self._on_command(slot),
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
        topic = cmd_vel_topic(self.ids[slot])

        def on_command(msg: Twist):
            v, w = msg.linear.x, msg.angular.z
            if self.ignored.finite(topic, (v, w)):  # a NaN command would poison the pose for good
                self.command[slot] = self.limits.clip(v, w)
                self.heard[slot] = time.monotonic()
        return on_command

    def _tick(self):
        fresh = (time.monotonic() - self.heard) <= self.command_timeout
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
        self.cmd_pubs = [self.create_publisher(Twist, cmd_vel_topic(i), STREAM_PUB_QOS)
                         for i in self.ids]
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
        if not live.any():
            return
        mine = self.pose[self.own]
        v, w, distance = go_to_goal(mine, np.nan_to_num(self.goal), self.limits, self.gains)
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
            cmd = Twist()
            cmd.linear.x, cmd.angular.z = float(v[slot]), float(w[slot])
            self.cmd_pubs[slot].publish(cmd)
            # as close to this goal as its neighbours let it
            if held and self.held_goal[slot] != goal:
                self.held_goal[slot] = goal
                self.held_pubs[slot].publish(pose_stamped(self.get_clock().now().to_msg(), "map",
                                                          goal))
            arrived = bool(distance[slot] <= self.gains.tolerance or held)
            if arrived != self.arrived[slot]:
                self.arrived[slot] = arrived
                self.arrived_pubs[slot].publish(Bool(data=arrived))


def simulator_main() -> int:
    """Run `ros2 run bildmacro_ros swarm_simulator --ros-args -p robot_ids:=[0,1] ...`."""
    return run_nodes(lambda: [SwarmSimulatorNode()])


def follower_main() -> int:
    """`ros2 run bildmacro_ros follower --ros-args -p robot_ids:=[3]` (one robot, or many)."""
    return run_nodes(lambda: [FollowerNode()])
