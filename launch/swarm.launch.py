# SPDX-License-Identifier: Apache-2.0
"""
Launch the swarm: one agent node per robot on an Erdős–Rényi graph.

    ros2 launch bildmacro_ros swarm.launch.py agents:=12 seed:=3 edge_probability:=0.5 config:=...

The graph, weights and per-agent parameters come from bildmacro_ros.launch_plan (the same plan
`bildmacro swarm` uses); this file only turns the plan into Node actions. The launch ends by
itself once the run is complete (recorded, with record:=DIR), and Ctrl-C stops every node. With
simulator:=gazebo it also starts Gazebo with a world and a model per robot it writes, spawns the
robots at their start poses and bridges their topics (bildmacro_ros/gazebo.py).
"""

import os
from pathlib import Path
import shutil
import tempfile

from ament_index_python.packages import get_package_prefix, PackageNotFoundError
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction,
                            RegisterEventHandler)
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events import Shutdown
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, SetROSLogDir

from bildmacro_ros.core.kernel import prepare_kernel
from bildmacro_ros.launch_arguments import launch_arguments
from bildmacro_ros.launch_plan import missing_executables, PROGRAM
from bildmacro_ros.shared_memory import tidy

# every argument, its default and description, from the one table of options
# (bildmacro_ros/options.py)
ARGUMENTS = launch_arguments()
# seconds the recorder may take after a Ctrl-C to write the run and draw its figures
RECORDER_GRACE = "60"


def _installed(package: str, executable: str) -> bool:
    """Tell whether launch_ros finds the executable: <prefix>/lib/<package>/<executable>."""
    if package == PROGRAM:  # Gazebo's gz: a program on the PATH
        return shutil.which(executable) is not None
    try:
        path = Path(get_package_prefix(package)) / "lib" / package / executable
    except PackageNotFoundError:
        return False
    return path.is_file() and os.access(path, os.X_OK)


def _end_of_run(agents, recorder, robots, programs):
    """
    Shut the launch down when the run is complete; fail it when a node of the run fails.

    robots: the nodes around the agents (a spawn exits 0 when its robot is in the world);
    programs: those whose end, even a clean one, ends the run (Gazebo closed by its user).
    """
    waiting = set(agents)

    def on_exit(event, context):
        if context.is_shutdown:
            return None
        if event.returncode != 0:  # raised, the launch stops and exits with 1
            raise RuntimeError(f"{event.action.name} exited with code {event.returncode}; the run "
                               "stops")
        if event.action in programs:
            return [EmitEvent(event=Shutdown(reason=f"{event.action.name} has ended"))]
        if event.action not in waiting and event.action is not recorder:
            return None
        waiting.discard(event.action)
        if recorder is not None and event.action is not recorder:
            return None  # with a recorder, the run is complete once it has written the run
        if waiting and recorder is None:
            return None
        return [EmitEvent(event=Shutdown(reason="the run is complete"))]

    return [RegisterEventHandler(OnProcessExit(target_action=action, on_exit=on_exit))
            for action in agents + robots + ([recorder] if recorder is not None else [])]


def launch_setup(context, *args, **kwargs):
    from bildmacro_ros.launch_arguments import plan_from_arguments
    from bildmacro_ros.run_folder import prepare_swarm_folder

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    scratch = None if values["record"] else Path(tempfile.mkdtemp(prefix="bildmacro-launch-"))
    try:
        plan, _ = plan_from_arguments(scratch, **values)
        missing = missing_executables(plan, _installed)
        if missing:  # before anything starts: a launch that fails part-way would leave orphans
            raise RuntimeError(f"cannot start {', '.join(missing)}: not installed; nothing was "
                               "started")
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    # BILDMACRO_KERNEL=numba: compiled here once, so that the nodes load it instead of each
    # compiling it at the same time (core/kernel.py)
    prepare_kernel(plan.scenario.problem, plan.scenario.steps)
    tidy(get_logger("bildmacro_ros").info)  # dead processes' Fast DDS files (shared_memory.py)
    folder = scratch or Path(values["record"]).expanduser().resolve()
    params = prepare_swarm_folder(plan, folder, inputs=True)
    actions = [SetROSLogDir(str(folder / "logs"))] if values["record"] else [
        RegisterEventHandler(OnShutdown(on_shutdown=[OpaqueFunction(
            function=lambda context: shutil.rmtree(folder, ignore_errors=True))]))]
    nodes = {}
    for spec in plan.nodes():
        if spec.package == PROGRAM:
            nodes[spec.name] = ExecuteProcess(cmd=[spec.executable, *spec.arguments],
                                              name=spec.name, output="screen",
                                              sigterm_timeout="10")
            actions.append(nodes[spec.name])
            continue
        nodes[spec.name] = Node(
            package=spec.package, executable=spec.executable,
            # an agent group's nodes are named in its code; __node:= would rename them all
            name=None if spec.executable == "agent_group" else spec.name, namespace=spec.namespace,
            parameters=[str(params)] if spec.package == "bildmacro_ros" else [],
            arguments=spec.arguments, ros_arguments=spec.ros_arguments,
            additional_env={**plan.environment, **spec.environment}, output="screen",
            sigterm_timeout=RECORDER_GRACE if spec is plan.recorder else "5")
        actions.append(nodes[spec.name])
    recorder = nodes[plan.recorder.name] if plan.recorder is not None else None
    return actions + _end_of_run([nodes[spec.name] for spec in plan.processes], recorder,
                                 [nodes[spec.name] for spec in plan.robots],
                                 {nodes[spec.name] for spec in plan.robots
                                  if spec.package == PROGRAM})


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=launch_setup)])
