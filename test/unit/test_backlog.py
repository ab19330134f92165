# SPDX-License-Identifier: Apache-2.0
"""
The backlog (protocol/backlog.py): which neighbour message has an agent read what it kept.

Scripted messages, no ROS; a swarm of plain Agents fed one message at a time through backlogs
steps exactly as the vectorised simulator does (test_ros_swarm.py is the same over DDS).
"""

import random

import numpy as np

from bildmacro_ros.core.bildmacro import initial_state, Mixer, swarm_step
from bildmacro_ros.protocol.backlog import awaited, Backlog
from bildmacro_ros.protocol.outbox import Publish
from bildmacro_ros.protocol.rounds import RoundController, RoundRules, Step
from bildmacro_ros.protocol.wire import decode, encode, message_length, NeighbourState
from test_agent import Clock, make, plan  # noqa: F401, I100, I201 - a test module beside this one

M = 2
SIZE = 8 * message_length(M)


def message(k: int, sender: int = 1) -> bytes:
    """Return a message of the layout for m = 2 as bytes, its round first (round_at 0)."""
    packed = M * (M + 1) // 2
    return encode(k, sender, np.zeros(2), np.zeros(2), np.ones(M), np.ones(M),
                  np.ones(packed)).tobytes()


def test_messages_of_the_round_are_kept_until_the_last_it_awaits_then_read_in_order():
    backlog = Backlog(round_at=0, size=SIZE)
    backlog.expect(3)
    assert not backlog.keep(1, message(5, 1), k=5)
    assert not backlog.keep(2, message(5, 2), k=5)
    assert backlog.keep(3, message(5, 3), k=5)
    assert [sender for sender, _ in backlog.take()] == [1, 2, 3]
    assert backlog.take() == []


def test_with_nothing_awaited_every_message_is_read_at_once():
    backlog = Backlog(round_at=0, size=SIZE)
    assert backlog.keep(1, message(0), k=0)  # not started: expect() not called yet
    backlog.take()
    backlog.expect(0)  # waiting on the robot, or finished
    assert backlog.keep(1, message(4), k=4) and backlog.keep(2, message(9, 2), k=4)


def test_a_message_of_another_length_is_read_at_once_for_the_reader_to_judge():
    backlog = Backlog(round_at=0, size=SIZE)
    backlog.expect(2)
    assert backlog.keep(1, message(5)[:-8], k=5)
    assert backlog.keep(1, b"", k=5)


def test_other_rounds_are_kept_without_counting_and_a_resend_counts_again():
    backlog = Backlog(round_at=0, size=SIZE)
    backlog.expect(2)
    assert not backlog.keep(1, message(6, 1), k=5)  # a round ahead: round 5 is no nearer
    assert not backlog.keep(2, message(4, 2), k=5)  # an old round resent
    assert not backlog.keep(1, message(5, 1), k=5)
    # neighbour 1's round 5 again: read early (round 5 still lacks neighbour 2), only slower
    assert backlog.keep(1, message(5, 1), k=5)
    assert len(backlog.take()) == 4


def test_awaited_counts_the_live_neighbours_the_round_lacks():
    clock = Clock()
    rules = RoundRules(deadline=0.1, dead_after=3, startup_timeout=0.0)
    rounds = RoundController([1, 2, 3], [0.2] * 3, 0.4, 1, 10, rules, read=clock)
    assert awaited(rounds) == 0  # not started: every message is read as it comes

    def one(sender, k):
        unit = np.ones(1)
        return NeighbourState(k, sender, np.zeros(2), np.zeros(2), unit, unit, unit)

    rounds.start()
    rounds.sent()
    assert awaited(rounds) == 3
    rounds.receive(one(1, 0))
    rounds.receive(one(2, 1))  # round 1's does not count for round 0
    assert awaited(rounds) == 2
    # neighbours 2 and 3 fall silent: declared dead, round 0 steps without them
    for _ in range(20):  # in ticks: a longer gap is a stop of the process, not time waited
        clock.t += rules.tick
        rounds.tick()
    assert isinstance(rounds.decide(), Step) and rounds.dead == [2, 3]
    rounds.sent()
    assert awaited(rounds) == 1  # neighbour 1's round 1: 2's is in, and dead 3 is not awaited
    rounds.k = rounds.iterations
    assert awaited(rounds) == 0


class Reader:
    """What ros/agent.py does with a neighbour message, without ROS: keep, then read and act."""

    def __init__(self, agent):
        self.agent, self.passes = agent, 0
        self.backlog = Backlog(round_at=0, size=8 * message_length(agent.m))

    def on_message(self, sender: int, data: bytes) -> None:
        if self.backlog.keep(sender, data, self.agent.rounds.k):
            self.act()

    def act(self) -> None:
        self.passes += 1
        for sender, data in self.backlog.take():
            self.agent.take(decode(data, self.agent.m, sender))
        self.agent.act()
        self.backlog.expect(awaited(self.agent.rounds))


def test_agents_reading_their_backlogs_step_as_the_vectorised_simulator(plan):  # noqa: F811
    clock, sc, rounds = Clock(), plan.scenario, 6
    readers = [Reader(make(plan, clock, i)) for i in range(4)]
    mail = random.Random(0)
    in_flight, messages = [], 0
    for r in readers:
        r.agent.start(matched=True)
        r.act()
    while min(r.agent.rounds.k for r in readers) < rounds:
        for r in readers:  # what each published goes out to its listeners, in any order
            for out in r.agent.drain():
                if isinstance(out, Publish) and out.topic == "state":
                    in_flight += [(listener, r.agent.id, out.data) for listener in readers
                                  if r.agent.id in listener.agent.neighbours]
        assert in_flight, "a round stalled with no message in flight"
        mail.shuffle(in_flight)
        listener, sender, data = in_flight.pop()
        messages += 1
        listener.on_message(sender, data)
    state, mixer = initial_state(sc.problem, sc.x0, sc.y0), Mixer(sc.weights)
    for _ in range(rounds):
        state = swarm_step(sc.problem, sc.steps, state, mixer).state
    for i, r in enumerate(readers):
        assert r.agent.rounds.finished
        for name in ("x", "y", "r", "q"):
            np.testing.assert_allclose(getattr(r.agent.state, name)[0], getattr(state, name)[i],
                                       rtol=0, atol=1e-12)
    # read in passes, not one by one: a complete graph of 4, each round 3 messages an agent
    assert sum(r.passes for r in readers) < messages / 2
