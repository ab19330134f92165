# SPDX-License-Identifier: Apache-2.0
"""
`bildmacro swarm`: the launch plan's agent nodes as separate processes over real DDS, recorded.

The ROS-install twin of `ros2 launch bildmacro_ros swarm.launch.py`: both start the nodes that
`launch_plan.plan_swarm` lists, with the same parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from .core.metrics import default_log_every
from .launch_plan import EXECUTABLES, NodeSpec, plan_swarm
from .progress import Progress
from .protocol.outcome import AgentOutcome, read_outcomes
from .recording import METHOD, Recording
from .ros.lifecycle import StopRequests
from .run_folder import RunWriter, write_swarm_inputs


@dataclass
class SwarmSummary:
    """How a swarm run went, as data: also written to the run folder as summary.json."""

    out: Path
    agents: int
    processes: int
    requested: int
    seconds: float
    iterations: int = 0  # rounds every agent completed
    final_kl: float = float("nan")
    interrupted: bool = False
    failure: str | None = None
    dropped: dict | None = None  # records the recorder dropped, by reason
    missing_rows: int = 0  # metrics rows of the rounds reached that could not be written
    # rounds whose row was written with stand-ins -> the agents whose record of that round never came
    stood_in: dict[int, list[int]] = field(default_factory=dict)
    robot_error: float | None = None  # largest distance between a robot's measured position and x_i^K
    robot_kl: float | None = None  # KL of the robots' measured positions at the end
    contacts: int | None = None  # (bodies, embedded simulator) pairs of bodies that came to overlap
    closest: float | None = None  # the smallest distance between two robots' centres, at the simulator's rate
    tolerance: float = 0.0
    killed: list[int] = field(default_factory=list)  # agents killed on purpose (--kill) and not restarted
    # agents the recorder lost (gone to the end): the round of their last record, which stands in
    stale: dict[int, int] = field(default_factory=dict)
    outcomes: dict[int, AgentOutcome] = field(default_factory=dict)  # what each agent reported

    @property
    def finished(self) -> list[int]:
        """Agents whose node finished every round."""
        return sorted(i for i, outcome in self.outcomes.items() if outcome.finished)

    @property
    def late_rounds(self) -> int:
        """Count the rounds, summed over agents, stepped without a late or dead neighbour's message."""
        return sum(outcome.late_rounds for outcome in self.outcomes.values())

    @property
    def survivors_finished(self) -> bool:
        return set(range(self.agents)) - set(self.killed) <= set(self.finished)

    def write(self) -> Path:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in ("out", "outcomes")}
        data.update(finished=self.finished, late_rounds=self.late_rounds,
                    outcomes={str(i): asdict(outcome) for i, outcome in sorted(self.outcomes.items())})
        path = self.out / "summary.json"
        path.write_text(json.dumps(data, indent=1))
        return path

    def describe(self) -> str:
        status = "interrupted" if self.interrupted else f"FAILED: {self.failure}" if self.failure else "finished"
        rate = self.iterations / self.seconds if self.seconds > 0 else float("nan")
        what = f"swarm of {self.agents} agents in {self.processes} processes" if self.processes else \
            f"recording of a swarm of {self.agents} agents"
        return (f"{what} {status} after "
                f"{self.iterations}/{self.requested} rounds in {self.seconds:.1f} s ({rate:,.1f} rounds/s); "
                f"final KL {self.final_kl:.4f}; outputs in {self.out}"
                + (f"\nrobots: measured positions within {self.robot_error:.4f} m of x_i (tolerance "
                   f"{self.tolerance:g} m); KL of the robots' positions {self.robot_kl:.4f}"
                   if self.robot_error is not None else "")
                + (f"\nbodies: {self.contacts} contacts; the closest two robots came was {self.closest:.4f} m"
                   if self.contacts is not None else "")
                + (f"\nfaults: {len(self.finished)}/{self.agents} agents finished"
                   + (f" (killed: {self.killed})" if self.killed else "")
                   + f"; {self.late_rounds} agent-rounds stepped without a late or dead neighbour's message"
                   if self.killed or self.late_rounds else "")
                + (f"\nwarning: {self.missing_rows} metrics rows of the rounds reached could not be written"
                   if self.missing_rows else "")
                + (f"\nwarning: {len(self.stood_in)} rounds recorded with stand-ins (agents "
                   f"{sorted({i for v in self.stood_in.values() for i in v})} missed records; metrics.csv's "
                   f"stand_ins column)" if self.stood_in else "")
                + (f"\nwarning: agents {sorted(self.stale)} were not heard to the end: the final state holds their "
                   f"last records (rounds {sorted(set(self.stale.values()))})" if self.stale else ""))


