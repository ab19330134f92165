# SPDX-License-Identifier: Apache-2.0
"""
An impostor of agent 1: a second writer on agent_1/state whose forgeries are inside every bound.

It follows the real agent 1; at round `start` it makes its writer (an intruder joining a
running swarm), and once that has matched a reader it answers each of agent 1's rounds k with a
forgery labelled k + 1 (ahead, so that it reaches the neighbours before the real round k + 1),
for `rounds` rounds or `seconds` of wall time, whichever ends first, then leaves the domain's
graph (its writer destroyed). The kinds are issue 26's table: `scaled` (agent 1's newest message,
y, r and q times 3), `corner` (its r as if its robot stood at (-0.9, -0.9), three times over),
`other` (agent 2's round-0 parameters) and `replay` (agent 1's own message from 50 rounds
before).
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from bildmacro_ros.core.bildmacro import initial_state
from bildmacro_ros.protocol.wire import (decode_message, encode, layout_label, message_length,
                                         same_message)
from bildmacro_ros.ros.messages import StateMessages
from bildmacro_ros.ros.topics import STATE_QOS, STATE_SUB_QOS, state_topic

KINDS = ("scaled", "corner", "other", "replay")
REPLAY_AGE = 50


class Impostor(Node):
    """Agent 1's impostor; `first`: agent 1's round when it first forged; `sent`: how many."""

    def __init__(self, context, problem, kind: str = "scaled", start: int = 100,
                 rounds: int = 60, seconds: float = 4.0):
        super().__init__("impostor", context=context)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.problem, self.kind, self.start, self.rounds = problem, kind, start, rounds
        self.seconds, self.m = seconds, problem.m
        self.history: dict[int, object] = {}  # agent 1's honest messages by round
        self.forged: dict[int, object] = {}  # what it sent, by round
        self.round0_of_2 = None
        self.pub = None
        self.first: int | None = None
        self.began = self.left = None
        self.sent = 0
        self.layout = [MultiArrayDimension(label=layout_label(self.m), size=message_length(self.m),
                                           stride=message_length(self.m))]
        # raw, read as the agents read it: a slow decode made it follow agent 1 rounds late
        self.messages = StateMessages(self.m)
        for j in (1, 2):
            self.create_subscription(Float64MultiArray, state_topic(j),
                                     lambda data, j=j: self.heard(j, data), STATE_SUB_QOS,
                                     raw=True)
        self.create_timer(0.1, self.check)

    def check(self) -> None:
        """Leave after `seconds` even if agent 1 stalls (its neighbours refuse it meanwhile)."""
        if self.began is not None and self.left is None and \
                time.monotonic() - self.began > self.seconds:
            self.leave()

    def heard(self, sender: int, data: bytes) -> None:
        state = self.messages.read(data)
        if state.sender != sender or self.left is not None:
            return
        if sender == 2:
            if state.iteration == 0:
                self.round0_of_2 = state
            return
        own = self.forged.get(state.iteration)
        if state.iteration in self.history or (own is not None and same_message(own, state)):
            return  # a resend, or its own forgery heard back
        self.history[state.iteration] = state
        if state.iteration < self.start:
            return
        if self.pub is None:  # it joins; it speaks once a reader other than its own has matched
            self.pub = self.create_publisher(Float64MultiArray, state_topic(1), STATE_QOS)
        if self.pub.get_subscription_count() < 2:
            return
        if self.first is None:
            self.first, self.began = state.iteration, time.monotonic()
        over = state.iteration >= self.first + self.rounds or \
            time.monotonic() - self.began > self.seconds
        if over:
            self.leave()
            return
        forgery = self.forge(state)
        self.forged[state.iteration + 1] = decode_message(forgery, self.m)
        self.pub.publish(forgery)
        self.sent += 1

    def forge(self, state) -> Float64MultiArray:
        y, r, q = state.y, state.r, state.q
        if self.kind == "scaled":
            y, r, q = 3 * y, 3 * r, 3 * q
        elif self.kind == "corner":
            here = initial_state(self.problem, state.x[None], y[None]).r[0]
            there = initial_state(self.problem, np.array([[-0.9, -0.9]]), y[None]).r[0]
            r = r + 3 * (there - here)
        elif self.kind == "other" and self.round0_of_2 is not None:
            y, r, q = self.round0_of_2.y, self.round0_of_2.r, self.round0_of_2.q
        elif self.kind == "replay":
            old = self.history.get(state.iteration - REPLAY_AGE)
            if old is not None:
                y, r, q = old.y, old.r, old.q
        out = Float64MultiArray()
        out.layout.dim = self.layout
        out.data = encode(state.iteration + 1, 1, state.x, state.x_hat, y, r, q).tolist()
        return out

    def leave(self) -> None:
        """Destroy the writer: DDS unmatches it at once, as an impostor that quits."""
        if self.pub is not None:
            self.destroy_publisher(self.pub)
        self.left = time.monotonic()
