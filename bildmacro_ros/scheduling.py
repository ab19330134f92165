# SPDX-License-Identifier: Apache-2.0
"""How a swarm's agent processes share one machine's CPUs: as batch jobs, each kept on one CPU."""

from __future__ import annotations

import os
import sys

# How a swarm's agent processes on one machine are scheduled (schedule_agent): pinned (the
# launchers' default), batch or normal; and, when pinned, the CPU each is kept on
AGENT_SCHEDULING = "BILDMACRO_AGENT_SCHEDULING"
SCHEDULINGS = ("pinned", "batch", "normal")
AGENT_CPU = "BILDMACRO_AGENT_CPU"


def schedule_agent(environ=os.environ) -> bool:
    """
    Make this process a batch job (Linux's SCHED_BATCH) if environ asks; True if it became one.

    Threads started after it, DDS's among them, inherit it. A swarm's agent processes on one
    machine wake each other with every message, and a woken normal process preempts the one
    running, whose caches another agent's Python then evicts. A woken batch job waits for the
    running one's slice instead (sched(7): "mildly disfavored in scheduling decisions"): 10 agent
    processes on 2 cores ran 304 rounds/s instead of 263, at 0.60 ms of CPU per agent-round
    instead of 0.70. The simulator, the recorder and the user's own programs stay normal and
    still go first: beside two busy loops the same swarm ran some 10% slower (docs/speed.md).

    Pinned, the process is also kept on the CPU its launcher chose (AGENT_CPU, agent_cpus): an
    agent moved to the other core finds its caches there cold, and its DDS threads, which hand
    it each message, on another core than its own. 10 agent processes on 2 cores went from
    335-352 to 458-470 rounds/s, at 0.41-0.42 ms of CPU per agent-round instead of 0.54-0.57.
    """
    scheduling = environ.get(AGENT_SCHEDULING, "normal")
    if scheduling not in ("batch", "pinned") or not hasattr(os, "SCHED_BATCH"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:  # a policy the user set that this one may not replace
        return False
    cpu = environ.get(AGENT_CPU)
    if scheduling == "pinned" and cpu is not None:
        try:
            os.sched_setaffinity(0, {int(cpu)})
        except (OSError, ValueError) as exc:  # a CPU this process may not use: left free
            print(f"warning: {AGENT_CPU}={cpu}: not kept on that CPU ({exc})", file=sys.stderr)
    return True


def agent_cpus(processes: int, allowed) -> list[int | None]:
    """
    Return the CPU each of a swarm's agent processes is kept on when pinned, in turn over allowed.

    None for each where the processes are fewer than the CPUs: each would have a CPU of its
    own, and its DDS threads, kept on it too, could not use the idle ones.
    """
    cpus = sorted(allowed)
    if not cpus or processes < len(cpus):
        return [None] * processes
    return [cpus[p % len(cpus)] for p in range(processes)]


def scheduling_choice(environ=os.environ) -> str:
    """Return how the user asks a swarm's agent processes to run (pinned unless they say)."""
    scheduling = environ.get(AGENT_SCHEDULING, "pinned").strip().lower() or "pinned"
    if scheduling not in SCHEDULINGS:
        raise ValueError(f"{AGENT_SCHEDULING}={scheduling!r}: choose one of "
                         f"{', '.join(SCHEDULINGS)}")
    return scheduling
