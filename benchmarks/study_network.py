# SPDX-License-Identifier: Apache-2.0
"""
Robots on separate computers over a lossy network: docs/deployment.md's table.

    sudo python benchmarks/study_network.py [--iterations 1500] [--out runs/network]

6 agents, two on each of 3 emulated computers and a recorder on a fourth (test/support/netlab.py:
network namespaces and a user-space switch with per-link loss and delay), each started from its own
copy of one plan folder (test/support/deployment.py). Cases: a clean network; 5%, 10% and 20% frame
loss on every link; 30 ± 10 ms of delay; a 10 s partition of one computer; a power loss of one
computer for 5 s, then a restart with --resume; a Ctrl-C restart of one computer. The 10% case runs
a second time without the shipped DDS profile, to show what it buys. Prints a Markdown table and
writes it to OUT/table.md. Needs root, as network namespaces do.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "support"))

from bildmacro_ros.core.config import load_config  # noqa: E402
from bildmacro_ros.core.scenario import build_scenario  # noqa: E402
from bildmacro_ros.simulate import run as simulate  # noqa: E402
from deployment import deploy, Fault  # noqa: E402
import netlab  # noqa: E402


def without_profile(root: Path) -> None:
    """Take the DDS profile out of a plan: Fast DDS's defaults, one datagram per message."""
    index = root / "plan.yaml"
    index.write_text("".join(line for line in index.read_text().splitlines(keepends=True)
                             if "_DEFAULT_PROFILES_FILE" not in line))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--deadline", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=Path("runs/network"))
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args()
    reason = netlab.available()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    cfg, base = load_config("demo", {"agents": 6, "iterations": args.iterations})
    offline = simulate(build_scenario(cfg, base), args.out / "offline", plots=False,
                       progress=False, overwrite=True)
    early = 300  # the round a fault starts at: in the first quarter of a 1500-round run
    cases = [
        ("clean", {}, True),
        ("5% loss, every link", {"loss": 0.05}, True),
        ("10% loss, every link", {"loss": 0.10}, True),
        ("10% loss, every link, no DDS profile", {"loss": 0.10}, False),
        ("20% loss, every link", {"loss": 0.20}, True),
        ("30 ± 10 ms delay", {"delay": 0.03, "jitter": 0.01}, True),
        ("10 s partition of one computer", {"faults": (Fault("partition", 2, early, 10.0),)},
         True),
        ("power loss of one computer, 5 s, --resume", {"faults": (Fault("power", 1, early, 5.0),)},
         True),
        ("Ctrl-C restart of one computer, --resume",
         {"faults": (Fault("restart", 1, early, 2.0),)}, True),
    ]
    rows = ["| case | final KL | vs offline | spread of y | late agent-rounds | deaths | "
            "catch-ups | rounds/s "
            "| wall (s) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for number, (name, options, profile) in enumerate(cases):
        if args.only not in name:
            continue
        root = args.out / f"case_{number}"
        hook = None if profile else without_profile
        print(f"{name} ...", file=sys.stderr, flush=True)
        try:
            done = deploy(root, iterations=args.iterations, deadline=args.deadline, plan_hook=hook,
                          **options)
        except AssertionError as exc:
            rows.append(f"| {name} | failed: {str(exc).splitlines()[0][:80]} | | | | | | | |")
            print(rows[-1], flush=True)
            continue
        kl = done.summary["final_kl"]
        catch_ups = sum(len(o.catch_ups) for o in done.outcomes.values())
        finished = f" ({len(done.alive)}/6 finished)" if len(done.alive) < 6 else ""
        if done.summary["failure"]:  # what the recorder holds is not the run's end
            stopped = done.summary["iterations"]
            result = f"not recorded: the recorder stopped at round {stopped} | | "
        else:
            change = 100 * (kl / offline.final_kl - 1)
            result = f"{kl:.4f}{finished} | {change:+.1f}% | {done.spread:.1e} | "
        rows.append(f"| {name} | {result}{done.late_rounds} | {done.deaths} | {catch_ups} | "
                    f"{done.rounds_per_second:.1f} | {done.wall:.0f} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    (args.out / "table.md").write_text(table + "\n")
    print(f"\noffline (bildmacro simulate): final KL {offline.final_kl:.4f}\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
