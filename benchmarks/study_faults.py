"""How a real swarm over DDS copes with lost messages and a killed agent: final KL against the fault-free run.

    python benchmarks/study_faults.py [--agents 10] [--iterations 1500] [--deadline 0.1] [--out runs/faults]

Runs `bildmacro swarm` (one process per agent, embedded robots off) fault-free, with 5% and 20%
seeded message loss (both late policies), with one agent killed mid-run, and killed then
restarted. Prints a Markdown table (the README's) and writes it to OUT/table.md. Needs the DDS
isolation variables set, as `make bench` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bildmacro_ros.core.config import validate  # noqa: E402
from bildmacro_ros.core.scenario import load_run_inputs  # noqa: E402
from bildmacro_ros.swarm import Kill, run_swarm  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--deadline", type=float, default=0.1, help="faults.deadline of every faulty run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/faults"))
    args = parser.parse_args()
    cfg, base, _, _ = load_run_inputs("demo", {"agents": args.agents, "iterations": args.iterations,
                                               "seed": args.seed})
    cfg["robots"]["simulator"] = "none"
    victim, at = args.agents // 2, args.iterations // 3
    cases = [("fault-free", {}, None),
             ("5% loss, drop", {"drop": 0.05, "late_policy": "drop"}, None),
             ("5% loss, reuse", {"drop": 0.05, "late_policy": "reuse"}, None),
             ("20% loss, drop", {"drop": 0.2, "late_policy": "drop"}, None),
             ("20% loss, reuse", {"drop": 0.2, "late_policy": "reuse"}, None),
             (f"agent {victim} killed at round {at}", {}, Kill(victim, at)),
             (f"agent {victim} killed at round {at}, restarted 2 s later", {}, Kill(victim, at, 2.0))]
    rows, reference = [], None
    for name, faults, kill in cases:
        run_cfg = validate(dict(cfg, faults=dict(cfg["faults"], deadline=args.deadline, seed=args.seed, **faults)))
        folder = args.out / name.replace(" ", "_").replace("%", "pct").replace(",", "")
        print(f"-- {name}", file=sys.stderr)
        summary = run_swarm(run_cfg, base, folder, plots=False, overwrite=True, kill=kill,
                            log_every=max(1, args.iterations // 100))
        if reference is None:
            reference = summary.final_kl
        rows.append((name, summary))
    lines = [f"N = {args.agents}, {args.iterations} rounds, demo config, deadline {args.deadline:g} s, "
             f"one process per agent on this machine.", "",
             "| run | final KL | vs fault-free | survivors finished | agent-rounds stepped late | wall time |",
             "|---|---|---|---|---|---|"]
    for name, s in rows:
        finished = f"{'yes' if s.survivors_finished and not s.failure else 'NO'} ({len(s.finished or ())}/{s.agents})"
        lines.append(f"| {name} | {s.final_kl:.4f} | {100 * (s.final_kl / reference - 1):+.1f}% | {finished} | "
                     f"{s.late_rounds} | {s.seconds:.0f} s |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
