# SPDX-License-Identifier: Apache-2.0
"""
The picture of a run, once per recorded round: served live (live.py) and written to the bag.

The recorder feeds it each metrics row with that round's records, the robots' sampled poses and
the agents' warnings. The live view gets Foxglove's typed messages; the bag gets the same topics
as ROS messages (MarkerArray, OccupancyGrid, PoseArray, Float64MultiArray, rcl_interfaces/Log),
which Foxglove opens and `ros2 bag play` replays into RViz (config/swarm.rviz). The builders of
MarkerArray and OccupancyGrid are the visualiser's too, so RViz shows one picture either way.
"""

from __future__ import annotations

import time

from geometry_msgs.msg import Point, Pose, PoseArray
from nav_msgs.msg import OccupancyGrid
import numpy as np
from rcl_interfaces.msg import Log
from rclpy.time import Time
from std_msgs.msg import ColorRGBA, Float64MultiArray, MultiArrayDimension
from visualization_msgs.msg import Marker, MarkerArray

from .messages import set_heading
from .topics import LATCHED_QOS, STREAM_PUB_QOS
from ..core.arena import Arena
from ..core.graph import dense
from ..live import EDGE_COLOUR, metrics_message, STATE_COLOURS, WAYPOINT_COLOUR
from ..scene import arena_raster, graph_edges, occupancy, robot_states

FRAME = "map"
TOPICS = {"markers": "/swarm_markers", "robots": "/swarm_robots", "target": "/target_density",
          "learned": "/learned_density", "metrics": "/swarm_metrics", "log": "/swarm_log"}
ROS_LEVELS = {"info": Log.INFO, "warning": Log.WARN, "error": Log.ERROR}
SCENE_RATE = 10.0  # Hz: scenes and grids at most this often (every metrics row goes out)


def markers(stamp, robots: np.ndarray, states, radius: float, waypoints: np.ndarray,
            edges, frame: str = FRAME) -> MarkerArray:
    """Build namespaces robots (arrows), bodies (cylinders, given a radius), waypoints, edges."""
    out = MarkerArray()

    def marker(ns: str, ident: int, kind: int, rgba) -> Marker:
        m = Marker()
        m.header.frame_id, m.header.stamp = frame, stamp
        m.ns, m.id, m.type, m.action = ns, ident, kind, Marker.ADD
        m.color = ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
        m.pose.orientation.w = 1.0
        return m

    for i, (pose, state) in enumerate(zip(robots, states)):
        if np.all(np.isfinite(pose)):
            robot = marker("robots", i, Marker.ARROW, STATE_COLOURS[state])
            robot.pose.position.x, robot.pose.position.y = (float(v) for v in pose[:2])
            set_heading(robot.pose.orientation, float(pose[2]))
            robot.scale.x, robot.scale.y, robot.scale.z = 0.08, 0.03, 0.03
            out.markers.append(robot)
            if radius > 0:
                body = marker("bodies", i, Marker.CYLINDER, STATE_COLOURS[state])
                body.pose.position.x, body.pose.position.y = (float(v) for v in pose[:2])
                body.scale.x = body.scale.y = 2 * radius
                body.scale.z = 0.02
                out.markers.append(body)
    for i, xy in enumerate(waypoints):
        if np.all(np.isfinite(xy)):
            goal = marker("waypoints", i, Marker.SPHERE, WAYPOINT_COLOUR)
            goal.pose.position.x, goal.pose.position.y = (float(v) for v in xy)
            goal.scale.x = goal.scale.y = goal.scale.z = 0.03
            out.markers.append(goal)
    links = marker("edges", 0, Marker.LINE_LIST, EDGE_COLOUR)
    links.scale.x = 0.005
    for i, j in edges:
        if np.all(np.isfinite(robots[[i, j], :2])):
            links.points += [Point(x=float(robots[k, 0]), y=float(robots[k, 1])) for k in (i, j)]
    out.markers.append(links)
    return out


def grid_geometry(density: np.ndarray, points: np.ndarray, arena: Arena):
    """
    Return a density over the arena's square cells, the cell's side, and the grid's origin.

    The origin is (x, y, heading) in the lab: half a cell before the arena's corner, along its
    axes, since the cells are centred on the arena's grid.
    """
    image, cell = arena_raster(density, points, arena)
    corner = -(np.array(image.shape) - 1) / 2 * cell - cell / 2  # m, along the arena's axes
    x, y = arena.to_lab(corner / (np.array(arena.size) / 2))
    return image, cell, (float(x), float(y), float(arena.rotation))


def occupancy_grid(stamp, image: np.ndarray, cell: float, origin,
                   frame: str = FRAME) -> OccupancyGrid:
    """Build the OccupancyGrid of a density over the arena, cells 100 * p / peak (occupancy)."""
    cells, _ = occupancy(image)
    msg = OccupancyGrid()
    msg.header.frame_id, msg.header.stamp = frame, stamp
    msg.info.resolution = float(cell)
    msg.info.width, msg.info.height = image.shape
    msg.info.origin.position.x, msg.info.origin.position.y = origin[0], origin[1]
    set_heading(msg.info.origin.orientation, origin[2])
    msg.data = cells.tolist()
    return msg


