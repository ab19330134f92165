# SPDX-License-Identifier: Apache-2.0
"""From a validated config (plus optional init and weights) to everything a run needs, seeded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import graph as graphs
from .arena import Arena
from .bildmacro import StepSizes
from .config import validate
from .family import ExponentialFamily
from .kernel import kernel_choice, prepare_kernel
from .problem import BilevelProblem
from .target import build_target


@dataclass
class Scenario:
    config: dict
    problem: BilevelProblem
    steps: StepSizes
    weights: np.ndarray  # (N, N) doubly stochastic; scipy CSR for a sparse graph (core/graph.py)
    x0: np.ndarray  # (N, 2)
    y0: np.ndarray  # (N, m)

    @property
    def agents(self) -> int:
        return len(self.x0)


def random_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Return independent generators for the graph and the initial state (--weights keeps x0)."""
    graph_seq, init_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(graph_seq), np.random.default_rng(init_seq)


def graph_adjacency(cfg: dict, rng: np.random.Generator, positions: np.ndarray):
    """Return the configured graph (sparse for a mean degree or a radius); positions in metres."""
    spec, agents = cfg["graph"], cfg["agents"]
    kind = spec["type"]
    if kind == "erdos_renyi" and "mean_degree" in spec:
        return graphs.erdos_renyi_sparse(agents, spec["mean_degree"], rng)
    if kind == "erdos_renyi":
        return graphs.erdos_renyi(agents, spec["edge_probability"], rng)
    if kind == "geometric":
        return graphs.geometric(positions, spec["radius"])
    if kind == "complete":
        return graphs.complete(agents)
    if kind == "ring":
        return graphs.ring(agents)
    adjacency = graphs.from_edges(agents, spec["edges"])
    if not graphs.is_strongly_connected(adjacency):
        raise ValueError("graph.edges: the explicit graph is not connected")
    return adjacency


def resolve_weights(cfg: dict, rng: np.random.Generator, weights=None,
                    positions: np.ndarray | None = None):
    """
    Return the weights of a run: given ones checked, or the configured graph's Metropolis weights.

    Given weights are checked against graph.edges when the graph is explicit; otherwise the
    configured graph is sampled (a geometric one on the robots' starting positions, in metres).
    """
    if weights is not None:
        explicit = cfg["graph"]["type"] == "explicit"
        adjacency = graphs.from_edges(cfg["agents"], cfg["graph"]["edges"]) if explicit else None
        return graphs.check_weights(weights, cfg["agents"], adjacency)
    return graphs.metropolis_weights(graph_adjacency(cfg, rng, positions))


