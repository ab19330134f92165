# SPDX-License-Identifier: Apache-2.0
"""
Launch the swarm: one agent node per robot on an Erdős–Rényi graph.

    ros2 launch bildmacro_ros swarm.launch.py agents:=12 seed:=3 edge_probability:=0.5 config:=...

The graph, weights and per-agent parameters come from bildmacro_ros.launch_plan (the same plan
`bildmacro swarm` uses); this file only turns the plan into Node actions.
"""

from pathlib import Path
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ARGUMENTS = {
    "config": ("default", "config YAML file, or a preset name: default, paper"),
    "agents": ("", "number of agents N (empty: the config's)"),
    "seed": ("", "seed of the graph and the initial state (empty: the config's)"),
    "edge_probability": ("", "Erdős–Rényi edge probability in (0, 1] (empty: the config's)"),
    "iterations": ("", "iterations K (empty: the config's)"),
    "weights": ("", "N x N doubly stochastic weights (.npy/.csv) instead of a sampled graph"),
    "init": ("", ".npz with x (N,2) and y (N,m) instead of the seeded initial state"),
    "namespace": ("", "namespace for every node and topic"),
    "agents_per_process": ("1", "agent nodes per process (one executor each); raise for 50+ agents"),
    "record": ("", "folder to record the run into with the monitor node (empty: no recording)"),
    "simulator": ("", "robots that follow the waypoints: embedded (the built-in diff-drive swarm), turtlesim, "
                      "gazebo (your world provides robot_<i>/cmd_vel and robot_<i>/odom), or none "
                      "(empty: the config's robots.simulator)"),
    "wait_for_robots": ("", "true: each round waits until the robot is within robots.tolerance of x_i "
                            "(physical robots); empty: the config's robots.wait"),
    "rviz": ("false", "true: start the visualiser node and RViz with config/swarm.rviz"),
}


def launch_setup(context, *args, **kwargs):
    from bildmacro_ros.core.config import dump_config
    from bildmacro_ros.launch_plan import params_file_content, plan_from_arguments

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    plan, cfg = plan_from_arguments(**values)
    actions = []
    if values["agents_per_process"] == "1":
        for spec in plan.agents:
            actions.append(Node(package="bildmacro_ros", executable="agent", name=spec.name, namespace=spec.namespace,
                                parameters=[spec.parameters], output="screen"))
    else:
        params = Path(tempfile.mkdtemp(prefix="bildmacro-launch-")) / "agents.params.yaml"
        params.write_text(params_file_content(plan))
        for spec in plan.processes:
            # no name=: launch_ros would pass __node:=, renaming every agent node in the process
            actions.append(Node(package="bildmacro_ros", executable="agent_group", namespace=spec.namespace,
                                parameters=[str(params), spec.parameters], output="screen"))
    for spec in plan.robots:
        actions.append(Node(package=spec.package, executable=spec.executable, name=spec.name,
                            namespace=spec.namespace, parameters=[spec.parameters] if spec.parameters else [],
                            output="screen"))
    if values["rviz"].lower() in ("true", "1", "yes"):
        rviz_config = Path(get_package_share_directory("bildmacro_ros")) / "config" / "swarm.rviz"
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", namespace=plan.namespace,
                            arguments=["-d", str(rviz_config)], output="screen"))
    if values["record"]:
        resolved = Path(tempfile.mkdtemp(prefix="bildmacro-launch-")) / "config.yaml"
        resolved.write_text(dump_config(cfg))
        # the agents publish records every record_every rounds; the monitor logs at the same rate
        every = plan.agents[0].parameters["record_every"]
        actions.append(Node(package="bildmacro_ros", executable="monitor", name="monitor", namespace=plan.namespace,
                            parameters=[{"config": str(resolved), "out": values["record"], "init": values["init"],
                                         "weights": values["weights"], "log_every": every,
                                         "robots": cfg["robots"]["simulator"] != "none"}], output="screen"))
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=launch_setup)])
