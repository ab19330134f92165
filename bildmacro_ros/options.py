# SPDX-License-Identifier: Apache-2.0
"""
What a user sets when starting a swarm, in one table: options and launch arguments alike.

An option with a config key overrides that key, and the config checks its value; the others
belong to the launchers. Each option lists the commands that offer it (`launch` is
swarm.launch.py), and test/unit/test_options.py checks every parser and the launch file against
this table, so that an option cannot exist in one front end only.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.config import default, FIELDS, PRESETS, validate

ALL = frozenset(("simulate", "swarm", "plan", "launch"))
SWARMS = frozenset(("swarm", "plan", "launch"))
LAUNCH = frozenset(("launch",))
FAULTS = ("deadline", "late_policy", "dead_after", "tracking_reset", "drop", "delay", "fault_seed",
          "pin_writers")


@dataclass(frozen=True)
class Option:
    """One setting: its name (launch argument; `--name-with-dashes` on the command line)."""

    name: str
    text: str  # what it does, for --help and the launch argument's description
    key: str | None = None  # the config key it overrides; None: the launchers'
    # how a value is read: count (a whole number >= 1), whole (>= 0), seconds, metres,
    # probability, radians, pair (two numbers: 4,3), choice (the config key's), flag
    # (true/false), text, path
    kind: str = "text"
    commands: frozenset = SWARMS
    default: Any = None  # None: the config's value, or none
    # a flag's command-line form: --wait-for-robots sets true, --no-safety false
    flag: str | None = None
    launch_default: Any = None  # the launch file's default, where it differs from `default`

    @property
    def choices(self) -> tuple[str, ...] | None:
        return FIELDS[self.key].choices if self.kind == "choice" else None

    @property
    def switch(self) -> bool:
        """Return the value a command-line flag sets."""
        return not (self.flag or "").startswith("--no-")


_O = Option
OPTIONS = (
    # a launch with no arguments shows what `make demo` shows, in minutes; the paper's experiment
    # (default) is one argument away
    _O("config", f"YAML config file, or a preset name: {', '.join(PRESETS)}", commands=ALL,
       default="default", launch_default="demo"),
    _O("agents", "number of agents N", "agents", "count", ALL),
    _O("iterations", "iterations K", "iterations", "whole", ALL),
    _O("seed", "random seed of the graph and the initial state", "seed", "whole", ALL),
    _O("edge_probability", "Erdős–Rényi edge probability in (0, 1]; samples an ER graph",
       "graph.edge_probability", "probability", ALL),
    _O("init", ".npz with x (N,2) and y (N,m); r, q start as in Theorem 1", kind="path",
       commands=ALL),
    _O("weights", "N x N doubly stochastic weights (.npy or .csv); no graph is sampled",
       kind="path", commands=ALL),
    _O("radius", "each robot's body radius in metres: robots start at least two radii apart, and "
       "a safety filter keeps their bodies apart (0: points)", "robots.radius", "metres", ALL),
    _O("namespace", "ROS namespace for every node and topic", default=""),
    _O("agents_per_process", "agent nodes per process on one executor (e.g. 10 for 50+ agents on "
       "one machine)", kind="count", commands=frozenset(("swarm", "launch")), default=1),
    _O("simulator", "robots that follow the waypoints: embedded (the built-in diff-drive "
       "simulator), turtlesim, gazebo or external (a world or drivers of your own on "
       "robot_<i>/cmd_vel and robot_<i>/odom; see --family), or none", "robots.simulator",
       "choice"),
    _O("wait_for_robots", "physical-robot mode: each round waits until the robot is within "
       "robots.tolerance of x_i (else the algorithm runs ahead and the robots follow)",
       "robots.wait", "flag", flag="--wait-for-robots"),
    _O("safety", "with a radius, a safety filter keeps bodies from touching; off (--no-safety, "
       "safety:=false), the simulator counts the contacts it would have prevented",
       "robots.safety", "flag", flag="--no-safety"),
    _O("family", "the robots: embedded, turtlebot3, turtlebot4, ros2_control, gazebo, turtlesim "
       "or custom; sets their command, limits, body and pose source (docs/robots.md), which any "
       "other option still overrides", "robots.family", "choice"),
    _O("command_type", "what the robots' drivers take: twist (geometry_msgs/Twist) or "
       "twist_stamped (TwistStamped: TurtleBot3, TurtleBot 4 and ros2_control on Jazzy)",
       "robots.command_type", "choice"),
    _O("command_topic", "the command topic under robot_<i>/ (cmd_vel_unstamped for a Create 3's "
       "Twist, diff_drive_controller/cmd_vel for ros2_control)", "robots.command_topic"),
    _O("command_timeout", "the embedded simulator's: seconds after the last command (stamped: "
       "after its stamp) before a robot stops; 0: never, as Gazebo's DiffDrive and TurtleBot3",
       "robots.command_timeout", "seconds"),
    _O("pose_source", "where each robot's pose comes from: odometry (already in the swarm's "
       "frame), wheel_odometry (a driver's own, from zero where the robot was placed at x_i^0) "
       "or mocap (a PoseStamped per robot)", "robots.pose_source", "choice"),
    _O("placement_error", "the embedded simulator starts each robot this many metres from where "
       "the plan places it, at any heading, as hands place robots (with wheel_odometry, its pose "
       "is then off by as much)", "robots.placement_error", "metres"),
    _O("arena_centre", "where C's centre lies in the lab's frame: X,Y in metres",
       "arena.centre", "pair", ALL),
    _O("arena_size", "the arena's width,height in metres (C's x and y sides; docs/robots.md)",
       "arena.size", "pair", ALL),
    _O("arena_rotation", "the angle of C's x axis from the lab's, in radians", "arena.rotation",
       "radians", ALL),
    _O("deadline", "seconds a round waits for a neighbour (0: for ever)", "faults.deadline",
       "seconds"),
    _O("late_policy", "what stands in for a late neighbour", "faults.late_policy", "choice"),
    _O("dead_after", "missed deadlines in a row before a neighbour is declared dead",
       "faults.dead_after", "count"),
    _O("tracking_reset", "re-initialise r and q (Theorem 1) every this many rounds (0: never)",
       "faults.tracking_reset", "whole"),
    _O("drop", "injected: probability that a neighbour's round is lost", "faults.drop",
       "probability"),
    _O("delay", "injected: messages arrive up to this many seconds late", "faults.delay",
       "seconds"),
    _O("fault_seed", "seed of the injected losses and delays", "faults.fault_seed", "whole"),
    _O("pin_writers", "refuse a neighbour's topic while a second writer is on it; off "
       "(--no-pin-writers) only reports impostors (docs/security.md)", "faults.pin_writers",
       "flag", flag="--no-pin-writers"),
    _O("record", "folder to record the run into with the recorder node, as bildmacro swarm does "
       "(empty: no recording)", commands=LAUNCH, default=""),
    _O("live", "serve the recorded swarm live to Foxglove or Lichtblick on 127.0.0.1:8765 "
       "(needs record; docs/live.md)", kind="flag", commands=LAUNCH, default=False),
    _O("rviz", "start the visualiser node and RViz with config/swarm.rviz", kind="flag",
       commands=LAUNCH, default=False),
    _O("parameter_services", "nodes start parameter services (false: no ros2 param, which saves "
       "each agent work on every message)", kind="flag", commands=LAUNCH, default=True),
)
del _O
BY_NAME = {option.name: option for option in OPTIONS}


def options_of(command: str) -> list[Option]:
    return [option for option in OPTIONS if command in option.commands]


def describe(option: Option, launch: bool = False) -> str:
    """Return the option's text with its default: the config's (and which key), or its own."""
    if option.key is None:
        value = option.launch_default if launch and option.launch_default is not None \
            else option.default
        shown = str(value).lower() if isinstance(value, bool) else value
        return option.text + ("" if value in (None, "") else f" (default: {shown})")
    return f"{option.text} (default: the config's {option.key}, {default(option.key)!r} " \
           f"unless it sets one)"


# -- reading values ---------------------------------------------------------------------------
def parse(option: Option | str, text: str) -> Any:
    """Read an option's value (or a value of a kind) from text; ValueError says what is wrong."""
    kind = option if isinstance(option, str) else option.kind
    if kind in ("count", "whole"):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"must be a whole number, got {text!r}") from None
        low = 1 if kind == "count" else 0
        if value < low:
            raise ValueError(f"must be >= {low}, got {value}")
        return value
    if kind in ("seconds", "metres", "probability"):
        unit = {"seconds": "seconds", "metres": "metres", "probability": "probability"}[kind]
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"must be a number of {unit}, got {text!r}") from None
        if kind != "probability" and not (0 <= value < float("inf")):
            raise ValueError(f"must be a finite number of {unit} >= 0, got {text!r}")
        return value
    if kind in ("pair", "radians"):
        try:
            values = [float(part) for part in text.replace(" ", "").strip("[]()").split(",")]
        except ValueError:
            values = []
        if len(values) != (2 if kind == "pair" else 1):
            raise ValueError(f"must be {'two numbers X,Y' if kind == 'pair' else 'a number'}, "
                             f"got {text!r}")
        return values if kind == "pair" else values[0]
    if kind == "flag":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"must be true or false, got {text!r}")
    return Path(text).expanduser() if kind == "path" else text


