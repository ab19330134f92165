# SPDX-License-Identifier: Apache-2.0
"""
BILD-MACRO (Algorithm 1): one agent's update from its neighbours' mixes, and the whole swarm's.

`local_step` is the single implementation of (6)-(9). It works on a batch of agents and takes
the consensus terms sum_j a_ij (y_j, r_j, q_j) ready-mixed, so a robot's node (one row, mixed
from neighbour messages) and the vectorised swarm (all rows, mixed by the weight matrix) run the
same code and cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from .graph import issparse
from .kernel import kernel_choice, run_compiled
from .problem import BilevelProblem
from .symmetric import packed_identity, solve_projected, unpack


@dataclass(frozen=True)
class StepSizes:
    """The paper's parameters: gamma_x (6a), gamma_y (7), omega (and P_{>=omega}), delta (6b)."""

    gamma_x: float
    gamma_y: float
    omega: float
    delta: float

    def __post_init__(self):
        for name in ("gamma_x", "gamma_y", "omega"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not (0 < self.delta <= 1):
            raise ValueError(f"delta must be in (0, 1], got {self.delta}")


@dataclass
class AgentState:
    """
    Rows of agents: the algorithm's (x, y, r, q) and a cache of p(., y)'s moments.

    q is kept packed (upper triangle, m(m+1)/2 values), which is also its wire format. The cache
    (mean, cov, grad_f, kl) holds mu(y_i), cov_p[phi] packed, grad f(y_i) and f(y_i), and phi holds
    phi(x_i): each step needs them at both step k and k+1, and carrying them halves the work.
    """

    x: np.ndarray  # (n, 2)
    y: np.ndarray  # (n, m)
    r: np.ndarray  # (n, m)
    q: np.ndarray  # (n, m(m+1)/2)
    mean: np.ndarray  # (n, m)
    cov: np.ndarray  # (n, m(m+1)/2)
    grad_f: np.ndarray  # (n, m)
    kl: np.ndarray  # (n,) f(y_i)
    phi: np.ndarray  # (n, m) phi(x_i)

    def __len__(self) -> int:
        return len(self.x)

    def rows(self, index) -> "AgentState":
        """Return a sub-batch (a slice, index array or single int kept 2-D)."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return AgentState(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def q_full(self) -> np.ndarray:
        return unpack(self.q)


def initial_state(problem: BilevelProblem, x0: np.ndarray, y0: np.ndarray) -> AgentState:
    """Theorem 1's initialisation: r_i^0 = grad_y g_i(x_i^0, y_i^0), q_i^0 = H(y_i^0)."""
    x0 = np.array(x0, dtype=float, ndmin=2)
    y0 = np.array(y0, dtype=float, ndmin=2)
    stats = problem.evaluate(y0)
    phi0 = problem.phi(x0)
    r0 = problem.local_gradient(phi0, y0, stats.mean)
    q0 = stats.cov + problem.omega * packed_identity(problem.m)
    return AgentState(x=x0, y=y0, r=r0, q=q0, mean=stats.mean, cov=stats.cov, grad_f=stats.grad_f,
                      kl=stats.kl, phi=phi0)


def reset_tracking(problem: BilevelProblem, state: AgentState, round_k: int,
                   every: int) -> AgentState:
    """
    Re-apply Theorem 1's initialisation at (x_i, y_i) every `every`-th round (0: never).

    It zeroes the tracking errors that late or lost messages left in the sums of r and q
    (core/faults.py); all agents share the round numbers, so they reset together.
    """
    if every <= 0 or round_k <= 0 or round_k % every:
        return state
    return initial_state(problem, state.x, state.y)


def microscopic_step(problem: BilevelProblem, x: np.ndarray, z: np.ndarray, gamma_x: float,
                     delta: float):
    """(6a)-(6b) given z_i = (P[q_i])^{-1} grad f(y_i): returns (x_hat, x_next)."""
    direction = problem.family.basis.jacobian_transpose_times(x, z)
    x_hat = np.clip(x - gamma_x * direction, -1.0, 1.0)
    return x_hat, x + delta * (x_hat - x)


def projected_point(problem: BilevelProblem, steps: StepSizes, state: AgentState) -> np.ndarray:
    """Return (6a)'s x_hat^k of each row, without a step (metrics row K has no step K)."""
    z, _ = solve_projected(state.q, steps.omega, state.grad_f)
    return microscopic_step(problem, state.x, z, steps.gamma_x, steps.delta)[0]


@dataclass
class StepResult:
    state: AgentState
    x_hat: np.ndarray  # (n, 2) the projected point of (6a): the robot's waypoint
    clipped: np.ndarray  # (n,) bool: P_{>=omega} changed q_i this step


def local_step(problem: BilevelProblem, steps: StepSizes, state: AgentState,
               y_mix: np.ndarray, r_mix: np.ndarray, q_mix: np.ndarray,
               kernel: str | None = None) -> StepResult:
    """
    Equations (6)-(9) for each row, given sum_j a_ij y_j, r_j and q_j (packed).

    kernel: numpy (this function's own code, the reference) or numba (core/kernel.py, row by
    row); None: what BILDMACRO_KERNEL says.
    """
    if (kernel or kernel_choice()) == "numba":
        compiled = run_compiled(problem, steps, state, y_mix, r_mix, q_mix)
        if compiled is not None:
            fields_next, x_hat, clipped = compiled
            return StepResult(AgentState(*fields_next), x_hat, clipped)
    z, clipped = solve_projected(state.q, steps.omega, state.grad_f)
    x_hat, x_next = microscopic_step(problem, state.x, z, steps.gamma_x, steps.delta)
    y_next = y_mix - steps.gamma_y * state.r
    stats = problem.evaluate(y_next)
    phi_next = problem.phi(x_next)
    grad_next = problem.local_gradient(phi_next, y_next, stats.mean)
    grad_now = problem.local_gradient(state.phi, state.y, state.mean)
    r_next = r_mix + grad_next - grad_now
    q_next = q_mix + stats.cov - state.cov  # H(y+) - H(y): the omega I terms cancel
    nxt = AgentState(x=x_next, y=y_next, r=r_next, q=q_next, mean=stats.mean, cov=stats.cov,
                     grad_f=stats.grad_f, kl=stats.kl, phi=phi_next)
    return StepResult(nxt, x_hat, clipped)


def mix_neighbours(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Return sum_j a_ij v_j for one agent: weights (d,) over its stacked values (d, ...)."""
    return np.tensordot(np.asarray(weights, dtype=float), np.asarray(values, dtype=float), axes=1)


class Mixer:
    """The consensus operator v -> A v over stacked agent rows (sparse when the graph is)."""

    def __init__(self, weights):
        from scipy import sparse  # not at import: an agent process never mixes a whole swarm
        if issparse(weights):  # a sparse graph's (core/graph.py)
            self._op = sparse.csr_matrix(weights, dtype=float)
        else:
            weights = np.asarray(weights, dtype=float)
            density = np.count_nonzero(weights) / weights.size
            self._op = sparse.csr_matrix(weights) if density < 0.25 and len(weights) > 64 \
                else weights
        # row i's neighbours and weights, as the compiled step mixes them (core/kernel.py)
        csr = sparse.csr_matrix(self._op, dtype=float)
        csr.sort_indices()
        self.rows = (csr.indptr.astype(np.int64), csr.indices.astype(np.int64),
                     np.ascontiguousarray(csr.data))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        flat = values.reshape(len(values), -1)
        return np.asarray(self._op @ flat).reshape(values.shape)


def swarm_step(problem: BilevelProblem, steps: StepSizes, state: AgentState,
               mixer: Mixer, kernel: str | None = None) -> StepResult:
    """One synchronous iteration of every agent; compiled, each row mixes its neighbours' rows."""
    if (kernel or kernel_choice()) == "numba":
        compiled = run_compiled(problem, steps, state, *mixer.rows, how="mixed")
        if compiled is not None:
            fields_next, x_hat, clipped = compiled
            return StepResult(AgentState(*fields_next), x_hat, clipped)
    return local_step(problem, steps, state, mixer(state.y), mixer(state.r), mixer(state.q),
                      kernel="numpy")


def neighbour_mix(own: AgentState, self_weight: float, weights: np.ndarray, y: np.ndarray,
                  r: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return sum_j a_ij (y_j, r_j, q_j) over [i, neighbours...] in that order, each as one row."""
    a = np.concatenate([[self_weight], np.asarray(weights, dtype=float)])
    ys = np.concatenate([own.y, np.reshape(y, (-1, own.y.shape[1]))])
    rs = np.concatenate([own.r, np.reshape(r, (-1, own.r.shape[1]))])
    qs = np.concatenate([own.q, np.reshape(q, (-1, own.q.shape[1]))])
    return mix_neighbours(a, ys)[None], mix_neighbours(a, rs)[None], mix_neighbours(a, qs)[None]


def agent_step(problem: BilevelProblem, steps: StepSizes, own: AgentState, self_weight: float,
               weights: np.ndarray, y: np.ndarray, r: np.ndarray, q: np.ndarray) -> StepResult:
    """
    Agent i's update from its own one-row state and what its in-neighbours sent, as a node does it.

    weights (d,) are a_ij for the d in-neighbours; y, r (d, m) and q (d, m(m+1)/2) are their
    iteration-k values in the same order. The sums run over [i, neighbours...] in that order.
    """
    if kernel_choice() == "numba":
        compiled = run_compiled(problem, steps, own, self_weight, weights, y, r, q, how="agent")
        if compiled is not None:
            fields_next, x_hat, clipped = compiled
            return StepResult(AgentState(*fields_next), x_hat, clipped)
    return local_step(problem, steps, own, *neighbour_mix(own, self_weight, weights, y, r, q),
                      kernel="numpy")


def agent_step_at(problem: BilevelProblem, steps: StepSizes, own: AgentState,
                  self_weight: float, weights: np.ndarray, addresses: np.ndarray | None,
                  stacked: Callable[[], tuple]) -> StepResult:
    """
    agent_step reading in-neighbour j's y, r and q where they lie, at addresses[j] (compiled).

    There begin j's m + m + m(m+1)/2 doubles, y, r and q one after another, as a message holds
    them (protocol/wire.py's NeighbourState.address); the caller keeps that memory alive for the
    call, and no stacked copy of the rows is made. Where addresses is None or the compiled step
    cannot run: agent_step on stacked(), the rows' (y, r, q) stacked.
    """
    if addresses is not None and kernel_choice() == "numba":
        compiled = run_compiled(problem, steps, own, self_weight, weights, addresses,
                                how="agent_at")
        if compiled is not None:
            fields_next, x_hat, clipped = compiled
            return StepResult(AgentState(*fields_next), x_hat, clipped)
    return agent_step(problem, steps, own, self_weight, weights, *stacked())


def agent_steps(problem: BilevelProblem, steps: StepSizes, owns: list[AgentState],
                inputs: list[tuple]) -> list[StepResult]:
    """
    agent_step for several agents at once (an agent group's ready agents): one batched local_step.

    inputs[i] is agent i's (self_weight, weights, y, r, q). Each row equals its agent_step to
    rounding (BLAS tiles a batch's products differently); the batch pays numpy's per-call overhead
    once, not once per agent.
    """
    if kernel_choice() == "numba":  # compiled, a row costs the same alone as in a batch
        return [agent_step(problem, steps, own, *args) for own, args in zip(owns, inputs)]
    mixes = [neighbour_mix(own, *args) for own, args in zip(owns, inputs)]
    state = AgentState(**{f.name: np.concatenate([getattr(own, f.name) for own in owns])
                          for f in fields(AgentState)})
    result = local_step(problem, steps, state,
                        *(np.concatenate([mix[i] for mix in mixes]) for i in range(3)))
    return [StepResult(result.state.rows(i), result.x_hat[i:i + 1], result.clipped[i:i + 1])
            for i in range(len(owns))]
