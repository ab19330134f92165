"""Topic names, QoS profiles and parameter declaration shared by every node."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
from collections import Counter

import rclpy
import yaml
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.parameter import Parameter
from ..core.config import ConfigError, validate
from ..core.faults import PARAMETER_NAMES as FAULT_PARAMETERS
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


# Robot streams (odometry, velocity commands) follow ROS sensor practice: subscribers take best
# effort, which matches both best-effort and reliable publishers (Gazebo's bridge, real drivers);
# our publishers are reliable, which matches any subscriber. Only the newest sample matters.
STREAM_SUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                            durability=DurabilityPolicy.VOLATILE)
STREAM_PUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.VOLATILE)
# Things a late subscriber (RViz opened mid-run) should still get: the last sample is kept.
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def robot_namespace(robot: int) -> str:
    """Robot i's topics live under robot_<i>/, as Gazebo's diff-drive plugin and real drivers do."""
    return f"robot_{robot}"


def cmd_vel_topic(robot: int) -> str:
    return f"{robot_namespace(robot)}/cmd_vel"


def odom_topic(robot: int) -> str:
    return f"{robot_namespace(robot)}/odom"


def arrived_topic(robot: int) -> str:
    return f"{robot_namespace(robot)}/arrived"


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


class IgnoredInput:
    """Counts, per reason, the messages a robot node ignores, and warns (throttled): a robot never
    acts on a NaN or on a waypoint outside C, and an ignored message is never silent."""

    def __init__(self, node):
        self.node = node
        self.counts: Counter[str] = Counter()
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, topic: str, reason: str) -> None:
        self.counts[reason] += 1
        text = f"ignored a message on {topic}: {reason} (ignored so far: {dict(self.counts)})"
        if (topic, reason) in self.seen:
            self.node.get_logger().warning(text, throttle_duration_sec=5.0)
        else:  # each new kind of trouble is shown at once, repeats at most every 5 s
            self.seen.add((topic, reason))
            self.node.get_logger().warning(text)

    def finite(self, topic: str, values) -> bool:
        """True when every value is finite; otherwise counts it as non_finite."""
        if all(math.isfinite(v) for v in values):
            return True
        self(topic, "non_finite")
        return False

    def waypoint(self, topic: str, xy) -> bool:
        """True for a finite point in C = [-1, 1]^2, where every agent's waypoint lies."""
        if not self.finite(topic, xy):
            return False
        if max(abs(xy[0]), abs(xy[1])) > 1.0:
            self(topic, "position_outside")
            return False
        return True


def pose_of(odom) -> tuple[float, float, float]:
    """(x, y, heading) of a nav_msgs/Odometry (or PoseStamped-like .pose.pose) message."""
    pose = odom.pose.pose
    q = pose.orientation
    return pose.position.x, pose.position.y, math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


def set_heading(orientation, heading: float) -> None:
    orientation.x = orientation.y = 0.0
    orientation.z, orientation.w = math.sin(heading / 2), math.cos(heading / 2)


def end_with_parent(parent: int) -> None:
    """On Linux, have the kernel send this process SIGINT (a clean shutdown) when `parent` dies,
    even by SIGKILL: a launcher killed outright leaves no node running on. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the kernel was told
        os.kill(os.getpid(), signal.SIGINT)


def run_nodes(make_nodes, until=None) -> int:
    """Spin the nodes make_nodes() returns until every future until(nodes) gives is done (no
    until: until shutdown). Ctrl-C and external shutdown end cleanly (exit 130 if that cuts
    the work short); bad parameters exit 2."""
    try:
        rclpy.init()
    except Exception as exc:  # noqa: BLE001 - RCLError: the --ros-args could not be parsed
        print(f"error: could not start ROS with these arguments: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    nodes = []
    try:
        nodes = make_nodes()
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        futures = until(nodes) if until is not None else None
        if futures is None:
            executor.spin()
        for future in futures or ():
            executor.spin_until_future_complete(future)
        return 0
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 130 if until is not None else 0  # Ctrl-C is how a node without an end is stopped
    except RuntimeError:
        # Ctrl-C shuts the context down first; a take already under way then fails in rclpy's
        # bindings instead of raising KeyboardInterrupt
        if rclpy.ok():
            raise
        return 130 if until is not None else 0
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()


# config keys as node parameter names, so config errors name the parameter
_PARAMETER_OF = {"algorithm.gamma_x": "gamma_x", "algorithm.gamma_y": "gamma_y", "algorithm.omega": "omega",
                 "algorithm.delta": "delta", "basis.order": "basis_order", "grid.step": "grid_step",
                 "grid.quadrature": "quadrature", "agents": "agents", "iterations": "iterations",
                 **{f"faults.{key}": name for key, name in FAULT_PARAMETERS.items()}}


def declare_density_model(node) -> dict:
    """The parameters of the density model (basis, grid, target), for every node that needs one."""
    return {
        "basis_order": declare(node, "basis_order", int, "Legendre order kappa; m = (kappa+1)^2", 6, low=1, high=20),
        "grid_step": declare(node, "grid_step", float, "grid spacing over [-1,1]^2", 0.05, low=0.01, high=1.0),
        "quadrature": declare(node, "quadrature", str, "trapezoid or riemann", "trapezoid"),
        "target": declare(node, "target", str, "target density, a YAML mapping as in the config's target key",
                          "{type: gaussian_mixture, components: [{weight: 0.5, mean: [-0.5, -0.5], std: 0.2}, "
                          "{weight: 0.5, mean: [0.5, 0.4], std: 0.25}]}"),
    }


def density_config(p: dict, extra: dict | None = None) -> dict:
    """A validated config from declare_density_model's values (and other keys); ParameterError
    names the parameter at fault."""
    try:
        return validate({"basis": {"order": p["basis_order"]},
                         "grid": {"step": p["grid_step"], "quadrature": p["quadrature"]},
                         "target": yaml.safe_load(p["target"]), **(extra or {})})
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameter 'target': not valid YAML: {exc}") from None
    except ConfigError as exc:
        name = _PARAMETER_OF.get(exc.key, "target")
        raise ParameterError(f"parameter '{name}': {str(exc).split(': ', 1)[-1]}") from None
