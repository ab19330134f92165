# SPDX-License-Identifier: Apache-2.0
"""Neighbour messages among the agents of one process, without a DDS round trip."""

from __future__ import annotations

from collections import Counter, deque

from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from .agent import problem_of
from .messages import StateMessages
from .topics import STATE_SUB_QOS, state_topic, watching_writers
from ..core.bildmacro import agent_steps
from ..core.kernel import kernel_in_use
from ..protocol.parameters import ParameterError
from ..protocol.wire import decode, MalformedMessage, NeighbourState


class ProcessBus:
    """
    The agents of one process: their messages to each other, and their steps together.

    An agent's new round is handed to its local listeners directly; each remote agent's topic is
    subscribed once per process, decoded once, and fanned out. Every agent still publishes on
    DDS, for remote agents, the recorder and RViz. `run` is one loop: it files the queued
    messages, asks each agent they reached for its next step, steps the ready agents of one model
    (numpy's path: in one batched core call, each row equal to its agent's own step to rounding;
    compiled: one by one, each reading its messages where they lie), sends what
    they produced and queues their new rounds, until every agent waits. Agents of one model
    share one BilevelProblem; each message is checked for plausibility once per distinct bounds.
    """

    def __init__(self, node: Node):
        self.node, self.m = node, None
        self.local: dict[int, object] = {}  # agent id -> its AgentNode
        self.listeners: dict[int, list] = {}  # sender -> the local AgentNodes that listen to it
        self.subs: dict[int, object] = {}
        self.dropped: Counter[str] = Counter()
        self.queue: deque[NeighbourState] = deque()
        self.problems: dict[str, tuple] = {}  # one (problem, step sizes) per model
        self.bounds: dict = {}  # one Bounds object per distinct bounds: verdicts are kept by id

    def problem(self, config: dict) -> tuple:
        """Return the (problem, step sizes) of a config, built once per distinct model."""
        key = repr([config[k] for k in ("basis", "grid", "target", "algorithm")])
        if key not in self.problems:
            self.problems[key] = problem_of(config)
        return self.problems[key]

    def register(self, node) -> None:
        agent = node.agent
        if self.m is not None and agent.m != self.m:
            raise ParameterError(f"parameter 'basis_order': agents of one process must share it "
                                 f"(agent {agent.id})")
        self.m = agent.m
        # equal bounds made one object: a message's verdict is then looked up by id, not by a
        # dataclass's hash and equality for each of its listeners
        agent.bounds = self.bounds.setdefault(agent.bounds, agent.bounds)
        self.local[agent.id] = node
        for j in agent.neighbours:
            self.listeners.setdefault(j, []).append(node)

    def connect(self) -> None:
        """Subscribe to the remote neighbours of all local agents (call after every register)."""
        self.messages = StateMessages(self.m)
        for j in self.listeners:
            if j not in self.local:
                self.subs[j] = self.node.create_subscription(
                    Float64MultiArray, state_topic(j), self._remote(j), STATE_SUB_QOS,
                    event_callbacks=watching_writers(lambda j=j: self._writers_changed(j)),
                    raw=True)

    def remote_links(self, neighbours) -> list:
        return [self.subs[j] for j in neighbours if j in self.subs]

    def _remote(self, sender: int):
        def on_message(data: bytes):
            count = self.subs[sender].get_publisher_count()
            if any(node.agent.guard.unnoticed(sender, count) for node in self.listeners[sender]):
                self._writers_changed(sender)
            try:
                self.queue.append(self.messages.read(data, sender))
            except MalformedMessage as exc:
                self.dropped[exc.reason] += 1
                for node in self.listeners[sender]:
                    node.agent.malformed(sender, exc.reason)
                self.node.get_logger().warning(f"dropped a message from agent {sender}: "
                                               f"{exc.reason}", throttle_duration_sec=2.0)
            self.run([])
        return on_message

    def _writers_changed(self, sender: int) -> None:
        for node in self.listeners[sender]:  # each agent keeps its own pins
            node.look_at_writers(sender)

    def run(self, woken) -> None:
        """Act for the woken agents and for all that their messages reach, until all wait."""
        touched = {node.agent.id: node for node in woken}
        while self.queue or touched:
            while self.queue:
                msg = self.queue.popleft()
                verdicts = {}
                for node in self.listeners.get(msg.sender, ()):
                    agent = node.agent
                    key = id(agent.bounds)
                    if key not in verdicts:
                        verdicts[key] = agent.bounds.check(msg)
                    agent.take(msg, verdicts[key])
                    touched[agent.id] = node
            ready = []
            for node in touched.values():
                step = node.agent.next_step()
                if step is not None:
                    ready.append((node, step))
                else:
                    self._send(node)
            touched = self._step(ready)

    def _step(self, ready: list) -> dict:
        """Step the ready agents, one batched core call per model; return them, by id."""
        batches: dict[tuple, list] = {}
        for node, step in ready:
            agent = node.agent
            batches.setdefault((id(agent.problem), agent.steps), []).append((agent, step))
        for batch in batches.values():
            first = batch[0][0]
            if kernel_in_use() == "numba":  # one by one, each reading its messages in place
                results = [agent.compute(step) for agent, step in batch]
            else:
                results = agent_steps(first.problem, first.steps, [a.state for a, _ in batch],
                                      [(s.self_weight, s.weights, *s.stacked(self.m))
                                       for _, s in batch])
            for (agent, step), result in zip(batch, results):
                agent.stepped(step, result)
        for node, _ in ready:
            self._send(node)
        return {node.agent.id: node for node, _ in ready}

    def _send(self, node) -> None:
        for payload in node.flush():
            self.queue.append(decode(payload, self.m, node.agent.id))