def require_startable(spec: NodeSpec) -> None:
    """Only this package's nodes can be started without a ROS install."""
    if spec.package != "bildmacro_ros":
        raise ValueError(f"{spec.package}'s {spec.executable} needs a ROS install: run this simulator with "
                         f"`ros2 launch bildmacro_ros swarm.launch.py simulator:=...`; bildmacro swarm runs "
                         f"robots.simulator embedded or none")


@dataclass
class Kill:
    """
    Fault injection in `bildmacro swarm`: kill an agent's process, and maybe restart it.

    It kills agent `agent`'s process (SIGKILL: no goodbye) once it has recorded round `at_round`, and
    restarts it after `restart_after` seconds (None: never). The restarted agent resumes from its
    checkpoint and catches up with its neighbours.
    """

    agent: int
    at_round: int
    restart_after: float | None = None


def process_command(spec: NodeSpec, namespace: str, params_path: Path, parent: int | None = None) -> list[str]:
    """
    How one node of the plan is started.

    Its entry point, run by this interpreter, with the same --ros-args `ros2 run` would get. With
    `parent`, the node shuts down when that process dies (ros/lifecycle.py: end_with_parent).
    """
    require_startable(spec)
    module, function = EXECUTABLES[spec.executable].split(":")
    program = f"import sys; from {module} import {function}; sys.exit({function}())"
    if parent is not None:
        program = f"from bildmacro_ros.ros.lifecycle import end_with_parent; end_with_parent({parent}); " + program
    cmd = [sys.executable, "-c", program, "--ros-args", "--params-file", str(params_path)]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    if spec.executable != "agent_group":
        cmd += ["-r", f"__node:={spec.name}"]
    return cmd + spec.ros_arguments


def agents_of(spec: NodeSpec) -> list[int]:
    """Return the agents a process of the plan runs (none for a robot node)."""
    if spec.executable == "agent_group":
        return list(spec.parameters["agent_ids"])
    return [spec.parameters["agent_id"]] if spec.executable == "agent" else []


@dataclass
class ManagedProcess:
    """One node process the launcher runs: what it is, how it runs, where it logs."""

    role: str  # robots or agents
    spec: NodeSpec
    process: subprocess.Popen
    log: Path
    killed: bool = False  # on purpose (--kill), and not restarted

    @property
    def agents(self) -> list[int]:
        return agents_of(self.spec)

    @property
    def crashed(self) -> bool:
        return not self.killed and self.process.poll() not in (None, 0)


