# SPDX-License-Identifier: Apache-2.0
"""
The launch files' arguments: strings in, checked values out.

A plan for swarm.launch.py, a plan folder and robot id for robot.launch.py. Everything the launch
files compute happens here, so it is tested without `launch` installed.
"""

from __future__ import annotations

from pathlib import Path

from .launch_plan import NodeSpec, PARAMETER_SERVICES, plan_swarm, SwarmPlan


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


def plan_from_arguments(config: str = "default", agents: str = "", seed: str = "", edge_probability: str = "",
                        iterations: str = "", weights: str = "", init: str = "", namespace: str = "",
                        agents_per_process: str = "1", record: str = "", simulator: str = "",
                        wait_for_robots: str = "", radius: str = "", safety: str = "", rviz: str = "false",
                        parameter_services: str = "true") -> tuple[SwarmPlan, dict]:
    """
    Plan a launch from the launch file's arguments (strings; empty keeps the config's value).

    Returns the plan and the resolved config.
    """
    from .core.config import preset_dirs, validate
    from .core.scenario import load_run_inputs

    overrides = {"agents": number_argument("agents", agents, int) if agents else None,
                 "seed": number_argument("seed", seed, int) if seed else None,
                 "iterations": number_argument("iterations", iterations, int) if iterations else None}
    cfg, base, init_arrays, weight_matrix = load_run_inputs(config, overrides, init or None, weights or None)
    if edge_probability:
        graph = dict(cfg["graph"], type="erdos_renyi",
                     edge_probability=number_argument("edge_probability", edge_probability, float))
        graph.pop("edges", None)
        cfg = validate(dict(cfg, graph=graph))
    robots = dict(cfg["robots"])
    if simulator:
        robots["simulator"] = simulator
    if wait_for_robots:
        robots["wait"] = flag_argument("wait_for_robots", wait_for_robots)
    if radius:
        robots["radius"] = number_argument("radius", radius, float)
    if safety:
        robots["safety"] = flag_argument("safety", safety)
    cfg = validate(dict(cfg, robots=robots))
    folder = Path(record).expanduser().resolve() if record else None
    plan = plan_swarm(cfg, base, init_arrays, weight_matrix, namespace,
                      number_argument("agents_per_process", agents_per_process, int), recorders=1 if record else 0,
                      visualiser=flag_argument("rviz", rviz), run_dir=folder)
    if not flag_argument("parameter_services", parameter_services):
        plan.environment[PARAMETER_SERVICES] = "0"
    if folder is not None:
        # the recorder rebuilds the scenario from the inputs the launch writes into the folder
        plan.recorder = NodeSpec("recorder", "recorder", {
            "config": str(folder / "config.yaml"), "out": str(folder), "init": str(folder / "initial_state.npz"),
            "weights": str(folder / "weights.npy"), "log_every": plan.agents[0].parameters["record_every"],
            "robots": cfg["robots"]["simulator"] != "none"}, plan.namespace)
    if flag_argument("rviz", rviz):
        layout = next((d / "swarm.rviz" for d in preset_dirs() if (d / "swarm.rviz").is_file()), Path("swarm.rviz"))
        plan.viewers.append(NodeSpec("rviz2", "rviz2", {}, plan.namespace, package="rviz2",
                                     arguments=["-d", str(layout)]))
    return plan, cfg


def robot_launch_arguments(plan: str = "", id: str = "", resume: str = "false") -> tuple[Path, int, bool]:  # noqa: A002
    """
    Check robot.launch.py's arguments (strings) and return the plan folder, the robot's id and resume.

    Named as the launch arguments are (`id` among them), so that the launch file passes them by name.
    """
    if not plan:
        raise ValueError("launch argument plan:= is required: the plan folder written by bildmacro plan")
    if not id:
        raise ValueError("launch argument id:= is required: this robot's id")
    return Path(plan).expanduser().resolve(), number_argument("id", id, int), flag_argument("resume", resume)
