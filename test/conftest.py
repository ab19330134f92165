"""Shared fixtures: a small, well-conditioned problem and a seeded generator."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

# DDS isolation for every test and every process a test starts: loopback discovery only, a
# domain of this run's own (0..101), and ROS logs in a temporary folder. Set before rclpy loads.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(0, 101)))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bildmacro-roslog-"))

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the straightforward implementation is an independent oracle

from bildmacro_ros.core.config import DEFAULTS  # noqa: E402
from bildmacro_ros.core.family import ExponentialFamily  # noqa: E402
from bildmacro_ros.core.problem import BilevelProblem  # noqa: E402
from bildmacro_ros.core.target import gaussian_mixture  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def family():
    return ExponentialFamily(order=6, step=0.05)


def make_problem(family, omega):
    return BilevelProblem(family, gaussian_mixture(family, DEFAULTS["target"]["components"]), omega)


@pytest.fixture(scope="session")
def problem(family):
    # omega = 1e-2 keeps cond(H) moderate so finite differences are accurate
    return make_problem(family, 1e-2)


def interrupt_after_rows(args, out: Path, rows: int, wait: float = 90.0):
    """Run `python -m bildmacro_ros.cli ARGS`, press Ctrl-C once metrics.csv has `rows` rows.

    Returns (exit code, stdout, stderr).
    """
    proc = subprocess.Popen([sys.executable, "-m", "bildmacro_ros.cli", *map(str, args)], cwd=ROOT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            metrics = out / "metrics.csv"
            if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, stdout, stderr


def bildmacro(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "bildmacro_ros.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def node_processes():
    """Command lines of running processes of this package's nodes."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "bildmacro_ros.ros." in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture
def no_leftover_processes():
    yield
    deadline = time.monotonic() + 10
    while node_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert node_processes() == []
