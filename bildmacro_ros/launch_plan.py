# SPDX-License-Identifier: Apache-2.0
"""
The launch plan: config -> graph -> the nodes to start and their parameters.

A pure function of its inputs, shared by `launch/swarm.launch.py` (ROS installs) and
`bildmacro swarm` (pip installs), so both start exactly the same swarm.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import os
from pathlib import Path

import numpy as np
import yaml

from .core.arena import Arena, misplaced
from .core.graph import dense, in_neighbours
from .core.metrics import default_log_every
from .core.scenario import build_scenario, Scenario
from .dds_profiles import one_machine_dds
from .protocol.node_parameters import NODE_PARAMETERS
from .protocol.parameters import AGENT_PARAMETERS, DENSITY_MODEL, parameters_from_config
from .scene import graph_edges
from .scheduling import AGENT_CPU, agent_cpus, AGENT_SCHEDULING, scheduling_choice


# Every node process gets these: one BLAS thread (an agent's matrices are small and N processes
# share the cores: threads only fight), and unbuffered output so logs are whole when a node dies.
NODE_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "PYTHONUNBUFFERED": "1"}
# Set to 0 in a node's environment, it starts without parameter services (ros/lifecycle.py)
PARAMETER_SERVICES = "BILDMACRO_PARAMETER_SERVICES"
# the package of a NodeSpec that is a program on the PATH (Gazebo's `gz`), not a ROS executable
PROGRAM = ""


@dataclass
class NodeSpec:
    name: str
    executable: str
    parameters: dict
    namespace: str = ""
    package: str = "bildmacro_ros"
    arguments: list[str] = field(default_factory=list)  # the program's own arguments
    ros_arguments: list[str] = field(default_factory=list)  # after --ros-args
    environment: dict = field(default_factory=dict)  # this process's own, over the plan's


@dataclass
class SwarmPlan:
    scenario: Scenario
    agents: list[NodeSpec]  # one spec per agent: what a node needs to run agent i
    # what to start: agents or agent groups
    processes: list[NodeSpec] = field(default_factory=list)
    namespace: str = ""
    # simulator or bridge, follower, visualiser
    robots: list[NodeSpec] = field(default_factory=list)
    recorder: NodeSpec | None = None  # the recorder node, under ros2 launch with record:=DIR
    viewers: list[NodeSpec] = field(default_factory=list)  # rviz2
    # of every node process
    environment: dict = field(default_factory=lambda: dict(NODE_ENVIRONMENT))
    files: dict = field(default_factory=dict)  # path -> text: what nodes read, written with them

    def nodes(self) -> list[NodeSpec]:
        """
        Every node process to start, robots first.

        (a robot exists before its agent's first waypoint).
        """
        return self.robots + self.processes + ([self.recorder] if self.recorder
                                               else []) + self.viewers

    @property
    def weights(self) -> np.ndarray:
        return self.scenario.weights


def target_parameter(target: dict, base_dir: Path | None) -> dict:
    """Return the target spec with a relative image path made absolute."""
    target = dict(target)
    if target["type"] == "image":
        path = Path(target["path"]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = (base_dir / path).resolve()
        target["path"] = str(path)
    return target


def problem_parameters(cfg: dict, base_dir: Path | None) -> dict:
    """
    Return the parameters that define the density model.

    The same for every node that needs one.
    """
    cfg = dict(cfg, target=target_parameter(cfg["target"], base_dir))
    return parameters_from_config(cfg, [spec.name for spec in DENSITY_MODEL])


def agent_parameters(scenario: Scenario, agent: int, base_dir: Path | None = None,
                     recorders: int = 0, record_every: int = 0,
                     run_dir: Path | None = None) -> dict:
    """
    Everything agent i's node needs, as ROS parameters (flat, typed, no empty lists).

    Those with a config key come from the config (protocol/parameters.py), the rest from the
    scenario.
    """
    cfg, w = scenario.config, scenario.weights
    near = in_neighbours(w, agent)
    if not len(near):  # rclpy cannot type an empty list; a connected swarm never has one
        raise ValueError(f"agent {agent} has no in-neighbour: the graph is not connected")
    params = parameters_from_config(dict(cfg, target=target_parameter(cfg["target"], base_dir)))
    # With robots.wait a round also waits for the robot (when there is one), and a neighbour
    # cannot tell a robot still driving from a dead one: there is no deadline then (a known
    # limit, docs/faults.md).
    params["wait_for_robot"] = bool(cfg["robots"]["wait"] and cfg["robots"]["simulator"] != "none")
    if params["wait_for_robot"]:
        params["deadline"] = 0.0
    params.update({
        "agent_id": int(agent),
        "neighbours": [int(j) for j in near],
        "neighbour_weights": [float(w[agent, j]) for j in near],
        "self_weight": float(w[agent, agent]),
        "initial_x": [float(v) for v in scenario.x0[agent]],
        "initial_y": [float(v) for v in scenario.y0[agent]],
        "initial_y_bound": float(np.abs(scenario.y0).max()),
        "listeners": int(np.count_nonzero(w[:, agent] > 0)) - 1,  # agents that listen to this one
        "record_every": int(record_every),
        "recorders": int(recorders),
        # the robot's follower gets every waypoint from round 0 on
        "followers": int(cfg["robots"]["simulator"] != "none"),
    })
    if run_dir is not None:  # what a restarted agent resumes from, and what each agent reports
        params["checkpoint_dir"] = str(Path(run_dir) / "checkpoints")
        params["outcome_dir"] = str(Path(run_dir) / "outcomes")
    return {spec.name: params[spec.name] for spec in AGENT_PARAMETERS if spec.name in params}


def stop_tolerance(cfg: dict) -> float:
    """
    Where a follower stops: within half the agents' arrival tolerance.

    A waiting agent is then always satisfied once its robot stops.
    """
    return cfg["robots"]["tolerance"] / 2


def plan_robots(scenario: Scenario, base_dir: Path | None, ns: str,
                visualiser: bool = False) -> list[NodeSpec]:
    """
    Return the nodes around the agents.

    The simulator (or turtlesim and its bridge), one follower node for every robot, and the RViz
    visualiser. A gazebo world, or external robots, bring their own bodies.
    """
    cfg = scenario.config
    robots, n = cfg["robots"], cfg["agents"]
    ids = list(range(n))
    specs = []

    def node(name: str, executable: str, **parameters) -> None:
        # the config's values of the node's config-keyed parameters, and these
        table = NODE_PARAMETERS[executable]
        configured = parameters_from_config(dict(cfg,
                                                 target=target_parameter(cfg["target"], base_dir)),
                                            table=table)
        specs.append(NodeSpec(name, executable, {**configured, **parameters}, ns))

    poses = Arena.from_config(cfg).start_poses(scenario.x0)
    if robots["simulator"] == "embedded":
        node("swarm_simulator", "swarm_simulator", robot_ids=ids,
             initial_poses=misplaced(poses, robots["placement_error"], cfg["seed"]))
    elif robots["simulator"] == "turtlesim":
        specs.append(NodeSpec("turtlesim", "turtlesim_node", {}, ns, package="turtlesim"))
        node("turtlesim_bridge", "turtlesim_bridge", robot_ids=ids, initial_poses=poses)
    if robots["simulator"] != "none":
        # swarm_ids: a follower cut down to one robot (plan folders) still filters against them all
        node("waypoint_follower", "follower", robot_ids=ids, tolerance=stop_tolerance(cfg),
             swarm_ids=ids, initial_poses=poses)
    if visualiser:
        node("visualiser", "visualiser",
             edges=[v for edge in graph_edges(scenario.weights) for v in edge],
             robots=robots["simulator"] != "none")
    return specs


def plan_swarm(cfg: dict, base_dir: Path | None = None, init=None, weights=None,
               namespace: str = "", agents_per_process: int = 1, recorders: int = 0,
               record_every: int | None = None, visualiser: bool = False,
               run_dir: Path | None = None, dds_dir: Path | None = None) -> SwarmPlan:
    """
    Return the whole swarm: graph, weights, initial state and one node spec per agent.

    agents_per_process > 1 packs agents into `agent_group` processes (one executor each), which
    is how 50+ agents fit on one machine. recorders counts the recorders every agent waits for
    before its first round; with recorders, agents publish records every record_every rounds
    (default about K/1000, as `bildmacro simulate` logs). With run_dir, agents keep their
    checkpoints and write their outcomes there (run_dir/checkpoints, run_dir/outcomes). The run's
    Fast DDS profile goes into dds_dir, or run_dir (dds_profiles.py); with neither: the shipped.
    """
    if agents_per_process < 1:
        raise ValueError(f"agents_per_process must be >= 1, got {agents_per_process}")
    namespace = namespace.strip("/")
    scenario = build_scenario(cfg, base_dir, init, weights)
    # a node reads its row of the weights: a sparse graph's, dense (swarms over DDS are small)
    scenario = replace(scenario, weights=dense(scenario.weights))
    ns = f"/{namespace}" if namespace else ""
    every = (record_every or default_log_every(cfg["iterations"])) if recorders else 0
    agents = [NodeSpec(f"agent_{i}", "agent",
                       agent_parameters(scenario, i, base_dir, recorders, every, run_dir), ns)
              for i in range(cfg["agents"])]
    if agents_per_process == 1:
        processes = list(agents)
    else:
        ids = list(range(cfg["agents"]))
        # the group's own node is named agent_group in its code: renamed here, so that names are
        # unique
        processes = [NodeSpec(f"agent_group_{g}", "agent_group",
                              {"agent_ids": ids[s:s + agents_per_process]}, ns,
                              ros_arguments=["-r", f"agent_group:__node:=agent_group_{g}"])
                     for g, s in enumerate(range(0, len(ids), agents_per_process))]
        # In a group, local neighbours are served in-process and each other process subscribes
        # once per remote agent: an agent waits for one DDS listener per such process.
        group_of = {i: g for g, spec in enumerate(processes) for i in spec.parameters["agent_ids"]}
        w = scenario.weights
        for i, spec in enumerate(agents):
            readers = {group_of[j] for j in range(len(agents)) if j != i
                       and w[j, i] > 0} - {group_of[i]}
            spec.parameters["listeners"] = len(readers)
    robots = plan_robots(scenario, base_dir, ns, visualiser)
    scheduling = scheduling_choice()  # the user's own choice passes on
    if scheduling == "pinned" and hasattr(os, "sched_getaffinity"):
        for spec, cpu in zip(processes, agent_cpus(len(processes), os.sched_getaffinity(0))):
            if cpu is not None:
                spec.environment[AGENT_CPU] = str(cpu)
    # every process of the run is a participant, and the launcher's (the recorder) one more
    dds_environment, dds_files = one_machine_dds(len(processes) + len(robots) + 1,
                                                 dds_dir or run_dir)
    return SwarmPlan(scenario=scenario, agents=agents, processes=processes, namespace=ns,
                     robots=robots, environment={**NODE_ENVIRONMENT, **dds_environment,
                                                 AGENT_SCHEDULING: scheduling},
                     files=dds_files)


def params_yaml(specs: list[NodeSpec]) -> str:
    """Return a ROS 2 parameters YAML: each node's parameters under its fully qualified name."""
    doc = {f"{spec.namespace}/{spec.name}": {"ros__parameters": spec.parameters} for spec in specs
           if spec.parameters}
    return yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, width=10**6)


def params_file_content(plan: SwarmPlan) -> str:
    """Return every node's parameters of the plan (a group's agents under their own names)."""
    return params_yaml(plan.agents + [spec for spec in plan.nodes() if spec.executable != "agent"])


class _NoAliases(yaml.SafeDumper):
    """rcl's params-file parser rejects YAML aliases, which shared lists would otherwise become."""

    def ignore_aliases(self, data):
        return True


def missing_executables(plan: SwarmPlan, exists) -> list[str]:
    """
    Name the plan's executables that exists(package, executable) cannot find.

    A launch checks them all before it starts anything, so that a missing one (rviz2 without RViz,
    turtlesim_node without turtlesim) leaves no node running on.
    """
    return sorted({f"{spec.package}/{spec.executable}" if spec.package != PROGRAM
                   else spec.executable for spec in plan.nodes()
                   if not exists(spec.package, spec.executable)})
