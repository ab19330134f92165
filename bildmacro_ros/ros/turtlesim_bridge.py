# SPDX-License-Identifier: Apache-2.0
"""
The turtlesim bridge: robot i is turtlesim's turtle<i+1>, behind the robots' own topics.

It speaks `robot_<i>/cmd_vel` and `robot_<i>/odom` as the embedded simulator does
(ros/swarm_simulator.py), so the follower drives turtles as it drives any robot. turtlesim's
window shows C: poses go from the arena's frame to C and on to the window (core/arena.py,
core/motion.py); speeds scale by the arena's shorter side, so a stretched arena's turtles are
slower along its longer side than its robots would be.
"""

from __future__ import annotations

import importlib

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node

from .lifecycle import parameter_services, run_nodes
from .messages import command_of, command_type, set_heading
from .parameters import read_parameters
from .robots import robot_ids
from .topics import command_topic, odom_topic, robot_namespace, STREAM_PUB_QOS, STREAM_SUB_QOS
from ..core.motion import TurtlesimFrame
from ..protocol.node_parameters import TURTLESIM_BRIDGE_PARAMETERS
from ..protocol.parameters import arena_of, ParameterError


def turtlesim_types() -> tuple:
    """
    Return turtlesim's Pose, SetPen, Spawn and TeleportAbsolute types.

    From turtlesim_msgs where it exists (ros_tutorials 1.9.2 on: Kilted, Rolling), else from
    turtlesim (Jazzy, Humble). Neither is on PyPI: only a ROS install has them.
    """
    for package in ("turtlesim_msgs", "turtlesim"):
        try:
            msg = importlib.import_module(f"{package}.msg")
            srv = importlib.import_module(f"{package}.srv")
            return msg.Pose, srv.SetPen, srv.Spawn, srv.TeleportAbsolute
        except (ImportError, AttributeError):
            continue
    raise ParameterError("turtlesim's messages are not installed: neither turtlesim_msgs (Kilted "
                         "and later: apt install ros-$ROS_DISTRO-turtlesim-msgs) nor turtlesim "
                         "(Jazzy and earlier: apt install ros-$ROS_DISTRO-turtlesim)")


