# SPDX-License-Identifier: Apache-2.0
"""
Record ROS messages to a rosbag2 bag of one MCAP file, as `ros2 bag record -s mcap` would.

The `rosbags` library's writer writes it: CDR messages, each type's ros2msg schema and RIHS01
hash (from its Jazzy type store, equal to the hashes rosidl installs), each channel's
`offered_qos_profiles` (what `ros2 bag play` offers again), the `rosbag2` metadata record and
`metadata.yaml` (version 9).
Two things stay here, because rosbags cannot do them:
- rosbag2's MCAP storage also puts `topic_type_hash` on each channel, which rosbags leaves out:
  its channel record is written by `_McapWriter` below (rosbags' internals, pinned version);
- rosbags writes only into a new folder and names the file after it, while the run folder holds
  the run's other files: the bag is written in `.bag/run/`, and its two files move into the run
  folder when it closes (`run.mcap`, `metadata.yaml`), so the run folder is the bag.
"""

from __future__ import annotations

import importlib
from io import BytesIO
from pathlib import Path
import shutil

from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message, serialize_message

FILE = "run.mcap"


def type_name(msg_type) -> str:
    """Return 'nav_msgs/msg/Odometry' for nav_msgs.msg.Odometry."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def _writer_types():
    """Return the Writer of rosbags with rosbag2's channel metadata, and its storage plugin."""
    from rosbags.interfaces import ConnectionExtRosbag2
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.storage_mcap import Channel, McapWriter, write_channel, write_string

    class _McapWriter(McapWriter):
        def add_connection(self, connection, offered_qos_profiles: str) -> None:
            metadata = BytesIO()
            for key, value in (("offered_qos_profiles", offered_qos_profiles),
                               ("topic_type_hash", connection.digest)):
                write_string(metadata, key)
                write_string(metadata, value)
            ext: ConnectionExtRosbag2 = connection.ext
            self.channels.append(Channel(connection.id, connection.msgtype, connection.topic,
                                         ext.serialization_format, metadata.getvalue()))
            self.channel_stats[connection.id] = 0
            write_channel(self.chunk.bio, self.channels[-1], self.schemas)

    class _Writer(Writer):
        STORAGE_PLUGINS = {StoragePlugin.MCAP: _McapWriter}

    return _Writer, StoragePlugin.MCAP


def qos_of(qos: QoSProfile):
    """Return an rclpy QoS profile as rosbags states an offered profile."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                    QosTime)

    def duration(value) -> QosTime:
        nanoseconds = value.nanoseconds
        if nanoseconds <= 0:  # RMW_DURATION_INFINITE, as rosbag2 writes it
            return QosTime(9223372036, 854775807)
        return QosTime(nanoseconds // 10**9, nanoseconds % 10**9)

    liveliness = "AUTOMATIC" if qos.liveliness.name == "SYSTEM_DEFAULT" else qos.liveliness.name
    return Qos(QosHistory[qos.history.name], int(qos.depth), QosReliability[qos.reliability.name],
               QosDurability[qos.durability.name], duration(qos.deadline), duration(qos.lifespan),
               QosLiveliness[liveliness], duration(qos.liveliness_lease_duration),
               bool(qos.avoid_ros_namespace_conventions))


class BagWriter:
    """The run folder as a rosbag2 bag: write(topic, msg, stamp_ns, qos), then close()."""

    def __init__(self, folder: Path):
        from rosbags.typesys import get_typestore, Stores

        writer, storage = _writer_types()
        self.folder = Path(folder)
        self.staging = self.folder / ".bag" / Path(FILE).stem
        shutil.rmtree(self.staging.parent, ignore_errors=True)  # a crashed run's
        self.staging.parent.mkdir(parents=True)
        self.store = get_typestore(Stores.ROS2_JAZZY)
        self.writer = writer(self.staging, version=9, storage_plugin=storage)
        self.writer.set_custom_data("writer", "bildmacro_ros")
        self.writer.open()
        self.connections: dict[str, object] = {}
        self.count = 0

    def write(self, topic: str, msg, stamp_ns: int, qos: QoSProfile) -> None:
        """Add one message; qos: what the topic's publishers offer (`ros2 bag play` offers it)."""
        connection = self.connections.get(topic)
        if connection is None:
            connection = self.connections[topic] = self.writer.add_connection(
                topic, type_name(type(msg)), typestore=self.store,
                offered_qos_profiles=[qos_of(qos)])
        self.writer.write(connection, stamp_ns, serialize_message(msg))
        self.count += 1

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        for name in (FILE, "metadata.yaml"):
            (self.staging / name).replace(self.folder / name)
        shutil.rmtree(self.staging.parent, ignore_errors=True)


def read_messages(path: Path, topics=None):
    """Yield (topic, log_time_ns, message) for every message of a bag (its folder or its file)."""
    from rosbags.rosbag2 import Reader

    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    types = {}
    with Reader(folder) as reader:
        wanted = [c for c in reader.connections if topics is None or c.topic in topics]
        if not wanted:  # rosbags reads every connection when given none
            return
        for connection, stamp, raw in reader.messages(connections=wanted):
            if connection.msgtype not in types:
                package, _, name = connection.msgtype.split("/")
                types[connection.msgtype] = getattr(importlib.import_module(f"{package}.msg"),
                                                    name)
            yield connection.topic, stamp, deserialize_message(raw, types[connection.msgtype])
