# SPDX-License-Identifier: Apache-2.0
"""
How close honest messages come to the plausibility bounds (protocol/plausible.py).

The table of docs/security.md.

For each preset and N it runs `bildmacro simulate`'s vectorised swarm, whose rows are exactly the
agents' messages, and prints the largest ratio of an honest value to its bound over every agent
and round: |y|_inf, |r|_inf, the largest |q| entry and, every `--eigen-every` rounds, how far q's
smallest eigenvalue lies below zero against the bound. A ratio of 1 or more would be an honest
message dropped.

    python benchmarks/study_bounds.py                # presets default, demo, paper; N = 5, 20, 100
    python benchmarks/study_bounds.py --agents 20 --iterations 2000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bildmacro_ros.core.config import load_config, PRESETS
from bildmacro_ros.core.scenario import build_scenario
from bildmacro_ros.core.symmetric import unpack
from bildmacro_ros.protocol.plausible import Bounds
from bildmacro_ros.simulate import Distributed


def study(preset: str, agents: int, iterations: int | None, eigen_every: int) -> dict:
    overrides = {"agents": agents} | ({"iterations": iterations} if iterations else {})
    cfg, base = load_config(preset, overrides)
    scenario = build_scenario(cfg, base)
    bounds = Bounds.of(scenario.problem.m, scenario.steps.omega, scenario.steps.gamma_y,
                       float(np.abs(scenario.y0).max()))
    swarm = Distributed(scenario)
    worst = dict.fromkeys(("y", "r", "q", "q_floor"), 0.0)
    rounds = cfg["iterations"]
    for k in range(rounds + 1):
        s = swarm.state  # round k's messages
        if not np.all(np.isfinite(s.y)) or np.abs(s.y).max() > 1e100:
            return {"diverged at": k, **worst}
        worst["y"] = max(worst["y"], np.abs(s.y).max() / bounds.y(k))
        worst["r"] = max(worst["r"], np.abs(s.r).max() / bounds.r)
        worst["q"] = max(worst["q"], np.abs(s.q).max() / bounds.q)
        if k % eigen_every == 0 or k < 20:
            smallest = np.linalg.eigvalsh(unpack(s.q))[:, 0].min()
            worst["q_floor"] = max(worst["q_floor"], -smallest / bounds.q_floor)
        if k < rounds:
            swarm.advance(measure=False)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--agents", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--iterations", type=int, help="rounds per run (default: the preset's)")
    parser.add_argument("--eigen-every", type=int, default=25,
                        help="rounds between eigenvalue checks of q")
    args = parser.parse_args()
    print(f"{'preset':8} {'N':>4} {'y':>7} {'r':>7} {'q':>7} {'q_floor':>8}  (largest honest "
          "value / bound)")
    overall = 0.0
    for preset in args.presets:
        for agents in args.agents:
            started = time.monotonic()
            worst = study(preset, agents, args.iterations, args.eigen_every)
            diverged = worst.pop("diverged at", None)
            note = "" if diverged is None else f"  diverged at round {diverged}"
            overall = max(overall, *worst.values())
            print(f"{preset:8} {agents:>4} " + " ".join(f"{v:>7.3f}" for v in worst.values())
                  + f"   ({time.monotonic() - started:.0f} s){note}", flush=True)
    print(f"largest ratio over every run: {overall:.3f} (1 would drop an honest message)")
    return 0 if overall < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
