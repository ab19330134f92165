# SPDX-License-Identifier: Apache-2.0
"""How a run went, as data: one summary for `bildmacro swarm` and `bildmacro record` alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
from pathlib import Path

from ..core.kernel import kernel_choice
from ..protocol.outcome import AgentOutcome


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
    # rounds whose row was written with stand-ins -> the agents whose record of that round never
    # came
    stood_in: dict[int, list[int]] = field(default_factory=dict)
    # largest distance between a robot's measured position and x_i^K
    robot_error: float | None = None
    robot_kl: float | None = None  # KL of the robots' measured positions at the end
    # (bodies, embedded simulator) pairs of bodies that came to overlap
    contacts: int | None = None
    # the smallest distance between two robots' centres, at the simulator's rate
    closest: float | None = None
    tolerance: float = 0.0
    # agents killed on purpose (--kill) and not restarted
    killed: list[int] = field(default_factory=list)
    # agents whose process the launcher restarted because it hung (no CPU used for a while)
    restarted: list[int] = field(default_factory=list)
    # agents the recorder lost (gone to the end): the round of their last record, which stands in
    stale: dict[int, int] = field(default_factory=dict)
    outcomes: dict[int, AgentOutcome] = field(default_factory=dict)  # what each agent reported
    live: str | None = None  # the live view's address (--live), if it ran
    # the step the agents ran (each agent's report; numpy, numba, or both where some fell back)
    kernel: str = field(default_factory=kernel_choice)

    @property
    def finished(self) -> list[int]:
        """Agents whose node finished every round."""
        return sorted(i for i, outcome in self.outcomes.items() if outcome.finished)

    @property
    def late_rounds(self) -> int:
        """Count the agent-rounds stepped without a late or dead neighbour's message."""
        return sum(outcome.late_rounds for outcome in self.outcomes.values())

    @property
    def writers_seen(self) -> dict[str, dict[str, int]]:
        """Say, per agent, what it saw of its neighbours' writers (impostors, hand-overs)."""
        return {str(i): counts for i, outcome in sorted(self.outcomes.items())
                if (counts := outcome.sightings_count())}

    @property
    def survivors_finished(self) -> bool:
        return set(range(self.agents)) - set(self.killed) <= set(self.finished)

    def write(self) -> Path:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__
                if name not in ("out", "outcomes")}
        data.update(finished=self.finished, late_rounds=self.late_rounds,
                    writers_seen=self.writers_seen,
                    outcomes={str(i): asdict(outcome) for i,
                              outcome in sorted(self.outcomes.items())})
        path = self.out / "summary.json"
        path.write_text(json.dumps(data, indent=1))
        return path

    def describe(self) -> str:
        status = "interrupted" if self.interrupted else f"FAILED: {self.failure}" \
            if self.failure else "finished"
        rate = self.iterations / self.seconds if self.seconds > 0 else float("nan")
        what = f"swarm of {self.agents} agents in {self.processes} processes" \
            if self.processes else f"recording of a swarm of {self.agents} agents"
        return (f"{what} {status} after "
                f"{self.iterations}/{self.requested} rounds in {self.seconds:.1f} s ({rate:,.1f} "
                "rounds/s); "
                f"final KL {self.final_kl:.4f}; outputs in {self.out}"
                + (f"; step: {self.kernel} (BILDMACRO_KERNEL)" if self.kernel != "numpy" else "")
                + (f"\nrobots: measured positions within {self.robot_error:.4f} m of x_i "
                   "(tolerance "
                   f"{self.tolerance:g} m); KL of the robots' positions {self.robot_kl:.4f}"
                   if self.robot_error is not None else "")
                + (f"\nbodies: {self.contacts} contacts; the closest two robots came was "
                   f"{self.closest:.4f} m"
                   if self.contacts is not None else "")
                + (f"\nfaults: {len(self.finished)}/{self.agents} agents finished"
                   + (f" (killed: {self.killed})" if self.killed else "")
                   + f"; {self.late_rounds} agent-rounds stepped without a late or dead "
                     "neighbour's message"
                   if self.killed or self.late_rounds else "")
                + (f"\nwarning: the processes of agents {self.restarted} were restarted: "
                   "they hung in DDS (docs/faults.md)" if self.restarted else "")
                + (f"\nwarning: {self.missing_rows} metrics rows of the rounds reached could not "
                   "be written"
                   if self.missing_rows else "")
                + (f"\nwarning: {len(self.stood_in)} rounds recorded with stand-ins (agents "
                   f"{sorted({i for v in self.stood_in.values() for i in v})} missed records; "
                   "metrics.csv's "
                   f"stand_ins column)" if self.stood_in else "")
                + (f"\nwarning: a second writer or two different messages for one round on a "
                   f"neighbour's topic (an impostor, docs/security.md): {self.writers_seen}"
                   if any(impostor_like(c) for c in self.writers_seen.values()) else "")
                + (f"\nwarning: agents {sorted(self.stale)} were not heard to the end: the final "
                   "state holds their "
                   f"last records (rounds {sorted(set(self.stale.values()))})" if self.stale
                   else ""))


def impostor_like(counts: dict[str, int]) -> bool:
    """
    Tell whether an agent's sightings show more than restarts.

    A restart is a foreign writer, then a hand-over; more is a second writer that left while the
    first stayed, one still there at the end, or a forgery.
    """
    return bool(counts.get("alone") or counts.get("equivocation")
                or counts.get("foreign", 0) > counts.get("handed_over", 0))
