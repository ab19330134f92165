# SPDX-License-Identifier: Apache-2.0
"""
Who may speak for a neighbour: its topic's writer pinned, impostors refused, forgeries undone.

DDS without security lets any participant publish on `agent_<j>/state`, inside every bound. Two
things give an impostor away. An honest agent never sends two different messages for one round
(a resend is identical), so two are an *equivocation*. And an honest topic has one writer, so a
second one matched on it is foreign. Jazzy's rclpy does not say which writer sent a message
(`publisher_gid` reached rclpy's MessageInfo only after Jazzy: ros2/rclpy#1466), so while a
foreign writer is matched the whole topic is refused, the honest writer's messages too, and the
round rules treat that neighbour as late; once one writer is left, either the pinned one (the
impostor left) or a new one after the pinned one is gone (a restart: the old writer's liveliness
ran out) is heard again. The node feeds the DDS matched count and the ROS graph's writers;
messages are data here (test/unit/test_writers.py); docs/security.md says what this can and
cannot stop, and why an agent that mixed a forgery does not re-initialise its sums alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Writer:
    """A writer on a topic, as the ROS graph lists it."""

    gid: str  # its endpoint GID, in hex: what is pinned
    node: str  # the node it says it belongs to (anyone may take any name)

    def __str__(self) -> str:
        # the graph names the node once its participant has announced it, a moment after the
        # writer matched; a DDS writer outside ROS never has one
        node = "a node not yet named" if "_UNKNOWN_" in self.node else self.node
        return f"{node} (writer {self.gid[:32]})"


class WriterPin:
    """
    One neighbour topic's writers: the one pinned, and whether a foreign one is matched.

    observe(count, writers, silent) takes the DDS matched count (every writer, any DDS stack),
    the writers the ROS graph lists (those that announce themselves, each with its GID; the graph
    may lag the count by a discovery round) and whether the topic had fallen silent before. A
    second writer on a topic that was speaking is foreign at once. One that comes after the
    topic fell silent is a restart: it takes over as soon as the graph names it, while the dead
    writer stays matched until its liveliness runs out (`stale` then).
    """

    def __init__(self):
        self.pinned: str | None = None
        self.stale: set[str] = set()  # writers handed over from, matched until their lease ends
        self.foreign = self.quiet = False
        self.count, self.writers = 0, ()

    @property
    def settled(self) -> bool:
        """Tell whether the graph lists exactly the matched writers (else poll again)."""
        return len(self.writers) == self.count

    def expects(self, count: int) -> bool:
        """Tell whether `count` matched writers are the ones known: the pinned and the stale."""
        return count <= 1 + len(self.stale)

    def observe(self, count: int, writers, silent: bool = False) -> str | None:
        """Take what DDS and the graph say; return the change: foreign, alone or handed_over."""
        self.count, self.writers = count, tuple(writers)
        gids = {w.gid for w in self.writers}
        if self.settled:
            self.stale &= gids  # a dead writer's lease ran out
        live = gids - self.stale
        if count - len(self.stale) >= 2:
            if not self.foreign:
                self.foreign, self.quiet = True, silent
                seen = "foreign"
            else:
                seen = None
            newcomers = live - {self.pinned}
            if self.quiet and self.pinned is not None and self.settled and len(newcomers) == 1:
                # the topic had fallen silent before this writer came: a restart
                self.stale.add(self.pinned)
                self.pinned, self.foreign = newcomers.pop(), False
                return "handed_over"
            return seen
        if count == 0 or not self.settled or len(live) != 1:
            return None
        (gid,) = live
        if self.pinned is None or gid == self.pinned:
            self.pinned, was = gid, self.foreign
            self.foreign = False
            return "alone" if was else None
        # one writer left, not the pinned one: the pinned writer is gone (a restart) and this one
        # speaks for the neighbour now; an impostor that outlives the real agent looks the same
        self.pinned, self.foreign = gid, False
        return "handed_over"


@dataclass(frozen=True)
class Sighting:
    """What an agent saw of a neighbour's writers: a foreign writer, a hand-over, a forgery."""

    kind: str  # foreign, alone, handed_over or equivocation
    neighbour: int
    k: int  # the agent's round when it saw it
    writers: tuple[str, ...]  # the topic's writers the graph listed then
    message_round: int | None = None  # for an equivocation: the round of the two messages

    def text(self, agent: int) -> str:
        listed = ", ".join(self.writers) or "none listed by the ROS graph yet"
        topic = f"agent {self.neighbour}'s state topic"
        if self.kind == "foreign":
            return (f"agent {agent}: a second writer is on {topic} at round {self.k} (writers: "
                    f"{listed}); refusing agent {self.neighbour}'s messages until one is left "
                    f"(docs/security.md)")
        if self.kind == "alone":
            return (f"agent {agent}: {topic} has its pinned writer alone again at round "
                    f"{self.k}; hearing agent {self.neighbour} again")
        if self.kind == "handed_over":
            return (f"agent {agent}: the pinned writer of {topic} is gone and {listed} took "
                    f"over at round {self.k} (a restart, or an impostor that outlived agent "
                    f"{self.neighbour}); hearing it")
        return (f"agent {agent}: two different round-{self.message_round} messages from agent "
                f"{self.neighbour} on {topic} (writers: {listed}): an impostor or a broken "
                f"robot; the first was kept")


