# SPDX-License-Identifier: Apache-2.0
"""Which Fast DDS shared-memory files a launcher removes before nodes start (shared_memory.py)."""

import fcntl
import os
import subprocess
import sys
import time

import pytest

from bildmacro_ros.shared_memory import dead_files, remove_dead_files, YOUNG


def make(folder, *names, age=60.0):
    """Create files as Fast DDS names them, last changed `age` seconds ago."""
    when = time.time() - age
    for name in names:
        (folder / name).write_bytes(b"")
        os.utime(folder / name, (when, when))


@pytest.fixture
def holder(tmp_path):
    """Start a live process holding flock on the files given, as Fast DDS holds its own."""
    procs = []

    def hold(*paths, shared=False):
        mode = "LOCK_SH" if shared else "LOCK_EX"
        code = ("import fcntl, sys, time\nfiles = [open(p) for p in sys.argv[1:]]\n"
                f"[fcntl.flock(f, fcntl.{mode}) for f in files]\nprint('held', flush=True)\n"
                "time.sleep(120)")
        proc = subprocess.Popen([sys.executable, "-c", code, *map(str, paths)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_only_ports_and_segments_whose_locks_nobody_holds_and_are_not_new_are_dead(tmp_path,
                                                                                   holder):
    make(tmp_path, "fastrtps_port7004", "fastrtps_port7004_el", "sem.fastrtps_port7004_mutex",
         "fastrtps_0123456789abcdef", "fastrtps_0123456789abcdef_el",  # a writer's segment
         "fastrtps_port7005", "fastrtps_port7005_el",  # alive: its owner holds the lock
         "fastrtps_port7006", "fastrtps_port7006_el", "fastrtps_port7006_sl",  # one lock held
         "fastrtps_port7008",  # no lock file at all: not a port we can judge
         "lttng-ust-wait-6", "sem.other_mutex")
    make(tmp_path, "fastrtps_port7007", "fastrtps_port7007_el", age=YOUNG / 2)  # may be opening
    holder(tmp_path / "fastrtps_port7005_el")
    holder(tmp_path / "fastrtps_port7006_sl", shared=True)
    assert sorted(p.name for p in dead_files(tmp_path)) == sorted([
        "fastrtps_port7004", "fastrtps_port7004_el", "sem.fastrtps_port7004_mutex",
        "fastrtps_0123456789abcdef", "fastrtps_0123456789abcdef_el"])
    assert remove_dead_files(tmp_path) == 5
    assert sorted(os.listdir(tmp_path)) == sorted([
        "fastrtps_port7005", "fastrtps_port7005_el", "fastrtps_port7006", "fastrtps_port7006_el",
        "fastrtps_port7006_sl", "fastrtps_port7007", "fastrtps_port7007_el", "fastrtps_port7008",
        "lttng-ust-wait-6", "sem.other_mutex"])
    # once it is old enough, the young port's lock is judged like any other
    assert [p.name for p in dead_files(tmp_path, now=time.time() + YOUNG)] == [
        "fastrtps_port7007", "fastrtps_port7007_el"]


def test_a_lock_is_free_again_once_its_holder_is_gone(tmp_path):
    make(tmp_path, "fastrtps_port7010", "fastrtps_port7010_el")
    code = "import fcntl, time\nf = open('{}')\nfcntl.flock(f, fcntl.LOCK_EX)\ntime.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", code.format(tmp_path / "fastrtps_port7010_el")])
    try:
        deadline = time.monotonic() + 30
        while dead_files(tmp_path) and time.monotonic() < deadline:  # until it holds the lock
            time.sleep(0.05)
        assert dead_files(tmp_path) == []
    finally:
        proc.kill()  # SIGKILL: it never unlocks, the kernel lets go of the lock
        proc.wait()
    assert len(dead_files(tmp_path)) == 2


def test_no_shared_memory_folder_means_nothing_to_remove(tmp_path):
    assert dead_files(tmp_path / "absent") == [] and remove_dead_files(tmp_path / "absent") == 0


def test_the_locks_are_flocks_that_exclude_a_probe(tmp_path):
    make(tmp_path, "fastrtps_port7011", "fastrtps_port7011_el")
    with open(tmp_path / "fastrtps_port7011_el") as mine:  # held here: this process is alive
        fcntl.flock(mine, fcntl.LOCK_EX)
        # flock locks belong to the open file: another open of it is refused, even here
        assert dead_files(tmp_path) == []
    assert len(dead_files(tmp_path)) == 2
