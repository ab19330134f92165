# SPDX-License-Identifier: Apache-2.0
"""
Helpers the tests share.

Running the command line and nodes, comparing runs, finding their processes.
"""

from contextlib import contextmanager
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from bildmacro_ros.core.bildmacro import StepSizes
from bildmacro_ros.core.config import DEFAULTS
from bildmacro_ros.core.problem import BilevelProblem
from bildmacro_ros.core.target import gaussian_mixture
from bildmacro_ros.protocol.outcome import read_outcomes

ROOT = Path(__file__).resolve().parents[2]
# step sizes for the conftest's problem (omega = 1e-2)
STEPS = StepSizes(gamma_x=1e-3, gamma_y=0.05, omega=1e-2, delta=0.02)


def make_problem(family, omega):
    return BilevelProblem(family, gaussian_mixture(family, DEFAULTS["target"]["components"]),
                          omega)


def interrupt_after_rows(args, out: Path, rows: int, wait: float = 90.0, sig: int = signal.SIGINT,
                         repeat: int = 1):
    """
    Run `python -m bildmacro_ros.cli ARGS`; Ctrl-C (or `sig`) once metrics.csv has `rows` rows.

    Returns (exit code, stdout, stderr).
    """
    # A shell without job control starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt: give the CLI a terminal user's default disposition.
    proc = subprocess.Popen([sys.executable, "-m", "bildmacro_ros.cli", *map(str, args)], cwd=ROOT,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            metrics = out / "metrics.csv"
            if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
                break
            time.sleep(0.1)
        for _ in range(repeat):  # an impatient user presses Ctrl-C again
            proc.send_signal(sig)
            time.sleep(0.1)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, stdout, stderr


def assert_same_run(a: Path, b: Path, tol=1e-9, metrics=True):
    """Two runs' outputs are the same run: final states to `tol`, and the metrics rows."""
    with np.load(a / "final_state.npz") as x, np.load(b / "final_state.npz") as y:
        assert int(x["iteration"]) == int(y["iteration"])
        for key in ("x", "x_hat", "y", "r", "q"):
            assert np.allclose(x[key], y[key], rtol=0,
                               atol=tol), (key, np.abs(x[key] - y[key]).max())
    if not metrics:
        return
    ma = np.genfromtxt(a / "metrics.csv", delimiter=",", names=True)
    mb = np.genfromtxt(b / "metrics.csv", delimiter=",", names=True)
    assert np.array_equal(ma["iteration"], mb["iteration"])
    for name in ma.dtype.names:
        assert np.allclose(ma[name], mb[name], rtol=1e-9, atol=1e-12), name


# agent 0 of a 3-agent swarm, with neighbours 1 and 2 played by a test or absent
AGENT_0 = ["agent_id:=0", "agents:=3", "neighbours:=[1, 2]", "neighbour_weights:=[0.25, 0.25]",
           "self_weight:=0.5", "initial_x:=[0.1, -0.2]", "initial_y:=[" + ", ".join(["0.0"] * 49)
           + "]", "iterations:=0"]


def agent_command(*params) -> list[str]:
    """
    Give the command of an agent process with these `name:=value` parameters.

    (later ones win).
    """
    return [sys.executable, "-m", "bildmacro_ros.ros.agent",
            "--ros-args"] + [a for p in params for a in ("-p", p)]


@contextmanager
def spinning(make_node):
    """Spin a test's own node, make_node(context), spun in a thread of a private rclpy context."""
    import rclpy  # here, not at the top: the DDS isolation above must be set before rclpy loads
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context)
    node = make_node(context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        yield node
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        spinner.join(timeout=5)


def bildmacro(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "bildmacro_ros.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def node_pids() -> dict[int, str]:
    """
    Find the running node processes that this test run started: pid -> command line.

    They carry its BILDMACRO_TEST_RUN mark, set in conftest.py; a user's own swarm on the machine
    is not counted.
    """
    mark = f"BILDMACRO_TEST_RUN={os.environ['BILDMACRO_TEST_RUN']}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        # bildmacro swarm runs nodes as `python -c "... bildmacro_ros.ros.X ..."`; ros2 launch as
        # lib/bildmacro_ros/X
        ours = "bildmacro_ros.ros." in cmdline or "/lib/bildmacro_ros/" in cmdline
        if ours and mark in environ:
            found[int(proc.name)] = cmdline
    return found


def stop_as_it_starts(folder, node: str, wait: float = 60.0) -> int:
    """
    SIGSTOP the node process named `node` of the run or plan in `folder` as soon as it exists.

    What a Fast DDS deadlock leaves (docs/faults.md): a process alive and asleep for good.
    Returns its pid.
    """
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pid = next((pid for pid, command in node_pids().items()
                    if str(folder) in command and f"__node:={node}" in command), None)
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)
            return pid
        time.sleep(0.01)
    raise AssertionError(f"{node}'s process never started")


def node_processes():
    """Command lines of running processes of this package's nodes."""
    return list(node_pids().values())


def outcomes(run: Path) -> dict:
    """
    Read what each agent of a swarm run reported when it stopped.

    (RUN/outcomes/agent_<i>.json).
    """
    return read_outcomes(Path(run) / "outcomes")
