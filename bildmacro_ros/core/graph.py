# SPDX-License-Identifier: Apache-2.0
"""
Communication graphs and doubly stochastic weights: Erdős–Rényi, geometric, Metropolis, checks.

A graph of a given mean degree, and a geometric one, are sparse (scipy CSR), with their weights:
a swarm of 10 000 agents then holds O(N) numbers, not N^2. The others are dense N x N arrays.
"""

from __future__ import annotations

from pathlib import Path
import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

WEIGHT_TOLERANCE = 1e-9


def issparse(a) -> bool:
    """Whether a is a scipy sparse array, without importing scipy.sparse."""
    # scipy.sparse and scipy.spatial cost an agent process a sixth of its start (0.1-0.17 s of
    # 0.6-1 s): it never meets a sparse array, and none exists before scipy.sparse is imported
    module = sys.modules.get("scipy.sparse")
    return module is not None and module.issparse(a)


def is_strongly_connected(adjacency) -> bool:
    from scipy.sparse.csgraph import connected_components
    links = adjacency if issparse(adjacency) else np.asarray(adjacency, dtype=bool)
    count, _ = connected_components(links, directed=True, connection="strong")
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


def erdos_renyi_sparse(agents: int, mean_degree: float, rng: np.random.Generator,
                       max_tries: int = 100) -> sparse.csr_array:
    """Undirected G(N, d / (N - 1)) drawn edge by edge (O(N d) memory), redrawn until connected."""
    if agents < 2:
        raise ValueError(f"a swarm needs at least 2 agents, got {agents}")
    if not 0 < mean_degree <= agents - 1:
        raise ValueError(f"mean_degree must be in (0, N - 1 = {agents - 1}], got {mean_degree}")
    pairs = agents * (agents - 1) // 2
    for _ in range(max_tries):
        chosen = rng.choice(pairs, size=rng.binomial(pairs, mean_degree / (agents - 1)),
                            replace=False)
        adjacency = symmetric_adjacency(agents, *pair_of_index(chosen, agents))
        if is_strongly_connected(adjacency):
            return adjacency
    raise ValueError(
        f"no connected Erdős–Rényi graph with N={agents}, mean degree {mean_degree:g} in "
        f"{max_tries} draws; raise mean_degree (connectivity needs roughly ln(N) = "
        f"{np.log(agents):.1f})")


