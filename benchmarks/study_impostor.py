# SPDX-License-Identifier: Apache-2.0
"""
What an impostor of agent 1 does to a real swarm over DDS, with the writer checks and without.

    python benchmarks/study_impostor.py [--agents 6] [--iterations 600] [--out runs/impostor]

Issue 26's setup: `bildmacro swarm --config demo` with 6 agent processes, 600 rounds, seed 1, and
the impostor of test/support/impostor.py joining at round 100 and forging for 60 rounds (at most
4 s), once per kind of forgery, with `faults.pin_writers` on (defended) and off (attacked). Prints
a Markdown table (docs/security.md's) of each run's final KL against `bildmacro simulate`'s, the
messages refused, the forgeries the agents noticed as equivocations and the rounds stepped late,
and writes it to OUT/table.md. Needs the DDS isolation variables set, as `make impostor` does.
"""

from __future__ import annotations

import argparse
from functools import partial
import json
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "test" / "support"))

from bildmacro_ros.core.config import load_config  # noqa: E402
from bildmacro_ros.core.scenario import build_problem  # noqa: E402
from bildmacro_ros.protocol.outcome import read_outcomes  # noqa: E402
from helpers import bildmacro, spinning  # noqa: E402, I100
from impostor import Impostor, KINDS  # noqa: E402


def run(out: Path, swarm: tuple, problem, kind: str, pinned: bool) -> dict:
    folder = out / f"{kind}-{'defended' if pinned else 'attacked'}"
    with spinning(partial(Impostor, problem=problem, kind=kind)) as impostor:
        res = bildmacro("swarm", *swarm, "--simulator", "none", "--out", folder, "--no-plots",
                        "--overwrite", *(() if pinned else ("--no-pin-writers",)), timeout=900)
    if res.returncode != 0:
        raise SystemExit(f"{kind}: the swarm failed\n{res.stdout}\n{res.stderr}")
    summary = json.loads((folder / "summary.json").read_text())
    reports = read_outcomes(folder / "outcomes").values()
    return {"kl": summary["final_kl"], "sent": impostor.sent,
            "refused": sum(o.dropped.get("foreign_writer", 0) for o in reports),
            "implausible": sum(n for o in reports for reason, n in o.dropped.items()
                               if reason.startswith(("implausible", "indefinite"))),
            "equivocations": sum(o.dropped.get("equivocation", 0) for o in reports),
            "late": summary["late_rounds"], "seconds": summary["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--agents", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "impostor")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=KINDS)
    parser.add_argument("--checks", nargs="+", choices=("off", "on"), default=("off", "on"))
    args = parser.parse_args()
    swarm = ("--config", "demo", "--agents", args.agents, "--iterations", args.iterations,
             "--seed", args.seed)
    res = bildmacro("simulate", *swarm, "--out", args.out / "clean", "--no-plots", "--overwrite")
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    clean = float(res.stdout.rsplit("-> ", 1)[1].split(";")[0])
    problem = build_problem(*load_config("demo"))[0]
    rows = ["| forgery | checks | final KL | against the clean run | forgeries sent | refused "
            "(foreign writer) | dropped as implausible | noticed as equivocations | rounds "
            "stepped late | seconds |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- "
            "| --- |"]
    for kind in args.kinds:
        for pinned in (check == "on" for check in args.checks):
            r = run(args.out, swarm, problem, kind, pinned)
            rows.append(f"| {kind} | {'on' if pinned else 'off'} | {r['kl']:.4f} | "
                        f"{100 * (r['kl'] - clean) / clean:+.1f}% | {r['sent']} | {r['refused']} "
                        f"| {r['implausible']} | {r['equivocations']} | {r['late']} | "
                        f"{r['seconds']:.1f} |")
            print(rows[-1], flush=True)
    table = f"Clean run (`bildmacro simulate`): final KL {clean:.4f}\n\n" + "\n".join(rows) + "\n"
    (args.out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
