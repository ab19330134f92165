# SPDX-License-Identifier: Apache-2.0
"""A process's end (ros/lifecycle.py): a teardown that hangs in C, holding the GIL, still ends."""

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.ros

# the block: a C call that keeps the GIL (ctypes.PyDLL does not release it), as a Fast DDS
# deadlock inside rclpy's C++ may
HANGS = """
import ctypes
from bildmacro_ros.ros.lifecycle import bounded_teardown
with bounded_teardown({seconds}):
    ctypes.PyDLL(None).sleep({block})
print("after the block")
"""


def run(seconds: float, block: int):
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-c", HANGS.format(seconds=seconds, block=block)],
                         capture_output=True, text=True, timeout=60)
    return res, time.monotonic() - started


def test_a_teardown_that_hangs_holding_the_gil_ends_the_process_with_its_stacks():
    res, took = run(seconds=1.0, block=30)
    assert res.returncode == 1 and took < 20, (res.returncode, took)
    # faulthandler's report: the stacks, the block's line among them
    assert "Timeout" in res.stderr and 'File "<string>", line 5' in res.stderr, res.stderr
    assert "after the block" not in res.stdout


def test_a_teardown_in_time_goes_on_as_usual():
    res, _ = run(seconds=5.0, block=0)
    assert res.returncode == 0 and res.stdout.strip() == "after the block", res.stderr
    assert "Timeout" not in res.stderr
