# SPDX-License-Identifier: Apache-2.0
"""Building and reading the ROS messages the nodes exchange: state arrays and poses."""

from __future__ import annotations

import array
import math

from geometry_msgs.msg import PoseStamped
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from ..protocol.wire import encode, layout_label, message_length


class StateMessages:
    """Float64MultiArray messages in the wire layout for one m (protocol/wire.py)."""

    def __init__(self, m: int):
        self.m = m
        # one labelled dimension: rclpy builds a Python object per dimension on every message received
        self.layout = [MultiArrayDimension(label=layout_label(m), size=message_length(m), stride=message_length(m))]

    def build(self, k: int, sender: int, state, x_hat):
        """(message, payload) for row 0 of an AgentState at round k."""
        payload = encode(k, sender, state.x[0], x_hat, state.y[0], state.r[0], state.q[0])
        msg = Float64MultiArray()
        msg.layout.dim = self.layout
        msg.data = array.array("d", payload.tobytes())  # ~20x faster than a list
        return msg, payload


def pose_stamped(stamp, frame_id: str, xy) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.pose.position.x, msg.pose.position.y = float(xy[0]), float(xy[1])
    msg.pose.orientation.w = 1.0
    return msg


def pose_of(odom) -> tuple[float, float, float]:
    """(x, y, heading) of a nav_msgs/Odometry (or PoseStamped-like .pose.pose) message."""
    pose = odom.pose.pose
    q = pose.orientation
    return pose.position.x, pose.position.y, math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


def set_heading(orientation, heading: float) -> None:
    orientation.x = orientation.y = 0.0
    orientation.z, orientation.w = math.sin(heading / 2), math.cos(heading / 2)
