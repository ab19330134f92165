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


class TurtlesimBridgeNode(Node):
    """
    Robot i is turtlesim's turtle<i+1>.

    robot_<i>/cmd_vel -> turtle<i+1>/cmd_vel (scaled), and turtle<i+1>/pose -> robot_<i>/odom
    (mapped back to the arena). Spawns the turtles at startup.
    """

    def __init__(self, **kwargs):
        try:  # turtlesim is not on PyPI: only a ROS install has it
            from turtlesim.msg import Pose
            from turtlesim.srv import Spawn, TeleportAbsolute
        except ImportError:
            raise ParameterError("turtlesim is not installed (apt install "
                                 "ros-$ROS_DISTRO-turtlesim)") from None
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
        self._place(poses, Spawn, TeleportAbsolute)

    def _place(self, poses, spawn_type, teleport_type):
        """Teleport turtlesim's own turtle1, and spawn the others (asynchronously)."""
        spawn = self.create_client(spawn_type, "spawn")
        for slot, i in enumerate(self.ids):
            x, y = self.frame.to_turtlesim(self.arena.to_c(poses[3 * slot:3 * slot + 2]))
            heading = float(poses[3 * slot + 2]) - self.arena.rotation
            if i == 0:
                teleport = self.create_client(teleport_type, "turtle1/teleport_absolute")
                if teleport.wait_for_service(timeout_sec=10.0):
                    teleport.call_async(teleport_type.Request(x=float(x), y=float(y),
                                                              theta=heading))
                continue
            if not spawn.wait_for_service(timeout_sec=10.0):
                raise ParameterError("turtlesim's spawn service did not appear within 10 s: is "
                                     "turtlesim_node running?")
            spawn.call_async(spawn_type.Request(x=float(x), y=float(y), theta=heading,
                                                name=f"turtle{i + 1}"))

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
