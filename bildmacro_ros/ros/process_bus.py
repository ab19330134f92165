# SPDX-License-Identifier: Apache-2.0
"""Neighbour messages among the agents of one process, without a DDS round trip."""

from __future__ import annotations

from collections import Counter, deque

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from .messages import StateMessages
from .topics import QUIET_SUB, STATE_SUB_QOS, state_topic
from ..protocol.parameters import ParameterError
from ..protocol.wire import decode, MalformedMessage, NeighbourState


class ProcessBus:
    """
    Neighbour messages among the agents of one process, without a DDS round trip.

    An agent's own state is handed to its local listeners directly; each remote agent's topic is
    subscribed once per process, decoded once, and fanned out. Every agent still publishes on DDS,
    for remote agents, the recorder and RViz. Hand-overs are queued and drained by the outermost
    call, so one agent's publish never runs another agent's round inside it.
    """

    def __init__(self, node: Node):
        self.node, self.m = node, None
        self.local: dict[int, object] = {}  # agent id -> its AgentNode
        self.listeners: dict[int, list] = {}  # sender -> the local AgentNodes that listen to it
        self.subs: dict[int, object] = {}
        self.dropped: Counter[str] = Counter()
        self.queue: deque[NeighbourState] = deque()
        self.draining = False

    def register(self, agent) -> None:
        if self.m is not None and agent.m != self.m:
            raise ParameterError(f"parameter 'basis_order': agents of one process must share it (agent {agent.id})")
        self.m = agent.m
        self.local[agent.id] = agent
        for j in agent.neighbours:
            self.listeners.setdefault(j, []).append(agent)

    def connect(self) -> None:
        """Subscribe to the remote neighbours of all local agents (call after every register)."""
        self.messages = StateMessages(self.m)
        for j in self.listeners:
            if j not in self.local:
                self.subs[j] = self.node.create_subscription(Float64MultiArray, state_topic(j), self._remote(j),
                                                             STATE_SUB_QOS, event_callbacks=QUIET_SUB, raw=True)

    def remote_links(self, neighbours) -> list:
        return [self.subs[j] for j in neighbours if j in self.subs]

    def _remote(self, sender: int):
        def on_message(data: bytes):
            try:
                state = self.messages.read(data, sender)
            except MalformedMessage as exc:
                self.dropped[exc.reason] += 1
                for agent in self.listeners[sender]:
                    agent.rounds.reject(exc.reason)
                self.node.get_logger().warning(f"dropped a message from agent {sender}: {exc.reason}",
                                               throttle_duration_sec=2.0)
                return
            self._hand_over(state)
        return on_message

    def published(self, sender: int, payload: np.ndarray) -> None:
        self._hand_over(decode(payload, self.m, sender))

    def _hand_over(self, state: NeighbourState) -> None:
        self.queue.append(state)
        if self.draining:
            return
        self.draining = True
        try:
            while self.queue:
                msg = self.queue.popleft()
                for agent in self.listeners.get(msg.sender, ()):
                    agent.deliver(msg)
        finally:
            self.draining = False
