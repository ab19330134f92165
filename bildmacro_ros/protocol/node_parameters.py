# SPDX-License-Identifier: Apache-2.0
"""
The parameters of every node but the agent: one table per node, like the agent's.

The agent's is in protocol/parameters.py. A parameter with a config key takes its default and
range from `core/config.py`; the launch plan writes a node's parameters by these names, and a
test checks that it writes no other and leaves out none that is required.
"""

from __future__ import annotations

from .parameters import ARENA, DENSITY_MODEL, INT64, OPTIONAL, ParameterSpec as _P
from ..core import config as configs

ROBOT_IDS = _P("robot_ids", "int[]", "ids i of the robots this node serves (topics robot_<i>/...)")
INITIAL_POSES = _P("initial_poses", "float[]",
                   "x, y (m, in the arena's frame) and heading of each robot, in robot_ids "
                   "order")
FRAME_ID = _P("frame_id", str, "frame of the published poses", default="map")
LIMITS = (
    _P("max_speed", float, "forward speed limit (m/s)", "robots.max_speed"),
    _P("max_turn_rate", float, "turn-rate limit (rad/s)", "robots.max_turn_rate"),
)
POSE = (
    _P("pose_source", str, "where each robot's pose comes from: odometry (in the swarm's frame), "
       "wheel_odometry (a driver's, from zero where the robot was placed) or mocap",
       "robots.pose_source"),
    _P("pose_topic", str, "the source's topic; {i}: the robot's id", "robots.pose_topic"),
    _P("pose_frame", str, "the frame its poses must carry; {i}: the robot's id",
       "robots.pose_frame"),
)
COMMAND = (
    _P("command_type", str, "twist (geometry_msgs/Twist) or twist_stamped "
       "(geometry_msgs/TwistStamped, as Jazzy's drivers take it)", "robots.command_type"),
    _P("command_topic", str, "the command topic under robot_<i>/", "robots.command_topic"),
)

SIMULATOR_PARAMETERS = (
    ROBOT_IDS, INITIAL_POSES, *LIMITS, *COMMAND, *POSE,
    _P("rate", float, "integration and odometry rate (Hz)", "robots.rate"),
    _P("command_timeout", float, "seconds without a command (or, stamped, since its stamp) before "
       "a robot stops; 0: it keeps the last command for ever", "robots.command_timeout"),
    _P("radius", float, "each robot's body radius (m), for contacts; 0: points", "robots.radius"),
)
FOLLOWER_PARAMETERS = (
    ROBOT_IDS, *LIMITS, *COMMAND, *POSE, *ARENA,
    _P("initial_poses", "float[]", "x, y, heading where each robot was placed, in robot_ids order "
       "(needed by wheel_odometry)", default=OPTIONAL),
    _P("distance_gain", float, "v = distance_gain * distance (1/s)", default=1.5, low=1e-6,
       high=100.0),
    _P("heading_gain", float, "w = heading_gain * bearing (1/s)", default=4.0, low=1e-6,
       high=100.0),
    _P("tolerance", float, "arrived within this distance (m)", default=0.01, low=1e-6, high=10.0),
    _P("rate", float, "control rate (Hz)", "robots.rate"),
    _P("odom_timeout", float, "command zero to a robot whose odometry is this old (s)",
       default=0.5, low=0.01, high=60.0),
    _P("radius", float, "each robot's body radius (m); 0: points, no safety filter",
       "robots.radius"),
    _P("safety", bool, "with a radius, filter every command so that bodies never touch (false: "
       "measure what it prevents)", "robots.safety"),
    _P("sensing_range", float, "robots farther than this are not considered (m)",
       "robots.sensing_range"),
    _P("swarm_ids", "int[]", "every robot of the swarm, whose poses the filter uses (default: "
       "robot_ids)", default=OPTIONAL),
)
TURTLESIM_BRIDGE_PARAMETERS = (
    ROBOT_IDS, INITIAL_POSES, *COMMAND, *ARENA,
    _P("margin", float, "window fraction left free on each side", default=0.1, low=0.0, high=0.45),
    FRAME_ID,
)
VISUALISER_PARAMETERS = (
    _P("agents", int, "swarm size N", "agents"),
    _P("edges", "int[]", "communication links as a flat list i0, j0, i1, j1, ..."),
    _P("learned_agent", int, "whose learned density p(., y_i) to show", default=0, low=0,
       high=configs.FIELDS["agents"].high - 1),
    _P("robots", bool, "show robots at their odometry (false: at their waypoints)", default=True),
    _P("frame_id", str, "frame of every published message", default="map"),
    _P("rate", float, "publishing rate (Hz)", default=5.0, low=0.1, high=100.0),
    *DENSITY_MODEL, *ARENA,
)
RECORDER_PARAMETERS = (
    _P("config", str, "the swarm's config file (the same one the launch used)"),
    _P("out", str, "folder for metrics.csv, final_state.npz and the figures"),
    _P("log_every", int, "metrics every K rounds (0: K/1000)", default=0, low=0, high=INT64),
    _P("init", str, "the --init .npz the launch used, if any", default=""),
    _P("weights", str, "the weights file the launch used, if any", default=""),
    _P("robots", bool, "also record robot_<i>/pose (robots.npz, robots.png)", default=False),
    _P("settle_timeout", float, "seconds the robots may take to reach their last waypoints after "
       "the last round", default=30.0, low=0.0, high=3600.0),
    _P("live", bool, "serve the swarm live to Foxglove or Lichtblick (docs/live.md)",
       default=False),
    _P("live_address", str, "the live view's address (another than loopback has no "
       "authentication)", default="127.0.0.1"),
    _P("live_port", int, "the live view's port (0: any free one)", default=8765, low=0,
       high=65535),
    *(_P(name, int, f"override of the config's {name} (0: keep)", default=0, low=0, high=INT64)
      for name in ("agents", "seed", "iterations")),
)
SETTLE_PARAMETERS = (
    _P("robot_id", int, "the robot i whose follower's robot_<i>/arrived to wait for", low=0,
       high=configs.FIELDS["agents"].high - 1),
    _P("settle_timeout", float, "seconds the robot may take to reach its last waypoint",
       default=30.0, low=0.0, high=3600.0),
)
AGENT_GROUP_PARAMETERS = (
    _P("agent_ids", "int[]", "agent ids to run in this process"),
)

# every node of the package by executable, with its table (the agent's is AGENT_PARAMETERS)
NODE_PARAMETERS = {
    "swarm_simulator": SIMULATOR_PARAMETERS,
    "follower": FOLLOWER_PARAMETERS,
    "turtlesim_bridge": TURTLESIM_BRIDGE_PARAMETERS,
    "visualiser": VISUALISER_PARAMETERS,
    "recorder": RECORDER_PARAMETERS,
    "agent_group": AGENT_GROUP_PARAMETERS,
    "settle": SETTLE_PARAMETERS,
}
