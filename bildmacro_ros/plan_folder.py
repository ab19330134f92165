# SPDX-License-Identifier: Apache-2.0
"""
A plan folder: everything the robots of one swarm need, made once and copied to every robot.

`bildmacro plan` writes it and runs nothing. On robot i, `bildmacro robot --plan PLAN --id i` (or
`ros2 launch bildmacro_ros robot.launch.py plan:=PLAN id:=i`) starts agent i and its robot's nodes
from it, and `bildmacro record --plan PLAN` records the run on any computer. Every path inside is
relative to the folder, and each robot keeps its own checkpoints, outcomes and logs in
`robot_<i>/` beside them, so the folder can be copied anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import shutil

import yaml

from .core.arena import Arena
from .core.config import load_config
from .core.scenario import build_scenario, load_run_inputs, Scenario
from .dds_profiles import DDS_PROFILE, dds_profile, DDS_PROFILE_VARIABLES, user_dds_profile
from .gazebo import write_gazebo
from .launch_plan import NodeSpec, params_yaml, plan_swarm, SwarmPlan
from .protocol.parameters import parameters_from_config
from .run_folder import INPUT_FILES, write_inputs
from .scheduling import AGENT_SCHEDULING

INDEX = "plan.yaml"
FORMAT = 1
# the run-time state of robot i, inside its copy of the folder
ROBOT_STATE = ("checkpoints", "outcomes", "logs")


def robot_folder(i: int) -> str:
    return f"robot_{i}"


def params_name(i: int) -> str:
    return f"robot_{i}.params.yaml"


def _relative_target(cfg: dict, base: Path | None, out: Path) -> dict:
    """Return cfg with an image target copied into the plan folder and named relative to it."""
    target = cfg["target"]
    if target["type"] != "image":
        return cfg
    source = Path(target["path"]).expanduser()
    if not source.is_absolute() and base is not None:
        source = base / source
    if not source.is_file():
        raise ValueError(f"target image {source} does not exist")
    name = "target" + source.suffix.lower()
    shutil.copyfile(source, out / name)
    return dict(cfg, target=dict(target, path=name))


def computer_nodes(plan: SwarmPlan, i: int) -> list[NodeSpec]:
    """
    Return the nodes robot i runs: its body (a one-robot simulator), its follower, its agent.

    The simulator and follower of the one-machine plan, each cut down to robot i and renamed so
    that names stay unique across the swarm. A robot of your own (external, gazebo) brings its
    driver; with simulator none the agent runs alone.
    """
    nodes = []
    for spec in plan.robots:
        if "robot_ids" not in spec.parameters or spec.package != "bildmacro_ros":
            continue
        params = dict(spec.parameters, robot_ids=[i])
        if "initial_poses" in params:
            params["initial_poses"] = params["initial_poses"][3 * i:3 * i + 3]
        nodes.append(NodeSpec(f"{robot_folder(i)}_{spec.name}", spec.executable, params,
                              spec.namespace))
    return nodes + [plan.agents[i]]


def write_plan(cfg: dict, base: Path | None, out: Path, init=None, weights=None,
               namespace: str = "", record: bool = True, overwrite: bool = False,
               record_every: int | None = None) -> Path:
    """
    Write a plan folder for cfg and return the path of its index, plan.yaml.

    record: a recorder will run (`bildmacro record`); every agent then waits for it before round 0
    (up to startup_timeout) and publishes a record every record_every rounds (default K/1000).
    """
    if cfg["robots"]["wait"] and cfg["robots"]["simulator"] == "none":
        raise ValueError("--wait-for-robots needs robots to wait for: --simulator external "
                         "(robots of your own) "
                         "or embedded")
    if cfg["robots"]["simulator"] == "turtlesim":
        raise ValueError("a plan runs one robot per computer, and one turtlesim window cannot be "
                         "split: run "
                         "turtlesim with `ros2 launch bildmacro_ros swarm.launch.py "
                         "simulator:=turtlesim`")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if (out / INDEX).exists() and not overwrite:
        raise ValueError(f"--out {out} already holds a plan; choose another folder or pass "
                         "--overwrite")
    profile = dds_profile()
    if profile is None:
        raise ValueError("config/fastdds.xml, the DDS profile for lossy links, is not installed "
                         "with bildmacro_ros")
    # everything that can refuse the input comes before the first file is written
    plan = plan_swarm(cfg, base, init, weights, namespace, recorders=1 if record else 0,
                      record_every=record_every)
    if out.is_dir() and overwrite:
        for old in [out / name for name in (INDEX, *INPUT_FILES)] + \
                list(out.glob("robot_*")) + list(out.glob("target.*")) + [out / DDS_PROFILE,
                                                                          out / "gazebo"]:
            shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _relative_target(plan.scenario.config, base, out)
    target = parameters_from_config(cfg, ["target"])["target"]
    for i, spec in enumerate(plan.agents):
        # relative to the robot's copy of the folder, where its processes run
        spec.parameters.update(target=target, checkpoint_dir=f"{robot_folder(i)}/checkpoints",
                               outcome_dir=f"{robot_folder(i)}/outcomes")
    write_inputs(out, cfg, plan.weights, plan.scenario.x0, plan.scenario.y0)
    if cfg["robots"]["simulator"] == "gazebo":  # for a user who starts Gazebo by hand
        write_gazebo(out, cfg, Arena.from_config(cfg).start_poses(plan.scenario.x0))
    computers = []
    for i in range(cfg["agents"]):
        nodes = computer_nodes(plan, i)
        (out / params_name(i)).write_text(params_yaml(nodes))
        computers.append({"id": i,
                          "nodes": [{"name": spec.name, "executable": spec.executable}
                                    for spec in nodes],
                          "pip": f"bildmacro robot --plan PLAN --id {i}",
                          "ros": f"ros2 launch bildmacro_ros robot.launch.py plan:=PLAN id:={i}"})
    environment = dict(plan.environment)
    # a robot's agent shares its computer with no other agent, only with its robot's own programs
    environment.pop(AGENT_SCHEDULING, None)
    shutil.copyfile(profile, out / DDS_PROFILE)  # the robots' copy, named relative to the folder
    environment.update({name: DDS_PROFILE for name in DDS_PROFILE_VARIABLES})
    every = plan.agents[0].parameters["record_every"]
    index = {
        "format": FORMAT, "agents": cfg["agents"], "namespace": plan.namespace,
        "iterations": cfg["iterations"], "simulator": cfg["robots"]["simulator"],
        "wait_for_robot": plan.agents[0].parameters["wait_for_robot"], "record_every": every,
        "recorder": bool(record), "environment": environment,
        "recorder_command": "bildmacro record --plan PLAN --out RUN" if record else None,
        "robots": computers,
    }
    path = out / INDEX
    path.write_text("# Copy this folder to every robot. Start the recorder first (it waits for "
                    "the agents), "
                    "then robot i with its command; PLAN is this folder.\n"
                    + yaml.safe_dump(index, sort_keys=False, width=10**6))
    return path


@dataclass
class Plan:
    """A plan folder as read back: its index and its files."""

    folder: Path
    index: dict

    @property
    def agents(self) -> int:
        return int(self.index["agents"])

    @property
    def namespace(self) -> str:
        return self.index["namespace"]

    @property
    def environment(self) -> dict:
        """
        Return what every node process on this computer gets on top of its own environment.

        The plan's variables, with the DDS profile at this copy of the folder; a profile already
        set here (FASTRTPS_DEFAULT_PROFILES_FILE, say) is the user's, and wins.
        """
        env = {str(k): str(v) for k, v in self.index["environment"].items()}
        own_profile = user_dds_profile()
        for name in DDS_PROFILE_VARIABLES:
            if own_profile:
                env.pop(name, None)
            elif name in env:
                env[name] = str(self.folder / env[name])
        return env

    def params_file(self, i: int) -> Path:
        self.check_id(i)
        return self.folder / params_name(i)

    def check_id(self, i: int) -> None:
        if not 0 <= i < self.agents:
            raise ValueError(f"--id {i}: this plan has robots 0..{self.agents - 1}")

    def computer_nodes(self, i: int) -> list[NodeSpec]:
        """Return robot i's nodes, with the parameters its file gives them."""
        doc = yaml.safe_load(self.params_file(i).read_text())
        return [NodeSpec(node["name"], node["executable"],
                         doc[f"{self.namespace}/{node['name']}"]["ros__parameters"],
                         self.namespace) for node in self.index["robots"][i]["nodes"]]

    def robot_state(self, i: int) -> Path:
        """Make robot i's run-time folders (checkpoints, outcomes, logs) and return robot_<i>/."""
        self.check_id(i)
        folder = self.folder / robot_folder(i)
        for name in ROBOT_STATE:
            (folder / name).mkdir(parents=True, exist_ok=True)
        return folder

    def scenario(self) -> Scenario:
        cfg, base, init, weights = load_run_inputs(self.folder / "config.yaml", None,
                                                   self.folder / "initial_state.npz",
                                                   self.folder / "weights.npy")
        return build_scenario(cfg, base, init, weights)

    def config(self) -> dict:
        return load_config(self.folder / "config.yaml")[0]


def read_plan(folder: str | Path) -> Plan:
    """Read a plan folder; ValueError, with what to do, if it is not one."""
    folder = Path(folder).expanduser().resolve()
    path = folder / INDEX
    if not path.is_file():
        raise ValueError(f"{folder} is not a plan folder (no {INDEX}): make one with `bildmacro "
                         "plan --out DIR`")
    try:
        index = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{path} is not a plan of this version (format {FORMAT}): make it again "
                         "with bildmacro plan")
    missing = [name for name in INPUT_FILES
               + tuple(params_name(i) for i in range(index["agents"]))
               if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"plan folder {folder} is incomplete: missing {', '.join(missing[:5])}")
    return Plan(folder, index)
