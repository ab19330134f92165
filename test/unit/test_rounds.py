# SPDX-License-Identifier: Apache-2.0
"""
The round rules of protocol/rounds.py, one test per rule of docs/faults.md.

Each test drives a RoundController with a scripted clock and scripted messages, in milliseconds;
the DDS fault tests (test_faults_ros.py) are the end-to-end check of the same rules.
"""

import numpy as np
import pytest

from bildmacro_ros.protocol.inbox import MAX_AHEAD
from bildmacro_ros.protocol.rounds import (CATCH_UP_LEAD, CatchUp, Finish, MAX_LEAD,
                                           RoundController, RoundRules, Step, Wait)
from bildmacro_ros.protocol.wire import NeighbourState

DEADLINE = 0.1
RULES = RoundRules(deadline=DEADLINE, late_policy="drop", dead_after=3, startup_timeout=0.0)


class Clock:
    """Scripted time: moves only when a test moves it."""

    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def message(sender: int, k: int) -> NeighbourState:
    one = np.array([float(sender)])
    return NeighbourState(k, sender, np.zeros(2), np.zeros(2), one, one, one)


def agent(clock, neighbours=(1, 2), iterations=50, rules=RULES, start_round=0):
    """Agent 0 (m = 1, so a q has one packed value), started."""
    weight = 0.5 / len(neighbours)
    ctl = RoundController(list(neighbours), [weight] * len(neighbours), 0.5, 1, iterations, rules,
                          start_round=start_round, read=clock)
    ctl.start()
    ctl.sent()
    return ctl


def run(ctl, robot_ready=True) -> list:
    """Do what the node does on a wake-up: ask until told to wait; publishing a round is sent()."""
    actions = []
    while True:
        action = ctl.decide(robot_ready)
        actions.append(action)
        if isinstance(action, (Step, CatchUp)):
            ctl.sent()
        elif isinstance(action, (Wait, Finish)):
            return actions


def wait_for(ctl, clock, seconds, robot_ready=True) -> list:
    """Let `seconds` pass as the node's timer does: a tick, then a decision, every rules.tick."""
    actions, end = [], clock.t + seconds
    while clock.t < end - 1e-12:
        clock.t = min(clock.t + ctl.rules.tick, end)
        ctl.tick()
        actions += [a for a in run(ctl, robot_ready) if not isinstance(a, Wait)]
    return actions


def steps(actions) -> list[Step]:
    return [a for a in actions if isinstance(a, Step)]


def feed(ctl, *senders_and_rounds):
    for sender, k in senders_and_rounds:
        ctl.receive(message(sender, k))


def play_rounds(ctl, clock, rounds, senders=(1, 2)):
    """Every neighbour sends every round at once: Algorithm 1, no waiting."""
    for k in rounds:
        feed(ctl, *[(j, k) for j in senders])
        done = steps(run(ctl))
        assert [s.k for s in done] == [k] and not done[0].late
        clock.t += 0.001


def test_a_complete_round_is_stepped_at_once_with_the_weights_as_they_are():
    clock = Clock()
    ctl = agent(clock)
    feed(ctl, (1, 0))
    assert run(ctl) == [Wait("neighbours")]
    feed(ctl, (2, 0))
    step = steps(run(ctl))[0]
    assert step.k == 0 and step.late == [] and ctl.k == 1
    assert step.self_weight == 0.5 and np.allclose(step.weights, [0.25, 0.25])
    assert [row.sender for row in step.rows] == [1, 2]


def test_round_zero_is_sent_once_matched_or_at_the_startup_timeout():
    clock = Clock()
    ctl = RoundController([1], [0.5], 0.5, 1, 5, RoundRules(startup_timeout=3.0), read=clock)
    assert run(ctl) == [Wait("not_started")]
    assert not ctl.may_start(matched=False) and ctl.may_start(matched=True)
    clock.t += 3.0
    assert ctl.may_start(matched=False)


def test_a_neighbour_still_starting_gets_the_startup_timeout_not_the_deadline():
    clock = Clock()
    ctl = agent(clock, rules=RoundRules(deadline=DEADLINE, startup_timeout=2.0))
    feed(ctl, (1, 0))
    # 19 deadlines: neighbour 2 may still be discovering
    assert steps(wait_for(ctl, clock, 1.9)) == []
    late = steps(wait_for(ctl, clock, 0.2))
    assert [(s.k, s.late) for s in late] == [(0, [2])]


