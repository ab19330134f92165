# SPDX-License-Identifier: Apache-2.0
"""
A swarm deployed as users deploy it on robots, on emulated computers (test/support/netlab.py).

`bildmacro plan` makes one plan folder; each computer gets its own copy of it, runs its two robots
with `bildmacro robot --plan ITS_COPY --id i`, and one more computer records with `bildmacro
record`. Discovery is SUBNET, over the switch, inside the lab's namespaces only. Used by
test_deployment.py and by benchmarks/study_network.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

from bildmacro_ros.protocol.outcome import read_outcomes
from netlab import NetLab

PER_COMPUTER = 2


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bildmacro_ros.cli", *args]


@dataclass
class Fault:
    """Something done to one computer once the run has recorded round `at`."""

    # partition: its link passes nothing for `seconds`; power: off, and on again `seconds` later
    # with --resume; restart: its robot commands stopped with Ctrl-C, and started again with
    # --resume
    kind: str
    computer: int
    at: int  # a round: the same point of the run however fast this machine is today
    seconds: float


@dataclass
class Deployed:
    summary: dict
    outcomes: dict
    final: dict
    wall: float
    switch: dict
    alive: list[int] = field(default_factory=list)  # agents that finished

    @property
    def spread(self) -> float:
        """
        Return max_i ||y_i - mean y|| over the agents that finished.

        One group has a small spread.
        """
        y = self.final["y"][self.alive]
        return float(np.max(np.linalg.norm(y - y.mean(axis=0), axis=1)))

    @property
    def late_rounds(self) -> int:
        return sum(o.late_rounds for o in self.outcomes.values())

    @property
    def deaths(self) -> int:
        return sum(len(o.declared_dead) for o in self.outcomes.values())

    @property
    def rounds_per_second(self) -> float:
        return float(np.median([o.rounds_per_second for o in self.outcomes.values()]))


def _recorded_round(run: Path) -> int:
    """Return the newest round the recorder has a metrics row for (-1: none yet)."""
    try:
        last = (run / "metrics.csv").read_text().splitlines()[-1].split(",")[0]
        return int(last)
    except (OSError, IndexError, ValueError):  # no file, no row yet, or the header alone
        return -1


def _power_off(lab: NetLab, computer: int, robots: dict) -> None:
    """
    End every process of the computer's robots at once: no goodbye, no last checkpoint.

    All are stopped before any is killed: a node whose launcher dies first is sent SIGINT (its
    parent-death signal) and would save its round, as no node without power can.
    """
    pids = subprocess.run(["ip", "netns", "pids", lab.host_ns[computer]], capture_output=True,
                          text=True).stdout
    victims = [pid for pid in map(int, pids.split()) if pid != lab.holders[computer].pid]
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in victims:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    for proc in robots.values():
        proc.wait()


def deploy(root: Path, agents: int = 6, iterations: int = 300, deadline: float = 0.3,
           loss: float = 0.0, delay: float = 0.0, jitter: float = 0.0,
           faults: tuple[Fault, ...] = (), timeout: float = 240.0, extra: tuple[str, ...] = (),
           plan_hook=None) -> Deployed:
    """
    Deploy the demo config's swarm of `agents` on agents/2 computers and a recorder's, and run it.

    plan_hook(folder), if given, may change the plan folder before it is copied to the computers.
    """
    root = Path(root).resolve()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET",
               ROS_LOG_DIR=str(root / "roslog"),
               ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", str(random.randint(0, 101))),
               PYTHONUNBUFFERED="1")
    made = subprocess.run(cli("plan", "--config", "demo", "--agents", str(agents), "--iterations",
                              str(iterations), "--simulator", "none", "--deadline", str(deadline),
                              "--out", str(root / "plan"), *extra), capture_output=True, text=True,
                          env=env)
    assert made.returncode == 0, made.stderr
    if plan_hook is not None:
        plan_hook(root / "plan")
    computers = (agents + PER_COMPUTER - 1) // PER_COMPUTER
    recorder_host = computers
    copies = [root / f"computer_{c}" for c in range(computers + 1)]
    for copy in copies:  # every computer its own copy: the plan folder is all a robot needs
        shutil.copytree(root / "plan", copy)
    run = root / "run"
    with NetLab(computers + 1, root / "lab") as lab:
        lab.links(loss=loss, delay=delay, jitter=jitter, seed=1)
        start = time.monotonic()
        record = cli("record", "--plan", str(copies[recorder_host]), "--out", str(run), "--quiet",
                     "--no-plots")
        recorder = lab.run(recorder_host, record, env, root / "recorder.log")

        def start_robot(i: int, resume: bool = False) -> subprocess.Popen:
            c = i // PER_COMPUTER
            name = f"robot_{i}" + (".resumed" if resume else "")
            return lab.run(c,
                           cli("robot", "--plan", str(copies[c]), "--id", str(i),
                               *(["--resume"] if resume else [])), env, root / f"{name}.log")

        robots = {i: start_robot(i) for i in range(agents)}
        pending = sorted(faults, key=lambda f: f.at)
        active: list[tuple[float, Fault]] = []
        while recorder.poll() is None:
            now = time.monotonic()
            assert now - start < timeout, \
                f"the deployment did not end within {timeout:.0f} s; see {root}"
            while pending and _recorded_round(run) >= pending[0].at:
                fault = pending.pop(0)
                here = {i: p for i, p in robots.items() if i // PER_COMPUTER == fault.computer}
                if fault.kind == "partition":
                    lab.links(cut=[fault.computer])
                elif fault.kind == "power":
                    _power_off(lab, fault.computer, here)
                    lab.links(cut=[fault.computer])  # a computer without power sends nothing
                else:  # restart: its robots are stopped with Ctrl-C, as a user restarts them
                    for proc in here.values():
                        os.killpg(proc.pid, signal.SIGINT)
                    for proc in here.values():
                        proc.wait(timeout=30)
                active.append((now + fault.seconds, fault))
            for until, fault in list(active):
                if now >= until:
                    active.remove((until, fault))
                    lab.links(cut=[])
                    if fault.kind in ("power", "restart"):
                        for i in range(agents):
                            if i // PER_COMPUTER == fault.computer:
                                robots[i] = start_robot(i, resume=True)
            time.sleep(0.1)
        for proc in robots.values():
            try:
                proc.wait(timeout=max(5.0, timeout - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                pass
        wall = time.monotonic() - start
        switch = lab.links()
    assert (run / "summary.json").is_file(), (root / "recorder.log").read_text()
    outcomes = {}
    for c in range(computers):
        for i in range(c * PER_COMPUTER, min(agents, (c + 1) * PER_COMPUTER)):
            reported = read_outcomes(copies[c] / f"robot_{i}" / "outcomes")
            outcomes.update({k: v for k, v in reported.items() if k == i})
    summary = json.loads((run / "summary.json").read_text())
    with np.load(run / "final_state.npz") as data:
        final = {key: data[key] for key in data.files}
    alive = sorted(i for i, o in outcomes.items() if o.finished)
    return Deployed(summary, outcomes, final, wall, switch, alive)
