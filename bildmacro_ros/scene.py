# SPDX-License-Identifier: Apache-2.0
"""
What the swarm looks like, as plain arrays: graph edges and densities as occupancy grids.

Shared by the RViz visualiser (MarkerArray, OccupancyGrid) and the PNG pictures of `bildmacro
swarm`, so both show the same thing.
"""

from __future__ import annotations

import numpy as np

from .core.arena import Arena
from .live import STATES

OCCUPIED = 100  # OccupancyGrid cells hold 0..100


def graph_edges(weights: np.ndarray) -> list[tuple[int, int]]:
    """Communication links (i < j) of a weight matrix: a_ij > 0 or a_ji > 0."""
    w = np.asarray(weights)
    linked = (w > 0) | (w.T > 0)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(linked, k=1)))]


def occupancy(density: np.ndarray) -> tuple[np.ndarray, float]:
    """
    Return a grid density (index [a, b] = (g_a, g_b)) as OccupancyGrid data, and its peak.

    OccupancyGrid is row-major with rows along y, so cell (a, b) goes to data[b * width + a].
    Values are 100 * p / peak, rounded, so the peak shows as fully occupied and p = cell * peak /
    100.
    """
    density = np.asarray(density, float)
    peak = float(density.max())
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError("a density to show needs a positive, finite peak")
    cells = np.rint(OCCUPIED * np.clip(density, 0, None) / peak).astype(np.int8)
    return cells.T.ravel(), peak


def density_from_occupancy(data, width: int, peak: float) -> np.ndarray:
    """Return the inverse of occupancy(), up to rounding (half a percent of the peak)."""
    cells = np.asarray(data, float).reshape(-1, width)
    return (cells * peak / OCCUPIED).T


def arena_raster(density: np.ndarray, points: np.ndarray,
                 arena: Arena) -> tuple[np.ndarray, float]:
    """
    Return a grid density resampled onto square cells over the arena, and the cell's side (m).

    An OccupancyGrid has square cells, and an arena may be stretched (4 x 3 m): each cell takes
    the value of the grid point nearest its centre. The default arena gives the grid back as is.
    """
    step = float(points[1] - points[0])
    cell = step * arena.scale
    counts = [int(round(side / cell)) + 1 for side in arena.size]
    picks = []
    for n, side in zip(counts, arena.size):
        c = (np.arange(n) - (n - 1) / 2) * cell / (side / 2)  # cell centres, in C's coordinates
        picks.append(np.clip(np.rint((c - points[0]) / step), 0, len(points) - 1).astype(int))
    return np.asarray(density)[np.ix_(*picks)], cell


def robot_states(robots: np.ndarray, goals: np.ndarray, held: np.ndarray,
                 tolerance: float) -> list[int]:
    """Index into STATES per robot: held back from exactly its goal, arrived within tolerance."""
    out = []
    for pose, goal, hold in zip(robots, goals, held):
        if np.array_equal(hold, goal):
            out.append(STATES.index("held back"))
        else:
            out.append(STATES.index("arrived") if np.hypot(*(pose[:2] - goal)) <= tolerance
                       else STATES.index("moving"))
    return out