def test_a_neighbour_still_starting_is_waited_for_even_beside_one_that_lost_a_message():
    clock = Clock()
    ctl = agent(clock, rules=RoundRules(deadline=DEADLINE, startup_timeout=2.0))
    feed(ctl, (1, 0), (2, 0))
    assert steps(run(ctl)) != []
    # neighbour 1's round 1 is lost (it has sent round 2); neighbour 2 has not got past round 0:
    # it may still wait for a starter of its own, and stepping past it would run ahead alone
    feed(ctl, (1, 2))
    assert steps(wait_for(ctl, clock, 1.9)) == []
    late = steps(wait_for(ctl, clock, 0.2))
    assert [(s.k, s.late) for s in late][:1] == [(1, [1, 2])]


def test_a_lost_message_costs_its_receiver_one_late_round_after_the_deadline():
    clock = Clock()
    ctl = agent(clock)
    play_rounds(ctl, clock, range(3))
    feed(ctl, (2, 3))  # neighbour 1's round 3 is lost; it has sent round 4 already
    feed(ctl, (1, 4))
    assert steps(wait_for(ctl, clock, 0.9 * DEADLINE)) == []
    late = steps(wait_for(ctl, clock, 0.2 * DEADLINE))
    assert [(s.k, s.late) for s in late] == [(3, [1])]
    # drop
    assert late[0].self_weight == pytest.approx(0.75) and [r.sender for r in late[0].rows] == [2]
    assert ctl.log.late_rounds == 1


class Network:
    """
    Agents on a graph, one scripted clock, instant delivery but for the lost messages.

    A lost (sender, receiver, round) message loses every copy of it, as FaultInjector does. Each
    wake-up is handled as the node handles it, agents in `order`: receive, decide until told to
    wait, publish, re-send.
    """

    def __init__(self, edges, lost, iterations, order, pace=None):
        self.clock = Clock()
        ids = sorted({i for edge in edges for i in edge})
        self.near = {i: sorted({b for a, b in edges if a == i} | {a for a, b in edges if b == i})
                     for i in ids}
        self.iterations = iterations
        self.agents = {i: self.controller(i) for i in ids}
        self.lost, self.order, self.sent = set(lost), order, {i: [] for i in ids}
        self.cut: set[frozenset] = set()  # links that carry nothing now (a partition)
        self.pace = pace or {}  # rounds agent i can compute per tick (default: any number)
        self.budget = dict(self.pace)
        self.stepped = {i: [] for i in ids}  # (time, step) of every round each agent stepped
        self.queue = []
        for i in order:
            self.agents[i].start()
            self.publish(i)
        self.drain()

    def controller(self, i, start_round=0):
        return RoundController(self.near[i], [0.2] * len(self.near[i]),
                               1 - 0.2 * len(self.near[i]), 1, self.iterations, RULES,
                               start_round=start_round, read=self.clock)

    def restart(self, i, start_round):
        """
        Agent i's process starts again from its checkpoint at start_round.

        (its messages in flight are gone).
        """
        self.queue = [entry for entry in self.queue if entry[0] != i]
        self.agents[i] = self.controller(i, start_round)
        self.agents[i].start()
        self.sent[i] = []
        self.publish(i)

    def publish(self, i):
        ctl = self.agents[i]
        self.sent[i] = (self.sent[i] + [ctl.k])[-2:]
        ctl.sent()
        self.queue += [(i, j, ctl.k) for j in self.near[i]]

    def drain(self):
        while self.queue:
            sender, receiver, k = self.queue.pop(0)
            cut = frozenset((sender, receiver)) in self.cut
            if (sender, receiver, k) not in self.lost and not cut:
                self.agents[receiver].receive(message(sender, k))
                self.wake(receiver)

    def wake(self, i):
        ctl = self.agents[i]
        while self.budget.get(i, 1) > 0:
            action = ctl.decide()
            if not isinstance(action, (Step, CatchUp)):
                return
            if isinstance(action, Step):
                self.stepped[i].append((self.clock.t, action))
            if i in self.budget:
                self.budget[i] -= 1
            self.publish(i)

    def run(self, seconds):
        end = self.clock.t + seconds
        while self.clock.t < end and not all(ctl.finished for ctl in self.agents.values()):
            self.clock.t += RULES.tick
            self.budget = dict(self.pace)
            for i in self.order:
                ctl = self.agents[i]
                ctl.tick()
                self.wake(i)
                if ctl.should_resend():
                    ctl.resent()
                    self.queue += [(i, j, k) for k in self.sent[i] for j in self.near[i]]
                self.drain()


