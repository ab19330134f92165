# SPDX-License-Identifier: Apache-2.0
"""
A user-space Ethernet switch with per-link loss, delay and cuts, for emulated computers.

This kernel has no netem, so the test network (test/support/netlab.py) puts this switch between its
network namespaces: it runs in a namespace of its own, holds one raw packet socket per port, learns
which MAC sits behind which port, and forwards each frame, or loses or delays it on the way. It
reads its settings as JSON lines on stdin, answers each with its counters as a JSON line, and ends
when stdin closes.

    {"loss": 0.1, "delay": 0.03, "jitter": 0.01, "cut": [2], "seed": 1}

loss is the probability that a frame is lost on its way from one port to another (each copy of a
broadcast independently), delay and jitter (seconds) a uniform delay in [delay - jitter, delay +
jitter] kept in order per link, and cut the ports that pass nothing at all (a partition). A
"links" mapping "a-b" -> {"loss": ..} sets one pair of ports apart from the rest.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import select
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class Switch:
    def __init__(self, ports: list[str]):
        self.ports = ports
        self.socks = []
        for name in ports:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            sock.bind((name, 0))
            sock.setblocking(False)
            self.socks.append(sock)
        self.by_fd = {sock.fileno(): i for i, sock in enumerate(self.socks)}
        self.mac_port: dict[bytes, int] = {}
        self.settings = {"loss": 0.0, "delay": 0.0, "jitter": 0.0, "cut": [], "links": {}}
        self.random = random.Random(0)
        self.queue: list[tuple[float, int, int, bytes]] = []  # (due, order, port, frame)
        self.last_due: dict[tuple[int, int], float] = {}
        self.order = 0
        self.counts = {"frames": 0, "forwarded": 0, "lost": 0, "cut": 0}

    def configure(self, settings: dict) -> None:
        self.settings.update(settings)
        if "seed" in settings:
            self.random.seed(settings["seed"])

    def link(self, a: int, b: int) -> dict:
        key = f"{min(a, b)}-{max(a, b)}"
        return dict(self.settings, **self.settings["links"].get(key, {}))

    def forward(self, src: int, frame: bytes, now: float) -> None:
        self.counts["frames"] += 1
        dst_mac, src_mac = frame[:6], frame[6:12]
        self.mac_port[src_mac] = src
        # broadcast, multicast or unknown: flood
        if dst_mac[0] & 1 or dst_mac not in self.mac_port:
            targets = [p for p in range(len(self.ports)) if p != src]
        else:
            targets = [self.mac_port[dst_mac]] if self.mac_port[dst_mac] != src else []
        cut = set(self.settings["cut"])
        for dst in targets:
            if src in cut or dst in cut:
                self.counts["cut"] += 1
                continue
            link = self.link(src, dst)
            if link["loss"] and self.random.random() < link["loss"]:
                self.counts["lost"] += 1
                continue
            jitter = self.random.uniform(-1, 1) * link["jitter"] if link["jitter"] else 0.0
            delay = link["delay"] + jitter
            if delay <= 0 and not self.queue:
                self.send(dst, frame)
                continue
            # frames of one link stay in order, as on a wire
            due = max(now + max(delay, 0.0), self.last_due.get((src, dst), 0.0))
            self.last_due[(src, dst)] = due
            self.order += 1
            heapq.heappush(self.queue, (due, self.order, dst, frame))

    def send(self, port: int, frame: bytes) -> None:
        try:
            self.socks[port].send(frame)
            self.counts["forwarded"] += 1
        except OSError:  # a full queue or a port going down: a lost frame, as on a wire
            self.counts["lost"] += 1

    def run(self, control) -> None:
        poller = select.poll()
        for sock in self.socks:
            poller.register(sock, select.POLLIN)
        poller.register(control, select.POLLIN)
        pending = b""
        while True:
            timeout = None
            if self.queue:
                timeout = max(0.0, (self.queue[0][0] - time.monotonic()) * 1000)
            for fd, _ in poller.poll(timeout):
                if fd == control.fileno():
                    data = os.read(fd, 65536)
                    if not data:
                        return
                    pending += data
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        if line.strip():
                            self.configure(json.loads(line))
                        sys.stdout.write(json.dumps(self.counts) + "\n")
                        sys.stdout.flush()
                    continue
                port = self.by_fd[fd]
                sock = self.socks[port]
                for _ in range(64):  # drain a burst before looking at the clock again
                    try:
                        frame, address = sock.recvfrom(65536)
                    except BlockingIOError:
                        break
                    if address[2] != PACKET_OUTGOING:  # our own sends show up as outgoing
                        self.forward(port, frame, time.monotonic())
            now = time.monotonic()
            while self.queue and self.queue[0][0] <= now:
                _, _, port, frame = heapq.heappop(self.queue)
                self.send(port, frame)


def main() -> int:
    Switch(sys.argv[1:]).run(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
