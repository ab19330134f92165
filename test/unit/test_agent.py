# SPDX-License-Identifier: Apache-2.0
"""
The agent without ROS (protocol/agent.py): each of its decisions on a scripted clock.

And a swarm of plain Agents passing payloads, which equals the vectorised simulator.
"""

import numpy as np
import pytest

from bildmacro_ros.core.bildmacro import initial_state, Mixer, reset_tracking, swarm_step
from bildmacro_ros.core.config import validate
from bildmacro_ros.launch_plan import plan_swarm
from bildmacro_ros.protocol.agent import Agent
from bildmacro_ros.protocol.checkpoint import checkpoint_path, load_checkpoint
from bildmacro_ros.protocol.outbox import Notice, Publish, Unheard, Waypoint
from bildmacro_ros.protocol.parameters import AGENT_PARAMETERS, check_settings, REQUIRED
from bildmacro_ros.protocol.wire import decode, encode

DEFAULTS = {s.name: s.default_value for s in AGENT_PARAMETERS if s.default_value is not REQUIRED}


class Clock:
    """Scripted time: moves only when a test moves it."""

    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def wire(k, sender, state, x_hat):
    """Encode as a node does, without rclpy: the payload stands in for the bytes."""
    payload = encode(k, sender, state.x[0], x_hat, state.y[0], state.r[0], state.q[0])
    return payload.tobytes(), payload


@pytest.fixture(scope="module")
def plan():
    cfg = validate({"agents": 4, "seed": 3, "iterations": 6,
                    "basis": {"order": 2}, "graph": {"type": "complete"}})
    return plan_swarm(cfg, recorders=0, run_dir="/tmp/unused")


def make(plan, clock, i=0, **overrides):
    values = {**DEFAULTS, **plan.agents[i].parameters, "startup_timeout": 0.0, **overrides}
    setup = check_settings(values)
    sc = plan.scenario
    return Agent(setup.settings, sc.problem, sc.steps, setup.x0, setup.y0, wire, read=clock)


def kinds(outputs, kind):
    return [o for o in outputs if isinstance(o, kind)]


def warnings(agent):
    return [o.text for o in kinds(agent.drain(), Notice) if o.level == "warning"]


def deliver(agents, outputs_by_agent):
    for sender, outputs in outputs_by_agent.items():
        for out in kinds(outputs, Publish):
            if out.topic == "state" and out.payload is not None:
                for a in agents:
                    if sender in a.neighbours:
                        a.take(decode(out.payload, a.m, sender))


def run_swarm(agents, rounds):
    """Every agent acts and its new rounds reach its neighbours, until all are past `rounds`."""
    for a in agents:
        a.start(matched=True)
    deliver(agents, {a.id: a.drain() for a in agents})
    while min(a.rounds.k for a in agents) < rounds:
        for a in agents:
            a.act()
        deliver(agents, {a.id: a.drain() for a in agents})


def test_a_swarm_of_plain_agents_equals_the_vectorised_simulator_iterate_for_iterate(plan):
    clock, sc = Clock(), plan.scenario
    agents = [make(plan, clock, i) for i in range(4)]
    run_swarm(agents, 6)
    state, mixer = initial_state(sc.problem, sc.x0, sc.y0), Mixer(sc.weights)
    for _ in range(6):
        state = swarm_step(sc.problem, sc.steps, state, mixer).state
    for i, a in enumerate(agents):
        assert a.rounds.finished and a.finishing
        for name in ("x", "y", "r", "q"):
            np.testing.assert_allclose(getattr(a.state, name)[0], getattr(state, name)[i],
                                       rtol=0, atol=1e-12)


def test_the_robot_has_arrived_within_tolerance_or_when_held_back_from_exactly_this_goal(plan):
    clock = Clock()
    free = make(plan, clock)
    assert free.robot.at(np.array([0.5, 0.5]))  # no robot waited for
    agent = make(plan, clock, wait_for_robot=True, arrival_tolerance=0.02)
    goal = agent.state.x[0]
    assert not agent.robot.at(goal)  # no pose yet
    agent.robot.pose(goal + [0.015, 0.0])
    assert agent.robot.at(goal)
    agent.robot.pose(goal + [0.03, 0.0])
    assert not agent.robot.at(goal)
    agent.robot.pose([np.nan, 0.0])  # a broken pose is ignored, the last one stands
    assert np.allclose(agent.robot.xy, goal + [0.03, 0.0])
    agent.robot.held(goal + [1e-9, 0.0])
    assert not agent.robot.at(goal)  # held back from another goal
    agent.robot.held(goal)
    assert agent.robot.at(goal)
    agent.start(matched=True)
    assert agent.next_step() is None or agent.rounds.k == 0  # the rule holds round 0 for it


