# SPDX-License-Identifier: Apache-2.0
"""
Emulated computers for tests and studies: network namespaces joined by a lossy user-space switch.

Each computer is a network namespace with one veth port to the switch
(test/support/lossy_switch.py, in a namespace of its own), an address on a private subnet that
exists only inside these namespaces, a multicast route for DDS discovery, and its own /dev/shm, so
that no two computers can talk through shared memory as two processes of one machine do. Everything
is made under unique names and removed on exit, whatever happened; nothing touches the host's own
interfaces. Needs root and iproute2 (CI is root).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid

SWITCH = Path(__file__).with_name("lossy_switch.py")
SUBNET = "10.213.7"
# SIOCETHTOOL with ETHTOOL_STXCSUM: a frame forwarded by a packet socket keeps no offloaded
# checksum, so the hosts must fill theirs in themselves
SIOCETHTOOL, ETHTOOL_STXCSUM = 0x8946, 0x17


def available() -> str | None:
    """Return why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"bmprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def checksum_offload_off(interface: str) -> None:
    """Run inside a host namespace: compute transmit checksums in software on this interface."""
    import ctypes
    import socket

    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    request = struct.pack("16sP16x", interface.encode(), ctypes.addressof(value))  # a struct ifreq
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, SIOCETHTOOL, request)


class NetLab:
    """
    `hosts` emulated computers 0..hosts-1 on one switch; a context manager.

    run(host, argv) starts a process on a computer; links(...) sets loss, delay and cuts;
    everything started is ended, and every namespace removed, on exit.
    """

    def __init__(self, hosts: int, logs: Path):
        self.hosts, self.logs = hosts, Path(logs)
        self.tag = uuid.uuid4().hex[:5]
        self.switch_ns = f"bm{self.tag}sw"
        self.host_ns = [f"bm{self.tag}h{i}" for i in range(hosts)]
        self.processes: list[subprocess.Popen] = []
        # one per computer: keeps its mount namespace (/dev/shm)
        self.holders: list[subprocess.Popen] = []
        self.switch: subprocess.Popen | None = None

    def address(self, host: int) -> str:
        return f"{SUBNET}.{host + 1}"

    def __enter__(self) -> "NetLab":
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ip(self, *args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def _make(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._ip("netns", "add", self.switch_ns)
        self._ip("-n", self.switch_ns, "link", "set", "lo", "up")
        ports = []
        for i, ns in enumerate(self.host_ns):
            self._ip("netns", "add", ns)
            eth, port = f"bm{self.tag}e{i}", f"bm{self.tag}p{i}"
            self._ip("link", "add", eth, "netns", ns, "type", "veth", "peer", "name", port,
                     "netns", self.switch_ns)
            self._ip("-n", self.switch_ns, "link", "set", port, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", eth)
            self._ip("-n", ns, "link", "set", eth, "up")
            self._ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", eth)
            subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                            f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                            f"import netlab; netlab.checksum_offload_off({eth!r})"], check=True)
            # a private /dev/shm for the computer, held open by a sleeping process
            holder = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--mount",
                                       "--propagation", "private", "sh", "-c",
                                       "mount -t tmpfs tmpfs /dev/shm && exec sleep 100000"],
                                      start_new_session=True)
            self.holders.append(holder)
            ports.append(port)
        self.switch = subprocess.Popen(["ip", "netns", "exec", self.switch_ns, sys.executable,
                                        str(SWITCH), *ports],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        self.links()  # answered once the switch is up
        for holder in self.holders:  # the holder's mount namespace exists once sleep runs
            for _ in range(200):
                if self._sleeping(holder.pid):
                    break
                time.sleep(0.01)
            else:
                raise RuntimeError("a computer's /dev/shm did not come up")

    @staticmethod
    def _sleeping(pid: int) -> bool:
        """
        Whether the holder has become `sleep`.

        (the same process throughout), i.e. /dev/shm is mounted.
        """
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
        except OSError:
            return False

    def links(self, **settings) -> dict:
        """
        Set the switch (loss, delay, jitter, cut, links, seed; see lossy_switch.py).

        Return its counters.
        """
        self.switch.stdin.write(json.dumps(settings) + "\n")
        self.switch.stdin.flush()
        line = self.switch.stdout.readline()
        if not line:
            raise RuntimeError("the switch is not running")
        return json.loads(line)

    def command(self, host: int, argv: list[str], cwd: Path | None = None) -> list[str]:
        """
        Return argv as run on computer `host`: its network and its /dev/shm, in cwd (default.

        This one).
        """
        pid = self.holders[host].pid
        # nsenter starts a process that enters a mount namespace at its root unless told otherwise
        return ["nsenter", f"--net=/run/netns/{self.host_ns[host]}", f"--mount=/proc/{pid}/ns/mnt",
                f"--wd={Path(cwd or os.getcwd()).resolve()}", "--", *argv]

    def run(self, host: int, argv: list[str], env: dict, log: Path,
            cwd: Path | None = None) -> subprocess.Popen:
        handle = open(log, "w")
        proc = subprocess.Popen(self.command(host, argv, cwd), env=env, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        self.processes.append(proc)
        return proc

    def power_off(self, proc: subprocess.Popen) -> None:
        """Kill a process and everything it started, at once, as a power loss does."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.power_off(proc)
        for proc in self.holders + ([self.switch] if self.switch else []):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        for ns in self.host_ns + [self.switch_ns]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
