# SPDX-License-Identifier: Apache-2.0
"""The node processes a launcher runs: how each is started, and the table that watches them."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from ..entry import EXECUTABLES
from ..launch_plan import NodeSpec


def require_startable(spec: NodeSpec) -> None:
    """Only this package's nodes can be started without a ROS install."""
    if spec.package != "bildmacro_ros":
        raise ValueError(f"{spec.package}'s {spec.executable} needs a ROS install: run this "
                         "simulator with "
                         "`ros2 launch bildmacro_ros swarm.launch.py simulator:=...`; bildmacro "
                         "swarm runs "
                         f"robots.simulator embedded or none")


def process_command(spec: NodeSpec, namespace: str, params_path: Path,
                    parent: int | None = None) -> list[str]:
    """
    How one node of the plan is started.

    Its entry point, run by this interpreter, with the same --ros-args `ros2 run` would get. With
    `parent`, the node shuts down when that process dies (ros/lifecycle.py: end_with_parent).
    """
    require_startable(spec)
    if spec.executable not in EXECUTABLES:
        raise ValueError(f"{spec.executable} is not an executable of bildmacro_ros")
    program = "import sys; from bildmacro_ros.entry import run; " \
              f"sys.exit(run({spec.executable!r}))"
    if parent is not None:
        program = "from bildmacro_ros.ros.lifecycle import end_with_parent; " \
                  f"end_with_parent({parent}); " + program
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


# seconds the recorder may still take records in after the last agent process exited: an agent
# exits once its last messages are acknowledged, so only samples taken but not yet read are left
ENDED_GRACE = 5.0


class EndWatch:
    """Tell when a run can no longer complete: every agent ended, records still missing."""

    def __init__(self, grace: float = ENDED_GRACE, read=time.monotonic):
        self.grace, self.read = grace, read
        self.since: float | None = None

    def hopeless(self, ended: bool, complete: bool) -> bool:
        """Given whether every agent process has ended and the recording is complete."""
        if not ended or complete:
            self.since = None
            return False
        if self.since is None:
            self.since = self.read()
        return self.read() - self.since >= self.grace


# seconds an agent process may go without using CPU before it counts as hung (`bildmacro swarm
# --hang-timeout`): a live agent's timers alone use 0.09-0.24 s of CPU in that time
HANG_TIMEOUT = 10.0
# CPU seconds in HANG_TIMEOUT that count as alive: a hung process's threads sleep on locks
WORKING = 0.02


class HangWatch:
    """
    Tell which agent processes hang, to be restarted: alive, and no CPU used for `limit` s.

    Fast DDS 2.14's event thread can deadlock on itself, and every thread of the process then
    sleeps for good, at its start or at its next send (docs/faults.md). A live agent never
    sleeps that long: its round timer ticks 20 times a second, and while it waits for discovery
    another 100. A slow start computes. A process whose agents have all finished is left to its
    own teardown bound; a process is restarted at most `tries` times.
    """

    def __init__(self, limit: float, tries: int = 2, read=time.monotonic):
        self.limit, self.tries, self.read = limit, tries, read
        self.idle: dict[int, tuple[float, float]] = {}  # process -> (idle since, CPU s then)
        self.restarts: dict[int, int] = {}

    def hung(self, entries, cpu, finished) -> list[ManagedProcess]:
        """
        Return the hung processes among the launcher's.

        cpu(entry): the CPU seconds its process has used (every thread), None if unknown;
        finished(agent): whether the agent has reported its end.
        """
        now, found = self.read(), []
        for entry in entries:
            key = id(entry)
            if entry.role != "agents" or entry.killed or entry.process.poll() is not None \
                    or all(finished(agent) for agent in entry.agents):
                continue
            used = cpu(entry)
            if used is None:
                continue
            since, before = self.idle.get(key, (now, used))
            if used - before > WORKING:
                since, before = now, used
            self.idle[key] = (since, before)
            if now - since >= self.limit and self.restarts.get(key, 0) < self.tries:
                found.append(entry)
        return found

    def restarted(self, entry: ManagedProcess) -> None:
        """Count a restart; the new process gets the whole limit again."""
        self.restarts[id(entry)] = self.restarts.get(id(entry), 0) + 1
        self.idle.pop(id(entry), None)


def process_cpu(entry: ManagedProcess) -> float | None:
    """Return the CPU seconds a process has used, every thread's (Linux), or None."""
    try:
        fields = Path(f"/proc/{entry.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Supervisor:
    """The table of the processes a swarm runs: start, watch, kill, restart and stop them."""

    def __init__(self, namespace: str, environment: dict, params_path: Path, logs: Path,
                 cwd: Path | None = None):
        self.namespace, self.params_path, self.logs, self.cwd = namespace, params_path, logs, cwd
        self.table: list[ManagedProcess] = []
        self._handles = []
        self.env = dict(os.environ, **environment)

    def _popen(self, spec: NodeSpec, log: Path, extra: list[str]) -> subprocess.Popen:
        handle = open(log, "w")
        self._handles.append(handle)
        return subprocess.Popen(process_command(spec, self.namespace, self.params_path,
                                                parent=os.getpid()) + extra,
                                env={**self.env, **spec.environment}, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.cwd)

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
        """
        Start a killed process again, resuming from its checkpoint.

        It logs to NAME.restarted.log.
        """
        entry.log = self.logs / f"{entry.spec.name}.restarted.log"
        entry.process = self._popen(entry.spec, entry.log, ["-p", "resume:=true"])
        entry.killed = False

    def crashed(self) -> ManagedProcess | None:
        return next((entry for entry in self.table if entry.crashed), None)

    def agents_ended(self) -> bool:
        """Tell whether every agent process has exited, or been killed."""
        return all(entry.process.poll() is not None for entry in self.table
                   if entry.role == "agents")

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


def tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
