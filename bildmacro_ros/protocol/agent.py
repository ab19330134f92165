# SPDX-License-Identifier: Apache-2.0
"""
Agent i of Algorithm 1 without ROS: messages, poses and clock ticks in; what to send, as data.

The node (ros/agent.py), or an agent group's bus (ros/process_bus.py), calls it. It decides
when a tick moves the rounds, the tracking-reset and checkpoint cadence, when a stall is
reported, how long the end waits, what Ctrl-C keeps; the round rules are the RoundController's,
and which neighbours' writers are heard the WriterGuard's. Time comes from the clock it is given.
"""

from __future__ import annotations

from pathlib import Path
import time
from typing import Callable

import numpy as np

from .arrival import Arrival
from .checkpoint import checkpoint_path, resume_from, save_checkpoint
from .faulty_link import FaultyLink
from .outbox import Encode, Outbox, Publish, Waypoint
from .outcome import AgentOutcome
from .pacing import RecorderPace, WaypointPace
from .parameters import arena_of
from .plausible import Bounds
from .rounds import CatchUp, Finish, RoundController, RoundRules, Step
from .wire import NeighbourState
from .writers import WriterGuard
from ..core.bildmacro import agent_step_at, initial_state, reset_tracking, StepSizes
from ..core.faults import FaultInjector
from ..core.metrics import recorded_rounds
from ..core.problem import BilevelProblem

STALL_REPORT = 5.0  # seconds a round may wait before the agent says what it waits for
# seconds the end waits for neighbours and the recorder to acknowledge the last messages, and for
# a robot the rounds wait for to reach its last waypoint
FINISH_WAIT = 5.0
FINISH_WAIT_ROBOT = 30.0


