# SPDX-License-Identifier: Apache-2.0
"""What an agent reports when it stops, as data: rounds, late rounds, deaths, catch-ups, drops."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path

from ..core.kernel import kernel_in_use


def process_cpus() -> list[int]:
    """Return the CPUs this process may run on (empty where the platform does not say)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def process_scheduling() -> str:
    """Return this process's scheduling policy: batch, normal, other, or unknown."""
    if not hasattr(os, "sched_getscheduler"):
        return "unknown"
    names = {os.SCHED_BATCH: "batch", os.SCHED_OTHER: "normal"}
    return names.get(os.sched_getscheduler(0), "other")


@dataclass
class AgentOutcome:
    agent: int
    finished: bool  # stepped every round of its budget
    rounds: int  # the round it reached
    iterations: int  # its budget K
    late_rounds: int = 0  # rounds stepped without a late or dead neighbour's message
    declared_dead: list[dict] = field(default_factory=list)  # {neighbour, round, silent}
    back: list[dict] = field(default_factory=list)  # {neighbour, round}: heard again after death
    catch_ups: list[dict] = field(default_factory=list)  # {from_round, to_round}
    resumed_from: int | None = None  # the checkpoint's round, for a restarted agent
    dropped: dict[str, int] = field(default_factory=dict)  # messages dropped, by reason
    # what it saw of its neighbours' writers (protocol/writers.py): {kind (foreign, alone,
    # handed_over, equivocation), neighbour, round, writers, message_round}
    sightings: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # from round 0 on
    rounds_per_second: float = float("nan")  # after round 1 (round 0 waits for the slowest start)
    # its process's CPU time (every thread, DDS's too) over the same rounds; the agents of one
    # process (an agent group) share it
    cpu_seconds: float = float("nan")
    kernel: str = field(default_factory=kernel_in_use)  # the step that ran: numpy or numba
    # where its process ran (scheduling.schedule_agent): the CPUs it was allowed, and its policy
    cpus: list[int] = field(default_factory=process_cpus)
    scheduling: str = field(default_factory=process_scheduling)

    def finished_line(self) -> str:
        """Say how the agent's run went, for its last log line."""
        seen = f"; writers seen: {self.sightings_count()}" if self.sightings else ""
        return (f"agent {self.agent}: finished {self.rounds} iterations in {self.seconds:.1f} s "
                f"({self.rounds_per_second:.1f} rounds/s after round 1); {self.late_rounds} "
                f"rounds stepped late; dropped messages: {self.dropped or 'none'}{seen}")

    def sightings_count(self) -> dict[str, int]:
        """Count the writer sightings by kind (foreign, alone, handed_over, equivocation)."""
        counts: dict[str, int] = {}
        for s in self.sightings:
            counts[s["kind"]] = counts.get(s["kind"], 0) + 1
        return counts

    def write(self, folder: str | Path) -> Path:
        """agent_<i>.json in folder, written whole or not at all."""
        path = outcome_path(folder, self.agent)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, allow_nan=True))
        os.replace(tmp, path)
        return path


def outcome_path(folder: str | Path, agent: int) -> Path:
    return Path(folder) / f"agent_{agent}.json"


def read_outcomes(folder: str | Path) -> dict[int, AgentOutcome]:
    """Every agent_<i>.json in folder, by agent id (an unreadable file is left out)."""
    out = {}
    for path in sorted(Path(folder).glob("agent_*.json")):
        try:
            outcome = AgentOutcome(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        out[outcome.agent] = outcome
    return out
