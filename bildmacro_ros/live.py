# SPDX-License-Identifier: Apache-2.0
"""
The swarm served live to Foxglove or Lichtblick: a WebSocket server in-process, typed channels.

`bildmacro swarm --live` (and `bildmacro record --live`, `live:=true`) starts it with the
recorder. The Foxglove SDK (foxglove-sdk, no ROS) serves `foxglove.sdk.v1` on 127.0.0.1:8765:
- `/swarm_markers` (foxglove.SceneUpdate): each robot a cylinder of its body radius, coloured by
  its state (moving, arrived, held back), with an arrow for its heading; the waypoints x̂_i as
  spheres; the communication graph as one line list;
- `/swarm_robots` (foxglove.PosesInFrame): the robots' poses;
- `/target_density`, `/learned_density` (foxglove.Grid, float32 `density` cells over the arena);
- `/swarm_metrics` (JSON, in Float64MultiArray's shape): the round and the metrics of Fig. 1;
- `/swarm_log` (foxglove.Log): warnings from the agents and the recorder.
Every position is in the lab's metres in frame `map`, as in RViz. The run folder's bag holds the
same topics as ROS messages (ros/picture.py), so `config/foxglove_layout.json` shows both. A
client that is missing, slow or gone costs the swarm nothing: the SDK drops what it cannot send.
"""

from __future__ import annotations

import math

import numpy as np

from .core.metrics import COLUMNS

METRICS = COLUMNS[:-1]  # iteration, lower_grad_norm, step_norm, consensus_error, kl
# robot states and their colours (RGBA), for SceneUpdate and MarkerArray alike
STATES = ("moving", "arrived", "held back")
STATE_COLOURS = ((1.0, 0.55, 0.0, 1.0), (0.2, 0.75, 0.3, 1.0), (0.85, 0.15, 0.15, 1.0))
WAYPOINT_COLOUR, EDGE_COLOUR = (1.0, 0.1, 0.1, 0.8), (1.0, 1.0, 1.0, 0.4)
POINT_RADIUS = 0.03  # m: how a robot without a body is drawn
LOG_LEVELS = {"info": "Info", "warning": "Warning", "error": "Error"}
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
METRICS_SCHEMA = {
    "type": "object", "title": "bildmacro_ros metrics row (std_msgs/Float64MultiArray's shape)",
    "properties": {"layout": {"type": "object"},
                   "data": {"type": "array", "items": {"type": "number"},
                            "description": ", ".join(METRICS)}}}


def metrics_message(k: int, values: dict) -> dict:
    """Return a metrics row in Float64MultiArray's JSON shape: data = round, then the metrics."""
    data = [float(k)] + [float(values[c]) for c in METRICS[1:]]
    return {"layout": {"dim": [{"label": ",".join(METRICS), "size": len(data),
                                "stride": len(data)}], "data_offset": 0}, "data": data}