class TurtlesimBridgeNode(Node):
    """
    Robot i is turtlesim's turtle<i+1>.

    robot_<i>/cmd_vel -> turtle<i+1>/cmd_vel (scaled), and turtle<i+1>/pose -> robot_<i>/odom
    (mapped back to the arena). Spawns the turtles at startup.
    """

    def __init__(self, **kwargs):
        Pose, SetPen, Spawn, TeleportAbsolute = turtlesim_types()
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__("turtlesim_bridge", **kwargs)
        p = read_parameters(self, TURTLESIM_BRIDGE_PARAMETERS)
        self.ids, poses = robot_ids(p.robot_ids), p.initial_poses
        if len(poses) != 3 * len(self.ids):
            raise ParameterError(f"parameter 'initial_poses': needs {3 * len(self.ids)} values, "
                                 "got "
                                 f"{len(poses)}")
        self.frame, self.frame_id = TurtlesimFrame(margin=p.margin), p.frame_id
        self.arena = arena_of(p)
        self.scale = self.frame.scale / self.arena.scale  # turtlesim metres per arena metre
        self.odom_pubs, self.turtle_pubs = {}, {}
        for slot, i in enumerate(self.ids):
            turtle = f"turtle{i + 1}"
            self.turtle_pubs[i] = self.create_publisher(Twist, f"{turtle}/cmd_vel", STREAM_PUB_QOS)
            self.odom_pubs[i] = self.create_publisher(Odometry, odom_topic(i), STREAM_PUB_QOS)
            # the follower's command as the config has it (turtlesim itself takes Twist)
            self.create_subscription(command_type(p.command_type),
                                     command_topic(i, p.command_topic), self._on_command(i),
                                     STREAM_SUB_QOS)
            self.create_subscription(Pose, f"{turtle}/pose", self._on_pose(i), STREAM_SUB_QOS)
        self._place(poses, Spawn, TeleportAbsolute, SetPen)

    def _place(self, poses, spawn_type, teleport_type, pen_type):
        """
        Teleport turtlesim's own turtle1, spawn the others, and lift every pen (asynchronously).

        Pens up: N turtles drawing for thousands of rounds bury the window in lines. turtlesim
        answers a spawn of a name it has (a bridge restarted) with an empty name and no error
        (turtle_frame.cpp:171-181, 236): that turtle is teleported instead, with one line.
        """
        spawn = self.create_client(spawn_type, "spawn")
        for slot, i in enumerate(self.ids):
            x, y = self.frame.to_turtlesim(self.arena.to_c(poses[3 * slot:3 * slot + 2]))
            pose = float(x), float(y), float(poses[3 * slot + 2]) - self.arena.rotation
            turtle = f"turtle{i + 1}"
            if i == 0:
                self._teleport(turtle, pose, teleport_type, pen_type)
                continue
            self._wait(spawn, "spawn")
            future = spawn.call_async(spawn_type.Request(x=pose[0], y=pose[1], theta=pose[2],
                                                         name=turtle))
            future.add_done_callback(self._spawned(turtle, pose, teleport_type, pen_type))

    def _wait(self, client, service: str) -> None:
        if not client.wait_for_service(timeout_sec=10.0):
            raise ParameterError(f"turtlesim's {service} service did not appear within 10 s: "
                                 "is turtlesim_node running?")

    def _teleport(self, turtle: str, pose: tuple, teleport_type, pen_type) -> None:
        service = f"{turtle}/teleport_absolute"
        client = self.create_client(teleport_type, service)
        self._wait(client, service)
        future = client.call_async(teleport_type.Request(x=pose[0], y=pose[1], theta=pose[2]))
        future.add_done_callback(self._placed(turtle, pen_type))

    def _spawned(self, turtle: str, pose: tuple, teleport_type, pen_type):
        def spawned(future):
            if future.exception() is None and future.result().name != turtle:
                self.get_logger().warning(f"turtlesim already has {turtle} (it did not spawn "
                                          "it again): teleporting it to its start pose")
                self._teleport(turtle, pose, teleport_type, pen_type)
                return
            self._placed(turtle, pen_type)(future)
        return spawned

    def _placed(self, turtle: str, pen_type):
        def placed(future):
            if future.exception() is not None:
                self.get_logger().error(f"turtlesim did not place {turtle}: {future.exception()}")
                return
            pen = self.create_client(pen_type, f"{turtle}/set_pen")
            if pen.wait_for_service(timeout_sec=5.0):
                pen.call_async(pen_type.Request(off=1))
        return placed

    def _on_command(self, robot: int):
        def on_command(msg):
            v, w, _ = command_of(msg)
            out = Twist()
            out.linear.x, out.angular.z = v * self.scale, w
            self.turtle_pubs[robot].publish(out)
        return on_command

    def _on_pose(self, robot: int):
        def on_pose(msg):
            odom = Odometry()
            odom.header.stamp = self.get_clock().now().to_msg()
            odom.header.frame_id = self.frame_id
            odom.child_frame_id = f"{robot_namespace(robot)}/base_link"
            x, y = self.arena.to_lab(self.frame.from_turtlesim((msg.x, msg.y)))
            odom.pose.pose.position.x, odom.pose.pose.position.y = float(x), float(y)
            set_heading(odom.pose.pose.orientation, msg.theta + self.arena.rotation)
            odom.twist.twist.linear.x = msg.linear_velocity / self.scale
            odom.twist.twist.angular.z = msg.angular_velocity
            self.odom_pubs[robot].publish(odom)
        return on_pose


def main() -> int:
    """Run the bridge: `ros2 run bildmacro_ros turtlesim_bridge --ros-args -p robot_ids:=...`."""
    return run_nodes(lambda: [TurtlesimBridgeNode()])
