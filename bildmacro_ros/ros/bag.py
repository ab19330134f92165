# SPDX-License-Identifier: Apache-2.0
"""
Record ROS messages to an MCAP file (Foxglove's `mcap` library), as `ros2 bag record -s mcap` would.

Each channel carries CDR-serialised messages and a `ros2msg` schema: the message's .msg text
followed by that of every type it uses, the form rosbag2 and Foxglove read. So a run can be
replayed with `ros2 bag play run.mcap` into RViz, opened in Foxglove, or read back with
read_messages() below.
"""

from __future__ import annotations

import importlib
from pathlib import Path
import re
import sys

from rclpy.serialization import deserialize_message, serialize_message

_BUILTINS = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
             "int64", "uint64", "string", "wstring"}


def type_name(msg_type) -> str:
    """'nav_msgs/msg/Odometry' for nav_msgs.msg.Odometry."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def _msg_file(package: str, name: str) -> Path:
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(package)))
    except Exception:  # noqa: BLE001 - no ament index (pip install): the venv's share/ folder
        pass
    candidates.append(Path(sys.prefix) / "share" / package)
    for share in candidates:
        if (share / "msg" / f"{name}.msg").is_file():
            return share / "msg" / f"{name}.msg"
    raise FileNotFoundError(f"no definition of {package}/msg/{name} in {', '.join(map(str, candidates))}")


def message_definition(msg_type) -> str:
    """Return the full ros2msg text of a message type: its own .msg, then each nested type's once."""
    package, _, name = type_name(msg_type).split("/")
    order, texts, todo = [], {}, [(package, name)]
    while todo:
        pkg, nm = todo.pop(0)
        if (pkg, nm) in texts:
            continue
        text = _msg_file(pkg, nm).read_text()
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
    """An MCAP file of ROS 2 messages; write(topic, msg, stamp_ns), then close()."""

    def __init__(self, path: Path):
        from mcap.writer import Writer  # optional in ROS installs: pip install mcap

        self.path = Path(path)
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file)
        self._writer.start(profile="ros2", library="bildmacro_ros")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.count = 0

    def write(self, topic: str, msg, stamp_ns: int) -> None:
        channel = self._channels.get(topic)
        if channel is None:
            name = type_name(type(msg))
            if name not in self._schemas:
                self._schemas[name] = self._writer.register_schema(
                    name=name, encoding="ros2msg", data=message_definition(type(msg)).encode())
            channel = self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="cdr", schema_id=self._schemas[name])
        self._writer.add_message(channel_id=channel, log_time=stamp_ns, publish_time=stamp_ns,
                                 data=serialize_message(msg))
        self.count += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._writer.finish()
        self._file.close()


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
