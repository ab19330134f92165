# SPDX-License-Identifier: Apache-2.0
"""
Robots in the loop: the embedded swarm simulator, the waypoint follower, and the turtlesim bridge.

All three speak the per-robot interface of Gazebo's diff-drive plugin and of real robot drivers:
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
from std_msgs.msg import Bool

from .ignored_input import IgnoredInput
from .lifecycle import parameter_services, run_nodes
from .messages import pose_of, set_heading
from .parameters import declare
from .topics import (arrived_topic, cmd_vel_topic, LATCHED_QOS, odom_topic, robot_namespace, STREAM_PUB_QOS,
                     STREAM_SUB_QOS, WAYPOINT_QOS, waypoint_topic)
from ..core.motion import Gains, go_to_goal, Limits, TurtlesimFrame, unicycle_step
from ..protocol.parameters import ParameterError


def _limits(node: Node) -> Limits:
    return Limits(declare(node, "max_speed", float, "forward speed limit (m/s)", 0.5, low=1e-6, high=100.0),
                  declare(node, "max_turn_rate", float, "turn-rate limit (rad/s)", 3.0, low=1e-6, high=100.0))


def _robot_ids(node: Node) -> list[int]:
    ids = declare(node, "robot_ids", "int[]", "ids i of the robots this node serves (topics robot_<i>/...)")
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ParameterError(f"parameter 'robot_ids': needs distinct ids >= 0, got {ids}")
    return ids


class SwarmSimulatorNode(Node):
    """
    N unicycle robots with speed and turn-rate limits, integrated at a fixed rate.

    A robot whose last command is older than command_timeout stops, as real drivers do.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__("swarm_simulator", **kwargs)
        self.ids = _robot_ids(self)
        poses = declare(self, "initial_poses", "float[]", "x, y, heading of each robot, in robot_ids order")
        self.limits = _limits(self)
        rate = declare(self, "rate", float, "integration and odometry rate (Hz)", 20.0, low=1.0, high=1000.0)
        self.command_timeout = declare(self, "command_timeout", float, "seconds without cmd_vel before a robot "
                                       "stops", 0.5, low=0.01, high=60.0)
        self.frame_id = declare(self, "frame_id", str, "frame of the published poses", "map")
        if len(poses) != 3 * len(self.ids) or not np.all(np.isfinite(poses)):
            raise ParameterError(f"parameter 'initial_poses': needs 3 finite values per robot "
                                 f"({3 * len(self.ids)}), got {len(poses)}")
        self.pose = np.array(poses, float).reshape(-1, 3)
        self.command = np.zeros((len(self.ids), 2))
        self.heard = np.full(len(self.ids), -np.inf)
        self.dt = 1.0 / rate
        self.ignored = IgnoredInput(self)
        for slot, i in enumerate(self.ids):
            self.create_subscription(Twist, cmd_vel_topic(i), self._on_command(slot), STREAM_SUB_QOS)
        self.odom_pubs = [self.create_publisher(Odometry, odom_topic(i), STREAM_PUB_QOS) for i in self.ids]
        self.timer = self.create_timer(self.dt, self._tick)
        self.get_logger().info(f"simulating {len(self.ids)} robots at {rate:g} Hz "
                               f"(max {self.limits.max_speed:g} m/s, {self.limits.max_turn_rate:g} rad/s)")

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
        stamp = self.get_clock().now().to_msg()
        for slot, pub in enumerate(self.odom_pubs):
            msg = Odometry()
            msg.header.stamp, msg.header.frame_id = stamp, self.frame_id
            msg.child_frame_id = f"{robot_namespace(self.ids[slot])}/base_link"
            msg.pose.pose.position.x, msg.pose.pose.position.y = float(self.pose[slot, 0]), float(self.pose[slot, 1])
            set_heading(msg.pose.pose.orientation, float(self.pose[slot, 2]))
            msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(v[slot]), float(w[slot])
            pub.publish(msg)


