# SPDX-License-Identifier: Apache-2.0
"""
Fast DDS's shared-memory files that dead processes left in /dev/shm, found and removed.

A Fast DDS process keeps a lock (flock) on a file beside each shared-memory port and segment it
owns, `fastrtps_port<N>_el` / `_sl` and `fastrtps_<id>_el`, for as long as it lives. A process that
dies without closing them (SIGKILL, a crash, a teardown cut short) leaves the files with nobody
holding the lock. Fast DDS 2.14 can then hang a later process that writes to such a port: its
event thread, recovering the port, locks a mutex it already holds and waits for good
(docs/faults.md). Every ROS process of the machine also listens on a port of 7000-7399, whatever
its domain, so the leftovers of one run meet the next. Removing them before nodes start is
what eProsima's own `fastdds shm clean` does; this does the same, and leaves alone a file whose
lock is held or that is too new to tell (its process may still be opening it).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
import re
import time

SHARED_MEMORY = Path("/dev/shm")
# a port's or a segment's lock file: what follows "fastrtps_" is its name
LOCK_FILE = re.compile(r"^fastrtps_(port\d{1,5}|[0-9a-z]{16})_(el|sl)$")
# seconds: a lock file this new may belong to a process that has not taken its lock yet
YOUNG = 10.0


def held(lock: Path) -> bool:
    """Tell whether a live process holds a Fast DDS lock file, as Fast DDS takes it (flock)."""
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def dead_files(folder: Path = SHARED_MEMORY, now: float | None = None) -> list[Path]:
    """Return the files of the ports and segments whose every lock file is free and not new."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(folder)
    except OSError:  # no /dev/shm (not Linux): nothing to look at
        return []
    locks: dict[str, list[Path]] = {}
    for name in names:
        if (match := LOCK_FILE.match(name)) is not None:
            locks.setdefault(match.group(1), []).append(folder / name)
    found = []
    for base, files in sorted(locks.items()):
        try:
            if any(now - lock.stat().st_mtime < YOUNG or held(lock) for lock in files):
                continue
        except OSError:  # gone meanwhile, or another user's that we may not open
            continue
        mutex = [folder / f"sem.fastrtps_{base}_mutex"] if base.startswith("port") else []
        found += [path for path in (folder / f"fastrtps_{base}", *files, *mutex) if path.exists()]
    return found


def remove_dead_files(folder: Path = SHARED_MEMORY, now: float | None = None) -> int:
    """Remove what dead_files finds; return how many files went."""
    removed = 0
    for path in dead_files(folder, now):
        try:
            path.unlink()
            removed += 1
        except OSError:  # gone meanwhile, or not ours to remove
            pass
    return removed


def tidy(say) -> None:
    """Remove the dead processes' files before a launcher starts its nodes; say(line) if any."""
    removed = remove_dead_files()
    if removed:
        say(f"removed {removed} shared-memory files that dead DDS processes had left in "
            f"{SHARED_MEMORY} (docs/faults.md)")
