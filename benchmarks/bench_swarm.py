# SPDX-License-Identifier: Apache-2.0
"""
Synchronous rounds per second of real agent processes over DDS (loopback), and message size.

    python benchmarks/bench_swarm.py [--iterations 300]

Runs `bildmacro swarm` for N = 10 and N = 30 agent processes, and for 60 agents packed into one
and into two processes (agent groups: one executor per process, neighbours in the same process
served in-process). The rate is each agent's own report (RUN/outcomes/agent_<i>.json:
rounds_per_second, after round 1), i.e. after discovery and start-up, and the slowest agent
sets the swarm's rate. Needs
the same DDS isolation as the tests (the Makefile's `bench` target sets it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bildmacro_ros.protocol.outcome import read_outcomes  # noqa: E402
from bildmacro_ros.protocol.wire import message_length  # noqa: E402


def measure(agents: int, per_process: int, iterations: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bildmacro-bench-")) / "run"
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "bildmacro_ros.cli", "swarm", "--agents", str(agents), "--iterations",
                          str(iterations), "--agents-per-process", str(per_process), "--out", str(out), "--no-plots",
                          "--quiet", "--log-every", str(iterations)], capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - start
    if res.returncode != 0:
        raise SystemExit(f"swarm of {agents} failed:\n{res.stdout}\n{res.stderr}")
    rates = [outcome.rounds_per_second for outcome in read_outcomes(out / "outcomes").values() if outcome.finished]
    return {"rate": min(rates), "median": sorted(rates)[len(rates) // 2], "wall": wall, "agents_logged": len(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(0, 101)))
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bildmacro-roslog-"))
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension
    from rclpy.serialization import serialize_message

    from bildmacro_ros.protocol.wire import layout_label

    n = message_length(49)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=layout_label(49), size=n, stride=n)]
    msg.data = [0.0] * n
    print(f"message per agent per round: {n} float64 = {8 * n} bytes of payload, "
          f"{len(serialize_message(msg))} bytes serialized (CDR, with the layout label)")
    print(f"{'agents':>7} {'processes':>10} {'rounds/s (slowest)':>19} {'median agent':>13} {'wall s':>8}")
    for agents, per_process in [(10, 1), (30, 1), (60, 60), (60, 30)]:
        r = measure(agents, per_process, args.iterations)
        processes = -(-agents // per_process)
        print(f"{agents:>7} {processes:>10} {r['rate']:>19.1f} {r['median']:>13.1f} {r['wall']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
