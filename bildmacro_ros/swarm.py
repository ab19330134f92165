"""`bildmacro swarm`: the launch plan's agent nodes as separate processes over real DDS, recorded.

The ROS-install twin of `ros2 launch bildmacro_ros swarm.launch.py`: both start the nodes that
`launch_plan.plan_swarm` lists, with the same parameters.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from .launch_plan import EXECUTABLES, NodeSpec, SwarmPlan, params_file_content, plan_swarm, stop_tolerance
from .core.metrics import default_log_every
from .simulate import Progress, RunWriter

METHOD = "distributed over DDS"


@dataclass
class SwarmSummary:
    out: Path
    agents: int
    processes: int
    iterations: int  # rounds every agent completed
    requested: int
    final_kl: float
    seconds: float
    interrupted: bool = False
    failure: str | None = None
    dropped: dict | None = None
    missing_rows: int = 0
    robot_error: float | None = None  # largest distance between a robot's measured position and x_i^K
    robot_kl: float | None = None  # KL of the robots' measured positions at the end
    tolerance: float = 0.0
    finished: list[int] | None = None  # agents whose node finished every round
    killed: list[int] | None = None  # agents killed on purpose (--kill) and not restarted
    late_rounds: int = 0  # rounds, summed over agents, stepped without a late or dead neighbour's message

    @property
    def survivors_finished(self) -> bool:
        expected = set(range(self.agents)) - set(self.killed or ())
        return self.finished is not None and expected <= set(self.finished)

    def describe(self) -> str:
        status = "interrupted" if self.interrupted else f"FAILED: {self.failure}" if self.failure else "finished"
        rate = self.iterations / self.seconds if self.seconds > 0 else float("nan")
        return (f"swarm of {self.agents} agents in {self.processes} processes {status} after "
                f"{self.iterations}/{self.requested} rounds in {self.seconds:.1f} s ({rate:,.1f} rounds/s); "
                f"final KL {self.final_kl:.4f}; outputs in {self.out}"
                + (f"\nrobots: measured positions within {self.robot_error:.4f} m of x_i (tolerance "
                   f"{self.tolerance:g} m); KL of the robots' positions {self.robot_kl:.4f}"
                   if self.robot_error is not None else "")
                + (f"\nfaults: {len(self.finished or ())}/{self.agents} agents finished"
                   + (f" (killed: {self.killed})" if self.killed else "")
                   + f"; {self.late_rounds} agent-rounds stepped without a late or dead neighbour's message"
                   if self.killed or self.late_rounds else "")
                + (f"\nwarning: the recorder missed {self.missing_rows} metrics rows (it fell behind)"
                   if self.missing_rows and not (self.interrupted or self.failure) else ""))


def require_startable(spec: NodeSpec) -> None:
    """Only this package's nodes can be started without a ROS install."""
    if spec.package != "bildmacro_ros":
        raise ValueError(f"{spec.package}'s {spec.executable} needs a ROS install: run this simulator with "
                         f"`ros2 launch bildmacro_ros swarm.launch.py simulator:=...`; bildmacro swarm runs "
                         f"robots.simulator embedded or none")


def _command(spec: NodeSpec, plan: SwarmPlan, params_path: Path, checkpoints: Path) -> list[str]:
    cmd = process_command(spec, plan, params_path, parent=os.getpid())
    return cmd + ["-p", f"checkpoint_dir:={checkpoints}"] if spec.executable.startswith("agent") else cmd


def process_command(spec: NodeSpec, plan: SwarmPlan, params_path: Path, parent: int | None = None) -> list[str]:
    """How one node of the plan is started: its entry point, run by this interpreter, with the
    same --ros-args `ros2 run` would get. With `parent`, the node shuts down when that process
    dies (ros/common.py: end_with_parent)."""
    require_startable(spec)
    module, function = EXECUTABLES[spec.executable].split(":")
    program = f"import sys; from {module} import {function}; sys.exit({function}())"
    if parent is not None:
        program = f"from bildmacro_ros.ros.common import end_with_parent; end_with_parent({parent}); " + program
    cmd = [sys.executable, "-c", program, "--ros-args", "--params-file", str(params_path)]
    if plan.namespace:
        cmd += ["-r", f"__ns:={plan.namespace}"]
    if spec.executable != "agent_group":
        cmd += ["-r", f"__node:={spec.name}"]
    else:
        cmd += ["-p", f"agent_ids:={spec.parameters['agent_ids']}"]
    return cmd