class Supervisor:
    """The table of the processes a swarm runs: start, watch, kill, restart and stop them."""

    def __init__(self, namespace: str, environment: dict, params_path: Path, logs: Path, cwd: Path | None = None):
        self.namespace, self.params_path, self.logs, self.cwd = namespace, params_path, logs, cwd
        self.table: list[ManagedProcess] = []
        self._handles = []
        self.env = dict(os.environ, **environment)

    def _popen(self, spec: NodeSpec, log: Path, extra: list[str]) -> subprocess.Popen:
        handle = open(log, "w")
        self._handles.append(handle)
        return subprocess.Popen(process_command(spec, self.namespace, self.params_path, parent=os.getpid()) + extra,
                                env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=self.cwd)

    def start(self, role: str, spec: NodeSpec, extra: list[str] = ()) -> ManagedProcess:
        log = self.logs / f"{spec.name}.log"
        entry = ManagedProcess(role, spec, self._popen(spec, log, list(extra)), log)
        self.table.append(entry)
        return entry

    def of_agent(self, agent: int) -> ManagedProcess:
        return next(entry for entry in self.table if agent in entry.agents)

    def kill(self, entry: ManagedProcess) -> None:
        os.killpg(entry.process.pid, signal.SIGKILL)
        entry.process.wait()
        entry.killed = True

    def restart(self, entry: ManagedProcess) -> None:
        """Start a killed process again, resuming from its checkpoint; it logs to NAME.restarted.log."""
        entry.log = self.logs / f"{entry.spec.name}.restarted.log"
        entry.process = self._popen(entry.spec, entry.log, ["-p", "resume:=true"])
        entry.killed = False

    def crashed(self) -> ManagedProcess | None:
        return next((entry for entry in self.table if entry.crashed), None)

    def wait_agents(self, timeout: float) -> None:
        """Finished agents exit once their last messages are acknowledged."""
        deadline = time.monotonic() + timeout
        for entry in self.table:
            if entry.role == "agents" and not entry.killed:
                try:
                    entry.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass

    def stop(self, grace: float = 5.0) -> None:
        """SIGINT (the nodes shut down cleanly), then SIGKILL for any that linger."""
        procs = [entry.process for entry in self.table]
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
        for handle in self._handles:
            handle.close()


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_swarm(cfg: dict, base: Path | None, out: Path, init=None, weights=None, agents_per_process: int = 1,
              namespace: str = "", log_every: int | None = None, plots: bool = True, progress: bool = True,
              overwrite: bool = False, stall_timeout: float = 60.0, stream=None, animation: bool = False,
              visualiser: bool = False, settle_timeout: float = 30.0, kill: Kill | None = None,
              bag_every_round: bool = False) -> SwarmSummary:
    iterations = cfg["iterations"]
    log_every = log_every or default_log_every(iterations)
    # every round's record, for the bag: paced like every record, so none is lost
    plan = plan_swarm(cfg, base, init, weights, namespace, agents_per_process, monitors=1,
                      record_every=1 if bag_every_round else log_every,
                      visualiser=visualiser, run_dir=Path(out).resolve())
    if kill is not None and not 0 <= kill.agent < plan.scenario.agents:
        raise ValueError(f"--kill: there is no agent {kill.agent} (agents are 0..{plan.scenario.agents - 1})")
    robots = cfg["robots"]["simulator"] != "none"
    for spec in plan.robots:
        require_startable(spec)  # refuse turtlesim before anything is written
    writer = RunWriter(out, plan.scenario, METHOD, overwrite, progress=progress)
    params_path = write_swarm_inputs(plan, writer.out)
    logs = writer.out / "logs"

    recording = Recording(plan.scenario, writer, log_every, robots, plan.namespace)
    recorder = recording.recorder
    supervisor = Supervisor(plan.namespace, plan.environment, params_path, logs)
    meter = Progress(f"swarm N={cfg['agents']} ({len(plan.processes)} processes)", iterations, stream, progress)
    started = time.monotonic()
    interrupted, failure = False, None
    victim, killed_at = None, None
    # Ctrl-C and SIGTERM are counted, not raised, until the data is written: a second or third one
    # must not cut the clean-up short and lose the run (only the figures may be skipped)
    stops = StopRequests().install()
    try:
        for spec in plan.robots:  # robots first: a robot exists before its agent's first waypoint
            supervisor.start("robots", spec)
        for spec in plan.processes:
            supervisor.start("agents", spec)
        victim = supervisor.of_agent(kill.agent) if kill is not None else None
        while True:
            meter.update(max(recording.spin(stops), 0))
            if stops.requested:
                interrupted = True
                break
            if victim is not None:
                if killed_at is None and recorder.latest[kill.agent] >= kill.at_round:
                    supervisor.kill(victim)
                    killed_at = time.monotonic()
                    for agent in victim.agents:
                        recorder.leave(agent)
                    meter.note(f"killed agent {kill.agent}'s process (agents {victim.agents}) at round "
                               f"{recorder.latest[kill.agent]}")
                elif victim.killed and kill.restart_after is not None \
                        and time.monotonic() - killed_at >= kill.restart_after:
                    supervisor.restart(victim)
                    for agent in victim.agents:
                        recorder.rejoin(agent)
                    meter.note(f"restarted agent {kill.agent}'s process")
                    victim = None
            crashed = supervisor.crashed()
            if crashed is not None:
                failure = (f"{crashed.spec.name} exited with code {crashed.process.returncode}; its log "
                           f"({crashed.log}) ends:\n{_tail(crashed.log)}")
                break
            if recorder.complete:
                break
            failure = recording.stalled(stall_timeout, logs)
            if failure:
                break
    except KeyboardInterrupt:  # only before the handlers were installed
        interrupted = True
    finally:
        if failure is None and not interrupted:
            supervisor.wait_agents(timeout=10)
            if robots:
                recording.settle(cfg, settle_timeout, stops)
        supervisor.stop()
    meter.update(max(recorder.progress, 0), force=True)
    try:
        result = recording.finish(plots, animation, stops)
    finally:
        stops.restore()
    summary = SwarmSummary(out=writer.out, agents=cfg["agents"], processes=len(plan.processes), requested=iterations,
                           seconds=time.monotonic() - started, interrupted=interrupted, failure=failure,
                           tolerance=cfg["robots"]["tolerance"],
                           killed=sorted(a for entry in supervisor.table if entry.killed for a in entry.agents),
                           outcomes=read_outcomes(writer.out / "outcomes"), **result)
    summary.write()
    return summary
