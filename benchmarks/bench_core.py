# SPDX-License-Identifier: Apache-2.0
"""
Iterations/s of the vectorised BILD-MACRO core against the straightforward implementation.

    python benchmarks/bench_core.py [--sizes 20 100 1000] [--warmup 300] [--experiment 100000]

The default config (ER(0.5), Metropolis, order 6, 41 x 41 grid) with gamma_y = 0.9/N. Timings
start after a warm-up from the paper's initialisation, because the first iterations (y ~ N(0, I),
very peaked densities) need eigenvalue clipping that later ones do not; the warm-up cost is
reported too. Times are the best of five blocks (the machine is shared, so the minimum is the
most repeatable figure); the median is printed beside it. Memory is the peak allocated during one
iteration (tracemalloc), per agent. Last, the paper's experiment as a user runs it: `bildmacro
simulate` of the default config (N = 20) for --experiment iterations (the paper's Fig. 1 shows
10^5), metrics and snapshots included, figures left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the independent oracle
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "support"))

from bildmacro_ros.core.bildmacro import initial_state, Mixer, swarm_step  # noqa: E402
from bildmacro_ros.core.config import validate  # noqa: E402
from bildmacro_ros.core.scenario import build_scenario  # noqa: E402
from bildmacro_ros.core.symmetric import unpack  # noqa: E402
from bildmacro_ros.simulate import run  # noqa: E402
from straightforward import Straightforward  # noqa: E402, I100


def scenario_for(n: int):
    return build_scenario(validate({"agents": n, "algorithm": {"gamma_y": 0.9 / n}}))


def time_fast(n: int, warmup: int, repeat: int) -> dict:
    sc = scenario_for(n)
    state = initial_state(sc.problem, sc.x0, sc.y0)
    mixer = Mixer(sc.weights)
    clipped = 0
    start = time.perf_counter()
    for _ in range(warmup):
        result = swarm_step(sc.problem, sc.steps, state, mixer)
        state, clipped = result.state, clipped + int(result.clipped.sum())
    warm_ms = (time.perf_counter() - start) / max(warmup, 1) * 1e3
    tracemalloc.start()
    swarm_step(sc.problem, sc.steps, state, mixer)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            state = swarm_step(sc.problem, sc.steps, state, mixer).state
        blocks.append((time.perf_counter() - start) / repeat * 1e3)
    return {"ms": min(blocks), "median_ms": float(np.median(blocks)), "warm_ms": warm_ms,
            "peak_bytes_per_agent": peak / n,
            "clip_fraction_warmup": clipped / max(warmup * n, 1)}


def compare(n: int, warmup: int, rounds: int = 5) -> tuple[float, float]:
    """
    Best ms/iteration of the core and of the straightforward implementation, alternated.

    The machine is shared and its speed drifts within minutes, so the two are timed in turns (a
    block of core iterations, then one straightforward iteration), from the same warmed-up state.
    """
    sc = scenario_for(n)
    state = initial_state(sc.problem, sc.x0, sc.y0)
    mixer = Mixer(sc.weights)
    for _ in range(warmup):
        state = swarm_step(sc.problem, sc.steps, state, mixer).state
    fam, a = sc.problem.family, sc.config["algorithm"]
    ref = Straightforward(fam.order, fam.grid.points, fam.grid.weights, sc.problem.target,
                          sc.weights, **a)
    ref.init(state.x, state.y)
    ref.r, ref.q = state.r.copy(), unpack(state.q)
    ref.step()
    fast, slow = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(10):
            state = swarm_step(sc.problem, sc.steps, state, mixer).state
        fast.append((time.perf_counter() - start) / 10 * 1e3)
        start = time.perf_counter()
        ref.step()
        slow.append((time.perf_counter() - start) * 1e3)
    return min(fast), min(slow)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 1000])
    parser.add_argument("--warmup", type=int, default=300,
                        help="iterations before timing (default 300)")
    parser.add_argument("--reference-size", type=int, default=100,
                        help="N for the straightforward run")
    parser.add_argument("--experiment", type=int, default=100000,
                        help="iterations of the paper's experiment to time (0: skip; default "
                             "100000)")
    args = parser.parse_args()

    print("targets: N = 1000 under 60 ms per iteration; memory linear in N")
    print(f"{'N':>6} {'ms/it':>9} {'median':>9} {'it/s':>9} {'warm-up ms/it':>14} "
          f"{'clip % (warm-up)':>17} "
          f"{'peak KiB/agent':>15}")
    results = {}
    for n in args.sizes:
        repeat = max(4, int(400 / n))
        r = time_fast(n, min(args.warmup, max(50, 30000 // n)), repeat)
        results[n] = r
        print(f"{n:>6} {r['ms']:>9.2f} {r['median_ms']:>9.2f} {1e3 / r['ms']:>9.1f} "
              f"{r['warm_ms']:>14.2f} "
              f"{100 * r['clip_fraction_warmup']:>16.2f}% "
              f"{r['peak_bytes_per_agent'] / 1024:>15.1f}", flush=True)
    n = args.reference_size
    fast_ms, ref_ms = compare(n, args.warmup)
    print(f"\nstraightforward (dense 1681 x 49, agent by agent, eigh every projection), N = {n}: "
          f"{ref_ms:.1f} ms/it against {fast_ms:.2f} ms/it for the core, timed in turns: "
          f"{ref_ms / fast_ms:.1f}x (target: 25x)")
    if len(results) > 1:
        sizes = sorted(results)
        lo, hi = sizes[0], sizes[-1]
        print(f"memory per agent, N = {lo} -> {hi}: "
              f"{results[lo]['peak_bytes_per_agent'] / 1024:.0f} -> "
              f"{results[hi]['peak_bytes_per_agent'] / 1024:.0f} KiB (the N x N weight matrix is "
              "the only "
              f"non-linear term: {8 * hi / 1024:.0f} KiB per agent at N = {hi})")
    if args.experiment:
        sc = build_scenario(validate({"iterations": args.experiment}))
        with tempfile.TemporaryDirectory() as out:
            summary = run(sc, Path(out) / "run", plots=False, progress=False)
        print(f"\nthe paper's experiment (bildmacro simulate, default config, N = {sc.agents}, "
              f"{args.experiment} "
              f"iterations, metrics every {max(1, args.experiment // 1000)}): "
              f"{summary.seconds:.1f} s "
              f"({summary.iterations / summary.seconds:.0f} it/s; target: 10^5 iterations in "
              f"60 s)")


if __name__ == "__main__":
    main()
