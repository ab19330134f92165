# SPDX-License-Identifier: Apache-2.0
"""
`bildmacro swarm`: the launch plan's agent nodes as separate processes over real DDS, recorded.

The ROS-install twin of `ros2 launch bildmacro_ros swarm.launch.py`: both start the nodes that
`launch_plan.plan_swarm` lists, with the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import time

from .processes import (EndWatch, HANG_TIMEOUT, HangWatch, process_cpu, require_startable,
                        Supervisor, tail)
from .session import METHOD, RecorderSession
from .summary import SwarmSummary
from ..core.kernel import prepare_kernel
from ..core.metrics import default_log_every
from ..dds_profiles import DDS_PROFILE_VARIABLES
from ..launch_plan import plan_swarm
from ..progress import Progress
from ..protocol.outcome import outcome_path
from ..protocol.parameters import AGENT_PARAMETERS
from ..ros.lifecycle import StopRequests
from ..run_folder import prepare_swarm_folder, RunWriter
from ..shared_memory import tidy


@dataclass
class Kill:
    """
    Fault injection in `bildmacro swarm`: kill an agent's process, and maybe restart it.

    It kills agent `agent`'s process (SIGKILL: no goodbye) once it has sent round `at_round`,
    and restarts it after `restart_after` seconds (None: never). The restarted agent resumes from
    its checkpoint and catches up with its neighbours.
    """

    agent: int
    at_round: int
    restart_after: float | None = None


def startup_allowance(plan) -> float:
    """
    Return how long an agent's rules may hold its round 0 back: twice its startup_timeout.

    It waits that long for discovery, then as long again for a neighbour never heard past round
    0 before it steps without it (protocol/rounds.py). In 30-process swarms DDS sometimes never
    matched one reader to its writer (docs/speed.md); the run then goes on without that link.
    """
    default = next(spec.default_value for spec in AGENT_PARAMETERS
                   if spec.name == "startup_timeout")
    return 2 * max(float(agent.parameters.get("startup_timeout", default))
                   for agent in plan.agents)


def run_swarm(cfg: dict, base: Path | None, out: Path, init=None, weights=None,
              agents_per_process: int = 1, namespace: str = "", log_every: int | None = None,
              plots: bool = True, progress: bool = True, overwrite: bool = False,
              stall_timeout: float = 60.0, hang_timeout: float = HANG_TIMEOUT, stream=None,
              animation: bool = False, visualiser: bool = False, settle_timeout: float = 30.0,
              kill: Kill | None = None, bag_every_round: bool = False,
              live: tuple[str, int] | None = None) -> SwarmSummary:
    iterations = cfg["iterations"]
    log_every = log_every or default_log_every(iterations)
    # every round's record, for the bag: paced like every record, so none is lost
    plan = plan_swarm(cfg, base, init, weights, namespace, agents_per_process, recorders=1,
                      record_every=1 if bag_every_round else log_every,
                      visualiser=visualiser, run_dir=Path(out).resolve())
    if kill is not None and not 0 <= kill.agent < plan.scenario.agents:
        raise ValueError(f"--kill: there is no agent {kill.agent} (agents are "
                         f"0..{plan.scenario.agents - 1})")
    robots = cfg["robots"]["simulator"] != "none"
    if cfg["robots"]["simulator"] in ("gazebo", "external"):  # their robots come from elsewhere
        raise ValueError(f"robots.simulator {cfg['robots']['simulator']}: bildmacro swarm runs "
                         "embedded or none; run Gazebo with `ros2 launch bildmacro_ros "
                         "swarm.launch.py simulator:=gazebo`, external robots with bildmacro plan")
    for spec in plan.robots:
        require_startable(spec)  # refuse turtlesim before anything is written
    writer = RunWriter(out, plan.scenario, METHOD, overwrite, progress=progress)
    params_path = prepare_swarm_folder(plan, writer.out)
    logs = writer.out / "logs"
    # the recorder's participant, in this process, has the nodes' DDS profile
    os.environ.update({name: value for name, value in plan.environment.items()
                       if name in DDS_PROFILE_VARIABLES})
    session = RecorderSession(plan.scenario, writer, log_every, robots, plan.namespace, live=live)
    recorder = session.recorder
    supervisor = Supervisor(plan.namespace, plan.environment, params_path, logs)
    meter = Progress(f"swarm N={cfg['agents']} ({len(plan.processes)} processes)", iterations,
                     stream, progress)
    # BILDMACRO_KERNEL=numba: compiled here once, so that the nodes load it instead of each
    # compiling it at the same time
    prepare_kernel(plan.scenario.problem, plan.scenario.steps, note=meter.note)
    victim, killed_at, end, hangs = None, None, EndWatch(), HangWatch(hang_timeout)
    restarted: set[int] = set()
    reached = session.watch(kill.agent) if kill is not None else None
    outcomes = writer.out / "outcomes"

    def check() -> str | None:
        """Kill and restart on cue (--kill) or when hung; notice a crash or a lost run."""
        nonlocal victim, killed_at
        for entry in hangs.hung(supervisor.table, process_cpu,
                                lambda agent: outcome_path(outcomes, agent).exists()):
            supervisor.kill(entry)
            for agent in entry.agents:  # the rounds it misses stand in, as for --kill
                recorder.leave(agent)
            supervisor.restart(entry)
            hangs.restarted(entry)
            for agent in entry.agents:
                recorder.rejoin(agent)
            restarted.update(entry.agents)
            meter.note(f"restarted the process of agents {entry.agents}: it had used no CPU for "
                       f"{hang_timeout:g} s (hung in DDS, docs/faults.md)")
        if victim is not None:
            if killed_at is None and reached() >= kill.at_round:
                supervisor.kill(victim)
                killed_at = time.monotonic()
                for agent in victim.agents:
                    recorder.leave(agent)
                meter.note(f"killed agent {kill.agent}'s process (agents {victim.agents}) at "
                           f"round {reached()}")
            elif victim.killed and kill.restart_after is not None \
                    and time.monotonic() - killed_at >= kill.restart_after:
                supervisor.restart(victim)
                for agent in victim.agents:
                    recorder.rejoin(agent)
                meter.note(f"restarted agent {kill.agent}'s process")
                victim = None
        crashed = supervisor.crashed()
        if crashed is not None:
            return (f"{crashed.spec.name} exited with code {crashed.process.returncode}; its log "
                    f"({crashed.log}) ends:\n{tail(crashed.log)}")
        restarting = victim is not None and victim.killed and kill.restart_after is not None
        if end.hopeless(supervisor.agents_ended() and not restarting, recorder.complete):
            return (f"every agent process has ended, and no record came after round "
                    f"{max(recorder.progress, 0)} from agents {recorder.behind[:20]}: their "
                    f"records never reached the recorder; see {logs}")
        return None

    interrupted, failure = False, None
    # Ctrl-C and SIGTERM are counted, not raised, until the data is written: a second or third one
    # must not cut the clean-up short and lose the run (only the figures may be skipped)
    stops = StopRequests().install()
    try:
        tidy(meter.note)
        for spec in plan.robots:  # robots first: a robot exists before its agent's first waypoint
            supervisor.start("robots", spec)
        for spec in plan.processes:
            supervisor.start("agents", spec)
        victim = supervisor.of_agent(kill.agent) if kill is not None else None
        interrupted, failure = session.record(stops, meter, stall_timeout, logs, check,
                                              startup=startup_allowance(plan))
    except KeyboardInterrupt:  # only before the handlers were installed
        interrupted = True
    finally:
        if failure is None and not interrupted:
            supervisor.wait_agents(timeout=10)
            if robots:
                session.settle(settle_timeout, stops)
        supervisor.stop()
    meter.update(max(recorder.progress, 0), force=True)
    try:
        return session.close(plots, animation, stops, agents=cfg["agents"],
                             processes=len(plan.processes), interrupted=interrupted,
                             failure=failure, killed=sorted(a for entry in supervisor.table
                                                            if entry.killed for a in entry.agents),
                             restarted=sorted(restarted))
    finally:
        stops.restore()
