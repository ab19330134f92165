# SPDX-License-Identifier: Apache-2.0
"""Building and reading the ROS messages the nodes exchange: state arrays and poses."""

from __future__ import annotations

import array
import math

from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from ..core.kernel import compiled_screen
from ..protocol.wire import (decode, decode_message, encode, layout_label, MalformedMessage,
                             message_length, NeighbourState)


class StateMessages:
    """
    Float64MultiArray messages in the wire layout for one m, built and read as CDR bytes.

    A neighbour message is 10.7 kB of doubles behind a layout that never changes. As a message
    object, rclpy converts all 1331 values between Python and C on every publish and every take;
    as bytes it copies them once. rclpy's own serializer writes the template once, so the prefix
    is what it would write (with zeros in the padding), and anything else that arrives (another
    publisher's layout, a foreign serializer) is deserialized the slow way and checked as before.
    """

    def __init__(self, m: int):
        self.m, self.screen = m, None
        self.length = message_length(m)
        # one labelled dimension: rclpy builds a Python object per dimension of a message it
        # converts
        self.layout = [MultiArrayDimension(label=layout_label(m), size=self.length,
                                           stride=self.length)]
        template = Float64MultiArray()
        template.layout.dim = self.layout
        template.data = array.array("d", bytes(8 * self.length))
        wire = serialize_message(template)
        prefix = bytearray(wire[:len(wire) - 8 * self.length])
        # CDR pads the label to 4 bytes and the doubles to 8, and the serializer leaves those bytes
        # as it finds them: the prefix is compared around them, and sent with zeros in them
        # header, dim count, string length, label, NUL
        label_end = 12 + len(self.layout[0].label) + 1
        counts = label_end + (-label_end) % 4
        # size, stride, data_offset, data length
        data_start = counts + 16 + (-(counts + 16 - 4)) % 8
        # else (another CDR form) every message takes the slow path
        self.fast = data_start == len(prefix)
        if self.fast:
            prefix[label_end:counts] = bytes(counts - label_end)
            prefix[counts + 16:data_start] = bytes(data_start - counts - 16)
        self.prefix, self.size = bytes(prefix), len(wire)
        self._label_end, self._counts = label_end, counts

    def build(self, k: int, sender: int, state, x_hat) -> tuple[bytes, np.ndarray]:
        """Serialize row 0 of an AgentState at round k: returns (message bytes, payload)."""
        payload = encode(k, sender, state.x[0], x_hat, state.y[0], state.r[0], state.q[0])
        return self.prefix + payload.tobytes(), payload

    def _ours(self, data: bytes) -> bool:
        """Tell whether data is this layout as rclpy serializes it, padding aside."""
        if not self.fast or len(data) != self.size:
            return False
        view, prefix = memoryview(data), self.prefix
        return (view[:self._label_end] == prefix[:self._label_end]
                and view[self._counts:self._counts + 16] == prefix[self._counts:self._counts + 16])

    def read(self, data: bytes, sender: int | None = None) -> NeighbourState:
        """Decode a serialized message (raises MalformedMessage with the reason)."""
        if self._ours(data):  # our layout: the label is in the prefix
            # the compiled pass, kept once there is one: asked for only until then
            self.screen = self.screen or compiled_screen()
            return decode(np.frombuffer(data, dtype=np.float64, offset=len(self.prefix)), self.m,
                          sender, screen=self.screen)
        try:
            msg = deserialize_message(data, Float64MultiArray)
        except Exception as exc:  # noqa: BLE001 - whatever the bytes were, not the message
            raise MalformedMessage("undecodable",
                                   f"{len(data)} bytes that are not a Float64MultiArray: "
                                   f"{str(exc)[:80]}") from None
        return decode_message(msg, self.m, sender)


def pose_stamped(stamp, frame_id: str, xy) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.pose.position.x, msg.pose.position.y = float(xy[0]), float(xy[1])
    msg.pose.orientation.w = 1.0
    return msg


def pose_of(odom) -> tuple[float, float, float]:
    """(x, y, heading) of a nav_msgs/Odometry or a geometry_msgs/PoseStamped."""
    pose = odom.pose.pose if hasattr(odom.pose, "pose") else odom.pose
    q = pose.orientation
    return pose.position.x, pose.position.y, math.atan2(2 * (q.w * q.z + q.x * q.y),
                                                        1 - 2 * (q.y * q.y + q.z * q.z))


def set_heading(orientation, heading: float) -> None:
    orientation.x = orientation.y = 0.0
    orientation.z, orientation.w = math.sin(heading / 2), math.cos(heading / 2)


def command_type(kind: str) -> type:
    """Return the message type of a robots.command_type: Twist, or TwistStamped."""
    return TwistStamped if kind == "twist_stamped" else Twist


def command_message(kind: str, v: float, w: float, stamp=None, frame_id: str = ""):
    """Build a command: a Twist, or a TwistStamped stamped `stamp` in the robot's base frame."""
    if kind == "twist_stamped":
        msg = TwistStamped()
        msg.header.frame_id = frame_id
        if stamp is not None:
            msg.header.stamp = stamp
        twist = msg.twist
    else:
        msg = twist = Twist()
    twist.linear.x, twist.angular.z = float(v), float(w)
    return msg


def command_of(msg) -> tuple[float, float, float | None]:
    """(v, w, stamp in seconds) of a Twist or TwistStamped; the stamp is None for a Twist."""
    if isinstance(msg, TwistStamped):
        stamp = msg.header.stamp
        return msg.twist.linear.x, msg.twist.angular.z, stamp.sec + 1e-9 * stamp.nanosec
    return msg.linear.x, msg.angular.z, None