class SwarmPicture:
    """
    The picture the recorder keeps: robots, waypoints, graph, densities, metrics, warnings.

    bag: the recorder's BagWriter (or None); live: a LiveView (or None); robots: poses come from
    the robots (else each robot is drawn at its waypoint x_i^k, as the visualiser does).
    """

    def __init__(self, scenario, node, bag, live, robots: bool):
        cfg = scenario.config
        self.node, self.bag, self.live, self.robots = node, bag, live, robots
        # in the bag under the recorder's namespace, as its other topics and the visualiser's are
        # (the live view serves one swarm: its channels keep the plain names)
        self.topics = {key: node.resolve_topic_name(topic.lstrip("/"))
                       for key, topic in TOPICS.items()}
        self.arena = Arena.from_config(cfg)
        self.points = scenario.problem.family.grid.points
        self.family = scenario.problem.family
        self.edges = graph_edges(dense(scenario.weights))
        self.radius, self.tolerance = cfg["robots"]["radius"], cfg["robots"]["tolerance"]
        n = scenario.agents
        self.poses, self.held = np.full((n, 3), np.nan), np.full((n, 2), np.nan)
        self.shown_at = -np.inf
        # sent with every scene too: a client that connects late still gets it
        self.target = grid_geometry(scenario.problem.target, self.points, self.arena)
        self.grid("target", self.target, self._now())

    def robot_poses(self, poses: np.ndarray, held: np.ndarray) -> None:
        """Take the robots' newest poses (x, y, heading in the lab) and held-back goals."""
        self.poses, self.held = np.array(poses, float), np.array(held, float)

    def show(self, k: int, values: dict, x: np.ndarray, x_hat: np.ndarray, learned_y,
             last: bool = False) -> None:
        """Show recorded round k: its metrics row always, its scene at most SCENE_RATE a second."""
        stamp_ns, row = self._now(), metrics_message(k, values)
        if self.live is not None:
            self.live.show_metrics(stamp_ns, row)
        if self.bag is not None:
            msg = Float64MultiArray(data=row["data"])
            msg.layout.dim = [MultiArrayDimension(**d) for d in row["layout"]["dim"]]
            self.bag.write(self.topics["metrics"], msg, stamp_ns, LATCHED_QOS)
        now = time.monotonic()
        if not last and now - self.shown_at < 1.0 / SCENE_RATE:
            return
        self.shown_at = now
        goals, waypoints = self.arena.to_lab(x), self.arena.to_lab(x_hat)
        robots = self.poses if self.robots else np.column_stack([goals, np.zeros(len(goals))])
        # without robots each is drawn at its waypoint, in the visualiser's colour
        states = robot_states(robots, goals, self.held, self.tolerance) if self.robots \
            else [0] * len(goals)
        if self.live is not None:
            self.live.show_round(stamp_ns, k, robots, states, self.radius, waypoints, self.edges)
        if self.bag is not None:
            stamp = self._stamp(stamp_ns)
            scene = markers(stamp, robots, states, self.radius, waypoints, self.edges)
            self.bag.write(self.topics["markers"], scene, stamp_ns, LATCHED_QOS)
            poses = PoseArray()
            poses.header.frame_id, poses.header.stamp = FRAME, stamp
            poses.poses = [self._pose(p) for p in robots if np.all(np.isfinite(p[:2]))]
            self.bag.write(self.topics["robots"], poses, stamp_ns, STREAM_PUB_QOS)
        learned = np.exp(self.family.log_density(np.asarray(learned_y)[None]))[0]
        self.grid("learned", grid_geometry(learned, self.points, self.arena), stamp_ns)
        if self.live is not None:
            self.live.show_grid("target", stamp_ns, *self.target)

    def grid(self, name: str, geometry: tuple, stamp_ns: int) -> None:
        """Show a density over the arena (grid_geometry) on its topic, live and in the bag."""
        image, cell, origin = geometry
        if self.live is not None:
            self.live.show_grid(name, stamp_ns, image, cell, origin)
        if self.bag is not None:
            grid = occupancy_grid(self._stamp(stamp_ns), image, cell, origin)
            self.bag.write(self.topics[name], grid, stamp_ns, LATCHED_QOS)

    def log(self, level: str, name: str, text: str) -> None:
        """Show a warning (a neighbour declared dead, a stand-in row) in the log channel."""
        stamp_ns = self._now()
        if self.live is not None:
            self.live.show_log(stamp_ns, level, name, text)
        if self.bag is not None:
            msg = Log(level=ROS_LEVELS.get(level, Log.INFO), name=name, msg=text)
            msg.stamp = self._stamp(stamp_ns)
            self.bag.write(self.topics["log"], msg, stamp_ns, LATCHED_QOS)

    def close(self) -> None:
        if self.live is not None:
            self.live.close()

    def _now(self) -> int:
        return self.node.get_clock().now().nanoseconds

    @staticmethod
    def _stamp(stamp_ns: int):
        return Time(nanoseconds=stamp_ns).to_msg()

    @staticmethod
    def _pose(p) -> Pose:
        pose = Pose()
        pose.position.x, pose.position.y = float(p[0]), float(p[1])
        set_heading(pose.orientation, float(p[2]) if np.isfinite(p[2]) else 0.0)
        return pose