def test_honest_drops_are_counted_quietly_and_others_warned_at_most_every_two_seconds(plan):
    clock = Clock()
    agent = make(plan, clock)
    agent.start(matched=True)
    agent.drain()
    agent._filed(1, "duplicate")
    agent._filed(1, "stale")
    assert warnings(agent) == []
    agent.malformed(1, "wrong_size")
    agent.malformed(2, "wrong_size")
    assert len(warnings(agent)) == 1  # the second within 2 s is left out
    clock.t += 1.9
    agent.malformed(2, "wrong_size")
    assert warnings(agent) == []
    clock.t += 0.1
    agent.malformed(2, "wrong_size")
    assert len(warnings(agent)) == 1
    assert agent.rounds.inbox.dropped["wrong_size"] == 4  # every one is counted


def test_an_implausible_neighbour_is_named_once_per_reason(plan):
    clock = Clock()
    agent = make(plan, clock)
    agent.start(matched=True)
    agent.drain()
    other = make(plan, clock, 1)
    payload = encode(0, 1, other.state.x[0], other.state.x[0], other.state.y[0] * 0,
                     other.state.r[0] + 1e6, other.state.q[0])
    for _ in range(3):
        agent.take(decode(payload, agent.m, 1))
    said = warnings(agent)
    assert len(said) == 1 and "agent 1's round-0" in said[0] and "implausible r" in said[0]
    assert agent.rounds.inbox.dropped["implausible_r"] == 3


def test_a_tick_asks_the_rounds_again_only_when_time_can_change_the_answer(plan):
    clock = Clock()
    assert not make(plan, clock).tick()  # not started
    timed = make(plan, clock, deadline=0.5)
    timed.start(matched=True)
    assert timed.tick()  # a deadline can turn a wait into a late step
    patient = make(plan, clock, deadline=0.0)
    patient.start(matched=True)
    assert not patient.tick()
    recorded = make(plan, clock, deadline=0.0, record_every=1, recorders=1)
    recorded.start(matched=True)
    for k in range(60):  # the recorder takes none of 60 records: the pace holds the agent
        recorded.pace.published(k)
    assert recorded.pace.may_step(publishes=True) is False
    assert recorded.tick()  # its patience runs on the clock


def test_round_0_waits_for_the_recorders_first_word_so_that_the_swarm_starts_together(plan):
    clock = Clock()
    agent = make(plan, clock, record_every=1, recorders=1, startup_timeout=30.0)
    assert not agent.start(matched=True)  # its links matched, but the recorder has not spoken
    agent.recorder_heard(-1)  # its first word: every agent's record writer is up
    assert agent.start(matched=True) and warnings(agent) == []
    unheard = make(plan, clock, record_every=1, recorders=1, startup_timeout=30.0)
    clock.t += 30.0
    assert unheard.start(matched=True)
    assert any("no word from the recorder" in w for w in warnings(unheard))
    assert make(plan, clock, record_every=1, recorders=0).start(matched=True)


def test_tracking_resets_and_checkpoints_fall_on_their_rounds(plan, tmp_path):
    clock = Clock()
    agents = [make(plan, clock, i, tracking_reset=2, checkpoint_every=2,
                   checkpoint_dir=str(tmp_path / f"c{i}")) for i in range(4)]
    run_swarm(agents, 1)
    path = checkpoint_path(tmp_path / "c0", 0)
    assert not path.exists()  # round 1: neither a multiple of 2
    r1 = agents[0].state.r.copy()
    run_swarm(agents, 2)
    a = agents[0]
    k, saved, _ = load_checkpoint(path, a.problem, a.iterations)
    assert k == 2 and np.array_equal(saved.y, a.state.y)
    fresh = reset_tracking(a.problem, a.state, 2, 2)  # Theorem 1's r at this (x, y)
    assert np.allclose(a.state.r, fresh.r) and not np.allclose(r1, a.state.r)


def test_a_stalled_round_is_resent_and_reported_after_five_seconds_every_five(plan):
    clock = Clock()
    agent = make(plan, clock, deadline=0.0, republish_period=1.0)
    agent.start(matched=True)
    sent = agent.drain()
    clock.t += 1.0
    agent.resend()
    out = agent.drain()
    assert kinds(out, Publish)[0].data == kinds(sent, Publish)[0].data
    assert kinds(out, Notice) == []  # waited 1 s: nothing to report yet
    for _ in range(7):  # ticks every 0.5 s: a longer gap would count as a stopped process
        clock.t += 0.5
        agent.tick()
        agent.resend()
    assert warnings(agent) == []  # waited 4.5 s
    for _ in range(3):
        clock.t += 0.5
        agent.tick()
        agent.resend()
    said = warnings(agent)
    assert len(said) == 1 and "round 0 has waited 6 s for agents [1, 2, 3]" in said[0]
    for _ in range(2):
        clock.t += 0.5
        agent.tick()
        agent.resend()
    assert warnings(agent) == []  # said 1 s ago


