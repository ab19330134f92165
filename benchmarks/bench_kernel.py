# SPDX-License-Identifier: Apache-2.0
"""
The compiled step (BILDMACRO_KERNEL=numba, core/kernel.py) against the numpy path, side by side.

    python benchmarks/bench_kernel.py [--rounds 300]

One agent's step as a node takes it (agent_step: m = 49, 10 neighbours), and one iteration of the
N = 20 swarm as `bildmacro simulate` takes it (swarm_step), each timed in alternated blocks of both
paths from the same state; best of seven blocks, median beside it, and the ratio. Last, what a
process pays before its first compiled step: numba's cache loaded in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bildmacro_ros.core.bildmacro import (agent_step, initial_state, local_step,  # noqa: E402
                                          Mixer, swarm_step)
from bildmacro_ros.core.config import validate  # noqa: E402
from bildmacro_ros.core.graph import in_neighbours  # noqa: E402
from bildmacro_ros.core.kernel import KERNEL_VARIABLE  # noqa: E402
from bildmacro_ros.core.scenario import build_scenario  # noqa: E402

# the step's cost changes as the swarm settles: early on, the factor of q proves that the clip
# P_{>=omega} is idle (core/kernel_linalg.py); settled, q's smallest eigenvalue nears omega and a
# second factorisation has to
SETTLED = 3000
FIRST_STEP = """
import time; t = time.perf_counter()
from bildmacro_ros.core.bildmacro import initial_state, local_step, Mixer
from bildmacro_ros.core.config import validate
from bildmacro_ros.core.scenario import build_scenario
sc = build_scenario(validate({"agents": 3}))
s = initial_state(sc.problem, sc.x0, sc.y0); mix = Mixer(sc.weights)
t1 = time.perf_counter()
local_step(sc.problem, sc.steps, s, mix(s.y), mix(s.r), mix(s.q), kernel="numba")
print(time.perf_counter() - t1)
"""


def blocks(runs: dict, rounds: int, count: int = 7) -> dict:
    """Time each callable in alternated blocks of `rounds` calls; seconds per call."""
    times = {name: [] for name in runs}
    for _ in range(count):
        for name, call in runs.items():
            start = time.perf_counter()
            for _ in range(rounds):
                call()
            times[name].append((time.perf_counter() - start) / rounds)
    return times


def report(what: str, times: dict) -> None:
    best = {name: min(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"  {what}, {name:5s}: {best[name] * 1e6:8.1f} us best, "
              f"{statistics.median(t) * 1e6:8.1f} median")
    print(f"  {what}: compiled is {best['numpy'] / best['numba']:.1f}x the numpy path")


def agent_steps_timed(sc, state, rounds: int, when: str) -> None:
    """One agent's step from agent 0's row and its first ten neighbours', on both paths."""
    near = in_neighbours(sc.weights, 0)[:10]
    inputs = (state.rows(0), sc.weights[0, 0], sc.weights[0, near], state.y[near],
              state.r[near], state.q[near])
    print(f"one agent's step (m = {sc.problem.m}, {len(near)} neighbours), {when}:")
    runs = {}
    for kernel in ("numpy", "numba"):
        def step(kernel=kernel):
            os.environ[KERNEL_VARIABLE] = kernel
            agent_step(sc.problem, sc.steps, *inputs)
        runs[kernel] = step
    report("agent step", blocks(runs, rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    sc = build_scenario(validate({"agents": 20, "algorithm": {"gamma_y": 0.9 / 20}}))
    state = initial_state(sc.problem, sc.x0, sc.y0)
    mixer = Mixer(sc.weights)
    for _ in range(50):  # past the first rounds' clips, as bench_core does
        state = swarm_step(sc.problem, sc.steps, state, mixer).state
    start = time.perf_counter()
    ready = local_step(sc.problem, sc.steps, state, mixer(state.y), mixer(state.r),
                       mixer(state.q), kernel="numba")
    print(f"first compiled step in this process: {time.perf_counter() - start:.2f} s "
          "(a compile, or numba's cache loaded)")
    assert np.allclose(ready.state.y, local_step(sc.problem, sc.steps, state, mixer(state.y),
                                                 mixer(state.r), mixer(state.q)).state.y)
    agent_steps_timed(sc, state, args.rounds, "iteration 50")
    print("one iteration of the N = 20 swarm (swarm_step):")
    runs = {}
    for kernel in ("numpy", "numba"):
        def iteration(kernel=kernel):
            os.environ[KERNEL_VARIABLE] = kernel
            swarm_step(sc.problem, sc.steps, state, mixer)
        runs[kernel] = iteration
    report("N = 20 iteration", blocks(runs, max(args.rounds // 10, 10)))
    os.environ[KERNEL_VARIABLE] = "numba"
    for _ in range(SETTLED - 50):
        state = swarm_step(sc.problem, sc.steps, state, mixer).state
    agent_steps_timed(sc, state, args.rounds, f"settled, iteration {SETTLED}")
    os.environ.pop(KERNEL_VARIABLE, None)
    loads = [float(subprocess.run([sys.executable, "-c", FIRST_STEP], capture_output=True,
                                  text=True, check=True).stdout) for _ in range(3)]
    print(f"first compiled step of a fresh process (cache warm): {min(loads):.2f} s best of 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
