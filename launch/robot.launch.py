# SPDX-License-Identifier: Apache-2.0
"""
Launch one robot of a swarm deployed on separate computers: its agent, and its robot's nodes.

    # once, anywhere
    bildmacro plan --config demo --simulator external --wait-for-robots --out PLAN
    ros2 launch bildmacro_ros robot.launch.py plan:=PLAN id:=3                        # on robot 3

The nodes and their parameters come from the plan folder (bildmacro_ros.plan_folder, the same
that `bildmacro robot --plan PLAN --id 3` starts); they run in this computer's copy of the folder,
where every path of the plan points. The launch ends when the agent has finished and its robot
has reached its last waypoint (or settle:= seconds have passed), as `bildmacro robot` does.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, SetROSLogDir

ARGUMENTS = {
    "plan": ("", "the plan folder written by `bildmacro plan` (this computer's copy)"),
    "id": ("", "this robot's id i, 0..N-1"),
    "resume": ("false",
               "true after a restart: resume from this robot's last checkpoint and catch up"),
    "settle": ("30", "seconds the robot may take to reach its last waypoint once the agent has "
               "finished"),
}


def launch_setup(context, *args, **kwargs):
    from bildmacro_ros.launch_arguments import robot_launch_arguments
    from bildmacro_ros.plan_folder import read_plan
    from bildmacro_ros.shared_memory import tidy

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    plan_dir, robot, resume, settle = robot_launch_arguments(**values)
    plan = read_plan(plan_dir)
    tidy(get_logger("bildmacro_ros").info)  # dead processes' Fast DDS files (shared_memory.py)
    state = plan.robot_state(robot)
    environment = plan.environment
    actions = [SetROSLogDir(str(state / "logs"))]
    agent, follower = None, None
    for spec in plan.computer_nodes(robot):
        resumed = [{"resume": True}] if resume and spec.executable == "agent" else []
        node = Node(package=spec.package, executable=spec.executable, name=spec.name,
                    namespace=spec.namespace, parameters=[str(plan.params_file(robot))] + resumed,
                    cwd=str(plan.folder), additional_env=environment, output="screen")
        agent = node if spec.executable == "agent" else agent
        follower = spec if spec.executable == "follower" else follower
        actions.append(node)

    def on_settled(event, context):
        return [EmitEvent(event=Shutdown(reason="the robot has settled"))]

    def on_exit(event, context):
        if context.is_shutdown:
            return None
        if event.returncode != 0:
            raise RuntimeError(f"{event.action.name} exited with code {event.returncode}")
        if follower is None:  # no robot, or one this launch does not drive
            return [EmitEvent(event=Shutdown(reason="the agent has finished"))]
        # the follower still drives the robot to the last waypoint: stop it once it is there
        waiting = Node(package="bildmacro_ros", executable="settle", name=f"robot_{robot}_settle",
                       namespace=follower.namespace, additional_env=environment, output="screen",
                       parameters=[{"robot_id": robot, "settle_timeout": settle}])
        return [waiting, RegisterEventHandler(OnProcessExit(target_action=waiting,
                                                            on_exit=on_settled))]

    return actions + [RegisterEventHandler(OnProcessExit(target_action=agent, on_exit=on_exit))]


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=launch_setup)])
