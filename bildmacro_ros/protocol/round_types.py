# SPDX-License-Identifier: Apache-2.0
"""What the round rules (protocol/rounds.py) follow and answer: settings, actions, records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .wire import NeighbourState


@dataclass(frozen=True)
class RoundRules:
    """The settings the rules depend on (the config's faults section, and the node's timings)."""

    deadline: float = 2.0  # seconds a round waits for a late neighbour; 0: for ever
    late_policy: str = "drop"
    dead_after: int = 3  # deadlines of silence before a neighbour is declared dead
    startup_timeout: float = 30.0  # how long round 0's neighbours may take to start
    republish_period: float = 30.0  # re-send period without a deadline

    @property
    def tick(self) -> float:
        """Return how often the node must tick: often enough that a longer gap is a stop."""
        return min(self.deadline / 4, 0.05) if self.deadline > 0 else self.republish_period / 2

    @property
    def resend_period(self) -> float:
        """
        Return how often a waiting agent re-sends its last two rounds.

        With a deadline, every half deadline: the heartbeat by which its neighbours tell it from a
        dead one.
        """
        return min(self.republish_period,
                   self.deadline / 2) if self.deadline > 0 else self.republish_period


@dataclass
class Neighbour:
    """What agent i knows of in-neighbour j. Times are on the controller's running clock."""

    agent: int
    weight: float
    heard_at: float  # its last message, of any round
    reached_at: float  # when its newest round first arrived
    newest: int = -1  # the newest plausible round heard from it
    # its newest message used in a step (reuse stands it in)
    last_used: NeighbourState | None = None
    dead: bool = False


@dataclass(frozen=True)
class Wait:
    reason: str  # not_started, neighbours, robot, recorder, finished


@dataclass(frozen=True)
class Step:
    """Step round k with these consensus inputs: a_ii, a_ij and the messages they weigh."""

    k: int
    self_weight: float
    weights: np.ndarray
    rows: list[NeighbourState]
    late: list[int]  # neighbours stepped without (late or dead); empty in a round of Algorithm 1

    def stacked(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Return the rows' y, r and packed q, one row per neighbour used.

        (what core.agent_step takes).
        """
        n = len(self.rows)
        return (np.array([g.y for g in self.rows]).reshape(n, m),
                np.array([g.r for g in self.rows]).reshape(n, m),
                np.array([g.q for g in self.rows]).reshape(n, m * (m + 1) // 2))

    def addresses(self) -> np.ndarray | None:
        """
        Return where each row's y, r and q lie (NeighbourState.address), or None if any is unknown.

        What core.agent_step_at reads instead of stacked copies; the rows, which this Step
        holds, keep that memory alive.
        """
        found = [g.address for g in self.rows]
        return None if 0 in found else np.array(found, dtype=np.int64)


@dataclass(frozen=True)
class CatchUp:
    from_round: int
    to_round: int


@dataclass(frozen=True)
class Finish:
    k: int


@dataclass(frozen=True)
class Event:
    """Something the node logs and the outcome keeps: `dead` or `back` for a neighbour."""

    kind: str
    neighbour: int
    k: int  # the round this agent was at
    silent: float = 0.0  # seconds of silence, for `dead`


@dataclass
class RoundLog:
    """What happened to the rounds, as data (the agent's outcome reports it)."""

    late_rounds: int = 0
    events: list[Event] = field(default_factory=list)
    catch_ups: list[CatchUp] = field(default_factory=list)
