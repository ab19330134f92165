# SPDX-License-Identifier: Apache-2.0
"""
Large swarms offline: iterations per second and memory of `bildmacro simulate`'s step, by N.

    python benchmarks/bench_large.py [--agents 2500 5000 10000] [--mean-degree 10]

Each size runs in a fresh process per kernel (numpy, then numba), so that its peak memory is its
own: the graph (Erdős–Rényi of the given mean degree, sparse), the swarm's state and `iterations`
iterations of swarm_step, timed one by one. It prints the median seconds of the mixing and of the
step, iterations per second, the peak resident memory, and that memory per agent: it is linear in
N when the last column stays put.
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
from bildmacro_ros.core.bildmacro import initial_state, local_step, Mixer
from bildmacro_ros.core.config import validate
from bildmacro_ros.core.kernel import prepare_kernel
from bildmacro_ros.core.scenario import build_scenario
agents, degree, iterations, kernel = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4]
start = time.perf_counter()
sc = build_scenario(validate({"agents": agents, "iterations": iterations,
                              "graph": {"type": "erdos_renyi", "mean_degree": degree}}))
built = time.perf_counter() - start
if kernel == "numba":
    prepare_kernel(sc.problem, sc.steps)
state, mix = initial_state(sc.problem, sc.x0, sc.y0), Mixer(sc.weights)
mixing, stepping = [], []
for _ in range(iterations):
    t0 = time.perf_counter()
    y, r, q = mix(state.y), mix(state.r), mix(state.q)
    t1 = time.perf_counter()
    state = local_step(sc.problem, sc.steps, state, y, r, q, kernel=kernel).state
    mixing.append(t1 - t0)
    stepping.append(time.perf_counter() - t1)
print(json.dumps({"built": built, "edges": int(sc.weights.nnz - agents) // 2,
                  "mix": statistics.median(mixing), "step": statistics.median(stepping),
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def measure(agents: int, degree: float, iterations: int, kernel: str) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", BILDMACRO_KERNEL=kernel)
    done = subprocess.run([sys.executable, "-c", ONE_SIZE, str(agents), str(degree),
                           str(iterations), kernel], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"N = {agents}, {kernel}: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[2500, 5000, 10000])
    parser.add_argument("--mean-degree", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    print(f"swarm_step on ER graphs of mean degree {args.mean_degree:g}, m = 49; medians of "
          f"{args.iterations} iterations, one process per row")
    print(f"{'N':>6} {'kernel':>6} {'edges':>7} {'graph s':>8} {'mix s':>7} {'step s':>7} "
          f"{'it/s':>6} {'peak MB':>8} {'kB/agent':>9}")
    for agents in args.agents:
        rates = {}
        for kernel in ("numpy", "numba"):
            got = measure(agents, args.mean_degree, args.iterations, kernel)
            rates[kernel] = 1.0 / (got["mix"] + got["step"])
            print(f"{agents:>6} {kernel:>6} {got['edges']:>7} {got['built']:>8.2f} "
                  f"{got['mix']:>7.3f} {got['step']:>7.3f} {rates[kernel]:>6.2f} "
                  f"{got['rss'] / 2**20:>8.0f} {got['rss'] / agents / 1024:>9.1f}")
        print(f"{agents:>6} numba / numpy: {rates['numba'] / rates['numpy']:.2f}x")


if __name__ == "__main__":
    main()