@pytest.mark.parametrize("order", [(0, 2, 1), (1, 0, 2)],
                         ids=["neighbours-first", "receiver-first"])
def test_one_lost_message_costs_one_late_round_and_no_cascade(order):
    # a path 0 - 1 - 2; agent 1 never gets agent 0's round 5. Agents 0 and 2, one round ahead,
    # wait on agent 1's round 6 with the same deadline, and would give up at the same moment.
    net = Network([(0, 1), (1, 2)], lost=[(0, 1, 5)], iterations=12, order=order)
    net.run(seconds=5.0)
    assert all(ctl.finished for ctl in net.agents.values())
    assert {i: ctl.log.late_rounds for i, ctl in net.agents.items()} == {0: 0, 1: 1, 2: 0}
    assert not any(ctl.log.events for ctl in net.agents.values())  # and nobody declared dead


def one_group_since(net, since) -> bool:
    """Every agent finished, none counts another dead, none stepped a round late after `since`."""
    return all(ctl.finished and not ctl.dead for ctl in net.agents.values()) and \
        not [(i, step.k) for i, done in net.stepped.items() for t, step in done if t > since
             and step.late]


# two pairs {0, 1} and {2, 3} joined by the links 1-2 and 3-0; the pair {2, 3} computes faster
PAIRS = [(0, 1), (2, 3), (1, 2), (3, 0)]
CROSS = {frozenset((1, 2)), frozenset((3, 0))}


@pytest.mark.parametrize("pace", [{0: 1, 1: 1, 2: 3, 3: 3}, {0: 3, 1: 3, 2: 1, 3: 1}],
                         ids=["cut-off-pair-ahead", "cut-off-pair-behind"])
def test_a_partition_heals_into_one_group_whichever_side_is_ahead(pace):
    net = Network(PAIRS, lost=[], iterations=500, order=(0, 1, 2, 3), pace=pace)
    net.run(seconds=0.5)
    net.cut = set(CROSS)  # the pairs hear nothing of each other for 30 deadlines
    net.run(seconds=30 * DEADLINE)
    assert all(ctl.dead for ctl in net.agents.values()), "the sides never declared each other dead"
    rounds = sorted(ctl.k for ctl in net.agents.values())
    assert rounds[-1] - rounds[0] > 2 * MAX_AHEAD, rounds  # far apart by now
    healed = net.clock.t
    net.cut = set()
    net.run(seconds=40.0)
    # within a bounded time: MAX_AHEAD late rounds for the slow side to fall out of the window,
    # then a catch-up and two late rounds on each side while the messages meet again
    assert one_group_since(net, since=healed + (MAX_AHEAD + 5) * DEADLINE), \
        {i: (ctl.k, ctl.dead, ctl.log.catch_ups) for i, ctl in net.agents.items()}


def test_a_restarted_pair_that_hears_each_other_first_rejoins():
    net = Network(PAIRS, lost=[], iterations=800, order=(0, 1, 2, 3),
                  pace={0: 2, 1: 2, 2: 2, 3: 2})
    net.run(seconds=1.0)
    checkpoint = min(net.agents[2].k, net.agents[3].k) - 30  # the computer of 2 and 3 lost power
    net.cut = set(CROSS)  # and comes back before its link to the others does
    net.run(seconds=1.0)
    net.restart(2, checkpoint)
    net.restart(3, checkpoint)
    net.run(seconds=10 * DEADLINE)
    assert net.agents[2].k > checkpoint + 5 and net.agents[2].dead  # the pair ran on by itself
    healed = net.clock.t
    net.cut = set()
    net.run(seconds=40.0)
    assert one_group_since(net, since=healed + (MAX_AHEAD + 5) * DEADLINE), \
        {i: (ctl.k, ctl.dead, ctl.log.catch_ups) for i, ctl in net.agents.items()}


def test_a_neighbour_that_is_itself_waiting_is_waited_for_two_deadlines():
    clock = Clock()
    ctl = agent(clock)
    play_rounds(ctl, clock, range(4))
    # neighbour 1 reached round 3 just now and is waiting on a message of its own
    feed(ctl, (2, 4))
    assert steps(wait_for(ctl, clock, 1.9 * DEADLINE)) == []  # past the deadline, within two
    late = steps(wait_for(ctl, clock, 0.2 * DEADLINE))
    assert [(s.k, s.late) for s in late] == [(4, [1])]


