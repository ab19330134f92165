"""Topic names, QoS profiles and parameter declaration shared by every node."""

from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Neighbour state: reliable, bounded, never KEEP_ALL. TRANSIENT_LOCAL because a writer can see a
# reader as matched a moment before that reader accepts data: a VOLATILE round-0 sample sent in
# that window is lost for good, while a transient-local writer hands its (bounded) history to
# the reader once it is ready. A neighbour runs at most a round ahead, so 10 samples suffice.
STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Records (the rounds a recorder needs, ~1 in K/1000): the recorder shares the CPU with the agents
# and may fall behind, and a reliable KEEP_LAST writer forgets unacknowledged samples beyond its
# depth. 100 records of ~10.7 kB is ~1 MB per agent: bounded, and 100 rows of slack.
RECORD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Waypoints: a follower only wants the newest one.
WAYPOINT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)


def state_topic(agent: int) -> str:
    """Relative, so the whole swarm lives under the nodes' namespace."""
    return f"agent_{agent}/state"


def record_topic(agent: int) -> str:
    return f"agent_{agent}/record"


def waypoint_topic(agent: int) -> str:
    return f"agent_{agent}/waypoint"


def projected_topic(agent: int) -> str:
    return f"agent_{agent}/x_hat"


class ParameterError(ValueError):
    """A node parameter is missing or out of range; the message names it."""


_TYPES = {
    bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING,
    "int[]": Parameter.Type.INTEGER_ARRAY, "float[]": Parameter.Type.DOUBLE_ARRAY,
}


def declare(node, name: str, kind, description: str, default=None, low=None, high=None):
    """Declare a typed, read-only parameter with a description and (for numbers) a range.

    Without a default the parameter is required: it is declared by type only, so an empty or
    missing list is reported by name instead of surfacing as rclpy's type error.
    """
    descriptor = ParameterDescriptor(name=name, description=description, read_only=True)
    if kind is int and low is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    if kind is float and low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    try:
        if default is None:
            node.declare_parameter(name, _TYPES[kind], descriptor)
        else:
            node.declare_parameter(name, default, descriptor)
    except Exception as exc:  # noqa: BLE001 - rclpy raises several types for a bad override
        raise ParameterError(f"parameter '{name}': {exc}") from None
    try:
        value = node.get_parameter(name).value
    except Exception:  # noqa: BLE001 - ParameterUninitializedException: declared by type, never given
        value = None
    if value is None:
        raise ParameterError(f"parameter '{name}' is required ({description})")
    return list(value) if kind in ("int[]", "float[]") else value
