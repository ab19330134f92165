# SPDX-License-Identifier: Apache-2.0
"""
When agent i steps, waits, declares a neighbour dead, takes it back or catches up: its round rules.

Algorithm 1 is synchronous: round k needs every in-neighbour's round-k message. A
`RoundController` holds what agent i knows for that: its round k, the inbox, one `Neighbour`
record per in-neighbour, the deadline and the late policy. The node feeds it messages and clock
ticks and does what `decide()` answers: `Wait`, `Step` with these inputs, `CatchUp` to a round,
or `Finish`. It reads time only from the clock it is given, so every rule is tested with a
scripted clock and scripted messages (test/unit/test_rounds.py); docs/faults.md states
the rules and why.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .clock import RunningClock
from .inbox import Inbox, MAX_AHEAD
from .outcome import AgentOutcome
from .round_types import CatchUp, Event, Finish, Neighbour, RoundLog, RoundRules, Step, Wait
from .wire import NeighbourState, same_message
from ..core.faults import mix_inputs

# rounds a catching-up agent lands ahead of its neighbours' newest, so that they take its message
CATCH_UP_LEAD = 2
# rounds an agent may step past a live neighbour's newest: its messages then still fit that
# neighbour's inbox (MAX_AHEAD rounds)
MAX_LEAD = MAX_AHEAD - 2


class RoundController:
    """Agent i's round k and the rules that decide it. Not thread-safe; one per agent."""

    def __init__(self, neighbours, weights, self_weight: float, m: int, iterations: int,
                 rules: RoundRules = RoundRules(), start_round: int = 0,
                 read: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.process_time):
        self.rules, self.iterations = rules, iterations
        self.self_weight = float(self_weight)
        self.order = [int(j) for j in neighbours]
        self.weights = np.asarray(weights, dtype=float)
        self.read = read  # raw time, for startup and re-sends
        self.cpu = cpu  # the process's CPU time (its outcome's cpu_seconds)
        # deadlines and deaths count only the time this process ran
        self.clock = RunningClock(stall=2 * rules.tick, read=read)
        now = self.clock.now()
        self.neighbours = {j: Neighbour(j, float(w), heard_at=now, reached_at=now)
                           for j, w in zip(self.order, self.weights)}
        self.inbox = Inbox(self.order, m)
        self.k = start_round
        self.log = RoundLog()
        self.dead_count = 0  # neighbours now declared dead
        self.startup_deadline = read() + rules.startup_timeout
        self.started = self.finished = False
        self.started_at = self.first_round_at = self.finished_at = None
        self.cpu_at = [None, None]  # at round 1 and at the finish, as rounds_per_second counts
        self.round_started = now
        self.last_sent = read()
        self._pending: list[Event] = []

    # -- what the node tells it ----------------------------------------------------------------
    def tick(self) -> None:
        """
        Read the clock once per timer tick.

        A longer gap between two is a stop of this process.
        """
        self.clock.now()

    def may_start(self, matched: bool) -> bool:
        """Round 0 is sent once every listener and neighbour has matched, or at startup_timeout."""
        return matched or self.read() >= self.startup_deadline

    def start(self) -> None:
        self.started, self.started_at = True, self.read()

    def sent(self) -> None:
        """Note that this agent published its state for round k: the round's wait starts now."""
        self.last_sent, self.round_started = self.read(), self.clock.now()

    def resent(self) -> None:
        self.last_sent = self.read()

    def receive(self, msg: NeighbourState) -> str:
        """File a decoded neighbour message; returns 'accepted' or why the inbox dropped it."""
        record = self.neighbours.get(msg.sender)
        used = record.last_used if record is not None else None
        if used is not None and msg.iteration == used.iteration and not same_message(used, msg):
            return self.inbox.reject("equivocation")  # round already stepped with the other one
        if record is not None and msg.iteration <= self.iterations:
            now = self.clock.now()
            if msg.iteration > record.newest:
                record.newest, record.reached_at = msg.iteration, now
            record.heard_at = now
            # alive, and keeping up with this agent
            if record.dead and msg.iteration >= self.k - 1:
                record.dead = False
                self.dead_count -= 1
                self._note(Event("back", record.agent, msg.iteration))
        return self.inbox.offer_decoded(msg, self.k)

    def reject(self, reason: str) -> str:
        """Count a message dropped before it reached the inbox (malformed, injected loss)."""
        return self.inbox.reject(reason)

    # -- what it answers -----------------------------------------------------------------------
    def decide(self, robot_ready: bool = True,
               recorder_ready: bool = True) -> Wait | Step | CatchUp | Finish:
        """
        Decide the next thing to do.

        A Step or CatchUp moves to its round at once; the node then computes and publishes it, and
        calls sent(). robot_ready: the robot is at x_i^k (wait_for_robot); recorder_ready: the
        recorder's backpressure lets round k's record out (protocol/pacing.py).
        """
        if self.finished:
            return Wait("finished")
        if not self.started:
            return Wait("not_started")
        if self.k >= self.iterations:
            self.finished, self.finished_at, self.cpu_at[1] = True, self.read(), self.cpu()
            return Finish(self.k)
        if not robot_ready:
            return Wait("robot")
        if not recorder_ready:
            return Wait("recorder")
        # asked once per message: while round k lacks a message, no neighbour is dead and its
        # deadline has not passed, the answer is to wait, found without listing who is missing
        if not self.inbox.complete(self.k) and not self.dead_count and not self.past_deadline():
            return Wait("neighbours")
        late = [j for j in self.inbox.missing(self.k) if not self.neighbours[j].dead]
        if late and not self.overdue(late):
            return Wait("neighbours")
        if late:
            target = self.catch_up_round()
            if target is not None:
                action = CatchUp(self.k, target)
                self.log.catch_ups.append(action)
                self.k = target
                self.inbox.forget_before(target)
                return action
        return self._step(late)

    def should_resend(self) -> bool:
        return self.started and self.k < self.iterations and \
            self.read() - self.last_sent >= self.rules.resend_period

    def waited(self) -> float:
        """Seconds (of running time) the current round has waited."""
        return self.clock.now() - self.round_started

    def drain_events(self) -> tuple[Event, ...] | list[Event]:
        """
        Return the events since the last call.

        Asked once per message, so the usual answer is shared.
        """
        if not self._pending:
            return ()
        events, self._pending = self._pending, []
        return events

    def outcome(self, agent: int, resumed_from: int | None = None) -> AgentOutcome:
        """Tell what happened to this agent's rounds so far, as data."""
        # the rounds' time, not the end's wait for acknowledgements and the robot that follows
        now = self.finished_at if self.finished_at is not None else self.read()
        started = self.started_at if self.started_at is not None else now
        # round 0 also waits for the slowest startup
        steady = now - (self.first_round_at or started)
        return AgentOutcome(
            agent=agent, finished=self.finished, rounds=self.k, iterations=self.iterations,
            late_rounds=self.log.late_rounds,
            declared_dead=[{"neighbour": e.neighbour, "round": e.k, "silent": e.silent}
                           for e in self.log.events if e.kind == "dead"],
            back=[{"neighbour": e.neighbour, "round": e.k} for e in self.log.events
                  if e.kind == "back"],
            catch_ups=[{"from_round": c.from_round, "to_round": c.to_round}
                       for c in self.log.catch_ups],
            resumed_from=resumed_from, dropped=dict(self.inbox.dropped), seconds=now - started,
            rounds_per_second=(self.k - 1) / steady if self.k > 1 and steady > 0 else float("nan"),
            cpu_seconds=(self.cpu_at[1] or self.cpu()) - self.cpu_at[0]
            if self.cpu_at[0] is not None else float("nan"))

    @property
    def dead(self) -> list[int]:
        return [j for j in self.order if self.neighbours[j].dead]

    # -- the rules -----------------------------------------------------------------------------
    def past_deadline(self) -> bool:
        """Tell whether round k has waited its deadline (never, without one)."""
        deadline = self.rules.deadline
        return deadline > 0 and self.clock.now() - self.round_started >= deadline

    def overdue(self, late: list[int]) -> bool:
        """Tell whether the deadline has passed and no late neighbour is worth waiting for."""
        if not self.past_deadline():
            return False
        now, deadline = self.clock.now(), self.rules.deadline
        # A neighbour never heard past round 0 may still be starting (discovering its own
        # neighbours, up to startup_timeout), and the first rounds wait on the slowest starter,
        # whoever else is late: stepped past beside a neighbour that lost a message, it made
        # this agent run ahead alone for 10 rounds, and the run end at 5 times the fault-free KL.
        if (self.read() - self.started_at < self.rules.startup_timeout
                and any(self.neighbours[j].newest < 1 for j in late)):
            return False
        # a silent neighbour is stepped past (and declared dead in _step) whatever its round
        heard = [j for j in late
                 if now - self.neighbours[j].heard_at < self.rules.dead_after * deadline]
        return not any(self.waiting_itself(j, now) or self.far_behind(j) for j in heard)

    def waiting_itself(self, j: int, now: float) -> bool:
        """
        Neighbour j reached round k-1 less than two deadlines ago and has sent nothing newer.

        It is likely waiting on a late message of its own, and sends as soon as its deadline runs
        out. Stepping without it would pass one lost message on as a late round at every hop of the
        graph. A chain of such waits ends at the agent whose deadline runs out first. Two agents
        that each lost the other's round-k message both look one round behind to each other; the
        two-deadline bound ends that wait.
        """
        record = self.neighbours[j]
        return record.newest == self.k - 1 and now - record.reached_at < 2 * self.rules.deadline

    def far_behind(self, j: int) -> bool:
        """
        Tell whether neighbour j, heard but over MAX_LEAD rounds behind, is slow (waited for).

        Stepping past it would take this agent out of j's inbox window, after which neither gets
        the other's messages in time again: the swarm splits into two groups rounds apart, each
        stepping every round a deadline late without the other. A heavily loaded machine's startup
        made such a split, and it lasted to the end of the run.
        """
        return self.neighbours[j].newest < self.k - MAX_LEAD

    def catch_up_round(self) -> int | None:
        """
        Return the round to catch up to when a neighbour is too far ahead to hear; else None.

        After a restart, a long stall or a partition, that neighbour's messages no longer fit this
        agent's inbox and no round with it will complete: this agent jumps to CATCH_UP_LEAD rounds
        past the newest such neighbour, with its state as it is (like a late message, a few rounds
        old). Every neighbour counts, the dead included: a side of a healed partition hears the
        other side only from agents it declared dead, and each agent of a restarted pair hears its
        partner at its own round, so waiting for every neighbour to be ahead would keep the groups
        apart for good. The newest round, not the slowest, so that the front-most group is the one
        every group joins; the price is that a neighbour that ran ahead alone makes the swarm skip
        rounds (docs/faults.md).
        """
        ahead = [r.newest for r in self.neighbours.values() if r.newest > self.k + MAX_AHEAD]
        if not ahead:
            return None
        return min(max(ahead) + CATCH_UP_LEAD, self.iterations)

    def _step(self, late: list[int]) -> Step:
        got = self.inbox.take(self.k)
        if late:
            self._note_late(late)
        dead = set(self.dead) if self.dead_count else set()
        if late or dead:
            stale = {j: r.last_used for j, r in self.neighbours.items() if r.last_used is not None}
            self_weight, weights, rows = mix_inputs(self.order, self.self_weight, self.weights,
                                                    got, stale, self.rules.late_policy, dead)
        else:  # every message came: Algorithm 1 as it stands
            self_weight, weights, rows = self.self_weight, self.weights, [got[j]
                                                                          for j in self.order]
        for j, msg in got.items():
            self.neighbours[j].last_used = msg
        action = Step(self.k, self_weight, weights, rows, late)
        self.k += 1
        if self.k == 1 and self.first_round_at is None:
            self.first_round_at, self.cpu_at[0] = self.read(), self.cpu()
        return action

    def _note_late(self, late: list[int]) -> None:
        # Dead means silent, not late: a neighbour that is waiting on a lost message of its own
        # steps after its deadline and is heard again, so lateness alone never kills a live one.
        self.log.late_rounds += 1
        now = self.clock.now()
        for j in late:
            record = self.neighbours[j]
            silent = now - record.heard_at
            if silent >= self.rules.dead_after * self.rules.deadline:
                record.dead = True
                self.dead_count += 1
                self._note(Event("dead", j, self.k, silent))

    def _note(self, event: Event) -> None:
        self.log.events.append(event)
        self._pending.append(event)
