# SPDX-License-Identifier: Apache-2.0
"""
Synchronous rounds per second of real agent processes over DDS (loopback), against the relay floor.

    python benchmarks/bench_swarm.py [--iterations 600] [--relay-rounds 600]

In one run, alternated: the relay (benchmarks/relay.py: the same graph and message, nothing
computed) with each of its three ways to wait, the events relay reading every number as the
agents do (--work read), the floor agent (--work step: the messages read and the compiled step
taken, nothing else, on a wait set and on the EventsExecutor), and `bildmacro swarm` for N = 10
and 30 agent
processes, for the 10 agents packed into two processes and into one, and for 60 agents packed
into one and into two (agent groups: one executor per process, neighbours in the same process
served in-process), each swarm with the numpy step
and then the compiled one (BILDMACRO_KERNEL), and their ratio. The swarm runs without robots
(`--simulator none`), so the rounds go at the speed of the agents and the network, and records
only its first and last rounds. The rate is each agent's own report (RUN/outcomes/agent_<i>.json:
rounds_per_second, after round 1), so discovery and start-up are left out, and the slowest agent
sets the swarm's. CPU per agent-round is what each agent's outcome reports of its process's CPU
time over the same rounds (cpu_seconds: every thread of the process, DDS's too), over its
rounds and the agents of its process, averaged over the agents; a relay process reports its own
the same way, and "CPU vs it" is the 10 agent processes' per agent-round over the wait-set
relay's per round. Needs the same DDS
isolation as the tests (set here, as the Makefile's `bench` target does).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bildmacro_ros.core.kernel import KERNEL_VARIABLE, KERNELS  # noqa: E402
from bildmacro_ros.protocol.outcome import read_outcomes  # noqa: E402
from bildmacro_ros.protocol.wire import message_length  # noqa: E402
import relay  # noqa: E402, I100, I201


def swarm(agents: int, per_process: int, iterations: int, kernel: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bildmacro-bench-")) / "run"
    start = time.monotonic()
    env = {**os.environ, KERNEL_VARIABLE: kernel}
    res = subprocess.run([sys.executable, "-m", "bildmacro_ros.cli", "swarm", "--agents",
                          str(agents), "--iterations", str(iterations), "--agents-per-process",
                          str(per_process), "--out", str(out), "--no-plots", "--quiet",
                          "--simulator", "none", "--log-every", str(iterations), "--stall-timeout",
                          "900"],  # few records, so a slow swarm goes long between them
                         capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.monotonic() - start
    outcomes = [o for o in read_outcomes(out / "outcomes").values() if o.finished]
    rates = sorted(o.rounds_per_second for o in outcomes)
    complete = (out / "summary.json").is_file() and len(rates) == agents
    if res.returncode != 0 and complete:
        # the run is whole: its launcher's DDS teardown hung after writing everything and was
        # ended (Fast DDS#6502, docs/faults.md); the measurement stands
        print(f"  (swarm of {agents}: exit code {res.returncode} after a complete run)")
    elif res.returncode != 0 or not complete:
        raise SystemExit(f"swarm of {agents} failed ({len(rates)} agents finished):\n"
                         f"{res.stdout}\n{res.stderr}")
    # an agent's process CPU over its rounds, shared by the agents of its process
    cpu = sum(o.cpu_seconds / (o.rounds - 1) / per_process for o in outcomes) / len(outcomes)
    return {"rate": rates[0], "median": rates[len(rates) // 2], "wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=600,
                        help="rounds of each swarm (default 600)")
    parser.add_argument("--relay-rounds", type=int, default=600,
                        help="rounds of each relay (default 600)")
    args = parser.parse_args()
    relay.isolate()
    from std_msgs.msg import Float64MultiArray  # noqa: F401 - after the isolation is set

    from bildmacro_ros.ros.messages import StateMessages

    print(f"message per agent per round: {message_length(49)} float64, {StateMessages(49).size} "
          "bytes serialized "
          f"(CDR, with the layout label)")
    floor = {}
    print(f"\nrelay, 10 processes (benchmarks/relay.py)\n{'executor':>12} "
          f"{'rounds/s (slowest)':>19} {'median':>8} {'CPU ms/round':>13}")
    relays = [(e, "relay") for e in relay.EXECUTORS] + [
        ("events", "read"), ("waitset", "step"), ("events", "step")]
    for executor, work in relays:
        label = relay.label(executor, work)
        floor[label] = relay.run(10, args.relay_rounds, executor, work)
        print(f"{label:>12} {floor[label]['rate']:>19.1f} {floor[label]['median']:>8.1f} "
              f"{floor[label]['cpu']:>13.2f}", flush=True)
    # the faster of the two floor agents: what an agent in Python on rclpy reaches at best here
    best = max(floor["waitset+step"], floor["events+step"], key=lambda r: r["rate"])
    print(f"floor agent: {100 * best['rate'] / floor['waitset']['rate']:.0f}% of the wait-set "
          f"relay's rate, {best['cpu'] / floor['waitset']['cpu']:.1f}x its CPU per round")
    print(f"\nswarm (bildmacro swarm --simulator none), each with both steps, one after the other"
          f"\n{'agents':>7} {'processes':>10} {'step':>6} {'rounds/s (slowest)':>19} "
          f"{'median':>8} {'CPU ms/agent-round':>19} {'vs waitset relay':>17} {'CPU vs it':>10} "
          f"{'vs floor agent':>15} {'vs numpy':>9}")
    for agents, per_process in [(10, 1), (10, 5), (10, 10), (30, 1), (60, 60), (60, 30)]:
        rates = {}
        for kernel in KERNELS:
            r = swarm(agents, per_process, args.iterations, kernel)
            per_round = r["cpu"] * 1e3
            processes = -(-agents // per_process)
            beside = (agents, per_process) == (10, 1)  # the relay runs the 10-process graph
            ratio = f"{100 * r['rate'] / floor['waitset']['rate']:>16.0f}%" if beside else ""
            cpu_ratio = f"{per_round / floor['waitset']['cpu']:>9.1f}x" if beside else ""
            to_best = f"{100 * r['rate'] / best['rate']:>14.0f}%" if beside else ""
            rates[kernel] = r["rate"]
            gain = f"{rates[kernel] / rates['numpy']:>8.2f}x"
            print(f"{agents:>7} {processes:>10} {kernel:>6} {r['rate']:>19.1f} "
                  f"{r['median']:>8.1f} {per_round:>19.2f} {ratio:>17} {cpu_ratio:>10} "
                  f"{to_best:>15} {gain:>9}",
                  flush=True)
    again = relay.run(10, args.relay_rounds, "waitset")
    print(f"\nwaitset relay again after the swarms: {again['rate']:.1f} rounds/s (the machine's "
          "drift over the run)")


if __name__ == "__main__":
    main()
