# SPDX-License-Identifier: Apache-2.0
"""The backlog: neighbour messages an agent keeps unread until one may let its round step."""

from __future__ import annotations

from struct import unpack_from


class Backlog:
    """
    Serialized neighbour messages kept unread until the round waited on may be whole.

    An agent's process wakes once per neighbour message, and on a busy machine (10 agent
    processes on 2 CPUs) every wake-up finds its caches cold: reading, checking and filing one
    message then costs three times its CPU on warm caches (docs/speed.md). Most messages cannot
    let the round step, because it still lacks another; those are only kept. The one that may
    complete the round, a message of another length, or any other reason to act has them all
    read in one pass, in the order they came, before the agent decides anything: the
    agent then files the same messages in the same order as if it had read each on arrival.

    round_at: the byte where a serialized message's round lies; size: a message's length in
    the layout expected (any other length is read at once, and the reader says what is wrong).
    """

    def __init__(self, round_at: int, size: int):
        self.round_at, self.size = round_at, size
        self.waiting: list[tuple[int, bytes]] = []
        self.awaited = 0  # round k's messages still to come before reading can let it step

    def keep(self, sender: int, data: bytes, k: int) -> bool:
        """Keep sender's message, the agent being at round k; True if the backlog is due."""
        self.waiting.append((sender, data))
        if self.awaited <= 0 or len(data) != self.size:
            return True
        if unpack_from("<d", data, self.round_at)[0] == k:
            # a resend counts again: the backlog is read early, which is only slower
            self.awaited -= 1
            return self.awaited <= 0
        return False  # another round's: the round waited on is no nearer

    def take(self) -> list[tuple[int, bytes]]:
        """Return the kept (sender, message) pairs in the order they came, keeping none."""
        waiting, self.waiting = self.waiting, []
        return waiting

    def expect(self, awaited: int) -> None:
        """Keep messages until `awaited` more of the current round have come (0: keep none)."""
        self.awaited = awaited


def awaited(rounds) -> int:
    """
    Return how many live neighbours' messages a RoundController's round k lacks, if it waits.

    0 where it does not wait on messages (not started, finished) or lacks none: then every
    message is read as it comes. A dead neighbour is not counted: the round steps without it.
    """
    if not rounds.started or rounds.finished or rounds.k >= rounds.iterations:
        return 0
    neighbours = rounds.neighbours
    return sum(not neighbours[j].dead for j in rounds.inbox.missing(rounds.k))