class Agent:
    """
    Agent i's rounds, its robot and its recorder, and the messages they produce. One per agent.

    encode(k, i, state, x_hat) serializes row 0 of a state at round k for the wire and returns
    (bytes, payload); read is the clock every rule and timeout uses.
    """

    def __init__(self, settings, problem: BilevelProblem, steps: StepSizes, x0: np.ndarray,
                 y0: np.ndarray, encode: Encode, read: Callable[[], float] = time.monotonic):
        s = self.settings = settings
        self.problem, self.steps, self.encode, self.read = problem, steps, encode, read
        self.outbox = Outbox(read)
        self._say = self.outbox.say
        self.id, self.iterations, self.m = s.agent_id, s.iterations, problem.m
        self.neighbours = list(s.neighbours)
        self.bounds = Bounds.of(self.m, steps.omega, steps.gamma_y,
                                max(s.initial_y_bound, float(np.abs(y0).max())))
        self.state, self.x_hat = initial_state(problem, x0[None], y0[None]), np.array(x0)
        self.checkpoint = checkpoint_path(s.checkpoint_dir, self.id) if s.checkpoint_dir else None
        if self.checkpoint is not None:
            self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        self.resumed_from = self._resume() if s.resume else None
        rules = RoundRules(s.deadline, s.late_policy, s.dead_after, s.startup_timeout,
                           s.republish_period)
        self.rounds = RoundController(self.neighbours, s.neighbour_weights, s.self_weight, self.m,
                                      self.iterations, rules, start_round=self.resumed_from or 0,
                                      read=read)
        self.link = FaultyLink(FaultInjector(s.fault_seed, s.drop, s.delay), self.id, read=read)
        # a topic silent this long has lost its writer: a new one is a restart, not an impostor
        silence = s.dead_after * s.deadline if s.deadline > 0 else 2 * s.republish_period
        self.guard = WriterGuard(self.neighbours, s.pin_writers, silence)
        self.recorded = recorded_rounds(s.iterations, s.record_every) if s.record_every else set()
        # a recorder that was waited for at startup is also kept up with: no record is ever lost
        self.pace = RecorderPace(read=read) if self.recorded and s.recorders > 0 else None
        # A robot the rounds wait for needs each waypoint at once; otherwise at the robot's rate,
        # the newest always: a stream at 150 rounds/s would cost every follower a take per round.
        self.waypoints = WaypointPace(0.0 if s.wait_for_robot else 1.0 / s.waypoint_rate, read)
        self.recent: list[bytes] = []  # the last two rounds sent, for re-sends
        self.arena = arena_of(s)  # waypoints and poses are in its metres; x_i^k is in C
        self.robot = Arrival(s.wait_for_robot, s.arrival_tolerance, self.arena)
        self.finish_deadline: float | None = None
        self.outcome: AgentOutcome | None = None

    @property
    def listeners(self) -> int:
        """Count the subscribers of its state topic to wait for before round 0."""
        return len(self.neighbours) if self.settings.listeners < 0 else self.settings.listeners

    @property
    def finishing(self) -> bool:
        """Tell whether the last round is done and the end waits."""
        return self.finish_deadline is not None

    def drain(self) -> list:
        """Return what to send and log since the last call (Publish, Waypoint, Notice)."""
        return self.outbox.drain()

    def start(self, matched: bool) -> bool:
        """Start round 0 once discovery has `matched` or its timeout passed; True if it did."""
        # and the recorder's first word, sent once every agent's record writer is up: a process
        # started late then cannot make agents far from it step past waiting neighbours, late,
        # and run ahead alone (docs/faults.md)
        matched = matched and (self.pace is None or self.pace.spoken)
        if self.rounds.started or not self.rounds.may_start(matched):
            return False
        if not matched:
            self._say("warning", "discovery incomplete (or no word from the recorder) at "
                                 "startup_timeout; starting anyway")
        self.rounds.start()
        self._publish_round()  # x_i^0 first: round 0 may wait for the robot to get there
        return True

    def take(self, msg: NeighbourState, verdict: str | None | bool = True) -> None:
        """
        File a decoded neighbour message; act() then does what it allows.

        verdict: its plausibility (None, or why not) from a bus that checked it; True: check here.
        """
        self.guard.heard(msg.sender, self.read())
        reason = self.bounds.check(msg) if verdict is True else verdict
        if reason is not None:
            self.outbox.implausible(self.id, msg, reason)
            self.rounds.reject(reason)
            return
        fate = self.link.admit(msg) if self.guard.admits(msg.sender) else "foreign_writer"
        if fate == "now":
            self._receive(msg)
        elif fate != "later":  # lost by injection, or refused
            self._filed(msg.sender, self.rounds.reject({"lost": "injected_loss"}.get(fate, fate)))

    def malformed(self, sender: int, reason: str) -> None:
        """Count a message that could not be decoded."""
        self._filed(sender, self.rounds.reject(reason))

    def release_delayed(self) -> bool:
        """File the delayed messages now due; True if any."""
        due = self.link.due()
        for msg in due:
            self._receive(msg)
        return bool(due)

    def writers_seen(self, sender: int, count: int, writers) -> None:
        """Take what DDS (matched count) and the ROS graph (writers) say of sender's topic."""
        sighting = self.guard.observe(sender, count, writers, self.rounds.k, self.read())
        if sighting is not None:
            self.outbox.sighting(self.id, sighting)

    def recorder_heard(self, taken: int) -> None:
        """Note that the recorder has taken this agent's records up to round `taken`."""
        if self.pace is not None:
            self.pace.heard(taken)

    def tick(self) -> bool:
        """Read the clock; True if the rounds should be asked again (then resend())."""
        self.rounds.tick()
        if not self.rounds.started or self.rounds.k >= self.iterations or self.finishing:
            return False
        # only a deadline or a recorder's patience can turn a wait into a step as time passes
        return self.rounds.rules.deadline > 0 or (self.pace is not None and self.pace.holding)

    def waypoint_due(self) -> None:
        """At the waypoint rate: send the newest waypoint if it has not gone out."""
        if self.waypoints.due():
            self._send_waypoint()

    def next_step(self) -> Step | None:
        """Follow the round rules through catch-ups and the finish; the Step to take, or None."""
        while True:
            recorder_ready = self.pace is None or \
                self.pace.may_step(publishes=self.rounds.k in self.recorded)
            action = self.rounds.decide(robot_ready=self.robot.at(self.state.x[0]),
                                        recorder_ready=recorder_ready)
            for event in self.rounds.drain_events():
                self.outbox.event(self.id, event, self.settings.dead_after)
            if isinstance(action, Step):
                return action
            if isinstance(action, CatchUp):
                self._say("warning", f"agent {self.id}: behind at round {action.from_round}; "
                                     f"catching up with its neighbours at round {action.to_round}")
                self._publish_round()
                continue
            if isinstance(action, Finish):
                self._finish()
            return None

    def compute(self, step: Step):
        """Round k's step alone; its messages read in place where the compiled pass found them."""
        return agent_step_at(self.problem, self.steps, self.state, step.self_weight,
                             step.weights, step.addresses(), lambda: step.stacked(self.m))

    def act(self) -> None:
        """Step every round the rules allow now, one after another."""
        while (step := self.next_step()) is not None:
            self.stepped(step, self.compute(step))

    def stepped(self, step: Step, result) -> None:
        """Take round k's result (a one-row core.StepResult): record, checkpoint, send k+1."""
        if step.late:
            self._say("warning", f"agent {self.id}: round {step.k} stepped without agents "
                                 f"{step.late} after the {self.settings.deadline:g} s deadline "
                                 f"({self.settings.late_policy})", repeat="late")
        before = self.state
        self.state, self.x_hat = result.state, result.x_hat[0]
        if step.k in self.recorded:  # round k with the x_hat^k its step produced
            self.outbox.append(Publish("record", self.encode(step.k, self.id, before,
                                                             self.x_hat)[0]))
            if self.pace is not None:
                self.pace.published(step.k)
        k = step.k + 1
        self.state = reset_tracking(self.problem, self.state, k, self.settings.tracking_reset)
        self._publish_round()
        if self.checkpoint is not None and k % self.settings.checkpoint_every == 0:
            save_checkpoint(self.checkpoint, k, self.state, self.x_hat)

    def settle(self, acked: bool) -> bool:
        """After the last round: True once the end may come (outcome reported), else wait."""
        # for acked (the last messages acknowledged) and the robot at its last waypoint, up to the
        # finish deadline, and for as long as a recorder that is behind still takes records
        there = self.robot.at(self.state.x[0])
        recorder = self.pace is not None and self.pace.taking()
        if not (acked and there) and (self.read() < self.finish_deadline or recorder):
            return False
        if not there:
            self._say("warning", f"agent {self.id}: the robot did not reach its last waypoint")
        self._say("info", self.report().finished_line())
        return True

    def stop(self) -> None:
        """Stop before the end (Ctrl-C): report how far it got and keep the round reached."""
        if self.outcome is not None:
            return
        self.report()
        # a resume then loses no round (a power loss goes back to the last periodic checkpoint)
        if self.checkpoint is not None and self.rounds.started:
            save_checkpoint(self.checkpoint, self.rounds.k, self.state, self.x_hat)

    def report(self) -> AgentOutcome:
        """Report this agent's outcome so far, written to outcome_dir when that is set."""
        self.outcome = self.rounds.outcome(self.id, self.resumed_from)
        self.outcome.sightings = self.guard.outcome()
        if self.settings.outcome_dir:
            Path(self.settings.outcome_dir).mkdir(parents=True, exist_ok=True)
            self.outcome.write(self.settings.outcome_dir)
        return self.outcome

    def _resume(self) -> int | None:
        found = resume_from(self.checkpoint, self.problem, self.iterations)
        if found is None:
            self._say("warning", f"agent {self.id}: no checkpoint; starting from x_i^0, y_i^0")
            return None
        k, self.state, self.x_hat = found
        self._say("info", f"agent {self.id}: resumed from round {k} ({self.checkpoint})")
        return k

    def _publish_round(self) -> None:
        """Round k begins: the waypoint x_i^k, the projected point, the state for neighbours."""
        if self.waypoints.new():
            self._send_waypoint()
        data, payload = self.encode(self.rounds.k, self.id, self.state, self.x_hat)
        self.outbox.append(Publish("state", data, payload))
        self.recent = (self.recent + [data])[-2:]
        self.rounds.sent()

    def _send_waypoint(self) -> None:
        self.outbox.append(Waypoint(*self.arena.to_lab([self.state.x[0], self.x_hat])))

    def _finish(self) -> None:
        if self.waypoints.flush():  # the last one, whatever the rate
            self._send_waypoint()
        if self.recorded:  # round K's state is the run's final state
            self.outbox.append(Publish("record", self.encode(self.rounds.k, self.id, self.state,
                                                             self.x_hat)[0]))
            if self.pace is not None:
                self.pace.published(self.rounds.k)
        wait = FINISH_WAIT_ROBOT if self.settings.wait_for_robot else FINISH_WAIT
        self.finish_deadline = self.read() + wait

    def resend(self) -> None:
        """Re-send the last two rounds (all a neighbour may lack) if a round stalls."""
        if not self.rounds.should_resend():
            return
        self.outbox.extend(Publish("state", data) for data in self.recent)
        self.rounds.resent()
        if self.rounds.waited() > STALL_REPORT:
            self.outbox.stall(self.rounds.k, self.rounds.waited(),
                              self.rounds.inbox.missing(self.rounds.k),
                              self.arena.to_lab(self.state.x[0]), self.robot.xy)

    def _filed(self, sender: int, status: str) -> None:
        self.outbox.filed(sender, status, self.rounds.inbox.dropped)

    def _receive(self, msg: NeighbourState) -> None:
        status = self.rounds.receive(msg)
        if status == "equivocation":
            self.outbox.sighting(self.id, self.guard.equivocation(msg.sender, msg.iteration,
                                                                  self.rounds.k))
        if status != "accepted":  # nothing to say of the usual case, met per message and listener
            self._filed(msg.sender, status)
