# SPDX-License-Identifier: Apache-2.0
"""
The `settle` node: wait until a robot has reached its last waypoint, then end.

An agent finishes with its last waypoint sent; its robot is still driving there. `bildmacro robot`
and `robot.launch.py` both wait on the follower's latched word robot_<i>/arrived (True once the
robot stopped within tolerance) before they stop the follower, which would otherwise leave the
robot where the last round found it. After settle_timeout seconds it gives up with a warning.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Bool

from .lifecycle import parameter_services, run_nodes
from .parameters import read_parameters
from .topics import arrived_topic, LATCHED_QOS
from ..protocol.node_parameters import SETTLE_PARAMETERS


class SettleNode(Node):
    """Resolve `settled` with True when robot i has arrived, False after the timeout."""

    def __init__(self, name: str = "settle", **kwargs):
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__(name, **kwargs)
        p = read_parameters(self, SETTLE_PARAMETERS)
        self.robot, self.timeout = p.robot_id, p.settle_timeout
        self.settled = Future()
        self.create_subscription(Bool, arrived_topic(self.robot), self._on_arrived, LATCHED_QOS)
        self.timer = self.create_timer(max(self.timeout, 1e-3), self._on_timeout)

    def _on_arrived(self, msg: Bool) -> None:
        if msg.data and not self.settled.done():
            self.get_logger().info(f"robot {self.robot} is at its last waypoint")
            self.settled.set_result(True)

    def _on_timeout(self) -> None:
        if not self.settled.done():
            self.get_logger().warning(f"robot {self.robot} is NOT at its last waypoint after "
                                      f"{self.timeout:g} s; stopping anyway")
            self.settled.set_result(False)


def main() -> int:
    """Wait for one robot: `ros2 run bildmacro_ros settle --ros-args -p robot_id:=3`."""
    return run_nodes(lambda: [SettleNode()], lambda nodes: [node.settled for node in nodes])
