# SPDX-License-Identifier: Apache-2.0
"""Topic names and QoS profiles: where each message travels, and with which guarantees."""

from __future__ import annotations

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..protocol.writers import Writer

# Neighbour state: reliable, bounded, never KEEP_ALL. TRANSIENT_LOCAL because a writer can see a
# reader as matched a moment before that reader accepts data: a VOLATILE round-0 sample sent in
# that window is lost for good, while a transient-local writer hands its (bounded) history to
# the reader once it is ready. A neighbour runs at most a round ahead, so 10 samples suffice.
STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
# A reader's history is one per topic, shared by every writer on it: a peer flooding an agent's
# topic with junk evicted that agent's real message from a depth of 10 before a busy reader took
# it (a late round in a CI run). Readers keep 50 (about 0.5 MB), which a flood must outrun for
# 200 ms instead of 40.
STATE_SUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Records (the rounds a recorder needs, ~1 in K/1000): the recorder shares the CPU with the agents
# and may fall behind, and a reliable KEEP_LAST writer forgets unacknowledged samples beyond its
# depth. 100 records of ~10.7 kB is ~1 MB per agent: bounded, and 100 rows of slack.
RECORD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Waypoints: a follower only wants the newest one, and gets it even if it matched after it went
# out (transient-local): a fast run ahead can send its last waypoint within a second of starting.
WAYPOINT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)


# Robot streams (odometry, velocity commands) follow ROS sensor practice: subscribers take best
# effort, which matches both best-effort and reliable publishers (Gazebo's bridge, real drivers);
# our publishers are reliable, which matches any subscriber. Only the newest sample matters.
STREAM_SUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                            reliability=ReliabilityPolicy.BEST_EFFORT,
                            durability=DurabilityPolicy.VOLATILE)
STREAM_PUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.VOLATILE)
# The nodes' /rosout (rcl's: reliable, transient-local, depth 1000): the recorder takes the
# warnings for the live view and the bag, volatile (no old lines) and bounded.
ROSOUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
# Things a late subscriber (RViz opened mid-run) should still get: the last sample is kept.
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)

# rclpy rebuilds its wait set on every wake-up and an agent wakes once per neighbour message, so
# every waitable costs once per message: high-rate entities leave out the default QoS-event
# handlers (an incompatible QoS then shows as "no progress", with the topic named).
QUIET_PUB = PublisherEventCallbacks(use_default_callbacks=False)
QUIET_SUB = SubscriptionEventCallbacks(use_default_callbacks=False)


def robot_namespace(robot: int) -> str:
    """Name robot i's namespace, robot_<i>/, where its driver's topics live."""
    return f"robot_{robot}"


def command_topic(robot: int, name: str = "cmd_vel") -> str:
    """Name robot i's command topic: `name` (robots.command_topic) under robot_<i>/."""
    return f"{robot_namespace(robot)}/{name}"


def odom_topic(robot: int) -> str:
    return f"{robot_namespace(robot)}/odom"


def swarm_pose_topic(robot: int) -> str:
    """Name the topic of robot i's pose in the swarm's frame, from its follower's pose source."""
    return f"{robot_namespace(robot)}/pose"


def arrived_topic(robot: int) -> str:
    return f"{robot_namespace(robot)}/arrived"


def held_topic(robot: int) -> str:
    """Name the latched topic on which a follower names the goal its robot is held back from."""
    return f"{robot_namespace(robot)}/held"


BODIES_PERIOD = 0.2  # seconds between two of the simulator's reports on its robots' bodies


def bodies_topic() -> str:
    """
    Name the embedded simulator's latched report on its robots' bodies.

    Contacts and the closest pair.
    """
    return "simulator/bodies"


def state_topic(agent: int) -> str:
    """Relative, so the whole swarm lives under the nodes' namespace."""
    return f"agent_{agent}/state"


def record_topic(agent: int) -> str:
    return f"agent_{agent}/record"


def recorder_progress_topic() -> str:
    """
    Name the recorder's backpressure topic (protocol/pacing.py).

    Entry i is agent i's newest record taken.
    """
    return "recorder/progress"


def waypoint_topic(agent: int) -> str:
    return f"agent_{agent}/waypoint"


def projected_topic(agent: int) -> str:
    return f"agent_{agent}/x_hat"


def watching_writers(on_change) -> SubscriptionEventCallbacks:
    """Event callbacks that call on_change() whenever a writer matches or leaves, and no other."""
    return SubscriptionEventCallbacks(use_default_callbacks=False, matched=lambda _: on_change())


def watching_readers(on_change) -> PublisherEventCallbacks:
    """Event callbacks that call on_change() whenever a reader matches or leaves, and no other."""
    return PublisherEventCallbacks(use_default_callbacks=False, matched=lambda _: on_change())


def writers_of(node, subscription) -> tuple[int, list[Writer]]:
    """
    Return the writers on a subscription's topic: the DDS matched count and the ROS graph's list.

    The count comes from DDS matching and includes a writer of any DDS stack; the graph lists
    those that announce themselves (every rclpy or rclcpp node), each with its GID, and may lag
    the count by a discovery round.
    """
    count = subscription.get_publisher_count()
    listed = node.get_publishers_info_by_topic(subscription.topic_name)
    return count, [Writer(bytes(info.endpoint_gid).hex(),
                          f"{info.node_namespace.rstrip('/')}/{info.node_name}")
                   for info in listed]
