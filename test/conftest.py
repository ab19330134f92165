# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: DDS isolation, a well-conditioned problem, a seeded generator, no leftovers."""

import os
from pathlib import Path
import random
import sys
import tempfile
import time
import uuid

import numpy as np
import pytest

# DDS isolation for every test and every process a test starts: loopback discovery only, a
# domain of this run's own (0..101), and ROS logs in a temporary folder. Set before rclpy loads.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(0, 101)))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bildmacro-roslog-"))

# Every process a test starts carries this mark, so that a test checks and ends only its own
# (helpers.node_pids), even those a killed launcher left behind.
os.environ.setdefault("BILDMACRO_TEST_RUN", uuid.uuid4().hex)

# the helpers every folder's tests share (test/support), importable by their module names
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from bildmacro_ros.core.family import ExponentialFamily  # noqa: E402
from helpers import make_problem, node_processes  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def family():
    return ExponentialFamily(order=6, step=0.05)


@pytest.fixture(scope="session")
def problem(family):
    # omega = 1e-2 keeps cond(H) moderate so finite differences are accurate
    return make_problem(family, 1e-2)


@pytest.fixture
def no_leftover_processes():
    yield
    deadline = time.monotonic() + 10
    while node_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert node_processes() == []


@pytest.fixture
def probe():
    """Give a test node on its own executor thread, to watch and feed robot nodes."""
    from robot_nodes import Probe  # rclpy: only for the tests that watch robots
    p = Probe()
    yield p
    p.close()
