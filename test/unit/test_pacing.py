# SPDX-License-Identifier: Apache-2.0
"""A recorder loses no row: the agents' backpressure and stand-in rows, on a scripted clock."""

import numpy as np
import pytest

from bildmacro_ros.protocol.pacing import RecorderPace, WaypointPace
from bildmacro_ros.protocol.recorder import Recorder
from bildmacro_ros.protocol.rounds import RoundController, RoundRules, Wait
from bildmacro_ros.protocol.wire import NeighbourState
from helpers import STEPS


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def step(pace: RecorderPace, k: int, every: int = 1) -> bool:
    """
    Step round k if the pace allows it, publishing its record when it has one.

    (every `every` rounds).
    """
    publishes = k % every == 0
    if not pace.may_step(publishes):
        return False
    if publishes:
        pace.published(k)
    return True


def test_an_agent_steps_while_few_records_are_out_and_waits_when_lead_records_are_untaken():
    clock = Clock()
    pace = RecorderPace(lead=3, patience=5.0, read=clock)
    assert all(step(pace, k, every=2) for k in range(6))  # records 0, 2, 4 out
    assert pace.outstanding == 3 and pace.may_step(publishes=False)  # round 5 publishes no record
    assert not pace.may_step(publishes=True) and pace.holding and pace.holds == 1
    pace.heard(0)  # the recorder took record 0: one more record may go out
    assert not pace.holding and step(pace, 6,
                                     every=2) and step(pace, 7,
                                                       every=2) and not step(pace, 8, every=2)
    pace.heard(6)
    assert pace.outstanding == 0 and all(step(pace, k, every=2) for k in range(8, 14))


def test_a_silent_recorder_holds_an_agent_for_its_patience_only_and_holds_it_again_once_heard():
    clock = Clock()
    pace = RecorderPace(lead=2, patience=5.0, read=clock)
    assert step(pace, 0) and step(pace, 1) and not step(pace, 2)
    clock.t = 4.9
    assert not step(pace, 2)
    clock.t = 5.0  # the recorder is gone or cut off: the swarm goes on without it
    assert all(step(pace, k) for k in range(2, 50)) and not pace.holding
    pace.heard(47)  # it speaks again: held again as soon as it is too far behind
    assert pace.outstanding == 2 and not step(pace, 50) and pace.holding
    clock.t = 9.9
    assert not step(pace, 50)
    clock.t = 10.0
    assert step(pace, 50)


def test_a_finished_agent_stays_while_the_recorder_may_still_take_its_last_record():
    """
    Its patience counts from the record that went out, not from the recorder's last word.

    With sparse records (--log-every 600), the recorder says nothing for the whole run; the
    final record's wait must not count that silence (30 agents lost theirs, and a run waited
    out its stall timeout for a row that never came).
    """
    clock = Clock()
    pace = RecorderPace(lead=3, patience=5.0, read=clock)
    step(pace, 0)
    pace.heard(0)
    assert not pace.taking()  # nothing out
    clock.t = 60.0  # a quiet run: no records between
    pace.published(600)
    clock.t = 64.9
    assert pace.taking()
    clock.t = 65.0  # the recorder took nothing for its patience since the record went out
    assert not pace.taking()
    pace.published(601)  # a later record does not restart the patience of the first
    assert not pace.taking()
    pace.heard(600)  # the recorder is taking them: 601 is waited for from this word
    clock.t = 69.9
    assert pace.taking()
    clock.t = 70.0
    assert not pace.taking()


def test_rounds_a_catch_up_skipped_are_not_waited_for():
    """A catch-up jumps rounds whose records never go out: only records sent count as out."""
    pace = RecorderPace(lead=2, patience=5.0, read=Clock())
    assert step(pace, 0) and step(pace, 1)
    pace.heard(1)
    assert step(pace, 400) and step(pace, 401) and pace.outstanding == 2 and not step(pace, 402)
    pace.heard(400)
    assert step(pace, 402)


