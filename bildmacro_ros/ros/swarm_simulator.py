# SPDX-License-Identifier: Apache-2.0
"""
The embedded swarm simulator: N unicycles behind the per-robot interface of real drivers.

It emulates what the drivers do, read from their sources (docs/robots.md): the command type and
topic, the command timeout or its absence, the limits, and the pose each source publishes.
"""

from __future__ import annotations

import time

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from .ignored_input import IgnoredInput
from .lifecycle import parameter_services, run_nodes
from .messages import command_of, command_type, set_heading
from .parameters import read_parameters
from .robots import robot_ids
from .topics import (BODIES_PERIOD, bodies_topic, command_topic, LATCHED_QOS, robot_namespace,
                     STREAM_PUB_QOS, STREAM_SUB_QOS)
from ..core.motion import Limits, unicycle_step
from ..core.safety import BodyWatch
from ..protocol.node_parameters import SIMULATOR_PARAMETERS
from ..protocol.parameters import ParameterError
from ..protocol.pose_source import PoseSource


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
        self.command_timeout, self.radius = p.command_timeout, p.radius
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
        # what each robot's pose source publishes: the pose in the swarm's frame, odometry from
        # zero where it starts (as every driver), or a mocap PoseStamped
        self.sources = [PoseSource.of(p.pose_source, p.pose_frame, i, self.pose[slot])
                        for slot, i in enumerate(self.ids)]
        self.pose_type = PoseStamped if p.pose_source == "mocap" else Odometry
        self.pose_pubs = [self.create_publisher(self.pose_type, p.pose_topic.format(i=i),
                                                STREAM_PUB_QOS) for i in self.ids]
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
        for slot, pub in enumerate(self.pose_pubs):
            source = self.sources[slot]
            msg = self.pose_type()
            msg.header.stamp, msg.header.frame_id = stamp, source.frame
            pose = msg.pose if self.pose_type is PoseStamped else msg.pose.pose
            x, y, heading = source.from_swarm(*self.pose[slot])
            pose.position.x, pose.position.y = float(x), float(y)
            set_heading(pose.orientation, float(heading))
            if self.pose_type is Odometry:
                msg.child_frame_id = f"{robot_namespace(self.ids[slot])}/base_link"
                msg.twist.twist.linear.x = float(v[slot])
                msg.twist.twist.angular.z = float(w[slot])
            pub.publish(msg)

    def _report_bodies(self):
        self.bodies_pub.publish(Float64MultiArray(data=[float(self.bodies.contacts),
                                                        self.bodies.closest,
                                                        float(self.bodies.steps)]))


def simulator_main() -> int:
    """Run `ros2 run bildmacro_ros swarm_simulator --ros-args -p robot_ids:=[0,1] ...`."""
    return run_nodes(lambda: [SwarmSimulatorNode()])
