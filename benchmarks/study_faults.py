# SPDX-License-Identifier: Apache-2.0
"""
How a real swarm over DDS copes with lost messages and a killed agent.

Its final KL against the fault-free run's.

    python benchmarks/study_faults.py [--agents 10] [--iterations 1500] [--deadline 0.1] [--out
    runs/faults]

Runs `bildmacro swarm` (one process per agent, embedded robots off) fault-free, with 5% and 20%
seeded message loss (both late policies), with one agent killed mid-run, and killed then
restarted. Each loss case is also run offline, agent by agent with the same lost messages and no
timing, to separate what the policy costs from what timing costs. Prints a Markdown table (that
of docs/faults.md) and writes it to OUT/table.md. Needs the DDS isolation variables set, as
`make bench` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bildmacro_ros.core.bildmacro import agent_step, initial_state  # noqa: E402
from bildmacro_ros.core.config import validate  # noqa: E402
from bildmacro_ros.core.faults import FaultInjector, mix_inputs  # noqa: E402
from bildmacro_ros.core.graph import in_neighbours  # noqa: E402
from bildmacro_ros.core.metrics import ObjectiveTracker  # noqa: E402
from bildmacro_ros.core.scenario import build_scenario, load_run_inputs  # noqa: E402
from bildmacro_ros.launchers.swarm import Kill, run_swarm  # noqa: E402


def offline_kl(scenario, injector: FaultInjector, policy: str, iterations: int) -> float:
    """
    Compute the final KL of Algorithm 1 with exactly the injector's losses.

    Agent i steps round k without the messages the injector loses, by the late policy, exactly as a
    node does after its deadline (but nothing else late).
    """
    problem, steps, weights = scenario.problem, scenario.steps, scenario.weights
    n = len(weights)
    rows = [initial_state(problem, scenario.x0[i], scenario.y0[i]) for i in range(n)]
    last_used: list[dict] = [{} for _ in range(n)]
    neighbours = [[int(j) for j in in_neighbours(weights, i)] for i in range(n)]
    for k in range(iterations):
        new = []
        for i in range(n):
            fresh = {j: rows[j] for j in neighbours[i] if not injector.lost(j, i, k)}
            a_ii, a, used = mix_inputs(neighbours[i], weights[i, i], weights[i, neighbours[i]],
                                       fresh, last_used[i], policy)
            new.append(agent_step(problem, steps, rows[i], a_ii, a, *(
                np.concatenate([getattr(u, name) for u in used]) if used else np.zeros((0, width))
                for name, width in (("y", problem.m), ("r", problem.m),
                                    ("q", rows[i].q.shape[1])))).state)
            last_used[i].update(fresh)
        rows = new
    return ObjectiveTracker(problem)(np.concatenate([r.x for r in rows]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--deadline", type=float, default=0.1,
                        help="faults.deadline of every faulty run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/faults"))
    args = parser.parse_args()
    cfg, base, _, _ = load_run_inputs("demo", {"agents": args.agents, "seed": args.seed,
                                               "iterations": args.iterations})
    cfg["robots"]["simulator"] = "none"
    victim, at = args.agents // 2, args.iterations // 3
    cases = [("fault-free", {}, None),
             ("5% loss, drop", {"drop": 0.05, "late_policy": "drop"}, None),
             ("5% loss, reuse", {"drop": 0.05, "late_policy": "reuse"}, None),
             ("20% loss, drop", {"drop": 0.2, "late_policy": "drop"}, None),
             ("20% loss, reuse", {"drop": 0.2, "late_policy": "reuse"}, None),
             (f"agent {victim} killed at round {at}", {}, Kill(victim, at)),
             (f"agent {victim} killed at round {at}, restarted 2 s later", {},
              Kill(victim, at, 2.0))]
    scenario = build_scenario(cfg, base)
    rows, reference = [], None
    for name, faults, kill in cases:
        faulty = dict(cfg["faults"], deadline=args.deadline, fault_seed=args.seed, **faults)
        run_cfg = validate(dict(cfg, faults=faulty))
        folder = args.out / name.replace(" ", "_").replace("%", "pct").replace(",", "")
        print(f"-- {name}", file=sys.stderr)
        summary = run_swarm(run_cfg, base, folder, plots=False, overwrite=True, kill=kill,
                            log_every=max(1, args.iterations // 100))
        if reference is None:
            reference = summary.final_kl
        injector = FaultInjector(args.seed, run_cfg["faults"]["drop"])
        # the agent-rounds that lost a neighbour's message: the fewest that can be stepped late
        lossy = injector.lossy_rounds(scenario.weights, args.iterations).sum()
        offline = offline_kl(scenario, injector, run_cfg["faults"]["late_policy"],
                             args.iterations) \
            if injector.active else None
        rows.append((name, summary, lossy, offline))
    lines = [f"N = {args.agents}, {args.iterations} rounds, demo config, deadline "
             f"{args.deadline:g} s, "
             f"one process per agent on this machine.", "",
             "| run | final KL | vs fault-free | offline, same losses | survivors finished | "
             "agent-rounds stepped "
             "late (with a lost message) | wall time |",
             "|---|---|---|---|---|---|---|"]
    for name, s, lossy, offline in rows:
        ok = "yes" if s.survivors_finished and not s.failure else "NO"
        finished = f"{ok} ({len(s.finished)}/{s.agents})"
        off = "" if offline is None else f"{offline:.4f}"
        lines.append(f"| {name} | {s.final_kl:.4f} | {100 * (s.final_kl / reference - 1):+.1f}% | "
                     f"{off} | {finished} | "
                     f"{s.late_rounds} ({lossy}) | {s.seconds:.0f} s |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
