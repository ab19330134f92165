# SPDX-License-Identifier: Apache-2.0
"""
The floor under the swarm's rounds/s: processes that only relay a neighbour message per round.

    python benchmarks/relay.py [--agents 10] [--rounds 600] [--executor single events waitset]
                               [--work relay read step]

One process per agent on the swarm's own graph (the default config's Erdős–Rényi draw for N). In
each round a process publishes one message of the agents' size and layout (1331 float64 in a
Float64MultiArray, 10.7 kB, serialized as the agents send it) with the agents' QoS and Fast DDS
profile (config/fastdds_one_machine.xml, unless you set one) and scheduling (batch jobs, each
kept on a CPU as the swarm's launchers keep the agents, unless BILDMACRO_AGENT_SCHEDULING says
otherwise), and waits until it holds round k from every in-neighbour. Nothing is computed, so
the rate is what DDS, the executor and Python cost on this machine. Three ways to wait:

    single   rclpy's SingleThreadedExecutor, spin_once (it rebuilds its wait set on every wake-up)
    events   rclpy.experimental.EventsExecutor, spin_once (as the agents run)
    waitset  one rcl wait set over the subscriptions, refilled and waited on by hand, messages
    taken raw

What else a process does with a message (--work):

    relay    nothing: it reads the round number and forgets the rest
    read     what an agent does with the numbers: it reads every message it takes as the agents
             do (StateMessages.read: the layout, the compiled pass over its 1 331 numbers, the
             split into x, y, r, q) and builds each round's message afresh (StateMessages.build),
             still computing nothing: the cost of touching the data
    step     what any agent must do, and nothing more: it keeps round k's messages unread until
             it holds them all (as the agents' backlog does), reads them, steps with the compiled
             step (BILDMACRO_KERNEL=numba) on the default config's problem and weights, and sends
             round k+1 built from the result. No rules, faults, records, checkpoints or
             waypoints: the floor under an agent written in Python on rclpy

The rate is each process's rounds after round 1 over their time, and the slowest sets the swarm's,
as in the agents' outcomes. bench_swarm.py runs this beside the agents and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXECUTORS = ("single", "events", "waitset")
WORK = ("relay", "read", "step")


def graph(agents: int) -> list[list[int]]:
    """Return each agent's in-neighbours in the swarm's default graph for N agents."""
    from bildmacro_ros.core.config import validate
    from bildmacro_ros.core.scenario import build_scenario

    weights = build_scenario(validate({"agents": agents})).weights
    return [[j for j in range(agents) if j != i and weights[i, j] > 0] for i in range(agents)]


def isolate() -> None:
    """Isolate DDS as the tests do: loopback only, a private domain, logs in a temporary folder."""
    from bildmacro_ros.dds_profiles import one_machine_environment
    from bildmacro_ros.scheduling import AGENT_SCHEDULING

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(0, 101)))
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bildmacro-roslog-"))
    # the Fast DDS profile the swarm's agents get on one machine, so that the floor is theirs
    os.environ.update(one_machine_environment())
    # and the agents' scheduling: batch jobs kept on a CPU each (scheduling.agent_cpus) unless
    # the environment says otherwise
    os.environ.setdefault(AGENT_SCHEDULING, "pinned")


def run(agents: int, rounds: int, executor: str, work: str = "relay") -> dict:
    """
    Start one relay process per agent; return the slowest and median rates (rounds/s).

    And "cpu": a process's CPU per round in ms (all its threads), the mean over the processes.
    """
    from bildmacro_ros.core.kernel import KERNEL_VARIABLE
    from bildmacro_ros.scheduling import AGENT_CPU, agent_cpus

    neighbours = graph(agents)
    listeners = [sum(i in near for near in neighbours) for i in range(agents)]
    # each process on the CPU a swarm's launcher would keep its agent process on
    kernel = {KERNEL_VARIABLE: "numba"} if work == "step" else {}
    placed = [{**os.environ, **kernel, **({AGENT_CPU: str(cpu)} if cpu is not None else {})}
              for cpu in agent_cpus(agents, os.sched_getaffinity(0))]
    procs = [subprocess.Popen([sys.executable, __file__, "--node", str(i), "--rounds", str(rounds),
                               "--executor", executor, "--neighbours",
                               ",".join(map(str, neighbours[i])), "--listeners",
                               str(listeners[i]), "--work", work, "--agents", str(agents)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env=placed[i])
             for i in range(agents)]
    rates, cpus = [], []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"relay process failed ({proc.returncode})")
        report = json.loads(out.strip().splitlines()[-1])
        rates.append(report["rounds_per_second"])
        cpus.append(report["cpu_ms_per_round"])
    rates.sort()
    return {"rate": rates[0], "median": rates[len(rates) // 2], "cpu": sum(cpus) / len(cpus)}


def node_main(agent: int, rounds: int, executor: str, neighbours: list[int],
              listeners: int, work: str, agents: int) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.experimental import EventsExecutor
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
    from rclpy.node import Node
    from std_msgs.msg import Float64MultiArray
    import numpy as np

    from bildmacro_ros.scheduling import schedule_agent
    from bildmacro_ros.ros.messages import StateMessages
    from bildmacro_ros.ros.topics import (QUIET_PUB, QUIET_SUB, STATE_QOS, STATE_SUB_QOS,
                                          state_topic)

    schedule_agent()  # as an agent process of a swarm on one machine, before DDS's threads start
    rclpy.init()
    node = Node(f"relay_{agent}", start_parameter_services=False)
    messages = StateMessages(49)
    offset = len(messages.prefix)
    newest = {j: -1 for j in neighbours}
    unread = {j: {} for j in neighbours}  # step: neighbour j's messages by round, kept unread
    read = work == "read"

    def heard(j: int, data: bytes) -> None:
        k = messages.read(data, j).iteration if read else \
            int(np.frombuffer(data, np.float64, 1, offset)[0])
        if work == "step":
            unread[j][k] = data
        newest[j] = max(newest[j], k)

    waitset = executor == "waitset"
    # the wait-set loop takes messages itself; a node's subscriptions need a callback all the same
    subs = [node.create_subscription(Float64MultiArray, state_topic(j), lambda data,
                                     j=j: heard(j, data), STATE_SUB_QOS, raw=True,
                                     event_callbacks=QUIET_SUB) for j in neighbours]
    pub = node.create_publisher(Float64MultiArray, state_topic(agent), STATE_QOS,
                                event_callbacks=QUIET_PUB)
    payload = np.zeros(messages.length)
    payload[1:4] = agent, 49, 1
    if work == "step":
        from bildmacro_ros.core.bildmacro import agent_step_at, initial_state
        from bildmacro_ros.core.config import validate
        from bildmacro_ros.core.kernel import prepare_kernel
        from bildmacro_ros.core.kernel_screen import screen_norms
        from bildmacro_ros.core.scenario import build_scenario

        scenario = build_scenario(validate({"agents": agents}))
        problem, steps = scenario.problem, scenario.steps
        prepare_kernel(problem, steps)  # loaded now, not in round 0
        messages.screen = screen_norms
        state = initial_state(problem, scenario.x0[agent:agent + 1], scenario.y0[agent:agent + 1])
        a_ij = np.array([scenario.weights[agent, j] for j in neighbours])
        x_hat = np.zeros(2)
    if read:
        from types import SimpleNamespace

        from bildmacro_ros.core.kernel_screen import screen_norms

        messages.screen = screen_norms  # the agents' compiled pass, without building a problem
        rows = SimpleNamespace(x=np.zeros((1, 2)), y=np.zeros((1, 49)), r=np.zeros((1, 49)),
                               q=np.zeros((1, 49 * 50 // 2)))

    if waitset:
        context = node.context
        wait_set = _rclpy.WaitSet(len(subs), 0, 0, 0, 0, 0, context.handle)
        by_pointer = {sub.handle.pointer: (j, sub) for j, sub in zip(neighbours, subs)}

        def spin() -> None:
            wait_set.clear_entities()
            for sub in subs:
                wait_set.add_subscription(sub.handle)
            wait_set.wait(100_000_000)
            for pointer in wait_set.get_ready_entities("subscription"):
                j, sub = by_pointer[pointer]
                while (taken := sub.handle.take_message(sub.msg_type, True)) is not None:
                    heard(j, taken[0])
    else:
        spinner = SingleThreadedExecutor() if executor == "single" else EventsExecutor()
        spinner.add_node(node)

        def spin() -> None:
            spinner.spin_once(timeout_sec=0.1)

    while not (pub.get_subscription_count() >= listeners
               and all(s.get_publisher_count() > 0 for s in subs)):
        spin() if not waitset else time.sleep(0.01)
    first = cpu = None
    for k in range(rounds):
        if work == "step":
            pub.publish(messages.build(k, agent, state, x_hat)[0])
        elif read:
            pub.publish(messages.build(k, agent, rows, np.zeros(2))[0])
        else:
            payload[0] = k
            pub.publish(messages.prefix + payload.tobytes())
        if k == 1:
            first, cpu = time.monotonic(), time.process_time()
        while min(newest.values(), default=k) < k:
            spin()
        if work == "step":
            got = [messages.read(unread[j].pop(k), j) for j in neighbours]
            result = agent_step_at(problem, steps, state, scenario.weights[agent, agent], a_ij,
                                   np.array([g.address for g in got], dtype=np.int64),
                                   lambda: [np.stack([getattr(g, f) for g in got]) for f in "yrq"])
            state, x_hat = result.state, result.x_hat[0]
    seconds, cpu = time.monotonic() - first, time.process_time() - cpu
    # stay until every neighbour has had the last round
    deadline = time.monotonic() + 5.0
    pause = rclpy.duration.Duration(seconds=0.05)
    while time.monotonic() < deadline and not pub.wait_for_all_acked(pause):
        spin()
    # CPU of all the process's threads (DDS's too) over the same rounds as the rate
    print(json.dumps({"agent": agent, "rounds_per_second": (rounds - 2) / seconds,
                      "cpu_ms_per_round": cpu / (rounds - 2) * 1e3}))
    node.destroy_node()
    rclpy.try_shutdown()


def label(executor: str, work: str) -> str:
    return executor if work == "relay" else f"{executor}+{work}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--executor", nargs="+", choices=EXECUTORS, default=list(EXECUTORS))
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--neighbours", default="", help=argparse.SUPPRESS)
    parser.add_argument("--listeners", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--work", nargs="+", choices=WORK, default=["relay"],
                        help="what a process does with the messages besides relaying (above)")
    args = parser.parse_args()
    if args.node is not None:
        near = [int(j) for j in args.neighbours.split(",") if j]
        node_main(args.node, args.rounds, args.executor[0], near, args.listeners, args.work[0],
                  args.agents)
        return
    isolate()
    print(f"{'executor':>12} {'agents':>7} {'rounds/s (slowest)':>19} {'median':>8} "
          f"{'CPU ms/round':>13}")
    for work in args.work:
        for executor in args.executor:
            r = run(args.agents, args.rounds, executor, work)
            print(f"{label(executor, work):>12} {args.agents:>7} {r['rate']:>19.1f} "
                  f"{r['median']:>8.1f} {r['cpu']:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