class FollowerNode(Node):
    """
    Drives robot i to agent i's newest waypoint with the saturated go-to-goal controller.

    For every i in robot_ids; it reports arrival on robot_<i>/arrived (latched Bool).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__("waypoint_follower", **kwargs)
        self.ids = _robot_ids(self)
        self.limits = _limits(self)
        self.gains = Gains(
            declare(self, "distance_gain", float, "v = distance_gain * distance (1/s)", 1.5, low=1e-6, high=100.0),
            declare(self, "heading_gain", float, "w = heading_gain * bearing (1/s)", 4.0, low=1e-6, high=100.0),
            declare(self, "tolerance", float, "arrived within this distance (m)", 0.01, low=1e-6, high=10.0))
        rate = declare(self, "rate", float, "control rate (Hz)", 20.0, low=1.0, high=1000.0)
        self.odom_timeout = declare(self, "odom_timeout", float, "stop a robot whose odometry is this old (s)", 0.5,
                                    low=0.01, high=60.0)
        n = len(self.ids)
        self.pose = np.zeros((n, 3))
        self.goal = np.full((n, 2), np.nan)
        self.pose_at = np.full(n, -np.inf)
        self.arrived = [None] * n
        self.ignored = IgnoredInput(self)
        for slot, i in enumerate(self.ids):
            self.create_subscription(Odometry, odom_topic(i), self._on_odom(slot), STREAM_SUB_QOS)
            self.create_subscription(PoseStamped, waypoint_topic(i), self._on_waypoint(slot), WAYPOINT_QOS)
        self.cmd_pubs = [self.create_publisher(Twist, cmd_vel_topic(i), STREAM_PUB_QOS) for i in self.ids]
        self.arrived_pubs = [self.create_publisher(Bool, arrived_topic(i), LATCHED_QOS) for i in self.ids]
        self.timer = self.create_timer(1.0 / rate, self._tick)

    def _on_odom(self, slot: int):
        topic = odom_topic(self.ids[slot])

        def on_odom(msg: Odometry):
            pose = pose_of(msg)
            if self.ignored.finite(topic, pose):
                self.pose[slot], self.pose_at[slot] = pose, time.monotonic()
        return on_odom

    def _on_waypoint(self, slot: int):
        topic = waypoint_topic(self.ids[slot])

        def on_waypoint(msg: PoseStamped):
            goal = (msg.pose.position.x, msg.pose.position.y)
            if self.ignored.waypoint(topic, goal):  # a peer's waypoint must not drive a robot out of C
                self.goal[slot] = goal
        return on_waypoint

    def _tick(self):
        live = (time.monotonic() - self.pose_at <= self.odom_timeout) & np.isfinite(self.goal[:, 0])
        if not live.any():
            return
        v, w, distance = go_to_goal(self.pose, np.nan_to_num(self.goal), self.limits, self.gains)
        for slot in np.flatnonzero(live):
            cmd = Twist()
            cmd.linear.x, cmd.angular.z = float(v[slot]), float(w[slot])
            self.cmd_pubs[slot].publish(cmd)
            arrived = bool(distance[slot] <= self.gains.tolerance)
            if arrived != self.arrived[slot]:
                self.arrived[slot] = arrived
                self.arrived_pubs[slot].publish(Bool(data=arrived))


class TurtlesimBridgeNode(Node):
    """
    Robot i is turtlesim's turtle<i+1>.

    robot_<i>/cmd_vel -> turtle<i+1>/cmd_vel (scaled), and turtle<i+1>/pose -> robot_<i>/odom (mapped
    back to C). Spawns the turtles at startup.
    """

    def __init__(self, **kwargs):
        try:  # turtlesim is not on PyPI: only a ROS install has it
            from turtlesim.msg import Pose
            from turtlesim.srv import Spawn, TeleportAbsolute
        except ImportError:
            raise ParameterError("turtlesim is not installed (apt install ros-$ROS_DISTRO-turtlesim)") from None
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__("turtlesim_bridge", **kwargs)
        self.ids = _robot_ids(self)
        poses = declare(self, "initial_poses", "float[]", "x, y, heading of each robot in C, in robot_ids order")
        if len(poses) != 3 * len(self.ids):
            raise ParameterError(f"parameter 'initial_poses': needs {3 * len(self.ids)} values, got {len(poses)}")
        self.frame = TurtlesimFrame(margin=declare(self, "margin", float, "window fraction left free on each side",
                                                   0.1, low=0.0, high=0.45))
        self.frame_id = declare(self, "frame_id", str, "frame of the published poses", "map")
        self.odom_pubs, self.turtle_pubs = {}, {}
        for slot, i in enumerate(self.ids):
            turtle = f"turtle{i + 1}"
            self.turtle_pubs[i] = self.create_publisher(Twist, f"{turtle}/cmd_vel", STREAM_PUB_QOS)
            self.odom_pubs[i] = self.create_publisher(Odometry, odom_topic(i), STREAM_PUB_QOS)
            self.create_subscription(Twist, cmd_vel_topic(i), self._on_command(i), STREAM_SUB_QOS)
            self.create_subscription(Pose, f"{turtle}/pose", self._on_pose(i), STREAM_SUB_QOS)
        self._place(poses, Spawn, TeleportAbsolute)

    def _place(self, poses, spawn_type, teleport_type):
        """Teleport turtlesim's own turtle1, and spawn the others (asynchronously)."""
        spawn = self.create_client(spawn_type, "spawn")
        for slot, i in enumerate(self.ids):
            x, y = self.frame.to_turtlesim(poses[3 * slot:3 * slot + 2])
            heading = float(poses[3 * slot + 2])
            if i == 0:
                teleport = self.create_client(teleport_type, "turtle1/teleport_absolute")
                if teleport.wait_for_service(timeout_sec=10.0):
                    teleport.call_async(teleport_type.Request(x=float(x), y=float(y), theta=heading))
                continue
            if not spawn.wait_for_service(timeout_sec=10.0):
                raise ParameterError("turtlesim's spawn service did not appear within 10 s: is turtlesim_node running?")
            spawn.call_async(spawn_type.Request(x=float(x), y=float(y), theta=heading, name=f"turtle{i + 1}"))

    def _on_command(self, robot: int):
        def on_command(msg: Twist):
            out = Twist()
            out.linear.x, out.angular.z = msg.linear.x * self.frame.scale, msg.angular.z
            self.turtle_pubs[robot].publish(out)
        return on_command

    def _on_pose(self, robot: int):
        def on_pose(msg):
            odom = Odometry()
            odom.header.stamp, odom.header.frame_id = self.get_clock().now().to_msg(), self.frame_id
            odom.child_frame_id = f"{robot_namespace(robot)}/base_link"
            x, y = self.frame.from_turtlesim((msg.x, msg.y))
            odom.pose.pose.position.x, odom.pose.pose.position.y = float(x), float(y)
            set_heading(odom.pose.pose.orientation, msg.theta)
            odom.twist.twist.linear.x = msg.linear_velocity / self.frame.scale
            odom.twist.twist.angular.z = msg.angular_velocity
            self.odom_pubs[robot].publish(odom)
        return on_pose


def simulator_main() -> int:
    """`ros2 run bildmacro_ros swarm_simulator --ros-args -p robot_ids:=[0,1] -p initial_poses:=[...]`."""
    return run_nodes(lambda: [SwarmSimulatorNode()])


def follower_main() -> int:
    """`ros2 run bildmacro_ros follower --ros-args -p robot_ids:=[3]` (one robot, or many)."""
    return run_nodes(lambda: [FollowerNode()])


def turtlesim_bridge_main() -> int:
    return run_nodes(lambda: [TurtlesimBridgeNode()])
