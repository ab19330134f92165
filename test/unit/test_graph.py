# SPDX-License-Identifier: Apache-2.0
"""Erdős–Rényi graphs, Metropolis weights, and the checks on user-supplied weights."""

import numpy as np
import pytest
from scipy import sparse

from bildmacro_ros.core import graph


@pytest.mark.parametrize("n,p", [(2, 1.0), (5, 0.5), (20, 0.5), (60, 0.1)])
def test_erdos_renyi_connected_symmetric(n, p, rng):
    adj = graph.erdos_renyi(n, p, rng)
    assert adj.shape == (n, n)
    assert np.array_equal(adj, adj.T)
    assert not adj.diagonal().any()
    assert graph.is_strongly_connected(adj)
    assert adj.sum(axis=1).min() >= 1  # no isolated agent


def test_erdos_renyi_seeded():
    a = graph.erdos_renyi(30, 0.3, np.random.default_rng(7))
    b = graph.erdos_renyi(30, 0.3, np.random.default_rng(7))
    c = graph.erdos_renyi(30, 0.3, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_erdos_renyi_impossible():
    with pytest.raises(ValueError, match="raise edge_probability"):
        graph.erdos_renyi(50, 0.001, np.random.default_rng(0), max_tries=20)


def test_metropolis_doubly_stochastic(rng):
    adj = graph.erdos_renyi(25, 0.3, rng)
    w = graph.metropolis_weights(adj)
    assert np.allclose(w.sum(axis=0), 1) and np.allclose(w.sum(axis=1), 1)
    assert np.allclose(w, w.T)
    assert (w.diagonal() > 0).all() and (w >= 0).all()
    assert np.array_equal((w > 0) & ~np.eye(25, dtype=bool), adj)
    assert graph.weight_problems(w, 25, adj) == []
    # the consensus operator contracts disagreement: second eigenvalue modulus < 1
    lam = np.sort(np.abs(np.linalg.eigvalsh(w)))
    assert lam[-1] == pytest.approx(1.0) and lam[-2] < 1


def test_weight_problems_are_named(rng):
    w = graph.metropolis_weights(graph.ring(6))
    bad = w.copy()
    bad[0, 0] += 0.1
    assert "not doubly stochastic" in "; ".join(graph.weight_problems(bad, 6))
    assert "but the swarm has 7 agents" in graph.weight_problems(w, 7)[0]
    disconnected = np.kron(np.eye(2), np.full((3, 3), 1 / 3))
    assert any("not (strongly) connected" in p for p in graph.weight_problems(disconnected, 6))
    nan = w.copy()
    nan[1, 2] = np.nan
    assert "NaN" in graph.weight_problems(nan, 6)[0]
    negative = w.copy()
    negative[0, 1] -= 0.5
    negative[0, 0] += 0.5
    assert any("non-negative" in p for p in graph.weight_problems(negative, 6))
    other = graph.complete(6)
    assert any("do not match the graph" in p for p in graph.weight_problems(w, 6, other))
    assert "square" in graph.weight_problems(np.ones((2, 3)))[0]
    with pytest.raises(ValueError, match="doubly stochastic"):
        graph.check_weights(bad, 6)


def test_load_weights_csv_and_npy(tmp_path, rng):
    w = graph.metropolis_weights(graph.erdos_renyi(5, 0.6, rng))
    np.savetxt(tmp_path / "w.csv", w, delimiter=",")
    np.save(tmp_path / "w.npy", w)
    assert np.allclose(graph.load_weights(tmp_path / "w.csv"), w)
    assert np.array_equal(graph.load_weights(tmp_path / "w.npy"), w)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a numeric CSV"):
        graph.load_weights(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="does not exist"):
        graph.load_weights(tmp_path / "missing.npy")
    (tmp_path / "w.txt").write_text("1")
    with pytest.raises(ValueError, match=".npy, .csv or .npz"):
        graph.load_weights(tmp_path / "w.txt")
    sparse.save_npz(tmp_path / "w.npz", sparse.csr_array(w))
    loaded = graph.load_weights(tmp_path / "w.npz")
    assert sparse.issparse(loaded) and np.array_equal(loaded.toarray(), w)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="saved by scipy"):
        graph.load_weights(tmp_path / "bad.npz")


def test_in_neighbours():
    w = graph.metropolis_weights(graph.ring(5))
    assert list(graph.in_neighbours(w, 0)) == [1, 4]


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_pair_of_index_walks_the_upper_triangle_row_by_row(n):
    i, j = np.triu_indices(n, k=1)
    got = graph.pair_of_index(np.arange(n * (n - 1) // 2), n)
    assert np.array_equal(got[0], i) and np.array_equal(got[1], j)


def test_pair_of_index_is_exact_for_ten_thousand_agents():
    n = 10_000
    index = np.array([0, n - 2, n - 1, 4_000_000, 49_994_999, n * (n - 1) // 2 - 1])
    i, j = graph.pair_of_index(index, n)
    start = i * n - i * (i + 1) // 2  # where row i starts, by the formula the rows are laid out
    assert np.all(i < j) and np.all(j < n) and np.array_equal(start + j - i - 1, index)


def test_sparse_erdos_renyi_has_the_mean_degree_asked_for_and_is_connected():
    adj = graph.erdos_renyi_sparse(2000, 10, np.random.default_rng(3))
    assert sparse.issparse(adj) and adj.shape == (2000, 2000)
    assert (adj != adj.T).nnz == 0 and not adj.diagonal().any()
    degree = adj.sum(axis=1)
    # the number of edges is Binomial(N (N - 1) / 2, p): mean N d / 2 = 10 000, sd 100
    assert abs(degree.mean() - 10) < 5 * 2 * 100 / 2000
    assert graph.is_strongly_connected(adj)
    same = graph.erdos_renyi_sparse(2000, 10, np.random.default_rng(3))
    assert (same != adj).nnz == 0
    with pytest.raises(ValueError, match="raise mean_degree"):
        graph.erdos_renyi_sparse(500, 1.0, np.random.default_rng(0), max_tries=5)
    with pytest.raises(ValueError, match="mean_degree must be in"):
        graph.erdos_renyi_sparse(10, 12, np.random.default_rng(0))


def test_geometric_links_exactly_the_points_within_the_radius(rng):
    points = rng.uniform(-1, 1, size=(150, 2))
    adj = graph.geometric(points, 0.4)
    gap = np.linalg.norm(points[:, None] - points[None], axis=-1)
    assert np.array_equal(adj.toarray(), (gap < 0.4) & ~np.eye(150, dtype=bool))
    with pytest.raises(ValueError, match="splits the swarm into"):
        graph.geometric(points, 0.01)


def test_sparse_metropolis_weights_equal_the_dense_ones_and_pass_the_checks(rng):
    adj = graph.geometric(rng.uniform(-1, 1, size=(80, 2)), 0.5)
    w = graph.metropolis_weights(adj)
    assert sparse.issparse(w)
    reference = graph.metropolis_weights(adj.toarray())
    off = ~np.eye(80, dtype=bool)
    assert np.array_equal(w.toarray()[off], reference[off])
    # 1 - a row's sum, summed in another order
    assert np.allclose(w.diagonal(), reference.diagonal(), rtol=0, atol=1e-15)
    assert graph.weight_problems(w, 80, adj) == []
    assert graph.weight_problems(w, 80, adj.toarray()) == []
    bad = w.tolil()
    bad[0, 0] += 0.1
    assert any("doubly stochastic" in p for p in graph.weight_problems(bad.tocsr(), 80))
    assert sparse.issparse(graph.check_weights(w, 80))
