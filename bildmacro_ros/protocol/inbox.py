# SPDX-License-Identifier: Apache-2.0
"""What one agent has received for the rounds it has not stepped yet, kept by round and sender."""

from __future__ import annotations

from collections import Counter

from .wire import decode, MalformedMessage, NeighbourState, same_message

MAX_AHEAD = 8  # rounds a neighbour may run ahead before its messages count as bogus


class Inbox:
    """
    What one agent has received for the rounds it has not finished.

    Messages for the current round k or up to MAX_AHEAD rounds ahead are kept (a neighbour can
    be one round ahead); older ones are stale, repeats are duplicates, and a second, different
    message for a round already held is an equivocation (protocol/writers.py); each is dropped
    and counted, like malformed ones.
    """

    def __init__(self, neighbours, m: int):
        self.neighbours = tuple(int(j) for j in neighbours)
        self.members = frozenset(self.neighbours)  # asked with every message
        self.m = m
        self.rounds: dict[int, dict[int, NeighbourState]] = {}
        self.dropped: Counter[str] = Counter()
        self.accepted = 0

    def offer(self, sender: int, data, current: int, label: str | None = None) -> str:
        """File one message; returns 'accepted' or the reason it was dropped."""
        if sender not in self.members:
            return self.reject("not_a_neighbour")
        try:
            msg = decode(data, self.m, sender, label)
        except MalformedMessage as exc:
            return self.reject(exc.reason)
        return self.offer_decoded(msg, current)

    def offer_decoded(self, msg: NeighbourState, current: int) -> str:
        """File a message that decode() already accepted (shared by the agents of one process)."""
        sender = msg.sender
        if sender not in self.members:
            return self.reject("not_a_neighbour")
        if msg.iteration < current:
            return self.reject("stale")
        if msg.iteration > current + MAX_AHEAD:
            return self.reject("too_far_ahead")
        slot = self.rounds.get(msg.iteration)
        if slot is None:
            slot = self.rounds[msg.iteration] = {}
        elif sender in slot:
            return self.reject("duplicate" if same_message(slot[sender], msg) else "equivocation")
        slot[sender] = msg
        self.accepted += 1
        return "accepted"

    def reject(self, reason: str) -> str:
        """Count a message dropped for `reason` (also for checks made outside the inbox)."""
        self.dropped[reason] += 1
        return reason

    def complete(self, iteration: int) -> bool:
        return len(self.rounds.get(iteration, ())) == len(self.neighbours)

    def missing(self, iteration: int) -> list[int]:
        have = self.rounds.get(iteration, {})
        return [j for j in self.neighbours if j not in have]

    def take(self, iteration: int) -> dict[int, NeighbourState]:
        """
        Return the round's messages by sender (those that came).

        Forgets this and older rounds.
        """
        slot = self.rounds.pop(iteration, {})
        self.forget_before(iteration)
        return slot

    def forget_before(self, iteration: int) -> None:
        for k in [k for k in self.rounds if k < iteration]:
            del self.rounds[k]
