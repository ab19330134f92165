# SPDX-License-Identifier: Apache-2.0
"""
What `--live` costs a swarm: rounds per second with and without it, in one run, alternated.

    python benchmarks/bench_live.py [--agents 6] [--iterations 1000] [--repeats 2]

`bildmacro swarm --config demo --simulator none` (the rounds then go at the speed of the agents
and DDS), with `--log-every 1` (a metrics row, and so a picture, every round: the most the live
view is asked to serve) and without; with --live, a client (test/support/live_client.py)
subscribes to every channel. The rate is the slowest agent's own (outcomes, after round 1).
Needs the DDS isolation variables set, as the tests and `make bench` do.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import socket
import subprocess
import sys
import tempfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "test" / "support"))

from bildmacro_ros.protocol.outcome import read_outcomes  # noqa: E402
from live_client import LiveClient  # noqa: E402, I100


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(agents: int, iterations: int, live: bool) -> tuple[float, int]:
    """Return the slowest agent's rounds/s, and the messages a live client took."""
    out = Path(tempfile.mkdtemp(prefix="bildmacro-bench-live-")) / "run"
    port = free_port()
    command = [sys.executable, "-m", "bildmacro_ros.cli", "swarm", "--config", "demo", "--agents",
               str(agents), "--iterations", str(iterations), "--simulator", "none", "--log-every",
               "1", "--no-plots", "--quiet", "--out", str(out)]
    if live:
        command += ["--live", "--live-port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    client = LiveClient(port) if live else None
    stdout, stderr = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"the swarm failed:\n{stdout}\n{stderr}")
    if client is not None:
        client.closed.wait(10)
    rates = [o.rounds_per_second for o in read_outcomes(out / "outcomes").values()]
    return min(rates), len(client.messages) if client is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--agents", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    without, with_live = [], []
    for _ in range(args.repeats):
        without.append(run(args.agents, args.iterations, False)[0])
        rate, taken = run(args.agents, args.iterations, True)
        with_live.append(rate)
        print(f"without --live {without[-1]:.1f} rounds/s; with --live and a client "
              f"{rate:.1f} rounds/s ({taken} messages taken)", flush=True)
    a, b = sum(without) / len(without), sum(with_live) / len(with_live)
    print(f"mean: without {a:.1f}, with {b:.1f} rounds/s: --live costs {100 * (1 - b / a):+.1f}%")


if __name__ == "__main__":
    main()