def load_init(path: str | Path, agents: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Read x (N, 2) and y (N, m) from an .npz; positions must lie in C = [-1, 1]^2."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"init file {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
        arrays = {k: np.asarray(data[k], dtype=float) for k in ("x", "y") if k in data}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"init file {path} is not a readable .npz of plain numeric arrays: "
                         f"{exc}") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(f"init file {path} lacks array(s) {', '.join(missing)} (needs x (N,2) "
                         "and y (N,m))")
    x, y = arrays["x"], arrays["y"]
    return check_init(x, y, agents, m)


def load_run_inputs(config, overrides: dict | None = None, init: str | Path | None = None,
                    weights: str | Path | None = None):
    """
    Return a config (file or preset) with overrides, plus optional init and weights files, checked.

    Returns (cfg, base_dir, init arrays or None, weights or None): what build_scenario takes.
    """
    from .config import load_config

    cfg, base = load_config(config, overrides)
    m = (cfg["basis"]["order"] + 1) ** 2
    return (cfg, base, load_init(init, cfg["agents"], m) if init else None,
            graphs.load_weights(weights) if weights else None)


def check_init(x: np.ndarray, y: np.ndarray, agents: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    if x.shape != (agents, 2):
        raise ValueError(f"init x must have shape ({agents}, 2), got {x.shape}")
    if y.shape != (agents, m):
        raise ValueError(f"init y must have shape ({agents}, {m}) for basis order "
                         f"{int(np.sqrt(m)) - 1}, got {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("init x and y must be finite (found NaN or infinity)")
    if np.any(np.abs(x) > 1):
        raise ValueError("init x must lie in C = [-1, 1]^2")
    return x, y


def closest_pair(x: np.ndarray) -> tuple[float, int, int]:
    """Return the smallest distance between two rows of x and the two rows (inf, -1, -1: one)."""
    x = np.asarray(x, float)
    if len(x) < 2:
        return float("inf"), -1, -1
    gaps = np.hypot(*(x[:, None, :] - x[None, :, :]).transpose(2, 0, 1))
    gaps[np.arange(len(x)), np.arange(len(x))] = np.inf
    i, j = np.unravel_index(np.argmin(gaps), gaps.shape)
    return float(gaps[i, j]), int(min(i, j)), int(max(i, j))


def spread_out(x: np.ndarray, distance: float, seed: int, attempts: int = 10000,
               arena: Arena = Arena()) -> np.ndarray:
    """
    Redraw, uniformly in C, each position closer than `distance` (m, in the arena) to an earlier.

    Positions that already keep their distance stay as drawn, and the redraws come from a stream of
    their own, so y^0 and the graph are those of the same seed without bodies. ValueError if the
    robots do not fit.
    """
    x = np.array(x, float)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    for i in range(1, len(x)):
        for _ in range(attempts):
            if np.all(np.hypot(*(arena.to_lab(x[:i]) - arena.to_lab(x[i])).T) >= distance):
                break
            x[i] = rng.uniform(-1.0, 1.0, 2)
        else:
            raise ValueError(f"cannot place {len(x)} robots at least {distance:g} m apart in the "
                             f"arena ({arena.describe()}; robots.radius {distance / 2:g}): use "
                             "fewer robots or a smaller radius")
    return x


def build_problem(cfg: dict, base_dir: Path | None = None) -> tuple[BilevelProblem, StepSizes]:
    """Return the bilevel problem (basis, grid, target, omega) and step sizes of a config."""
    family = ExponentialFamily(cfg["basis"]["order"], cfg["grid"]["step"],
                               cfg["grid"]["quadrature"])
    problem = BilevelProblem(family, build_target(family, cfg["target"], base_dir),
                             cfg["algorithm"]["omega"])
    return problem, StepSizes(**cfg["algorithm"])


def build_scenario(cfg: dict, base_dir: Path | None = None,
                   init: tuple[np.ndarray, np.ndarray] | None = None,
                   weights: np.ndarray | None = None) -> Scenario:
    problem, steps = build_problem(cfg, base_dir)
    family = problem.family
    graph_rng, init_rng = random_streams(cfg["seed"])
    agents = cfg["agents"]
    if init is None:
        # the paper's experiment: x_i^0 ~ Uniform(C), y_i^0 ~ Normal(0, I)
        x0 = init_rng.uniform(-1.0, 1.0, size=(agents, 2))
        y0 = init_rng.standard_normal((agents, family.m))
    else:
        x0, y0 = check_init(np.asarray(init[0], float), np.asarray(init[1], float), agents,
                            family.m)
    radius, arena = cfg["robots"]["radius"], Arena.from_config(cfg)
    if radius > 0:  # robots with bodies start apart (bildmacro simulate too, so that runs compare)
        if init is None:
            x0 = spread_out(x0, 2 * radius, cfg["seed"], arena=arena)
        else:
            gap, i, j = closest_pair(arena.to_lab(x0))
            if gap < 2 * radius:
                raise ValueError(f"init x: robots {i} and {j} start {gap:.4f} m apart, closer "
                                 "than two radii "
                                 f"({2 * radius:g} m, robots.radius {radius:g})")
    w = resolve_weights(cfg, graph_rng, weights, arena.to_lab(x0))
    return Scenario(cfg, problem, steps, w, x0, y0)


def warm_kernel() -> None:
    """
    With BILDMACRO_KERNEL=numba, load the compiled step now, for the default config's problem.

    A node process calls it before ROS starts: every problem's step has the same types, so its
    own problem's then loads in no time. 30 processes loading it at once took 5-11 s each on 2
    cores, and Fast DDS takes a port whose listener thread is kept off the CPU for a second for
    dead, losing what is sent to it (docs/faults.md); before the participant exists, it has no
    port to lose.
    """
    if kernel_choice() != "numba":
        return
    prepare_kernel(*build_problem(validate({})))