def argparse_type(option: Option | str):
    """Return the parse of an option (or a kind) as an argparse type: its error is one line."""
    def read(text: str):
        try:
            return parse(option, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    read.__name__ = option if isinstance(option, str) else option.kind
    return read


def add_options(parser, command: str, choices: dict | None = None) -> None:
    """Add the command's options of the table to an argparse parser (faults in a group)."""
    faults = None
    for option in options_of(command):
        target = parser
        if option.name in FAULTS:
            faults = faults or parser.add_argument_group(
                "faults", "late and dead neighbours, injected faults and impostors "
                "(docs/faults.md)")
            target = faults
        if option.kind == "flag":
            target.add_argument(option.flag, dest=option.name, action="store_const",
                                const=option.switch, default=None, help=describe(option))
            continue
        values = (choices or {}).get(option.name, option.choices)
        target.add_argument("--" + option.name.replace("_", "-"), dest=option.name,
                            type=None if values else argparse_type(option), choices=values,
                            default=option.default, help=describe(option))


def run_inputs(values: dict) -> tuple:
    """
    Return (cfg, base, init, weights): the config with every override `values` holds.

    values: option name -> value (None or missing: the config's). ValueError (ConfigError) names
    the key at fault.
    """
    from .core.scenario import load_run_inputs

    # and the family, whose defaults apply before the other options override them
    scenario = {name: values.get(name) for name in ("agents", "seed", "iterations")}
    scenario["robots.family"] = values.get("family")
    cfg, base, init, weights = load_run_inputs(values.get("config") or "default", scenario,
                                               values.get("init") or None,
                                               values.get("weights") or None)
    raw = dict(cfg, robots=dict(cfg["robots"]), faults=dict(cfg["faults"]),
               arena=dict(cfg["arena"]))
    for name, value in values.items():
        option = BY_NAME[name]
        if value is None or option.key is None or name in scenario or name == "family":
            continue
        if option.key == "graph.edge_probability":
            # the option samples a dense ER graph, whatever the config's graph was
            raw["graph"] = {"type": "erdos_renyi", "edge_probability": value,
                            "weights": cfg["graph"]["weights"]}
            continue
        section, leaf = option.key.split(".")
        raw[section][leaf] = value
    return validate(raw), base, init, weights
