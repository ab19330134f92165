# SPDX-License-Identifier: Apache-2.0
"""
Injected faults on the messages one agent receives.

Seeded losses and delays (core/faults.py).
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable

from .wire import NeighbourState
from ..core.faults import FaultInjector


class FaultyLink:
    """
    Between DDS and an agent's round controller: injected losses and delays.

    Each message is lost, delayed, or passed on at once, as the injector draws for (sender, this
    receiver, round).
    """

    def __init__(self, injector: FaultInjector, receiver: int,
                 read: Callable[[], float] = time.monotonic):
        self.injector, self.receiver, self.read = injector, receiver, read
        self.active = injector.active  # asked with every message
        self.delayed: list = []  # (due time, sequence, message): a heap
        self.sequence = itertools.count()

    def admit(self, msg: NeighbourState) -> str:
        """'now' (hand it on), 'lost', or 'later' (due() hands it on once its delay has passed)."""
        if not self.active:
            return "now"
        if self.injector.lost(msg.sender, self.receiver, msg.iteration):
            return "lost"
        wait = self.injector.latency(msg.sender, self.receiver, msg.iteration)
        if wait <= 0:
            return "now"
        heapq.heappush(self.delayed, (self.read() + wait, next(self.sequence), msg))
        return "later"

    def due(self) -> list[NeighbourState]:
        """Return the delayed messages whose time has come, in order."""
        now, out = self.read(), []
        while self.delayed and self.delayed[0][0] <= now:
            out.append(heapq.heappop(self.delayed)[2])
        return out