def heading_quaternion(heading: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by `heading` about z."""
    return 0.0, 0.0, math.sin(heading / 2), math.cos(heading / 2)


class LiveView:
    """
    The WebSocket server and its channels; `LiveView.start` returns None, with one line, if not.

    host other than loopback: the server has no authentication, so anyone who reaches the port
    sees the swarm (the launcher warns).
    """

    def __init__(self, foxglove, server, context, port: int):
        from foxglove import channels

        # the context owns the channels: they close when it is collected
        self.fg, self.server, self.port, self.context = foxglove, server, port, context
        self.messages = foxglove.messages
        self.scene = channels.SceneUpdateChannel("/swarm_markers", context=context)
        self.poses = channels.PosesInFrameChannel("/swarm_robots", context=context)
        self.grids = {name: channels.GridChannel(f"/{name}_density", context=context)
                      for name in ("target", "learned")}
        self.metrics = foxglove.Channel("/swarm_metrics", schema=METRICS_SCHEMA, context=context)
        self.logs = channels.LogChannel("/swarm_log", context=context)

    @classmethod
    def start(cls, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, say=print):
        """Start the server; on failure say why in one line and return None (the run goes on)."""
        try:
            import foxglove
        except ImportError:
            say("warning: no live view: the foxglove-sdk package is missing (pip install "
                "foxglove-sdk)")
            return None
        context = foxglove.Context()
        try:
            server = foxglove.start_server(name="bildmacro_ros", host=host, port=port,
                                           context=context)
        except (RuntimeError, OSError) as exc:
            say(f"warning: no live view on {host}:{port}: {str(exc).splitlines()[0]}; the swarm "
                "runs on without it")
            return None
        if host not in ("127.0.0.1", "localhost", "::1"):
            say(f"warning: the live view listens on {host}:{server.port} without "
                "authentication: anyone who reaches that port sees the swarm")
        return cls(foxglove, server, context, server.port)

    def show_round(self, stamp_ns: int, k: int, robots: np.ndarray, states, radius: float,
                   waypoints: np.ndarray, edges) -> None:
        """Serve one recorded round's scene and the robots' poses (lab metres, frame map)."""
        self.scene.log(self._scene(stamp_ns, k, robots, states, radius, waypoints, edges),
                       log_time=stamp_ns)
        self.poses.log(self.messages.PosesInFrame(
            timestamp=self._time(stamp_ns), frame_id="map",
            poses=[self._pose(*pose) for pose in robots if np.all(np.isfinite(pose))]),
            log_time=stamp_ns)

    def show_metrics(self, stamp_ns: int, row: dict) -> None:
        """Serve a metrics row (metrics_message)."""
        self.metrics.log(row, log_time=stamp_ns)

    def show_grid(self, name: str, stamp_ns: int, image: np.ndarray, cell: float,
                  origin: tuple[float, float, float]) -> None:
        """Serve a density over the arena (index [a, b]: a along its x axis) as a Grid."""
        m = self.messages
        columns, rows = image.shape
        data = np.ascontiguousarray(image.T, dtype="<f4").tobytes()  # row-major, rows along y
        field = m.PackedElementField(name="density", offset=0,
                                     type=m.PackedElementFieldNumericType.Float32)
        self.grids[name].log(m.Grid(
            timestamp=self._time(stamp_ns), frame_id="map", pose=self._pose(*origin),
            column_count=columns, cell_size=m.Vector2(x=cell, y=cell), row_stride=4 * columns,
            cell_stride=4, fields=[field], data=data), log_time=stamp_ns)

    def show_log(self, stamp_ns: int, level: str, name: str, text: str) -> None:
        m = self.messages
        self.logs.log(m.Log(timestamp=self._time(stamp_ns),
                            level=getattr(m.LogLevel, LOG_LEVELS.get(level, "Info")),
                            message=text, name=name), log_time=stamp_ns)

    def close(self) -> None:
        self.server.stop()

    # -- messages ------------------------------------------------------------------------------
    def _time(self, stamp_ns: int):
        return self.messages.Timestamp(stamp_ns // 10**9, stamp_ns % 10**9)

    def _pose(self, x: float, y: float, heading: float = 0.0):
        m = self.messages
        qx, qy, qz, qw = heading_quaternion(heading)
        return m.Pose(position=m.Vector3(x=float(x), y=float(y), z=0.0),
                      orientation=m.Quaternion(x=qx, y=qy, z=qz, w=qw))

    def _colour(self, rgba):
        return self.messages.Color(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])

    def _scene(self, stamp_ns, k, robots, states, radius, waypoints, edges):
        m, time = self.messages, self._time(stamp_ns)
        size = 2 * (radius or POINT_RADIUS)
        entities = []
        for i, ((x, y, heading), state) in enumerate(zip(robots, states)):
            if not np.all(np.isfinite((x, y, heading))):
                continue  # a robot not heard yet
            body = m.CylinderPrimitive(pose=self._pose(x, y),
                                       size=m.Vector3(x=size, y=size, z=0.02), bottom_scale=1.0,
                                       top_scale=1.0, color=self._colour(STATE_COLOURS[state]))
            arrow = m.ArrowPrimitive(pose=self._pose(x, y, heading), shaft_length=size,
                                     shaft_diameter=size / 6, head_length=size / 3,
                                     head_diameter=size / 3, color=self._colour((1, 1, 1, 1)))
            entities.append(m.SceneEntity(
                timestamp=time, frame_id="map", id=f"robot_{i}", cylinders=[body], arrows=[arrow],
                metadata=[m.KeyValuePair(key="round", value=str(k)),
                          m.KeyValuePair(key="state", value=STATES[state])]))
        entities.append(m.SceneEntity(
            timestamp=time, frame_id="map", id="waypoints",
            metadata=[m.KeyValuePair(key="round", value=str(k))],
            spheres=[m.SpherePrimitive(pose=self._pose(x, y),
                                       size=m.Vector3(x=0.03, y=0.03, z=0.03),
                                       color=self._colour(WAYPOINT_COLOUR))
                     for x, y in waypoints]))
        seen = np.all(np.isfinite(robots[:, :2]), axis=1)
        points = [m.Point3(x=float(robots[v][0]), y=float(robots[v][1]), z=0.0)
                  for pair in edges if seen[list(pair)].all() for v in pair]
        entities.append(m.SceneEntity(
            timestamp=time, frame_id="map", id="edges",
            lines=[m.LinePrimitive(type=m.LinePrimitiveLineType.LineList, pose=self._pose(0, 0),
                                   thickness=0.005, points=points,
                                   color=self._colour(EDGE_COLOUR))]))
        return m.SceneUpdate(entities=entities)
