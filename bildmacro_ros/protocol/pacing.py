# SPDX-License-Identifier: Apache-2.0
"""
When agent i must wait for the recorder: backpressure that keeps every record within DDS's history.

A record travels on a reliable KEEP_LAST topic (ros/topics.py, RECORD_QOS): a recorder that falls
more than that depth behind an agent loses the oldest records for good, and a loaded machine made
one lose 590 of 600 rows. So the recorder tells each agent, on `recorder/progress`, the newest of
its records it has taken, and the agent does not step while more than `lead` of its records are
out and untaken. A recorder that says nothing for `patience` seconds while an agent waits on it
(killed, or cut off by the network) no longer holds the swarm: the agent goes on, and is held
again from the recorder's next word. Time comes from the clock it is given, so the rule is tested
with a scripted clock (test/unit/test_pacing.py).
"""

from __future__ import annotations

from collections import deque
import time
from typing import Callable

# rounds' records a recorder may have out per agent: well inside RECORD_QOS's depth of 100, so
# neither the writer's nor the reader's history ever drops one
RECORD_LEAD = 50
RECORDER_PATIENCE = 10.0  # seconds an agent waits on a silent recorder before it goes on without
# records a recorder takes from one agent before it says so (or a second passes): its word then
# lags by at most this many, well inside RECORD_LEAD
PROGRESS_STEP = 10


class RecorderPace:
    """Agent i's side of the recorder's backpressure. Not thread-safe; one per agent."""

    def __init__(self, lead: int = RECORD_LEAD, patience: float = RECORDER_PATIENCE,
                 read: Callable[[], float] = time.monotonic):
        if lead < 1:
            raise ValueError(f"lead must be at least 1 record, got {lead}")
        self.lead, self.patience, self.read = lead, patience, read
        self.taken = -1  # the newest of this agent's records the recorder has taken
        # rounds of the records published and not yet taken: the ones sent, not the ones due, since
        # a catch-up skips rounds whose records never go out
        self.out: deque[int] = deque()
        self.held_since: float | None = None
        self.heard_at = read()  # the recorder's last word that it took more
        self.out_since = self.heard_at  # when the oldest record out went out
        self.waived = False  # the recorder went silent while holding this agent
        self.holds = 0  # times this agent was held, for its outcome
        self.spoken = False  # the recorder has said anything: every agent's writer is up

    def published(self, k: int) -> None:
        """Note that this agent published its round-k record."""
        if k > self.taken:
            if not self.out:
                self.out_since = self.read()
            self.out.append(k)

    def heard(self, taken: int) -> None:
        """Note that the recorder has taken this agent's records up to round `taken`."""
        self.spoken = True
        if taken > self.taken:
            self.taken, self.heard_at = taken, self.read()
            while self.out and self.out[0] <= taken:
                self.out.popleft()
            self.held_since, self.waived = None, False

    @property
    def outstanding(self) -> int:
        return len(self.out)

    def taking(self) -> bool:
        """
        Tell whether records are out and the recorder, though behind, still takes them.

        A finished agent then stays: its records die with its process. A recorder that took
        nothing for `patience` seconds while records were out no longer keeps it; silent while
        none were (records every 600 rounds), it is not behind.
        """
        return bool(self.out) and \
            self.read() - max(self.heard_at, self.out_since) < self.patience

    def may_step(self, publishes: bool) -> bool:
        """Tell whether the next round may step: one that publishes a record leaves <= lead out."""
        if self.waived or not publishes or len(self.out) < self.lead:
            return True
        now = self.read()
        if self.held_since is None:
            self.held_since = now
            self.holds += 1
        if now - self.held_since >= self.patience:
            self.waived = True
            return True
        return False

    @property
    def holding(self) -> bool:
        """
        Tell whether this agent waits on the recorder.

        (its patience then needs the clock's ticks).
        """
        return self.held_since is not None and not self.waived


class WaypointPace:
    """
    When agent i's newest waypoint goes out: at most once per `period` s, and never left unsent.

    The rounds can run at 150 a second; a robot's controller uses a goal at its own rate
    (robots.rate, 20 Hz by default), and every waypoint between two of its ticks is overwritten
    unread, while each costs the agent a publish and every follower and visualiser a take. A new
    waypoint goes out at once when the last went out `period` ago or more; otherwise it waits for
    the node's timer, which asks `due()` every period, so the newest is never more than one period
    late. Period 0 sends every one (a robot the rounds wait for needs each waypoint at once).
    """

    def __init__(self, period: float, read: Callable[[], float] = time.monotonic):
        if not period >= 0:
            raise ValueError(f"period must be >= 0 seconds, got {period}")
        self.period, self.read = period, read
        self.sent_at = -float("inf")
        self.pending = False

    def new(self) -> bool:
        """Note a new waypoint; True if it goes out now (then it counts as sent)."""
        self.pending = True
        return self.due()

    def due(self) -> bool:
        """
        Return True if the newest waypoint is unsent and may go out now.

        (then it counts as sent).
        """
        now = self.read()
        if not self.pending or now - self.sent_at < self.period:
            return False
        self.pending, self.sent_at = False, now
        return True

    def flush(self) -> bool:
        """Return True if a waypoint is unsent, whatever the period (the last one of a run)."""
        pending, self.pending = self.pending, False
        return pending