def test_a_live_neighbour_far_behind_is_waited_for_until_it_falls_silent():
    clock = Clock()
    ctl = agent(clock)
    play_rounds(ctl, clock, range(2))
    for _ in range(100):  # neighbour 1 stays at round 1 and re-sends it, every half deadline
        feed(ctl, (2, ctl.k), (1, 1))
        wait_for(ctl, clock, DEADLINE / 2)
    assert ctl.k == 1 + MAX_LEAD + 1  # its messages still fit neighbour 1's inbox
    assert ctl.k <= 1 + MAX_AHEAD  # (the inbox window of a neighbour at round 1)
    assert not ctl.log.events
    done = steps(wait_for(ctl, clock, 3.1 * DEADLINE))  # silence: dead_after deadlines
    assert [(s.k, s.late) for s in done] == [(ctl.k - 1, [1])] and ctl.dead == [1]


def test_dead_after_deadlines_of_silence_make_a_neighbour_dead_and_it_is_no_longer_waited_for():
    clock = Clock()
    ctl = agent(clock)
    play_rounds(ctl, clock, range(5))
    silent_from = clock.t  # neighbour 1 sent round 4 and nothing since
    done = []
    for _ in range(100):  # 25 deadlines at most
        feed(ctl, (2, ctl.k))
        done += steps(wait_for(ctl, clock, DEADLINE / 4))
        if ctl.dead:
            break
    assert ctl.log.events, "never declared dead"
    event = ctl.log.events[0]
    assert (event.kind, event.neighbour) == ("dead", 1)
    silent = clock.t - silent_from
    assert 3 * DEADLINE <= silent <= 3 * DEADLINE + 3 * RULES.tick, silent
    assert event.silent >= 3 * DEADLINE
    assert all(s.late == [1] for s in done)  # each of those rounds waited its deadline
    k = ctl.k
    feed(ctl, (2, k))  # now every round goes at once with the neighbours still alive
    step = steps(run(ctl))[0]
    assert step.k == k and step.late == [] and [r.sender for r in step.rows] == [2]
    assert step.self_weight == pytest.approx(0.75)  # drop: its weight went to a_ii


def test_a_message_from_a_dead_neighbour_for_a_current_round_brings_it_back():
    clock = Clock()
    ctl = agent(clock)
    play_rounds(ctl, clock, range(2))
    for _ in range(100):
        feed(ctl, (2, ctl.k))
        wait_for(ctl, clock, DEADLINE / 4)
        if ctl.dead:
            break
    ctl.receive(message(1, 0))  # an old round (a re-send from long ago) proves nothing
    assert ctl.dead == [1]
    k = ctl.k
    ctl.receive(message(1, k))
    assert ctl.dead == [] and [(e.kind, e.k)
                               for e in ctl.drain_events()] == [("dead", 3), ("back", k)]
    feed(ctl, (2, k))
    assert [s.late for s in steps(run(ctl))] == [[]]  # it counted again in round k
    feed(ctl, (2, k + 1))
    assert run(ctl) == [Wait("neighbours")]  # and it is waited for again


def test_an_agent_far_behind_its_neighbours_catches_up_past_the_newest():
    clock = Clock()
    ctl = agent(clock)  # a restarted agent at round 0; its neighbours are at rounds 20 and 21
    feed(ctl, (1, 20), (2, 21))
    assert ctl.inbox.dropped["too_far_ahead"] == 2
    actions = wait_for(ctl, clock, 1.1 * DEADLINE)
    assert actions[0] == CatchUp(0, 21 + CATCH_UP_LEAD)
    assert ctl.k == 23 and ctl.log.catch_ups == [CatchUp(0, 23)]


def test_one_neighbour_far_ahead_is_enough_to_catch_up_and_a_near_one_is_not():
    clock = Clock()
    ctl = agent(clock)
    feed(ctl, (1, MAX_AHEAD), (2, 0))  # in the inbox window: it will be heard in time, no jump
    actions = wait_for(ctl, clock, 1.1 * DEADLINE)
    assert not any(isinstance(a, CatchUp) for a in actions)
    assert [(s.k, s.late) for s in steps(actions)] == [(0, [1])]
    # neighbour 1 ran ahead (another side of a partition); neighbour 2 keeps pace
    feed(ctl, (1, 30))
    feed(ctl, (2, 1))
    actions = wait_for(ctl, clock, 1.1 * DEADLINE)
    assert actions[0] == CatchUp(1, 30 + CATCH_UP_LEAD)


