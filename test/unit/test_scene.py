# SPDX-License-Identifier: Apache-2.0
"""What RViz and the PNGs show: graph links and densities as occupancy grids."""

import numpy as np
import pytest

from bildmacro_ros.core.graph import erdos_renyi, metropolis_weights
from bildmacro_ros.scene import density_from_occupancy, graph_edges, occupancy, OCCUPIED


def test_edges_are_the_graph_links(rng):
    adjacency = erdos_renyi(9, 0.4, rng)
    edges = graph_edges(metropolis_weights(adjacency))
    expected = {(i, j) for i in range(9) for j in range(i + 1, 9) if adjacency[i, j]}
    assert set(edges) == expected and len(edges) == len(expected)
    assert all(i < j for i, j in edges)


@pytest.mark.parametrize("which", ["target", "learned"])
def test_occupancy_normalises_to_the_density(problem, which):
    family = problem.family
    y = 0.3 * np.random.default_rng(1).normal(size=(1, problem.m))
    density = problem.target if which == "target" else np.exp(family.log_density(y))[0]
    cells, peak = occupancy(density)
    n = len(family.grid.points)
    assert cells.dtype == np.int8 and cells.shape == (n * n,)
    assert cells.min() >= 0 and cells.max() == OCCUPIED
    back = density_from_occupancy(cells, n, peak)
    assert np.abs(back - density).max() <= peak / OCCUPIED / 2 + 1e-12  # rounding only
    # row-major along y: cell (a, b) = (c1 = g_a, c2 = g_b) sits at data[b * n + a]
    a, b = np.unravel_index(np.argmax(density), density.shape)
    assert cells[b * n + a] == OCCUPIED
    # and what RViz shows integrates to 1 like the density does
    mass = float((family.grid.weights * back).sum())
    assert mass == pytest.approx(1.0, abs=2 * peak / OCCUPIED)


def test_occupancy_refuses_a_density_without_a_peak():
    with pytest.raises(ValueError):
        occupancy(np.zeros((3, 3)))
