# SPDX-License-Identifier: Apache-2.0
"""Neighbour messages among the agents of one process, without a DDS round trip."""

from __future__ import annotations

from collections import Counter, deque

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from .messages import StateMessages
from .topics import QUIET_SUB, STATE_SUB_QOS, state_topic
from ..core.bildmacro import agent_steps, StepSizes
from ..core.problem import BilevelProblem
from ..protocol.parameters import ParameterError
from ..protocol.plausible import Bounds
from ..protocol.rounds import Step
from ..protocol.wire import decode, MalformedMessage, NeighbourState


class ProcessBus:
    """
    Neighbour messages among the agents of one process, without a DDS round trip, and their steps together.

    An agent's own state is handed to its local listeners directly; each remote agent's topic is
    subscribed once per process, decoded once, and fanned out. Every agent still publishes on DDS,
    for remote agents, the recorder and RViz. Hand-overs are queued and drained by the outermost
    call, so one agent's publish never runs another agent's round inside it. Agents that become
    ready to step while the queue drains are stepped together, in one batched call of the core
    (each row equal to its agent's own step to rounding): 60 agents' steps cost about what a handful
    cost one by one. Agents of one model share one BilevelProblem, and equal plausibility bounds one object.
    """

    def __init__(self, node: Node):
        self.node, self.m = node, None
        self.local: dict[int, object] = {}  # agent id -> its AgentNode
        self.listeners: dict[int, list] = {}  # sender -> the local AgentNodes that listen to it
        self.subs: dict[int, object] = {}
        self.dropped: Counter[str] = Counter()
        self.queue: deque[NeighbourState] = deque()
        self.draining = False
        self.deferred: list[tuple[object, Step]] = []  # (agent, its round's Step) stepped together
        self.problems: dict[tuple, BilevelProblem] = {}  # one per model, shared by its agents
        self.bounds: dict[Bounds, Bounds] = {}  # one per distinct value, so verdicts key on identity

    def register(self, agent) -> None:
        if self.m is not None and agent.m != self.m:
            raise ParameterError(f"parameter 'basis_order': agents of one process must share it (agent {agent.id})")
        self.m = agent.m
        s = agent.settings
        model = (s.basis_order, s.grid_step, s.quadrature, s.target, agent.steps)
        agent.problem = self.problems.setdefault(model, agent.problem)
        agent.bounds = self.bounds.setdefault(agent.bounds, agent.bounds)
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
        """
        Queue a message for its local listeners; the outermost call drains the queue.

        Each message is checked for plausibility once per distinct bounds (the same for every agent of
        one config), not once per listener; listeners file it at once and act on what they were given
        once the queue is empty, so an agent with 30 neighbours here decides once per wave of
        messages, not once per message.
        """
        self.queue.append(state)
        if self.draining:
            return
        self.draining = True
        try:
            touched: dict[int, object] = {}
            while self.queue or touched:
                while self.queue:
                    msg = self.queue.popleft()
                    verdicts = {}
                    for agent in self.listeners.get(msg.sender, ()):
                        bounds = id(agent.bounds)
                        if bounds not in verdicts:
                            verdicts[bounds] = agent.bounds.check(msg)
                        agent.take(msg, verdicts[bounds])
                        touched[agent.id] = agent
                # acting may publish, which queues more: the outer loop goes on until all is done
                agents, touched = list(touched.values()), {}
                for agent in agents:
                    agent.advance()
                for agent in self._step_deferred():
                    touched[agent.id] = agent  # it may step its next round at once
        finally:
            self.draining = False

    def defer(self, agent, step: Step) -> bool:
        """Take an agent's ready round to step with the others (True), while the queue is being drained."""
        if not self.draining:
            return False
        self.deferred.append((agent, step))
        return True

    def _step_deferred(self) -> list:
        """Step every deferred agent, one batched core call per model, and hand each its result."""
        pending, self.deferred = self.deferred, []
        batches: dict[tuple[int, StepSizes], list] = {}
        for agent, step in pending:
            batches.setdefault((id(agent.problem), agent.steps), []).append((agent, step))
        for batch in batches.values():
            agent = batch[0][0]
            results = agent_steps(agent.problem, agent.steps, [a.state for a, _ in batch],
                                  [(s.self_weight, s.weights, *s.stacked(self.m)) for _, s in batch])
            for (a, step), result in zip(batch, results):
                a.stepped(step, result)
        return [a for a, _ in pending]