def test_a_lead_below_one_record_is_refused():
    with pytest.raises(ValueError, match="lead"):
        RecorderPace(lead=0)


def test_a_held_agent_waits_for_the_recorder_after_its_neighbours_and_robot():
    clock = Clock()
    rounds = RoundController([], [], 1.0, m=1, iterations=10, rules=RoundRules(deadline=1.0),
                             read=clock)
    rounds.start()
    assert rounds.decide(recorder_ready=False) == Wait("recorder") and rounds.k == 0
    assert rounds.decide(robot_ready=False, recorder_ready=False) == Wait("robot")
    clock.t = 100.0  # a recorder's wait is no neighbour's deadline: nothing is stepped late
    assert rounds.decide(recorder_ready=False) == Wait("recorder")
    assert rounds.decide().k == 0 and rounds.log.late_rounds == 0


def record(m: int, sender: int, k: int, value: float) -> NeighbourState:
    y = np.full(m, value / 100)
    return NeighbourState(k, sender, np.full(2, value / 10), np.zeros(2), y, y,
                          np.zeros(m * (m + 1) // 2))


def test_a_row_whose_record_never_came_is_written_with_the_agents_last_record_and_counted(problem):
    recorder = Recorder(problem, STEPS, agents=2, iterations=6, log_every=1)
    for k in range(7):
        for i in range(2):
            if (i, k) not in ((1, 2), (1, 3)):  # agent 1's records of rounds 2 and 3 were lost
                recorder.add(record(problem.m, i, k, k + i))
    assert [k for k,
            _ in recorder.ready_rows()] == [0, 1] and recorder.missing_rows == [2, 3, 4, 5, 6]
    filled = list(recorder.fill(recorder.final()[0]))
    rows = {item[1]: item[2] for item in filled if item[0] == "row"}
    assert sorted(rows) == [2, 3, 4, 5,
                            6] and [rows[k]["stand_ins"]
                                    for k in (2, 3, 4, 5, 6)] == [1, 1, 0, 0, 0]
    assert recorder.stood_in == {2: [1], 3: [1]} and recorder.missing_rows == []
    # rounds 2 and 3 stand in agent 1's round-1 record (y = 0.02), the newest it sent before them
    assert rows[3]["consensus_error"] == pytest.approx(np.sqrt(problem.m) * 0.005)
    assert rows[5]["consensus_error"] == pytest.approx(np.sqrt(problem.m) * 0.005)


def test_a_round_with_an_agent_never_heard_before_it_is_left_out_not_forged(problem):
    recorder = Recorder(problem, STEPS, agents=2, iterations=4, log_every=1)
    for k in range(5):
        recorder.add(record(problem.m, 0, k, k))
    recorder.add(record(problem.m, 1, 2, 2))
    assert list(recorder.fill(4)) == [] and recorder.missing_rows == [0, 1, 2, 3, 4]


def test_a_waypoint_goes_out_at_once_after_a_quiet_period_and_the_newest_within_one_period():
    now = [0.0]
    pace = WaypointPace(0.05, read=lambda: now[0])
    assert pace.new()  # the first at once
    now[0] = 0.01
    assert not pace.new() and not pace.due()  # the next rounds' waypoints wait
    now[0] = 0.03
    assert not pace.new()
    now[0] = 0.05
    assert pace.due()  # the timer sends the newest, one period after the last
    assert not pace.due()  # and only once
    now[0] = 0.2
    assert pace.new()  # a round after a quiet spell goes out at once
    now[0] = 0.21
    assert not pace.new()
    assert pace.flush() and not pace.flush()  # the run's last waypoint, whatever the period


def test_period_zero_sends_every_waypoint_and_a_negative_period_is_refused():
    pace = WaypointPace(0.0, read=lambda: 1.0)
    assert all(pace.new() for _ in range(5))
    assert not pace.flush()
    with pytest.raises(ValueError, match="period"):
        WaypointPace(-1.0)
