# SPDX-License-Identifier: Apache-2.0
"""The progress line of a long run: done, rate and ETA on stderr."""

from __future__ import annotations

import math
import sys
import time


class Progress:
    """
    A progress line on stderr.

    Rewritten in place on a terminal, a new line every few seconds otherwise.
    """

    def __init__(self, label: str, total: int, stream=None, enabled: bool = True):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.every = 0.25 if self.tty else 5.0

    def note(self, text: str) -> None:
        """Write an event worth its own line (shown even without a progress line)."""
        self.stream.write(("\n" if self.tty and self.enabled else "") + f"{self.label}: {text}\n")
        self.stream.flush()

    def restart(self) -> None:
        """Start the rate's clock now: after a preparation that is not the run's work."""
        self.start = self.last = time.monotonic()

    def update(self, done: int, note: str = "", force: bool = False):
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.every):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else math.inf
        pct = 100.0 * done / self.total if self.total else 100.0
        line = (f"{self.label}: {done}/{self.total} iterations ({pct:.0f}%), {rate:,.0f} it/s, "
                f"ETA {eta:,.0f} s{', ' + note if note else ''}")
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
            if force:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