def pair_of_index(index: np.ndarray, agents: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the pairs (i, j), i < j, at these positions of the row-major upper triangle."""
    index = np.asarray(index, dtype=np.int64)
    # row i starts at i N - i (i + 1) / 2; the root finds it, the two corrections its rounding
    i = np.floor(agents - 0.5 - np.sqrt((agents - 0.5) ** 2 - 2.0 * index)).astype(np.int64)
    start = i * agents - i * (i + 1) // 2
    i = np.where(index < start, i - 1, i)
    start = i * agents - i * (i + 1) // 2
    past = index >= start + (agents - 1 - i)
    i = np.where(past, i + 1, i)
    start = i * agents - i * (i + 1) // 2
    return i, index - start + i + 1


def geometric(points: np.ndarray, radius: float) -> sparse.csr_array:
    """Undirected graph linking the points less than `radius` apart (robots in radio range)."""
    points = np.asarray(points, dtype=float)
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
    adjacency = symmetric_adjacency(len(points), pairs[:, 0], pairs[:, 1])
    if not is_strongly_connected(adjacency):
        count, labels = connected_components(adjacency, directed=False)
        raise ValueError(f"the geometric graph of radius {radius:g} m splits the swarm into "
                         f"{count} parts (the largest has {np.bincount(labels).max()} of "
                         f"{len(points)} agents); raise graph.radius")
    return adjacency


def symmetric_adjacency(agents: int, i: np.ndarray, j: np.ndarray) -> sparse.csr_array:
    from scipy import sparse
    ones = np.ones(2 * len(i), dtype=bool)
    rows, cols = np.concatenate([i, j]), np.concatenate([j, i])
    return sparse.csr_array((ones, (rows, cols)), shape=(agents, agents))


def dense(weights) -> np.ndarray:
    """Return weights as an N x N array (the ROS plans, whose swarms are small, read rows)."""
    return weights.toarray() if issparse(weights) else np.asarray(weights, dtype=float)


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
    if issparse(adjacency):
        from scipy import sparse
        links = sparse.coo_array(adjacency)
        degree = np.bincount(links.row, minlength=links.shape[0])
        a = 1.0 / (1.0 + np.maximum(degree[links.row], degree[links.col]))
        off = sparse.csr_array((a, (links.row, links.col)), shape=links.shape)
        return (off + sparse.diags_array(1.0 - off.sum(axis=1))).tocsr()
    adjacency = np.asarray(adjacency, dtype=bool)
    degree = adjacency.sum(axis=1)
    weights = np.where(adjacency, 1.0 / (1.0 + np.maximum(degree[:, None], degree[None, :])), 0.0)
    np.fill_diagonal(weights, 0.0)
    np.fill_diagonal(weights, 1.0 - weights.sum(axis=1))
    return weights


def weight_problems(weights, agents: int | None = None, adjacency=None) -> list[str]:
    """Every reason these weights (dense or sparse) break Assumption 1 (empty list when fine)."""
    from scipy import sparse
    w = sparse.csr_array(weights, dtype=float) if issparse(weights) \
        else np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        return [f"weights must be a square N x N matrix, got shape {w.shape}"]
    if agents is not None and w.shape[0] != agents:
        return [f"weights are {w.shape[0]} x {w.shape[0]} but the swarm has {agents} agents"]
    # one pass over the stored entries, in row-major order, for both kinds
    entries = sparse.coo_array(w)
    entries.sum_duplicates()
    row, col, value = entries.row, entries.col, entries.data
    if not np.all(np.isfinite(value)):
        return ["weights contain NaN or infinity"]
    problems = []
    if np.any(value < -WEIGHT_TOLERANCE):
        first = np.flatnonzero(value < -WEIGHT_TOLERANCE)[0]
        problems.append(f"weights must be non-negative; a[{row[first]},{col[first]}] = "
                        f"{value[first]:.3g}")
    n = w.shape[0]
    rows = np.abs(np.bincount(row, value, minlength=n) - 1)
    cols = np.abs(np.bincount(col, value, minlength=n) - 1)
    if rows.max() > WEIGHT_TOLERANCE or cols.max() > WEIGHT_TOLERANCE:
        which = "rows" if rows.max() > WEIGHT_TOLERANCE else "columns"
        worst = int(np.argmax(rows if which == "rows" else cols))
        problems.append(f"weights are not doubly stochastic: {which} must sum to 1 (index {worst} "
                        "is off by "
                        f"{max(rows.max(), cols.max()):.3g})")
    diagonal = w.diagonal()
    if np.any(diagonal <= 0):
        problems.append("every agent needs a positive self weight a_ii; agent "
                        f"{int(np.argmin(diagonal))} has none")
    link = (value > WEIGHT_TOLERANCE) & (row != col)
    links = sparse.csr_array((np.ones(link.sum(), dtype=bool), (row[link], col[link])),
                             shape=(n, n))
    if adjacency is not None:
        differ = sparse.coo_array(links != sparse.csr_array(adjacency, dtype=bool))
        if differ.nnz:
            order = np.lexsort((differ.col, differ.row))[0]
            i, j = differ.row[order], differ.col[order]
            problems.append(f"weights do not match the graph: a[{i},{j}] = {w[i, j]:.3g} but the "
                            f"edge ({i},{j}) is {'absent' if links[i, j] else 'present'}")
    if not is_strongly_connected(links):
        problems.append("the graph of the weights is not (strongly) connected")
    return problems


def check_weights(weights, agents: int | None = None, adjacency=None):
    """Return the weights as float (sparse stays sparse), or raise with every problem."""
    problems = weight_problems(weights, agents, adjacency)
    if problems:
        raise ValueError("; ".join(problems))
    if issparse(weights):
        from scipy import sparse
        return sparse.csr_array(weights, dtype=float)
    return np.asarray(weights, dtype=float)


def load_weights(path: str | Path):
    """Return an N x N weight matrix from .npy, .csv (no header) or a sparse .npz (scipy's)."""
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
    elif path.suffix == ".npz":
        try:
            from scipy import sparse
            return sparse.csr_array(sparse.load_npz(path), dtype=float)
        except (OSError, ValueError) as exc:
            raise ValueError(f"weights file {path} is not a sparse matrix saved by scipy "
                             f"(save_npz): {exc}") from None
    else:
        raise ValueError(f"weights file must be .npy, .csv or .npz, got {path.name}")
    return np.asarray(weights, dtype=float)


def in_neighbours(weights: np.ndarray, agent: int) -> np.ndarray:
    """Return the agents j != i with a_ij > 0, ascending."""
    row = np.asarray(weights)[agent]
    mask = row > WEIGHT_TOLERANCE
    mask[agent] = False
    return np.flatnonzero(mask)
