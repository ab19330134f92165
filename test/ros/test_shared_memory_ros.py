# SPDX-License-Identifier: Apache-2.0
"""Fast DDS's own shared-memory files: held while their process lives, dead once it is killed."""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from bildmacro_ros.shared_memory import dead_files, held, LOCK_FILE, SHARED_MEMORY, YOUNG

pytestmark = pytest.mark.ros

NODE = """
import rclpy
rclpy.init()
node = rclpy.create_node("shared_memory_probe", start_parameter_services=False)
print("up", flush=True)
import time
time.sleep(120)
"""


def lock_files() -> set[str]:
    return {name for name in os.listdir(SHARED_MEMORY) if LOCK_FILE.match(name)}


@pytest.mark.skipif(not Path(SHARED_MEMORY).is_dir(), reason="no /dev/shm")
def test_a_dds_process_holds_its_files_and_a_killed_one_leaves_them_for_removal():
    before = lock_files()
    proc = subprocess.Popen([sys.executable, "-c", NODE], stdout=subprocess.PIPE, text=True)
    try:
        # Fast DDS prints its errors on stdout (one when a port of 7000-7399 is taken): skip them
        while (line := proc.stdout.readline()) and line.strip() != "up":
            pass
        assert line.strip() == "up"
        mine = lock_files() - before
        # a participant's ports (discovery, data, and one of 7000-7399) and its data segment
        assert any(name.startswith("fastrtps_port") for name in mine), mine
        assert any(not name.startswith("fastrtps_port") for name in mine), mine
        assert all(held(SHARED_MEMORY / name) for name in mine), mine
    finally:
        proc.send_signal(signal.SIGKILL)  # no goodbye: what a crash or a cut teardown leaves
        proc.wait()
    assert mine <= lock_files()  # still there
    later = time.time() + YOUNG
    dead = {path.name for path in dead_files(now=later)}
    assert mine <= dead, mine - dead
    for path in dead_files(now=later):  # this test's leftovers only
        if any(path.name.startswith(name[:-3]) for name in mine):
            path.unlink(missing_ok=True)
    assert not mine & lock_files()
