# SPDX-License-Identifier: Apache-2.0
"""Communication graphs and doubly stochastic weights: Erdős–Rényi, Metropolis weights, checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import connected_components

WEIGHT_TOLERANCE = 1e-9


def is_strongly_connected(adjacency: np.ndarray) -> bool:
    count, _ = connected_components(np.asarray(adjacency, dtype=bool), directed=True,
                                    connection="strong")
    return count == 1


def erdos_renyi(agents: int, edge_probability: float, rng: np.random.Generator,
                max_tries: int = 1000) -> np.ndarray:
    """Undirected G(N, p) adjacency (no self loops), resampled until connected."""
    if agents < 2:
        raise ValueError(f"a swarm needs at least 2 agents, got {agents}")
    if not 0 < edge_probability <= 1:
        raise ValueError(f"edge_probability must be in (0, 1], got {edge_probability}")
    upper = np.triu_indices(agents, k=1)
    for _ in range(max_tries):
        adjacency = np.zeros((agents, agents), dtype=bool)
        adjacency[upper] = rng.random(len(upper[0])) < edge_probability
        adjacency |= adjacency.T
        if is_strongly_connected(adjacency):
            return adjacency
    raise ValueError(
        f"no connected Erdős–Rényi graph with N={agents}, p={edge_probability} in {max_tries} "
        "draws; "
        "raise edge_probability (connectivity needs roughly p > ln(N)/N = "
        f"{np.log(agents) / agents:.3f})"
    )


def ring(agents: int) -> np.ndarray:
    adjacency = np.zeros((agents, agents), dtype=bool)
    idx = np.arange(agents)
    adjacency[idx, (idx + 1) % agents] = True
    adjacency |= adjacency.T
    np.fill_diagonal(adjacency, False)
    return adjacency


def complete(agents: int) -> np.ndarray:
    return ~np.eye(agents, dtype=bool)


def from_edges(agents: int, edges: list[list[int]]) -> np.ndarray:
    """Undirected adjacency from an edge list [[i, j], ...] with 0-based agent ids."""
    adjacency = np.zeros((agents, agents), dtype=bool)
    for i, j in edges:
        if not (0 <= i < agents and 0 <= j < agents) or i == j:
            raise ValueError(f"edge [{i}, {j}] is not between two distinct agents 0..{agents - 1}")
        adjacency[i, j] = adjacency[j, i] = True
    return adjacency


def metropolis_weights(adjacency: np.ndarray) -> np.ndarray:
    """Return a_ij = 1 / (1 + max(d_i, d_j)) on edges, a_ii = 1 - sum_j a_ij: doubly stochastic."""
    adjacency = np.asarray(adjacency, dtype=bool)
    degree = adjacency.sum(axis=1)
    weights = np.where(adjacency, 1.0 / (1.0 + np.maximum(degree[:, None], degree[None, :])), 0.0)
    np.fill_diagonal(weights, 0.0)
    np.fill_diagonal(weights, 1.0 - weights.sum(axis=1))
    return weights


def weight_problems(weights: np.ndarray, agents: int | None = None,
                    adjacency: np.ndarray | None = None) -> list[str]:
    """Every reason these weights break Assumption 1 (empty list when they are fine)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        return [f"weights must be a square N x N matrix, got shape {w.shape}"]
    if agents is not None and w.shape[0] != agents:
        return [f"weights are {w.shape[0]} x {w.shape[0]} but the swarm has {agents} agents"]
    if not np.all(np.isfinite(w)):
        return ["weights contain NaN or infinity"]
    problems = []
    if np.any(w < -WEIGHT_TOLERANCE):
        i, j = np.argwhere(w < -WEIGHT_TOLERANCE)[0]
        problems.append(f"weights must be non-negative; a[{i},{j}] = {w[i, j]:.3g}")
    rows = np.abs(w.sum(axis=1) - 1)
    cols = np.abs(w.sum(axis=0) - 1)
    if rows.max() > WEIGHT_TOLERANCE or cols.max() > WEIGHT_TOLERANCE:
        which = "rows" if rows.max() > WEIGHT_TOLERANCE else "columns"
        worst = int(np.argmax(rows if which == "rows" else cols))
        problems.append(f"weights are not doubly stochastic: {which} must sum to 1 (index {worst} "
                        "is off by "
                        f"{max(rows.max(), cols.max()):.3g})")
    if np.any(np.diag(w) <= 0):
        problems.append("every agent needs a positive self weight a_ii; agent "
                        f"{int(np.argmin(np.diag(w)))} has none")
    links = (w > WEIGHT_TOLERANCE) & ~np.eye(len(w), dtype=bool)
    if adjacency is not None and not np.array_equal(links, np.asarray(adjacency, dtype=bool)):
        i, j = np.argwhere(links != np.asarray(adjacency, dtype=bool))[0]
        problems.append(f"weights do not match the graph: a[{i},{j}] = {w[i, j]:.3g} but the edge "
                        f"({i},{j}) is "
                        f"{'absent' if links[i, j] else 'present'}")
    if not is_strongly_connected(links):
        problems.append("the graph of the weights is not (strongly) connected")
    return problems


def check_weights(weights: np.ndarray, agents: int | None = None,
                  adjacency: np.ndarray | None = None) -> np.ndarray:
    problems = weight_problems(weights, agents, adjacency)
    if problems:
        raise ValueError("; ".join(problems))
    return np.asarray(weights, dtype=float)


def load_weights(path: str | Path) -> np.ndarray:
    """Return an N x N weight matrix from .npy or .csv (comma separated, no header)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    if path.suffix == ".npy":
        weights = np.load(path, allow_pickle=False)
    elif path.suffix == ".csv":
        try:
            weights = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as exc:
            raise ValueError(f"weights file {path} is not a numeric CSV: {exc}") from exc
    else:
        raise ValueError(f"weights file must be .npy or .csv, got {path.name}")
    return np.asarray(weights, dtype=float)


def in_neighbours(weights: np.ndarray, agent: int) -> np.ndarray:
    """Return the agents j != i with a_ij > 0, ascending."""
    row = np.asarray(weights)[agent]
    mask = row > WEIGHT_TOLERANCE
    mask[agent] = False
    return np.flatnonzero(mask)