def test_a_stopped_process_does_not_count_its_stop():
    clock = Clock()
    ctl = agent(clock)
    play_rounds(ctl, clock, range(3))
    feed(ctl, (2, 3))
    wait_for(ctl, clock, DEADLINE / 2)
    clock.t += 10 * DEADLINE  # the process is stopped; neighbour 1's round 3 queues up meanwhile
    ctl.tick()  # on waking, rclpy runs the timer before the subscription
    assert run(ctl) == [Wait("neighbours")]
    feed(ctl, (1, 3))
    assert [(s.k, s.late) for s in steps(run(ctl))] == [(3, [])]
    assert ctl.log.late_rounds == 0 and not ctl.log.events


def test_a_neighbour_silent_while_this_process_runs_is_late_all_the_same():
    clock = Clock()
    ctl = agent(clock)
    play_rounds(ctl, clock, range(3))
    feed(ctl, (2, 3), (1, 4))  # neighbour 1 is not waiting: it is ahead, its round 3 is lost
    done = steps(wait_for(ctl, clock, 1.5 * DEADLINE))
    assert [(s.k, s.late) for s in done] == [(3, [1])]


def test_reuse_stands_in_the_newest_message_with_the_weights_unchanged():
    clock = Clock()
    ctl = agent(clock,
                rules=RoundRules(deadline=DEADLINE, late_policy="reuse", startup_timeout=0.0))
    play_rounds(ctl, clock, range(2))
    feed(ctl, (2, 2), (1, 3))
    late = steps(wait_for(ctl, clock, 1.2 * DEADLINE))[0]
    assert late.late == [1] and late.self_weight == 0.5 and np.allclose(late.weights, [0.25, 0.25])
    # round 1's message stands in
    assert [(r.sender, r.iteration) for r in late.rows] == [(1, 1), (2, 2)]


def test_no_deadline_waits_for_ever_and_the_robot_holds_a_round():
    clock = Clock()
    ctl = agent(clock, rules=RoundRules(deadline=0.0, startup_timeout=0.0))
    feed(ctl, (1, 0))
    assert steps(wait_for(ctl, clock, 600.0)) == []
    feed(ctl, (2, 0))
    assert run(ctl, robot_ready=False) == [Wait("robot")]
    assert [s.k for s in steps(run(ctl))] == [0]


def test_the_last_round_finishes_once_and_re_sends_stop():
    clock = Clock()
    ctl = agent(clock, iterations=2)
    play_rounds(ctl, clock, range(1))
    feed(ctl, (1, 1), (2, 1))
    actions = run(ctl)
    assert [type(a) for a in actions] == [Step, Finish] and actions[1].k == 2
    assert run(ctl) == [Wait("finished")]
    clock.t += 100
    assert not ctl.should_resend()


def test_the_outcome_times_the_rounds_not_the_wait_after_the_last():
    clock, cpu = Clock(), Clock()
    ctl = agent(clock, iterations=3)
    ctl.cpu = cpu
    clock.t += 0.5  # round 0 waits for the slowest start: left out of the rate
    cpu.t += 2.0  # and so is its CPU (a process's start: imports, discovery)
    play_rounds(ctl, clock, range(1))
    cpu.t += 0.25
    play_rounds(ctl, clock, range(1, 2))
    feed(ctl, (1, 2), (2, 2))
    assert ctl.outcome(0).cpu_seconds == pytest.approx(0.25)  # so far, while it runs
    assert isinstance(run(ctl)[-1], Finish)
    clock.t += 3.0  # the end waits for acknowledgements and the robot
    cpu.t += 1.0
    outcome = ctl.outcome(0)
    assert outcome.seconds == pytest.approx(0.502)
    assert outcome.rounds_per_second == pytest.approx(2 / 0.002)
    assert outcome.cpu_seconds == pytest.approx(0.25)


def test_a_waiting_round_re_sends_every_half_deadline():
    clock = Clock()
    ctl = agent(clock)
    assert not ctl.should_resend()
    clock.t += DEADLINE / 2 + 1e-9
    assert ctl.should_resend()
    ctl.resent()
    assert not ctl.should_resend()
    assert RoundRules(deadline=0.0, republish_period=7.0).resend_period == 7.0


def test_a_resumed_agent_starts_at_its_checkpoint_round():
    clock = Clock()
    ctl = agent(clock, start_round=40)
    feed(ctl, (1, 40), (2, 40))
    assert [s.k for s in steps(run(ctl))] == [40]
    assert ctl.inbox.dropped == {}
