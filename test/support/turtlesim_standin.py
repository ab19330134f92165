# SPDX-License-Identifier: Apache-2.0
"""
A stand-in for turtlesim_node, written from its source: what the turtlesim bridge talks to.

Read in ros/ros_tutorials `rolling` at 1.8.2 (the turtlesim Jazzy has; 1.9.2 moved the types to
turtlesim_msgs and left the node as it is), `turtlesim/src/turtle_frame.cpp` and `turtle.cpp`:

- a 500 x 500 px window at 45 px per metre, so (500 - 1) / 45 = 11.089 m a side
  (turtle_frame.cpp:120, 149-150); turtle1 at its centre, heading 0, on start (:151);
- `spawn`: a turtle of the name asked for, or turtle<k> for an empty name; a name that exists
  gets an empty name back, and no error, since rclcpp drops the callback's `false` (:171-181,
  :236); the y axis of the window points down, so a turtle is placed at height - y (:241-243);
- per turtle: `set_pen` (off lifts it, :143), `teleport_absolute` (queued and applied at the next
  update, :213-217), `cmd_vel` (Twist; reliable, depth 7, turtlesim/qos.hpp) and `pose`
  (turtlesim Pose, float32 fields) published at every update;
- an update every 16 ms with dt = 0.016 whatever the real interval (:67, :308): a command older
  than 1 s stops the turtle (turtle.cpp:268-272), heading integrates first and is wrapped to
  [-pi, pi) (:56-59, :275-277), then the position; outside the window it is clamped with a
  warning "Oh no! I hit the wall!" (:284-297).

Run as a process: `python turtlesim_standin.py`. It publishes `walls` (std_msgs/String, the name
of each turtle that hit one) and `pens` (the names of turtles whose pen is up), for the test.
"""

import math
import sys

from geometry_msgs.msg import Twist
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from bildmacro_ros.ros.turtlesim_bridge import turtlesim_types

PIXELS, METER = 500, 45
SIDE = (PIXELS - 1) / METER
INTERVAL = 0.016
COMMAND_TIMEOUT = 1.0
TOPIC_QOS = QoSProfile(depth=7, reliability=ReliabilityPolicy.RELIABLE)


def normalize_angle(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


class Turtle:
    def __init__(self, node, name: str, x: float, y: float, theta: float):
        Pose, SetPen, _, TeleportAbsolute = turtlesim_types()
        self.node, self.name, self.pose_type = node, name, Pose
        self.x, self.y, self.orient = x, SIDE - y, theta  # window coordinates: y down
        self.v = self.w = 0.0
        self.last_command = node.get_clock().now()
        self.pen_on, self.teleports = True, []
        node.create_subscription(Twist, f"{name}/cmd_vel", self._on_command, TOPIC_QOS)
        self.pose_pub = node.create_publisher(Pose, f"{name}/pose", TOPIC_QOS)
        node.create_service(SetPen, f"{name}/set_pen", self._on_pen)
        node.create_service(TeleportAbsolute, f"{name}/teleport_absolute", self._on_teleport)

    def _on_command(self, msg):
        self.last_command = self.node.get_clock().now()
        self.v, self.w = msg.linear.x, msg.angular.z

    def _on_pen(self, request, response):
        self.pen_on = not request.off
        return response

    def _on_teleport(self, request, response):
        self.teleports.append((request.x, request.y, request.theta))
        return response

    def update(self, dt: float) -> None:
        for x, y, theta in self.teleports:
            self.x, self.y, self.orient = x, max(0.0, SIDE - y), theta
        self.teleports.clear()
        if (self.node.get_clock().now() - self.last_command).nanoseconds > COMMAND_TIMEOUT * 1e9:
            self.v = self.w = 0.0
        self.orient = normalize_angle(self.orient + self.w * dt)
        self.x += math.cos(self.orient) * self.v * dt
        self.y -= math.sin(self.orient) * self.v * dt
        if not (0 <= self.x <= SIDE and 0 <= self.y <= SIDE):
            self.node.get_logger().warning(f"Oh no! I hit the wall! (Clamping from "
                                           f"[x={self.x:f}, y={self.y:f}])")
            self.node.walls.publish(String(data=self.name))
        self.x, self.y = min(max(self.x, 0.0), SIDE), min(max(self.y, 0.0), SIDE)
        pose = self.pose_type(x=self.x, y=SIDE - self.y, theta=self.orient,
                              linear_velocity=abs(self.v), angular_velocity=self.w)
        self.pose_pub.publish(pose)


class TurtlesimStandIn(Node):
    def __init__(self):
        super().__init__("turtlesim")
        _, _, Spawn, _ = turtlesim_types()
        self.turtles, self.counter = {}, 0
        self.walls = self.create_publisher(String, "walls", 10)
        self.pens = self.create_publisher(String, "pens", 10)
        self.spawn("", SIDE / 2, SIDE / 2, 0.0)
        self.create_service(Spawn, "spawn", self._on_spawn)
        self.create_timer(INTERVAL, self._update)

    def spawn(self, name: str, x: float, y: float, theta: float) -> str:
        if not name:
            self.counter += 1
            name = f"turtle{self.counter}"
            while name in self.turtles:
                self.counter += 1
                name = f"turtle{self.counter}"
        elif name in self.turtles:
            return ""
        self.turtles[name] = Turtle(self, name, x, y, theta)
        self.get_logger().info(f"Spawning turtle [{name}] at x=[{x:f}], y=[{y:f}], "
                               f"theta=[{theta:f}]")
        return name

    def _on_spawn(self, request, response):
        response.name = self.spawn(request.name, request.x, request.y, request.theta)
        if not response.name:
            self.get_logger().error(f"A turtle named [{request.name}] already exists")
        return response

    def _update(self):
        for turtle in self.turtles.values():
            turtle.update(INTERVAL)
        self.pens.publish(String(data=" ".join(sorted(name for name, turtle in
                                                      self.turtles.items()
                                                      if not turtle.pen_on))))


def main() -> int:
    rclpy.init()
    node = TurtlesimStandIn()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
