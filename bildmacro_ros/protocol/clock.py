# SPDX-License-Identifier: Apache-2.0
"""The clock an agent judges deadlines by: the seconds its own process ran."""

from __future__ import annotations

import time
from typing import Callable


class RunningClock:
    """
    Seconds during which this process ran: the clock deadlines and deaths are judged by.

    A deadline exists to step past a neighbour that is slow or gone, so time in which this
    process itself could not run is no evidence against anyone. When the process is stopped, or
    the whole machine is (a VM losing its CPU, a laptop suspended, a long page fault), the
    monotonic clock runs on while messages queue up unread. On waking, the executor runs its
    timers before its subscriptions (rclpy's order), and the deadline check would then step
    late, or declare dead, a neighbour whose message is already waiting in the queue. With
    every agent of a machine stopped at once, that once made each agent declare all the others
    dead and run alone.

    Read it at least every `stall / 2` seconds (the agent's tick does). A gap between two
    readings longer than `stall` is taken to be a stop, and its excess over `stall` is taken
    out of the clock: a deadline loses at most `stall` to any one stop.
    """

    def __init__(self, stall: float, read: Callable[[], float] = time.monotonic):
        if not stall > 0:
            raise ValueError(f"stall must be > 0 seconds, got {stall}")
        self.stall, self.read = float(stall), read
        self.last = read()
        self.stopped = 0.0  # seconds taken out so far

    def now(self) -> float:
        t = self.read()
        gap = t - self.last
        if gap > self.stall:
            self.stopped += gap - self.stall
        self.last = t
        return t - self.stopped
