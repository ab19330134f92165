# SPDX-License-Identifier: Apache-2.0
"""What an agent hands its node to send: messages, waypoints and log lines, as data."""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Callable

import numpy as np

# seconds between two warnings of a kind
REPEAT_EVERY = {"drop": 2.0, "late": 2.0, "stall": 5.0, "equivocation": 2.0}
# Drops an honest swarm makes all the time, counted in the outcome but not worth a warning: a
# resend already held, a message for a round already stepped, and the losses a test injected;
# and those the writer guard reports in its own words.
QUIET_DROPS = frozenset(("accepted", "duplicate", "stale", "injected_loss", "equivocation",
                         "foreign_writer"))
# encode(k, i, state, x_hat): row 0 of a state at round k for the wire, as (bytes, payload)
Encode = Callable[[int, int, object, np.ndarray], tuple[bytes, np.ndarray]]


@dataclass(frozen=True)
class Publish:
    """Serialized bytes for the agent's `state` or `record` topic."""

    topic: str
    data: bytes
    payload: np.ndarray | None = None  # a new round's wire payload, for listeners in this process


@dataclass(frozen=True)
class Waypoint:
    """The newest waypoint x_i^k and projected point x_hat_i, for the robot and RViz."""

    x: np.ndarray
    x_hat: np.ndarray


class Unheard:
    """
    A latched topic's newest point while no subscriber has matched: sent when one does.

    An agent's waypoint and projected point go out every round, some hundred times a second, and
    with no robot and no RViz nobody reads them: built and published all the same, they were 5%
    of an agent process's CPU among 10 (docs/speed.md). The topics are transient-local, so a
    subscriber that matches later gets the last point published, and then at once the newest.
    """

    def __init__(self):
        self.held = None

    def offer(self, point, listeners: int):
        """Return the point if it goes out now (someone listens); else hold it and return None."""
        self.held = None if listeners > 0 else point
        return point if listeners > 0 else None

    def matched(self):
        """Return the point held for a subscriber that just came, to be offered again; or None."""
        point, self.held = self.held, None
        return point


@dataclass(frozen=True)
class Notice:
    """A line for the log: level `info` or `warning`."""

    level: str
    text: str


class Outbox:
    """What the agent produced since its node last drained it, in order."""

    def __init__(self, read: Callable[[], float] = time.monotonic):
        self.items: list = []
        self.read = read
        self.said_at: dict[str, float] = {}
        self.warned: set[tuple[int, str]] = set()  # (neighbour, reason) warned implausible

    def append(self, item) -> None:
        self.items.append(item)

    def extend(self, items) -> None:
        self.items.extend(items)

    def drain(self) -> list:
        items, self.items = self.items, []
        return items

    def say(self, level: str, text: str, repeat: str | None = None) -> None:
        """Queue a log line; one of a `repeat` kind at most every REPEAT_EVERY[kind] seconds."""
        if repeat is not None:
            now = self.read()
            if now - self.said_at.get(repeat, -np.inf) < REPEAT_EVERY[repeat]:
                return
            self.said_at[repeat] = now
        self.items.append(Notice(level, text))

    def filed(self, sender: int, status: str, dropped: dict) -> None:
        """Warn of a neighbour message dropped for a reason an honest swarm does not make."""
        if status not in QUIET_DROPS:
            self.say("warning",
                     f"dropped a message from agent {sender}: {status} (dropped so far: "
                     f"{dict(dropped)})", repeat="drop")

    def implausible(self, agent: int, msg, reason: str) -> None:
        """Warn of a message out of an honest agent's bounds, once per neighbour and reason."""
        # at once: a forger is named the moment it starts
        if (msg.sender, reason) not in self.warned:
            self.warned.add((msg.sender, reason))
            self.say("warning", f"agent {agent}: dropped agent {msg.sender}'s round-"
                                f"{msg.iteration} message: {reason.replace('_', ' ')} (out of an "
                                f"honest agent's bounds; docs/security.md)")

    def sighting(self, agent: int, sighting) -> None:
        """Report what the writer guard saw (protocol/writers.py); equivocations throttled."""
        self.say("info" if sighting.kind == "alone" else "warning", sighting.text(agent),
                 repeat="equivocation" if sighting.kind == "equivocation" else None)

    def stall(self, k: int, waited: float, missing: list[int], goal, pose) -> None:
        """Say what a stalled round waits for: neighbours, or the robot (goal and pose in m)."""
        what = f"agents {missing}" if missing else \
            f"the robot to reach {np.round(goal, 3)} (its pose: {pose})"
        self.say("warning", f"round {k} has waited {waited:.0f} s for {what}", repeat="stall")

    def event(self, agent: int, event, dead_after: int) -> None:
        """Log a round rule's Event: a neighbour declared dead (a warning) or back."""
        if event.kind == "dead":
            self.say("warning", f"agent {agent}: agent {event.neighbour} has been silent for "
                                f"{event.silent:.1f} s ({dead_after} deadlines) and is declared "
                                f"dead at round {event.k}: dropped from the sums until it is "
                                f"heard again")
        else:
            self.say("info", f"agent {agent}: agent {event.neighbour} is back at round {event.k}")
