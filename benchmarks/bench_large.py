# SPDX-License-Identifier: Apache-2.0
"""
Large swarms offline: iterations per second and memory of `bildmacro simulate`'s step, by N.

    python benchmarks/bench_large.py [--agents 2500 10000] [--mean-degree 10] [--warmup 40]

Each size runs in a fresh process per kernel (numpy, then numba), so that its peak memory is its
own: the graph (Erdős–Rényi of the given mean degree, sparse), the swarm's state and iterations of
swarm_step (what `bildmacro simulate` runs: compiled, each row mixes its neighbours' rows in the
kernel), timed one by one. Timed twice: the first iterations, in which nearly every agent's
block needs the clip P_{>=omega} (an eigendecomposition), and iterations after `warmup`, when
few do. It prints the median seconds of an iteration, iterations per second, the share of
clipped rows, the peak resident memory and that memory per agent (linear in N when it stays
put).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[1]

ONE_SIZE = """
import json, resource, statistics, sys, time
from bildmacro_ros.core.bildmacro import initial_state, Mixer, swarm_step
from bildmacro_ros.core.config import validate
from bildmacro_ros.core.kernel import prepare_kernel
from bildmacro_ros.core.scenario import build_scenario
agents, degree, timed, warmup, kernel = int(sys.argv[1]), float(sys.argv[2]), \
    int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
start = time.perf_counter()
sc = build_scenario(validate({"agents": agents, "graph": {"type": "erdos_renyi",
                                                          "mean_degree": degree}}))
built = time.perf_counter() - start
if kernel == "numba":
    prepare_kernel(sc.problem, sc.steps, batch=True)
state, mix = initial_state(sc.problem, sc.x0, sc.y0), Mixer(sc.weights)
phases = {"start": ([], []), "later": ([], [])}
for k in range(warmup + timed):
    t0 = time.perf_counter()
    result = swarm_step(sc.problem, sc.steps, state, mix, kernel=kernel)
    seconds = time.perf_counter() - t0
    state = result.state
    phase = "start" if k < timed else "later" if k >= warmup else None
    if phase is not None:
        phases[phase][0].append(seconds)
        phases[phase][1].append(result.clipped.mean())
print(json.dumps({"built": built, "edges": int(sc.weights.nnz - agents) // 2,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  **{phase: [statistics.median(v) for v in values]
                     for phase, values in phases.items()}}))
"""


def measure(agents: int, degree: float, timed: int, warmup: int, kernel: str) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", BILDMACRO_KERNEL=kernel)
    done = subprocess.run([sys.executable, "-c", ONE_SIZE, str(agents), str(degree), str(timed),
                           str(warmup), kernel], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"N = {agents}, {kernel}: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[2500, 10000])
    parser.add_argument("--mean-degree", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations, each phase")
    parser.add_argument("--warmup", type=int, default=40,
                        help="iterations before the second phase is timed")
    args = parser.parse_args()
    print(f"swarm_step on ER graphs of mean degree {args.mean_degree:g}, m = 49; medians of "
          f"{args.iterations} iterations at the start and after {args.warmup}; one process per "
          "N and kernel")
    print(f"{'N':>6} {'kernel':>6} {'phase':>6} {'clipped':>8} {'iteration s':>12} {'it/s':>6} "
          f"{'peak MB':>8} {'kB/agent':>9}")
    for agents in args.agents:
        rates = {}
        for kernel in ("numpy", "numba"):
            got = measure(agents, args.mean_degree, args.iterations, args.warmup, kernel)
            for phase in ("start", "later"):
                seconds, clipped = got[phase]
                rates[kernel, phase] = 1.0 / seconds
                print(f"{agents:>6} {kernel:>6} {phase:>6} {clipped:>8.0%} {seconds:>12.3f} "
                      f"{rates[kernel, phase]:>6.2f} {got['rss'] / 2**20:>8.0f} "
                      f"{got['rss'] / agents / 1024:>9.1f}")
        print(f"{agents:>6} numba / numpy: "
              f"{rates['numba', 'start'] / rates['numpy', 'start']:.2f}x at the start, "
              f"{rates['numba', 'later'] / rates['numpy', 'later']:.2f}x later; graph "
              f"{got['edges']} edges in {got['built']:.2f} s")


if __name__ == "__main__":
    main()
