# SPDX-License-Identifier: Apache-2.0
"""
The `visualiser` node: what RViz shows of the swarm (config/swarm.rviz).

It publishes, in the `map` frame:
- `swarm_markers` (visualization_msgs/MarkerArray): namespace `robots` (one arrow per robot, at
  its measured pose, or at its waypoint when there are no robots), `waypoints` (one sphere per
  agent at x_i), and `edges` (one LINE_LIST with a segment per communication link);
- `target_density` and `learned_density` (nav_msgs/OccupancyGrid): p* and one agent's p(., y_i)
  over the arena, cells = 100 * p / peak (scene.occupancy); with the default arena (C in
  metres), one cell per grid point, otherwise square cells of the nearest grid point.
"""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid
import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from visualization_msgs.msg import MarkerArray

from .ignored_input import IgnoredInput
from .lifecycle import parameter_services, run_nodes
from .messages import pose_of
from .parameters import read_parameters
from .picture import grid_geometry, markers, occupancy_grid
from .topics import LATCHED_QOS, state_topic, STREAM_SUB_QOS, swarm_pose_topic, waypoint_topic
from ..core.scenario import build_problem
from ..protocol.node_parameters import VISUALISER_PARAMETERS
from ..protocol.parameters import arena_of, config_from_parameters, DENSITY_MODEL, ParameterError
from ..protocol.wire import decode_message, MalformedMessage

MARKER_TOPIC, TARGET_TOPIC, LEARNED_TOPIC = "swarm_markers", "target_density", "learned_density"


class VisualiserNode(Node):
    def __init__(self, **kwargs):
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__("visualiser", **kwargs)
        p = read_parameters(self, VISUALISER_PARAMETERS)
        n, flat, rate = p.agents, p.edges, p.rate
        self.learned_agent, self.robots, self.frame_id = p.learned_agent, p.robots, p.frame_id
        self.arena = arena_of(p)
        if len(flat) % 2 or min(flat) < 0 or max(flat) >= n:
            raise ParameterError(f"parameter 'edges': needs pairs of agent ids in [0, {n - 1}], "
                                 f"got {flat}")
        if self.learned_agent >= n:
            raise ParameterError(f"parameter 'learned_agent': {self.learned_agent} is not below "
                                 f"agents = {n}")
        self.n, self.edges = n, list(zip(flat[0::2], flat[1::2]))
        try:
            problem, _ = build_problem(config_from_parameters(
                {spec.name: getattr(p, spec.name) for spec in DENSITY_MODEL}, {"agents": n}))
        except (ValueError, OSError) as exc:
            raise ParameterError(f"parameter 'target': {exc}") from None
        self.family, self.m = problem.family, problem.m
        self.pose = np.full((n, 3), np.nan)
        self.waypoint = np.full((n, 2), np.nan)
        self.learned_msg = None
        self.learned_y = None
        self.ignored = IgnoredInput(self)
        for i in range(n):
            if self.robots:
                self.create_subscription(PoseStamped, swarm_pose_topic(i), self._on_pose(i),
                                         STREAM_SUB_QOS)
            self.create_subscription(PoseStamped, waypoint_topic(i), self._on_waypoint(i),
                                     STREAM_SUB_QOS)
        # best effort: the visualiser must never hold up an agent's round or its final acks
        self.create_subscription(Float64MultiArray, state_topic(self.learned_agent),
                                 self._on_state, STREAM_SUB_QOS)
        self.marker_pub = self.create_publisher(MarkerArray, MARKER_TOPIC, LATCHED_QOS)
        self.target_pub = self.create_publisher(OccupancyGrid, TARGET_TOPIC, LATCHED_QOS)
        self.learned_pub = self.create_publisher(OccupancyGrid, LEARNED_TOPIC, LATCHED_QOS)
        self.target_pub.publish(self.grid(problem.target))
        self.timer = self.create_timer(1.0 / rate, self._tick)

    def _on_pose(self, i: int):
        def on_pose(msg):
            pose = pose_of(msg)
            if self.ignored.finite(swarm_pose_topic(i), pose):
                self.pose[i] = pose
        return on_pose

    def _on_waypoint(self, i: int):
        def on_waypoint(msg):
            xy = (msg.pose.position.x, msg.pose.position.y)
            if not self.ignored.waypoint(waypoint_topic(i), xy, self.arena):
                return
            self.waypoint[i] = xy
            if not self.robots:
                self.pose[i] = (*self.waypoint[i], 0.0)
        return on_waypoint

    def _on_state(self, msg):
        self.learned_msg = msg  # decoded at the publishing rate, not at the round rate

    def grid(self, density: np.ndarray) -> OccupancyGrid:
        return occupancy_grid(self.get_clock().now().to_msg(),
                              *grid_geometry(density, self.family.grid.points, self.arena),
                              frame=self.frame_id)

    def _tick(self):
        if self.learned_msg is not None:
            try:
                state = decode_message(self.learned_msg, self.m, self.learned_agent)
                self.learned_y = state.y
                density = np.exp(self.family.log_density(state.y[None]))[0]
                self.learned_pub.publish(self.grid(density))
            except MalformedMessage as exc:
                self.get_logger().warning("dropped a state message of agent "
                                          f"{self.learned_agent}: {exc.reason}",
                                          throttle_duration_sec=5.0)
            self.learned_msg = None
        self.marker_pub.publish(self.markers())

    def markers(self) -> MarkerArray:
        return markers(self.get_clock().now().to_msg(), self.pose, [0] * self.n, 0.0,
                       self.waypoint, self.edges, frame=self.frame_id)


def main() -> int:
    """Run `ros2 run bildmacro_ros visualiser --ros-args -p agents:=12 -p "edges:=[0, 1]" ...`."""
    return run_nodes(lambda: [VisualiserNode()])
