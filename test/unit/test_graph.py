# SPDX-License-Identifier: Apache-2.0
"""Erdős–Rényi graphs, Metropolis weights, and the checks on user-supplied weights."""

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match=".npy or .csv"):
        graph.load_weights(tmp_path / "w.txt")


def test_in_neighbours():
    w = graph.metropolis_weights(graph.ring(5))
    assert list(graph.in_neighbours(w, 0)) == [1, 4]
