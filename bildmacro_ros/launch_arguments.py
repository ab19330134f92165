# SPDX-License-Identifier: Apache-2.0
"""
The launch files' arguments: strings in, checked values out.

A plan for swarm.launch.py, a plan folder and robot id for robot.launch.py. Everything the launch
files compute happens here, so it is tested without `launch` installed.
"""

from __future__ import annotations

from pathlib import Path

from .core.arena import Arena
from .gazebo import gazebo_nodes
from .launch_plan import NodeSpec, PARAMETER_SERVICES, plan_swarm, SwarmPlan
from .options import BY_NAME, describe, options_of, parse, run_inputs
from .run_folder import old_run


def number_argument(name: str, text: str, kind):
    try:
        return kind(text)
    except ValueError:
        what = "whole number" if kind is int else "number"
        raise ValueError(f"launch argument {name}:={text!r} is not a {what}") from None


def flag_argument(name: str, text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no", ""):
        return False
    raise ValueError(f"launch argument {name}:={text!r} must be true or false")


def launch_arguments() -> dict[str, tuple[str, str]]:
    """Return swarm.launch.py's arguments: name -> (default text, description), from the table."""
    out = {}
    for option in options_of("launch"):
        value = option.default if option.launch_default is None else option.launch_default
        text = "" if value is None else str(value).lower() if isinstance(value,
                                                                         bool) else str(value)
        out[option.name] = (text, describe(option, launch=True))
    return out


def _value(option, text: str):
    """
    Read a launch argument's text as the option's value (empty.

    None, the config's or default).
    """
    if text == "":
        return None
    if option.kind == "flag":
        return flag_argument(option.name, text)
    if option.kind in ("count", "whole"):
        return number_argument(option.name, text, int)
    if option.kind in ("seconds", "metres", "probability"):
        return number_argument(option.name, text, float)
    if option.kind in ("pair", "radians"):  # arena_size:=4,3
        try:
            return parse(option, text)
        except ValueError as exc:
            raise ValueError(f"launch argument {option.name}:={text!r} {exc}") from None
    return text  # ranges and choices are the config's to check


def plan_from_arguments(scratch: Path | None = None, **arguments: str) -> tuple[SwarmPlan, dict]:
    """
    Plan a launch from the launch file's arguments (strings; empty keeps the config's value).

    Returns the plan and the resolved config. scratch: the folder a launch without record:= keeps
    its files in (with simulator:=gazebo, the world and models Gazebo reads).
    """
    from .core.config import preset_dirs

    unknown = sorted(set(arguments) - {option.name for option in options_of("launch")})
    if unknown:
        raise ValueError(f"unknown launch arguments: {', '.join(unknown)}")
    defaults = launch_arguments()  # an argument not given has the launch file's default
    values = {option.name: _value(option, arguments.get(option.name, defaults[option.name][0]))
              for option in options_of("launch")}
    launcher = {name: values.pop(name) for name in ("record", "rviz", "parameter_services",
                                                    "namespace", "agents_per_process", "live")}
    launcher = {name: BY_NAME[name].default if value is None else value for name,
                value in launcher.items()}
    cfg, base, init_arrays, weight_matrix = run_inputs(values)
    record = launcher["record"]
    if launcher["live"] and not record:
        raise ValueError("launch argument live:=true needs record:=DIR: the recorder serves the "
                         "live view")
    folder = Path(record).expanduser().resolve() if record else None
    if folder is not None and (folder.exists() and not folder.is_dir() or old_run(folder)):
        what = ", ".join(old_run(folder)) or "a file"
        raise ValueError(f"launch argument record:={record} already holds {what}: choose another "
                         "folder (bildmacro swarm refuses it too, unless --overwrite)")
    plan = plan_swarm(cfg, base, init_arrays, weight_matrix, launcher["namespace"],
                      launcher["agents_per_process"], recorders=1 if record else 0,
                      visualiser=launcher["rviz"], run_dir=folder, dds_dir=scratch)
    if not launcher["parameter_services"]:
        plan.environment[PARAMETER_SERVICES] = "0"
    if folder is not None:
        # the recorder rebuilds the scenario from the inputs the launch writes into the folder
        plan.recorder = NodeSpec("recorder", "recorder", {
            "config": str(folder / "config.yaml"), "out": str(folder),
            "init": str(folder / "initial_state.npz"), "weights": str(folder / "weights.npy"),
            "log_every": plan.agents[0].parameters["record_every"],
            "robots": cfg["robots"]["simulator"] != "none", "live": launcher["live"]},
            plan.namespace)
    if cfg["robots"]["simulator"] == "gazebo":
        files_dir = folder if folder is not None else scratch
        if files_dir is None:
            raise ValueError("simulator:=gazebo needs a folder for the world and models Gazebo "
                             "reads")
        gazebo, plan.files = gazebo_nodes(cfg, Arena.from_config(cfg).start_poses(
            plan.scenario.x0), files_dir, plan.namespace)
        plan.robots[:0] = gazebo  # Gazebo first: the world exists before anything drives
    if launcher["rviz"]:
        layout = next((d / "swarm.rviz" for d in preset_dirs() if (d / "swarm.rviz").is_file()),
                      Path("swarm.rviz"))
        plan.viewers += [arena_frame(Arena.from_config(cfg), plan.namespace),
                         NodeSpec("rviz2", "rviz2", {}, plan.namespace, package="rviz2",
                                  arguments=["-d", str(layout)])]
    return plan, cfg


def arena_frame(arena: Arena, namespace: str) -> NodeSpec:
    """
    Return a static transform from `map` to the arena's frame, `arena` (at its centre, turned).

    Everything the swarm draws is in `map`, which nothing else makes exist: without a transform
    RViz's Global Status says "Frame [map] does not exist" (rviz_default_plugins
    tf_frame_transformer.cpp:213-218), a red error once anything publishes TF.
    """
    x, y = arena.centre
    return NodeSpec("arena_frame", "static_transform_publisher", {}, namespace, package="tf2_ros",
                    arguments=["--x", repr(float(x)), "--y", repr(float(y)), "--yaw",
                               repr(float(arena.rotation)), "--frame-id", "map",
                               "--child-frame-id", "arena"])


def robot_launch_arguments(plan: str = "", id: str = "",  # noqa: A002
                           resume: str = "false", settle: str = "30") -> tuple[Path, int, bool,
                                                                               float]:
    """
    Check robot.launch.py's arguments (strings); return the plan folder, id, resume and settle.

    Named as the launch arguments are (`id` among them), so that the launch file passes them by
    name.
    """
    if not plan:
        raise ValueError("launch argument plan:= is required: the plan folder written by "
                         "bildmacro plan")
    if not id:
        raise ValueError("launch argument id:= is required: this robot's id")
    seconds = number_argument("settle", settle, float)
    if not 0 <= seconds <= 3600:
        raise ValueError(f"launch argument settle:={settle} must be between 0 and 3600 seconds")
    return (Path(plan).expanduser().resolve(), number_argument("id", id, int),
            flag_argument("resume", resume), seconds)