class WriterGuard:
    """
    Agent i's pins for its remote neighbours, and what it saw of their writers.

    enabled False (parameter pin_writers) only reports: every message is admitted, so a study can
    measure what the checks prevent.
    """

    def __init__(self, neighbours, enabled: bool = True, silence: float = 6.0):
        self.pins = {int(j): WriterPin() for j in neighbours}
        self.enabled = enabled
        self.silence = silence  # seconds without a message after which a topic fell silent
        self.heard_at = {j: -float("inf") for j in self.pins}
        self.sightings: list[Sighting] = []

    def heard(self, sender: int, now: float) -> None:
        """Note that a message came on sender's topic, from whichever writer."""
        if sender in self.heard_at:
            self.heard_at[sender] = now

    def admits(self, sender: int) -> bool:
        """Tell whether a message on sender's topic may be filed now."""
        pin = self.pins.get(sender)
        return pin is None or not pin.foreign or not self.enabled

    def unnoticed(self, sender: int, count: int) -> bool:
        """Tell whether sender's topic has more writers matched than the guard knows of yet."""
        # asked with every message: its writer is matched before its data can arrive, so a
        # forgery is refused even when it overtakes the matched event
        pin = self.pins.get(sender)
        return pin is not None and not pin.expects(count) and not pin.foreign

    @property
    def unsettled(self) -> list[int]:
        """Return the neighbours whose writers must be looked up again."""
        return [j for j, pin in self.pins.items() if pin.foreign or not pin.settled]

    def observe(self, sender: int, count: int, writers, k: int,
                now: float) -> Sighting | None:
        """Take sender's topic's matched count and graph writers; return a sighting to report."""
        silent = now - self.heard_at[sender] >= self.silence
        kind = self.pins[sender].observe(count, writers, silent)
        return None if kind is None else self._saw(kind, sender, k, writers)

    def equivocation(self, sender: int, message_round: int, k: int) -> Sighting:
        """Note two different messages from sender for one round."""
        return self._saw("equivocation", sender, k, self.pins[sender].writers
                         if sender in self.pins else (), message_round)

    def outcome(self) -> list[dict]:
        return [{"kind": s.kind, "neighbour": s.neighbour, "round": s.k,
                 "writers": list(s.writers), "message_round": s.message_round}
                for s in self.sightings]

    def _saw(self, kind, sender, k, writers, message_round=None) -> Sighting:
        sighting = Sighting(kind, sender, k, tuple(str(w) for w in writers), message_round)
        self.sightings.append(sighting)
        return sighting