def test_the_end_waits_for_acknowledgements_and_the_robot_up_to_its_deadline(plan):
    clock = Clock()
    agents = [make(plan, clock, i, iterations=1) for i in range(4)]
    run_swarm(agents, 1)
    for a in agents:
        a.act()
    a = agents[0]
    assert a.finishing and a.outcome is None
    assert not a.settle(acked=False)
    clock.t += 4.9
    assert not a.settle(acked=False)
    assert a.settle(acked=True)
    assert a.outcome.finished and a.outcome.rounds == 1
    robots = [make(plan, clock, i, iterations=1, wait_for_robot=True, arrival_tolerance=1e-9)
              for i in range(4)]
    for r in robots:
        r.robot.pose(r.state.x[0])  # at x_i^0: round 0 may step; x_i^1 is elsewhere
    run_swarm(robots, 1)
    for r in robots:
        r.act()
    robot = robots[0]
    robot.drain()
    assert robot.finishing and not robot.robot.at(robot.state.x[0])
    clock.t += 29.9
    assert not robot.settle(acked=True)  # the robot is not at its last waypoint
    clock.t += 0.1
    assert robot.settle(acked=True)
    assert any("did not reach its last waypoint" in w for w in warnings(robot))


def test_the_end_waits_for_a_recorder_that_is_behind_while_it_still_takes_records(plan):
    clock = Clock()
    agents = [make(plan, clock, i, iterations=3, record_every=1, recorders=1) for i in range(4)]
    run_swarm(agents, 3)
    for a in agents:
        a.act()
    a = agents[0]
    assert a.finishing and a.pace.outstanding == 4  # rounds 0..2 and the final state, untaken
    clock.t += 6.0
    a.recorder_heard(1)  # behind, but taking
    assert not a.settle(acked=False)  # past the 5 s deadline: its records die with its process
    clock.t += 9.9
    assert not a.settle(acked=False)
    clock.t += 0.1  # the recorder took nothing for its patience: it no longer keeps the agent
    assert a.settle(acked=False)
    b = agents[1]
    b.recorder_heard(3)  # every record taken: the deadline alone counts
    assert b.settle(acked=False)


def test_ctrl_c_keeps_the_round_reached_and_reports_it(plan, tmp_path):
    clock = Clock()
    never = make(plan, clock, checkpoint_dir=str(tmp_path / "never"),
                 outcome_dir=str(tmp_path / "o"))
    never.stop()
    assert not checkpoint_path(tmp_path / "never", 0).exists()  # never started: nothing to keep
    agents = [make(plan, clock, i, checkpoint_dir=str(tmp_path / "c"), checkpoint_every=100,
                   outcome_dir=str(tmp_path / "o")) for i in range(4)]
    run_swarm(agents, 3)
    a = agents[0]
    a.stop()
    k, saved, _ = load_checkpoint(checkpoint_path(tmp_path / "c", 0), a.problem, a.iterations)
    assert k == a.rounds.k >= 3 and np.array_equal(saved.q, a.state.q)
    assert a.outcome.rounds == k and not a.outcome.finished
    assert (tmp_path / "o" / "agent_0.json").is_file()


def test_a_point_nobody_reads_is_held_the_newest_only_and_given_to_the_first_reader():
    unheard = Unheard()
    assert unheard.offer("x0", listeners=0) is None and unheard.offer("x1", listeners=0) is None
    assert unheard.matched() == "x1" and unheard.matched() is None  # once, the newest
    assert unheard.offer("x2", listeners=1) == "x2" and unheard.matched() is None  # it went out
    unheard.offer("x3", listeners=0)
    assert unheard.offer("x4", listeners=2) == "x4" and unheard.matched() is None  # superseded


def test_waypoints_go_out_at_the_robots_rate_the_newest_within_a_period(plan):
    clock = Clock()
    agents = [make(plan, clock, i, waypoint_rate=10.0) for i in range(4)]
    for a in agents:
        a.start(matched=True)
    first = agents[0].drain()
    assert len(kinds(first, Waypoint)) == 1
    deliver(agents, {0: first, **{a.id: a.drain() for a in agents[1:]}})
    agents[0].act()
    assert kinds(agents[0].drain(), Waypoint) == []  # 0 s after the last: it waits
    clock.t += 0.15
    agents[0].waypoint_due()
    assert len(kinds(agents[0].drain(), Waypoint)) == 1
