# SPDX-License-Identifier: Apache-2.0
"""
Rebuild a distributed run's metrics, snapshots and final state from the agents' record messages.

An agent publishes a record (same layout as its state message) only for the rounds a run's files
need (core.metrics.recorded_rounds): after stepping round k it sends x^k, y^k, r^k, q^k with the
x_hat^k that step produced, and at the end round K's state. So one round's records give a whole
metrics row, and the recorder's load is 1/log_every of the neighbours' traffic. It sits on the
agents' path only when it falls 50 records behind one (protocol/pacing.py); a record that never
comes is stood in for by its agent's newest earlier one when the run's files are written (fill).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .wire import NeighbourState
from ..core.bildmacro import initial_state, projected_point, StepSizes
from ..core.metrics import (consensus_error, lower_grad_norm, metric_rounds, ObjectiveTracker,
                            recorded_rounds, snapshot_iterations, step_norm)
from ..core.problem import BilevelProblem
from ..core.symmetric import unpack


class Recorder:
    def __init__(self, problem: BilevelProblem, steps: StepSizes, agents: int, iterations: int,
                 log_every: int):
        self.problem, self.steps, self.agents, self.iterations = problem, steps, agents, iterations
        self.rounds = recorded_rounds(iterations, log_every)
        self.snapshot_at = snapshot_iterations(iterations)
        self.pending_rows = metric_rounds(iterations, log_every)
        self._next_row = 0
        self._next_snapshot = 0
        self.frames: dict[int, dict[int, NeighbourState]] = {}
        self.latest = np.full(agents, -1)
        self.last_complete: tuple[int, dict[int, NeighbourState]] = (-1, {})
        self.objective = ObjectiveTracker(problem)
        # A killed agent is away from its last record on: its robot stays where it was, so that
        # record stands in for it until it records again after a restart.
        self.away: dict[int, list] = {}  # agent -> [last record, first round back or None]
        self.rejoining: set[int] = set()
        self.newest: dict[int, NeighbourState] = {}
        # when each agent's newest record came (caller's clock)
        self.heard_at = np.full(agents, np.nan)
        # each agent's newest record of a forgotten round
        self.previous: dict[int, NeighbourState] = {}
        # filled round -> the agents stood in by an older record
        self.stood_in: dict[int, list[int]] = {}

    def leave(self, agent: int) -> None:
        """Agent `agent` was killed: rounds from now on are complete without it."""
        last = self.newest.get(agent)
        if last is None or agent in self.away:
            return
        self.away[agent] = [last, None]
        self.rejoining.discard(agent)
        for k in sorted(self.frames):
            if self._complete(k) and k > self.last_complete[0]:
                self.last_complete = (k, self.frames[k])

    def rejoin(self, agent: int) -> None:
        """Agent `agent` was restarted: its first record from now on ends its absence."""
        if agent in self.away:
            self.rejoining.add(agent)

    def silent(self, now: float, after: float) -> list[int]:
        """
        Return the agents, neither away nor finished, whose newest record is over `after` s old.

        Only while another agent was heard within `after`: a swarm that stalls as a whole has not
        left.
        """
        heard = np.nan_to_num(self.heard_at, nan=-np.inf)
        if not np.any(heard >= now - after):
            return []
        return [i for i in range(self.agents) if i not in self.away and i in self.newest
                and self.latest[i] < self.iterations and heard[i] < now - after]

    @property
    def stale(self) -> dict[int, int]:
        """Return the agents away to the end, with the round of the record standing in for each."""
        return {i: int(last.iteration) for i, (last, back) in sorted(self.away.items())
                if back is None}

    def _required(self, agent: int, k: int) -> bool:
        if agent not in self.away:
            return True
        last, back = self.away[agent]
        return k <= last.iteration or (back is not None and k >= back)

    def _entry(self, k: int, agent: int) -> NeighbourState:
        frame = self.frames.get(k, {})
        return frame[agent] if agent in frame else self.away[agent][0]

    def add(self, msg: NeighbourState, now: float = np.nan) -> bool:
        """
        File one (validated) record, heard at time `now`; False if it cannot belong to this run.

        The first record for a (round, agent) wins: a later one is a re-send, or an impostor.
        """
        i, k = msg.sender, msg.iteration
        if i >= self.agents or k not in self.rounds:
            return False
        self.heard_at[i] = now
        slot = self.frames.setdefault(k, {})
        if i in slot:
            return False
        slot[i] = msg
        if k > self.latest[i]:
            self.latest[i], self.newest[i] = k, msg
        if i in self.rejoining and k > self.away[i][0].iteration:
            self.away[i][1] = k
            self.rejoining.discard(i)
        if self._complete(k) and k > self.last_complete[0]:
            self.last_complete = (k, slot)  # kept even after the round is forgotten
        return True

    def _here(self) -> list[int]:
        """Return the agents the recording waits for: all but those away and not back."""
        return [i for i in range(self.agents) if i not in self.away or self.away[i][1] is not None]

    @property
    def progress(self) -> int:
        """Return the newest round every agent (but those away) has recorded."""
        return int(min((self.latest[i] for i in self._here()), default=self.latest.max()))

    @property
    def behind(self) -> list[int]:
        """Return the agents the recording waits for whose newest record is the oldest."""
        return [i for i in self._here() if self.latest[i] == self.progress]

    @property
    def complete(self) -> bool:
        return self._complete(self.iterations)

    def _complete(self, k: int) -> bool:
        frame = self.frames.get(k, {})
        if len(frame) == self.agents:
            return True
        return bool(frame) and all(i in frame or not self._required(i, k)
                                   for i in range(self.agents))

    def stack(self, k: int, field: str) -> np.ndarray:
        return np.stack([getattr(self._entry(k, i), field) for i in range(self.agents)])

    @property
    def missing_rows(self) -> list[int]:
        return self.pending_rows[self._next_row:]

    def _row(self, k: int, stand_ins: int = 0) -> dict:
        x, y = self.stack(k, "x"), self.stack(k, "y")
        mean = self.problem.evaluate(y, cov=False).mean
        if k < self.iterations:
            x_hat = self.stack(k, "x_hat")  # what step k produced
        else:  # row K: no step K is taken, so the step (6a) would take from iterate K
            state = dataclasses.replace(initial_state(self.problem, x, y), q=self.stack(k, "q"))
            x_hat = projected_point(self.problem, self.steps, state)
        return {"lower_grad_norm": lower_grad_norm(self.problem, x, y, mean),
                "step_norm": step_norm(x_hat, x),
                "consensus_error": consensus_error(y), "kl": self.objective(x),
                "stand_ins": stand_ins}

    def ready_rows(self):
        """Metrics rows (iteration, values) whose round is complete, in order."""
        rows = self.pending_rows
        while self._next_row < len(rows) and self._complete(rows[self._next_row]):
            k = rows[self._next_row]
            values = self._row(k)
            self._next_row += 1
            yield k, values
            self._forget(k)

    def ready_snapshots(self):
        """(k, positions, agent 0's y) for snapshot rounds that are complete, in order."""
        snaps = self.snapshot_at
        while self._next_snapshot < len(snaps) and self._complete(snaps[self._next_snapshot]):
            k = snaps[self._next_snapshot]
            self._next_snapshot += 1
            yield k, self.stack(k, "x"), self._entry(k, 0).y
            self._forget(k)

    def fill(self, upto: int):
        """
        Finish the rows and snapshots of rounds up to `upto` that never completed, and say how.

        Yields ("row", k, values) and ("snapshot", k, x, agent 0's y). An agent whose round-k
        record never came (it was gone, or its record lost) is stood in by its newest record before
        k, as a neighbour's late message is; the row's stand_ins column counts such agents, and
        `self.stood_in` maps each filled round to them. A round with an agent never heard before it
        stays out (missing_rows).
        """
        rows, snaps = self.pending_rows, self.snapshot_at
        while self._next_row < len(rows) and rows[self._next_row] <= upto:
            k = rows[self._next_row]
            absent = self._stand_in(k)
            if absent is None:
                break
            values = self._row(k, len(absent))
            self._next_row += 1
            yield "row", k, values
            self._forget(k)
        while self._next_snapshot < len(snaps) and snaps[self._next_snapshot] <= upto:
            k = snaps[self._next_snapshot]
            if self._stand_in(k) is None:
                break
            self._next_snapshot += 1
            yield "snapshot", k, self.stack(k, "x"), self._entry(k, 0).y
            self._forget(k)

    def _stand_in(self, k: int) -> list[int] | None:
        """
        Complete round k's frame with stand-ins.

        Return the agents stood in, or None if one cannot be.
        """
        frame = self.frames.setdefault(k, {})
        absent = [i for i in range(self.agents) if i not in frame and self._required(i, k)]
        for i in absent:
            earlier = [r for r in self.frames if r < k and i in self.frames[r]]
            last = self.frames[max(earlier)][i] if earlier else self.previous.get(i)
            if last is None:
                return None
            frame[i] = last
        if absent:
            self.stood_in[k] = absent
        return absent

    def _forget(self, k: int) -> None:
        """
        Drop a round once its row and snapshot are written.

        (round K stays for the final state).
        """
        row_done = k not in self.pending_rows[self._next_row:]
        snap_done = k not in self.snapshot_at[self._next_snapshot:]
        if row_done and snap_done and k != self.iterations:
            for i, msg in self.frames.pop(k, {}).items():
                if i not in self.previous or self.previous[i].iteration < msg.iteration:
                    # a stand-in for a later round that never comes complete
                    self.previous[i] = msg

    def final(self) -> tuple[int, dict]:
        """
        Round K's state if the run finished, else the newest complete round.

        (-1, {}) if none.
        """
        k, frame = self.last_complete
        if k < 0:
            return -1, {}
        arrays = {name: np.stack([getattr(frame[i] if i in frame else self.away[i][0], name)
                                  for i in range(self.agents)])
                  for name in ("x", "x_hat", "y", "r", "q")}
        arrays["q"] = unpack(arrays["q"])
        return k, arrays
