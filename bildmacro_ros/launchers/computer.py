# SPDX-License-Identifier: Apache-2.0
"""
`bildmacro robot`: on robot i's computer, start its nodes from a plan folder and see them through.

The pip-install twin of `ros2 launch bildmacro_ros robot.launch.py plan:=PLAN id:=i`: both start
the nodes that the plan lists for robot i (plan_folder.computer_nodes) with the plan's parameters,
from the robot's copy of the folder. It ends when the agent has finished and its robot has reached
its last waypoint (or `settle` seconds have passed), and stops everything on Ctrl-C.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
import sys
import time

from .processes import HANG_TIMEOUT, HangWatch, process_cpu, Supervisor
from ..plan_folder import Plan, read_plan
from ..protocol.outcome import outcome_path, read_outcomes
from ..ros.lifecycle import StopRequests
from ..shared_memory import tidy


@dataclass
class ComputerSummary:
    agent: int
    finished: bool
    rounds: int
    iterations: int
    seconds: float
    interrupted: bool = False
    failure: str | None = None
    arrived: bool | None = None  # None: no robot, or it was not waited for

    def describe(self) -> str:
        status = "interrupted" if self.interrupted else f"FAILED: {self.failure}" \
            if self.failure else "finished" if self.finished else "stopped"
        robot = "" if self.arrived is None else "; robot at its last waypoint" if self.arrived \
            else "; robot NOT at its last waypoint when stopped"
        return f"robot {self.agent}: agent {status} at round {self.rounds}/{self.iterations} " \
               f"after {self.seconds:.1f} s{robot}"


def _wait_arrival(plan: Plan, robot: int, timeout: float, stops: StopRequests) -> bool:
    """Wait until robot_<i>/arrived (the follower's latched word) says True, a timeout or stop."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions

    from ..ros.settle import SettleNode

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = SettleNode(f"robot_{robot}_settle", namespace=plan.namespace or None, context=context,
                      start_parameter_services=False, parameter_overrides=[
                          Parameter("robot_id", value=robot),
                          Parameter("settle_timeout", value=float(timeout))])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        while not stops.requested and not node.settled.done():
            executor.spin_once(timeout_sec=0.05)
        return bool(node.settled.done() and node.settled.result())
    finally:
        node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=context)


def run_computer(plan_dir: Path, robot: int, resume: bool = False, settle: float = 30.0,
                 stream=None, hang_timeout: float = HANG_TIMEOUT) -> ComputerSummary:
    """Start robot `robot`'s nodes from the plan in plan_dir; run them until its agent finishes."""
    stream = stream if stream is not None else sys.stderr
    plan = read_plan(plan_dir)
    nodes = plan.computer_nodes(robot)
    state = plan.robot_state(robot)
    outcome = outcome_path(state / "outcomes", robot)
    outcome.unlink(missing_ok=True)  # this start's outcome, not an earlier one's
    # the processes run in the robot's copy of the folder: every path in its parameters is relative
    supervisor = Supervisor(plan.namespace, plan.environment, plan.params_file(robot),
                            state / "logs", cwd=plan.folder)
    stops = StopRequests().install()
    started = time.monotonic()
    interrupted, failure, arrived = False, None, None
    agent = None
    for spec in nodes:  # before anything drives: a driver's odometry counts from there
        if spec.parameters.get("pose_source") == "wheel_odometry":
            x, y, heading = spec.parameters["initial_poses"]
            print(f"robot {robot}: place it at x = {x:.3f} m, y = {y:.3f} m, heading "
                  f"{math.degrees(heading):.0f} deg ({heading:.3f} rad) in the lab.s frame, and "
                  f"start its driver there: its wheel odometry counts from that pose", file=stream,
                  flush=True)
    try:
        tidy(lambda line: print(line, file=stream, flush=True))
        for spec in nodes:
            is_agent = spec.executable == "agent"
            entry = supervisor.start("agents" if is_agent else "robots", spec,
                                     ["-p", "resume:=true"] if resume and is_agent else [])
            agent = entry if is_agent else agent
        print(f"robot {robot}: started {', '.join(spec.name for spec in nodes)}; logs in "
              f"{state / 'logs'}",
              file=stream, flush=True)
        hangs = HangWatch(hang_timeout)
        while not stops.requested:
            for entry in hangs.hung(supervisor.table, process_cpu, lambda _: outcome.exists()):
                supervisor.kill(entry)
                supervisor.restart(entry)  # from its checkpoint, as --resume
                hangs.restarted(entry)
                print(f"robot {robot}: restarted its agent's process: it had used no CPU for "
                      f"{hang_timeout:g} s (hung in DDS, docs/faults.md)", file=stream, flush=True)
            crashed = supervisor.crashed()
            if crashed is not None:
                failure = f"{crashed.spec.name} exited with code {crashed.process.returncode}; " \
                          f"see {crashed.log}"
                break
            if agent.process.poll() == 0:
                break
            time.sleep(0.1)
        interrupted = stops.requested
        followers = [spec for spec in nodes if spec.executable == "follower"]
        if failure is None and not interrupted and followers:
            arrived = _wait_arrival(plan, robot, settle, stops)
    finally:
        supervisor.stop()
        stops.restore()
    report = read_outcomes(outcome.parent).get(robot)
    return ComputerSummary(robot, bool(report and report.finished),
                           report.rounds if report else -1, int(plan.index["iterations"]),
                           time.monotonic() - started, interrupted, failure, arrived)