@dataclass
class Kill:
    """Fault injection in `bildmacro swarm`: kill agent `agent`'s process (SIGKILL: no goodbye)
    once it has recorded round `at_round`; restart it after `restart_after` seconds (None: never).
    The restarted agent resumes from its checkpoint and catches up with its neighbours."""

    agent: int
    at_round: int
    restart_after: float | None = None


def _agents_of(spec: NodeSpec) -> list[int]:
    return list(spec.parameters.get("agent_ids", [spec.parameters.get("agent_id")]))


def _process_of(plan: SwarmPlan, agent: int) -> int:
    for n, spec in enumerate(plan.processes):
        if agent in _agents_of(spec):
            return n
    raise ValueError(f"--kill: there is no agent {agent} (agents are 0..{plan.scenario.agents - 1})")


def _stop(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
    """SIGINT (the nodes shut down cleanly), then SIGKILL for any that linger."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_swarm(cfg: dict, base: Path | None, out: Path, init=None, weights=None, agents_per_process: int = 1,
              namespace: str = "", log_every: int | None = None, plots: bool = True, progress: bool = True,
              overwrite: bool = False, stall_timeout: float = 60.0, stream=None, animation: bool = False,
              visualiser: bool = False, settle_timeout: float = 30.0, kill: Kill | None = None) -> SwarmSummary:
    iterations = cfg["iterations"]
    log_every = log_every or default_log_every(iterations)
    plan = plan_swarm(cfg, base, init, weights, namespace, agents_per_process, monitors=1, record_every=log_every,
                      visualiser=visualiser)
    victim = _process_of(plan, kill.agent) if kill is not None else None
    robots = cfg["robots"]["simulator"] != "none"
    for spec in plan.robots:
        require_startable(spec)  # refuse turtlesim before anything is written
    writer = RunWriter(out, plan.scenario, METHOD, overwrite)
    params_path = writer.out / "agents.params.yaml"
    params_path.write_text(params_file_content(plan))
    logs = writer.out / "logs"
    logs.mkdir(exist_ok=True)
    checkpoints = writer.out / "checkpoints"  # what a restarted agent resumes from
    shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir()

    from .ros.monitor import MonitorNode  # rclpy-heavy; only when a swarm really starts

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C is ours to handle
    monitor = MonitorNode(plan.scenario, writer, log_every, context=context, robots=robots,
                          node_name="bildmacro_monitor", namespace=plan.namespace or None)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(monitor)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs, handles = [], []
    meter = Progress(f"swarm N={cfg['agents']} ({len(plan.processes)} processes)", iterations, stream, progress)
    started = time.monotonic()
    interrupted, failure = False, None
    killed_at, killed = None, set()  # process indices (into procs) killed on purpose
    try:
        nodes = plan.robots + plan.processes  # robots first: a robot exists before its agent's first waypoint
        for spec in nodes:
            handle = open(logs / f"{spec.name}.log", "w")
            handles.append(handle)
            procs.append(subprocess.Popen(_command(spec, plan, params_path, checkpoints), env=env, stdout=handle,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        last_progress, last_change = -2, time.monotonic()
        while True:
            # drain messages for a while between housekeeping passes: the recorder shares two
            # cores with the agents, and per-message bookkeeping would slow the whole swarm
            until = time.monotonic() + 0.1
            while time.monotonic() < until and not monitor.recorder.complete:
                executor.spin_once(timeout_sec=0.02)
            done = monitor.recorder.progress
            if done != last_progress:
                last_progress, last_change = done, time.monotonic()
            meter.update(max(done, 0))
            if victim is not None:
                index, spec = len(plan.robots) + victim, plan.processes[victim]
                if killed_at is None and monitor.recorder.latest[kill.agent] >= kill.at_round:
                    os.killpg(procs[index].pid, signal.SIGKILL)
                    procs[index].wait()
                    killed_at, victims = time.monotonic(), _agents_of(spec)
                    killed.add(index)
                    for agent in victims:
                        monitor.recorder.leave(agent)
                    meter.note(f"killed agent {kill.agent}'s process (agents {victims}) at round "
                               f"{monitor.recorder.latest[kill.agent]}")
                elif (index in killed and kill.restart_after is not None
                      and time.monotonic() - killed_at >= kill.restart_after):
                    handles.append(open(logs / f"{spec.name}.restarted.log", "w"))
                    procs[index] = subprocess.Popen(_command(spec, plan, params_path, checkpoints) + [
                        "-p", "resume:=true"], env=env, stdout=handles[-1], stderr=subprocess.STDOUT,
                        start_new_session=True)
                    killed.discard(index)
                    for agent in _agents_of(spec):
                        monitor.recorder.rejoin(agent)
                    meter.note(f"restarted agent {kill.agent}'s process")
                    victim = None
            crashed = [(spec, p) for n, (spec, p) in enumerate(zip(nodes, procs))
                       if n not in killed and p.poll() not in (None, 0)]
            if crashed:
                spec, proc = crashed[0]
                failure = (f"{spec.name} exited with code {proc.returncode}; its log "
                           f"({logs / (spec.name + '.log')}) ends:\n{_tail(logs / (spec.name + '.log'))}")
                break
            if monitor.recorder.complete:
                break
            if time.monotonic() - last_change > stall_timeout:
                behind = [i for i, k in enumerate(monitor.recorder.latest) if k == monitor.recorder.latest.min()]
                failure = (f"no progress for {stall_timeout:.0f} s at round {max(done, 0)}; agents still at that "
                           f"round: {behind[:20]}; see {logs}")
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if failure is None and not interrupted:
            for proc in procs[len(plan.robots):]:  # finished agents exit once their last message is acked
                if proc.poll() is not None:
                    continue
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            if robots:
                _settle(executor, monitor, stop_tolerance(cfg), settle_timeout)
        _stop(procs)
        for handle in handles:
            handle.close()
    meter.update(max(monitor.recorder.progress, 0), force=True)
    k, kl, _ = monitor.finish(plots, animation)
    robot_error = robot_kl = None
    if robots and getattr(monitor, "robots", None) is not None and len(monitor.robots["time"]):
        robot_error, robot_kl = float(np.nanmax(monitor.robots["error"])), float(monitor.robots["final_kl"])
    dropped = dict(monitor.dropped)
    missing = len(monitor.recorder.missing_rows)
    monitor.destroy_node()
    executor.shutdown()
    rclpy.try_shutdown(context=context)
    finished, late_rounds = _agent_outcomes(logs, cfg["agents"])
    return SwarmSummary(out=writer.out, agents=cfg["agents"], processes=len(plan.processes), iterations=max(k, 0),
                        requested=iterations, final_kl=kl, seconds=time.monotonic() - started,
                        interrupted=interrupted, failure=failure, dropped=dropped,
                        missing_rows=missing, robot_error=robot_error, robot_kl=robot_kl,
                        tolerance=cfg["robots"]["tolerance"], finished=finished,
                        killed=sorted(a for n in killed for a in _agents_of(plan.processes[n - len(plan.robots)])),
                        late_rounds=late_rounds)


def _agent_outcomes(logs: Path, agents: int) -> tuple[list[int], int]:
    """Which agents logged that they finished, and how many rounds they stepped late (from the logs)."""
    finished, late = set(), 0
    for path in logs.glob("*.log"):
        text = path.read_text(errors="replace")
        for i in range(agents):
            if f"agent {i}: finished " in text:
                finished.add(i)
        late += sum(int(n) for n in re.findall(r"; (\d+) rounds stepped late", text))
    return sorted(finished), late


def _settle(executor, monitor, stopped_within: float, timeout: float) -> None:
    """After the last round, let the robots catch up with their last waypoints (they may run
    behind the algorithm) until each has stopped there, or timeout passes."""
    k, arrays = monitor.recorder.final()
    if k < 0:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        error = monitor.track.error(arrays["x"])
        if np.all(error <= stopped_within):
            break
    monitor.track.sample(monitor.get_clock().now().nanoseconds * 1e-9, force=True)  # the settled poses
