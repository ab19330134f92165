# SPDX-License-Identifier: Apache-2.0
"""
Record ROS messages to a rosbag2 bag of one MCAP file (Foxglove's `mcap` library), as `ros2 bag record -s mcap`.

What rosbag2's MCAP storage writes, and what readers of bags look for: each channel carries
CDR-serialised messages, a `ros2msg` schema (the message's .msg text followed by that of every
type it uses), and rosbag2's channel metadata: the publisher's `offered_qos_profiles`, which
`ros2 bag play` offers again, and the type's `topic_type_hash` (RIHS01). The file ends with a
`rosbag2` metadata record, and `metadata.yaml` (version 9) beside it makes the folder a bag:
`ros2 bag play RUN`, `ros2 bag info RUN`, or the `rosbags` library open it. read_messages()
below reads a file back.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
import re
import sys

from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
import yaml

BAG_VERSION = 9  # rosbag2's metadata format in Jazzy
INFINITE = {"sec": 9223372036, "nsec": 854775807}  # RMW_DURATION_INFINITE, as rosbag2 writes it

_BUILTINS = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
             "int64", "uint64", "string", "wstring"}


def type_name(msg_type) -> str:
    """'nav_msgs/msg/Odometry' for nav_msgs.msg.Odometry."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def _share_files(package: str, name: str, suffix: str) -> Path:
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(package)))
    except Exception:  # noqa: BLE001 - no ament index (pip install): the venv's share/ folder
        pass
    candidates.append(Path(sys.prefix) / "share" / package)
    for share in candidates:
        if (share / "msg" / f"{name}{suffix}").is_file():
            return share / "msg" / f"{name}{suffix}"
    raise FileNotFoundError(f"no {package}/msg/{name}{suffix} in {', '.join(map(str, candidates))}")


def type_hash(msg_type) -> str:
    """Return the type's RIHS01 hash, from the type description rosidl installs beside its .msg."""
    package, _, name = type_name(msg_type).split("/")
    description = json.loads(_share_files(package, name, ".json").read_text())
    return next(h["hash_string"] for h in description["type_hashes"] if h["type_name"] == type_name(msg_type))


def qos_dict(qos: QoSProfile) -> dict:
    """Return a QoS profile as rosbag2 (version 9) writes an offered profile."""
    def duration(value):
        nanoseconds = value.nanoseconds
        return INFINITE if nanoseconds <= 0 else {"sec": nanoseconds // 10**9, "nsec": nanoseconds % 10**9}

    return {"history": qos.history.name.lower(), "depth": int(qos.depth),
            "reliability": qos.reliability.name.lower(), "durability": qos.durability.name.lower(),
            "deadline": duration(qos.deadline), "lifespan": duration(qos.lifespan),
            "liveliness": "automatic" if qos.liveliness.name == "SYSTEM_DEFAULT" else qos.liveliness.name.lower(),
            "liveliness_lease_duration": duration(qos.liveliness_lease_duration),
            "avoid_ros_namespace_conventions": bool(qos.avoid_ros_namespace_conventions)}


def message_definition(msg_type) -> str:
    """Return the full ros2msg text of a message type: its own .msg, then each nested type's once."""
    package, _, name = type_name(msg_type).split("/")
    order, texts, todo = [], {}, [(package, name)]
    while todo:
        pkg, nm = todo.pop(0)
        if (pkg, nm) in texts:
            continue
        text = _share_files(pkg, nm, ".msg").read_text()
        texts[(pkg, nm)] = text
        order.append((pkg, nm))
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            field_type = re.split(r"[\[<]", line.split()[0], maxsplit=1)[0]
            if field_type in _BUILTINS:  # constants are always of builtin types
                continue
            dep_pkg, _, dep_name = field_type.rpartition("/")
            todo.append((dep_pkg.replace("/msg", "") or pkg, dep_name))
    parts = [texts[order[0]].rstrip("\n")]
    for pkg, nm in order[1:]:
        parts.append("=" * 80 + f"\nMSG: {pkg}/{nm}\n" + texts[(pkg, nm)].rstrip("\n"))
    return "\n".join(parts) + "\n"


class BagWriter:
    """A rosbag2 bag of one MCAP file: write(topic, msg, stamp_ns, qos), then close() (which writes metadata.yaml)."""

    def __init__(self, path: Path):
        from mcap.writer import Writer  # optional in ROS installs: pip install mcap

        self.path = Path(path)
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file)
        self._writer.start(profile="ros2", library="bildmacro_ros")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.topics: dict[str, dict] = {}  # topic -> its rosbag2 topic_metadata and message_count
        self.count = 0
        self.first = self.last = None

    def write(self, topic: str, msg, stamp_ns: int, qos: QoSProfile) -> None:
        """Add one message; qos is what the topic's publishers offer (what `ros2 bag play` offers again)."""
        channel = self._channels.get(topic)
        if channel is None:
            name = type_name(type(msg))
            if name not in self._schemas:
                self._schemas[name] = self._writer.register_schema(
                    name=name, encoding="ros2msg", data=message_definition(type(msg)).encode())
            offered = [qos_dict(qos)]
            digest = type_hash(type(msg))
            channel = self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="cdr", schema_id=self._schemas[name],
                metadata={"offered_qos_profiles": yaml.safe_dump(offered, sort_keys=False).strip(),
                          "topic_type_hash": digest})
            self.topics[topic] = {"topic_metadata": {"name": topic, "type": name, "serialization_format": "cdr",
                                                     "offered_qos_profiles": offered,
                                                     "type_description_hash": digest},
                                  "message_count": 0}
        self._writer.add_message(channel_id=channel, log_time=stamp_ns, publish_time=stamp_ns,
                                 data=serialize_message(msg))
        self.topics[topic]["message_count"] += 1
        self.count += 1
        self.first = stamp_ns if self.first is None else min(self.first, stamp_ns)
        self.last = stamp_ns if self.last is None else max(self.last, stamp_ns)

    def metadata(self) -> dict:
        """Return the bag's rosbag2_bagfile_information, as metadata.yaml holds it."""
        start, duration = self.first or 0, (self.last or 0) - (self.first or 0)
        return {"version": BAG_VERSION, "storage_identifier": "mcap", "duration": {"nanoseconds": duration},
                "starting_time": {"nanoseconds_since_epoch": start}, "message_count": self.count,
                "topics_with_message_count": list(self.topics.values()), "compression_format": "",
                "compression_mode": "", "relative_file_paths": [self.path.name],
                "files": [{"path": self.path.name, "starting_time": {"nanoseconds_since_epoch": start},
                           "duration": {"nanoseconds": duration}, "message_count": self.count}],
                "custom_data": {"writer": "bildmacro_ros"}, "ros_distro": "jazzy"}

    def close(self) -> None:
        if self._file.closed:
            return
        info = self.metadata()
        self._writer.add_metadata("rosbag2", {"serialized_metadata": yaml.safe_dump(info, sort_keys=False)})
        self._writer.finish()
        self._file.close()
        (self.path.parent / "metadata.yaml").write_text(
            yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False))


def read_messages(path: Path, topics=None):
    """(topic, log_time_ns, message) for every message in an MCAP file written by BagWriter."""
    from mcap.reader import make_reader

    types = {}
    with open(path, "rb") as stream:
        for schema, channel, message in make_reader(stream).iter_messages(topics=topics):
            if schema.name not in types:
                package, _, name = schema.name.split("/")
                types[schema.name] = getattr(importlib.import_module(f"{package}.msg"), name)
            yield channel.topic, message.log_time, deserialize_message(message.data, types[schema.name])
