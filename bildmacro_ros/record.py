"""Rebuild a distributed run's metrics, snapshots and final state from the agents' own messages.

Every agent's round-k message carries x_i^k, y_i^k, r_i^k, q_i^k and x_hat_i^{k-1}, so a listener on
all N state topics sees the whole swarm without asking any robot for more. Only the rounds that a
metrics row or a snapshot needs are kept, so memory stays bounded on long runs.
"""

from __future__ import annotations

import numpy as np

from .core.metrics import ObjectiveTracker, consensus_error, lower_grad_norm, step_norm
from .core.problem import BilevelProblem
from .core.symmetric import unpack
from .ros.wire import MAX_AHEAD, NeighbourState


class SwarmRecorder:
    def __init__(self, problem: BilevelProblem, agents: int, iterations: int, log_every: int,
                 snapshots: list[int]):
        self.problem, self.agents, self.iterations, self.log_every = problem, agents, iterations, log_every
        self.snapshot_at = set(snapshots) | {iterations}
        self.frames: dict[int, dict[int, NeighbourState]] = {}
        self.latest = np.full(agents, -1)
        self.newest: dict[int, NeighbourState] = {}
        self.objective = ObjectiveTracker(problem)
        self.pending_rows = sorted({k for k in range(0, iterations, log_every)} | ({iterations - 1} if iterations else set()))
        self._next_row = 0

    def _row_wanted(self, k: int) -> bool:
        return k < self.iterations and (k % self.log_every == 0 or k == self.iterations - 1)

    def wanted(self, k: int) -> bool:
        """Round k is kept if a row needs it (its x, y; or, for row k-1, its x_hat) or a snapshot does."""
        return self._row_wanted(k) or self._row_wanted(k - 1) or k in self.snapshot_at

    def add(self, msg: NeighbourState) -> bool:
        """File one (already validated) message; False if it cannot belong to this run.

        The first message for a (round, agent) wins: agents re-send unchanged rounds, so a later
        one is a duplicate, or an impostor. Rounds past K, or far ahead of the slowest agent, are
        not this run's. (Agents differ by at most the graph's diameter in rounds, but the recorder
        may have missed an agent's early rounds, so the bound is taken from the fastest agent.)
        """
        i, k = msg.sender, msg.iteration
        if i >= self.agents or k > self.iterations or k > max(self.latest.max(), 0) + MAX_AHEAD:
            return False
        if self.wanted(k):
            slot = self.frames.setdefault(k, {})
            if i in slot:
                return False
            slot[i] = msg
        self.latest[i] = max(self.latest[i], k)
        if i not in self.newest or self.newest[i].iteration < k:
            self.newest[i] = msg
        return True

    @property
    def missing_rows(self) -> list[int]:
        """Rows not written (only after a run ends: the recorder missed a round it needed)."""
        return self.pending_rows[self._next_row:]

    @property
    def progress(self) -> int:
        """Rounds every agent has reached."""
        return int(self.latest.min())

    @property
    def complete(self) -> bool:
        return len(self.frames.get(self.iterations, {})) == self.agents

    def _frame(self, k: int) -> dict[int, NeighbourState] | None:
        frame = self.frames.get(k)
        return frame if frame is not None and len(frame) == self.agents else None

    def stack(self, k: int, field: str) -> np.ndarray:
        return _stack(self.frames[k], field, self.agents)

    def ready_rows(self):
        """Metrics rows (iteration, values) whose rounds k and k+1 are both complete, in order."""
        while self._next_row < len(self.pending_rows):
            k = self.pending_rows[self._next_row]
            if self._frame(k) is None or self._frame(k + 1) is None:
                return
            x, y = self.stack(k, "x"), self.stack(k, "y")
            mean = self.problem.evaluate(y, cov=False).mean
            values = {"lower_grad_norm": lower_grad_norm(self.problem, x, y, mean),
                      "step_norm": step_norm(self.stack(k + 1, "x_hat"), x),
                      "consensus_error": consensus_error(y), "kl": self.objective(x)}
            self._next_row += 1
            yield k, values
            if k not in self.snapshot_at and not self._row_wanted(k + 1) and k + 1 not in self.snapshot_at:
                self.frames.pop(k, None)

    def ready_snapshots(self):
        for k in sorted(self.snapshot_at):
            if self._frame(k) is not None:
                yield k, self.stack(k, "x"), self.frames[k][0].y

    def final(self) -> tuple[int, dict]:
        """Round K's state if the run finished; otherwise each agent's newest message (agents may
        then differ by a round; the iteration reported is the smallest). (-1, {}) if nothing came."""
        frame = self._frame(self.iterations) or (self.newest if len(self.newest) == self.agents else None)
        if frame is None:
            return -1, {}
        arrays = {name: _stack(frame, name, self.agents) for name in ("x", "x_hat", "y", "r", "q")}
        arrays["q"] = unpack(arrays["q"])
        return min(msg.iteration for msg in frame.values()), arrays


def _stack(frame: dict[int, NeighbourState], field: str, agents: int) -> np.ndarray:
    return np.stack([getattr(frame[i], field) for i in range(agents)])
