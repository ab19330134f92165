# SPDX-License-Identifier: Apache-2.0
"""
The `agent` node: one robot's BILD-MACRO, fed by its in-neighbours' messages over DDS.

Each round k the agent publishes (x_i^k, y_i^k, r_i^k, q_i^k) on agent_<i>/state, steps once it
holds round k from every in-neighbour, and publishes its waypoint x_i^{k+1} (agent_<i>/waypoint)
and projected point (agent_<i>/x_hat). What to do and when is the ROS-free Agent's
(protocol/agent.py); this node subscribes, publishes and calls it.
"""

from __future__ import annotations

import sys

from geometry_msgs.msg import PoseStamped
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Float64MultiArray, Int64MultiArray

from .lifecycle import parameter_services, run_nodes
from .messages import pose_of, pose_stamped, StateMessages
from .parameters import read_agent_setup
from .topics import (held_topic, LATCHED_QOS, projected_topic, QUIET_PUB, QUIET_SUB,
                     RECORD_QOS, record_topic, recorder_progress_topic, STATE_QOS, STATE_SUB_QOS,
                     state_topic, STREAM_SUB_QOS, swarm_pose_topic, watching_readers,
                     watching_writers, WAYPOINT_QOS, waypoint_topic, writers_of)
from ..core.kernel import prepare_kernel
from ..core.scenario import build_problem, warm_kernel
from ..protocol.agent import Agent
from ..protocol.backlog import awaited, Backlog
from ..protocol.outbox import Notice, Publish, Unheard, Waypoint
from ..protocol.parameters import ParameterError
from ..protocol.wire import MalformedMessage
from ..scheduling import schedule_agent


def problem_of(config: dict):
    """Return the (problem, step sizes) a node's config describes; a bad target names it."""
    try:
        return build_problem(config)
    except (ValueError, OSError) as exc:  # e.g. an image target that cannot be read
        raise ParameterError(f"parameter 'target': {exc}") from None


class AgentNode(Node):
    """
    Agent i's topics and timers around its Agent.

    bus: the ProcessBus of an agent group, which then carries this agent's messages to and from
    the other agents of its process and steps their ready rounds together.
    """

    def __init__(self, node_name: str = "agent", bus=None, **kwargs):
        # Parameter services add ~7 waitables to every wake-up of the executor, and an agent wakes
        # once per neighbour message: BILDMACRO_PARAMETER_SERVICES=0 leaves them out.
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__(node_name, **kwargs)
        setup = read_agent_setup(self)
        s = setup.settings
        problem, steps = bus.problem(setup.config) if bus else problem_of(setup.config)
        self.messages = StateMessages(problem.m)
        # a message's round is the first double after the serialized prefix (protocol/wire.py)
        self.backlog = Backlog(len(self.messages.prefix), self.messages.size)
        self.agent = Agent(s, problem, steps, setup.x0, setup.y0, self.messages.build)
        prepare_kernel(problem, steps)  # now, not in round 0; main loaded it before ROS started
        self.bus, self.done = bus, Future()
        i = s.agent_id
        self.state_pub = self.create_publisher(Float64MultiArray, state_topic(i), STATE_QOS,
                                               event_callbacks=QUIET_PUB)
        self.record_pub = self.create_publisher(Float64MultiArray, record_topic(i), RECORD_QOS,
                                                event_callbacks=QUIET_PUB) \
            if self.agent.recorded else None
        # the waypoint, then the projected point: (publisher, the point held while nobody reads)
        self.points = []
        for n, topic in enumerate((waypoint_topic(i), projected_topic(i))):
            callbacks = watching_readers(lambda n=n: self._on_point_reader(n))
            self.points.append((self.create_publisher(PoseStamped, topic, WAYPOINT_QOS,
                                                      event_callbacks=callbacks), Unheard()))
        self.waypoint_pub = self.points[0][0]
        self.topics = {"state": self.state_pub, "record": self.record_pub}
        self.subs = {}  # in a group, the bus subscribes once per process to each remote neighbour
        if bus is None:
            # raw: the callback gets the serialized message, which StateMessages reads in one copy
            self.subs = {j: self.create_subscription(
                Float64MultiArray, state_topic(j), self._receiver(j), STATE_SUB_QOS,
                event_callbacks=watching_writers(lambda j=j: self.look_at_writers(j)), raw=True)
                for j in self.agent.neighbours}
        else:
            bus.register(self)
        if self.agent.pace is not None:
            self.create_subscription(Int64MultiArray, recorder_progress_topic(),
                                     self._on_recorder_progress, LATCHED_QOS,
                                     event_callbacks=QUIET_SUB)
        if s.wait_for_robot:
            self.create_subscription(PoseStamped, swarm_pose_topic(i), self._on_pose,
                                     STREAM_SUB_QOS, event_callbacks=QUIET_SUB)
            self.create_subscription(PoseStamped, held_topic(i), self._on_held, LATCHED_QOS,
                                     event_callbacks=QUIET_SUB)
        if self.agent.waypoints.period > 0:
            self.create_timer(self.agent.waypoints.period, self._on_waypoint_timer)
        self.ready_timer = self.create_timer(0.01, self._try_start)
        self.tick_timer = self.create_timer(self.agent.rounds.rules.tick, self._on_tick)
        if self.agent.link.injector.delay > 0:
            self.create_timer(0.005, self._on_delay_timer)
        self.ack_timer = None
        self.flush()  # what the agent said while it started (a resumed checkpoint)
        self.get_logger().info(f"agent {i}: {len(self.agent.neighbours)} in-neighbours "
                               f"{self.agent.neighbours}, {s.iterations} iterations, waiting for "
                               f"discovery")

    # -- in ------------------------------------------------------------------------------------
    def _try_start(self):
        links = self.subs.values() if self.bus is None else \
            self.bus.remote_links(self.agent.neighbours)
        s = self.agent.settings
        matched = (self.state_pub.get_subscription_count() >= self.agent.listeners
                   and all(sub.get_publisher_count() > 0 for sub in links)
                   and self.waypoint_pub.get_subscription_count() >= s.followers
                   and (self.record_pub is None
                        or self.record_pub.get_subscription_count() >= s.recorders))
        if self.agent.start(matched):
            self.destroy_timer(self.ready_timer)  # a cancelled timer stays in every wait set
            self.act()

    def _receiver(self, sender: int):
        def on_message(data: bytes):
            if self.backlog.keep(sender, data, self.agent.rounds.k):
                self.act()
        return on_message

    def _read(self, sender: int, data: bytes) -> None:
        """Check, decode and file one message from sender's topic."""
        if self.agent.guard.unnoticed(sender, self.subs[sender].get_publisher_count()):
            self.look_at_writers(sender)
        try:
            self.agent.take(self.messages.read(data, sender))
        except MalformedMessage as exc:
            self.agent.malformed(sender, exc.reason)

    def _on_pose(self, msg: PoseStamped):
        self.agent.robot.pose(pose_of(msg)[:2])
        self.act()

    def _on_held(self, msg: PoseStamped):
        self.agent.robot.held((msg.pose.position.x, msg.pose.position.y))
        self.act()

    def _on_recorder_progress(self, msg: Int64MultiArray):
        if self.agent.id < len(msg.data):
            self.agent.recorder_heard(int(msg.data[self.agent.id]))
            self.act()

    def look_at_writers(self, j: int) -> None:
        """Tell the agent who writes on neighbour j's topic (a writer matched or left)."""
        link = self.subs.get(j) or self.bus.subs[j]
        self.agent.writers_seen(j, *writers_of(self, link))
        self.flush()

    def _on_tick(self):
        for j in self.agent.guard.unsettled:  # the graph lagged the matching: look again
            self.look_at_writers(j)
        if self.agent.tick() or self.backlog.waiting:  # a backlog is read by a tick at the latest
            self.act()
        self.agent.resend()
        self.flush()

    def _on_delay_timer(self):
        if self.agent.release_delayed():
            self.act()

    def _on_waypoint_timer(self):
        self.agent.waypoint_due()
        self.flush()

    # -- out -----------------------------------------------------------------------------------
    def act(self) -> None:
        """Let the agent step what it can; in a group the bus steps it with the others."""
        if self.bus is not None:
            self.bus.run([self])
            return
        for sender, data in self.backlog.take():  # before any decision: nothing steps past them
            self._read(sender, data)
        self.agent.act()
        self.flush()
        self.backlog.expect(awaited(self.agent.rounds))

    def flush(self) -> list:
        """Send what the agent produced; return the payloads of its new rounds (for the bus)."""
        payloads = []
        for out in self.agent.drain():
            if isinstance(out, Publish):
                self.topics[out.topic].publish(out.data)
                if out.payload is not None:
                    payloads.append(out.payload)
            elif isinstance(out, Waypoint):
                self._send_point(0, out.x)
                self._send_point(1, out.x_hat)
            elif isinstance(out, Notice) and out.level == "warning":
                self.get_logger().warning(out.text)  # rclpy ties a call site to one severity
            elif isinstance(out, Notice):
                self.get_logger().info(out.text)
        if self.agent.finishing and self.ack_timer is None:
            # polled, not waited for: agents of one process share this executor thread
            self.destroy_timer(self.tick_timer)
            self.ack_timer = self.create_timer(0.02, self._await_acks)
        return payloads

    def _send_point(self, n: int, xy) -> None:
        """Publish points[n]'s newest point, stamped now, if a subscriber is there to read it."""
        pub, unheard = self.points[n]
        if unheard.offer(xy, pub.get_subscription_count()) is not None:
            pub.publish(pose_stamped(self.get_clock().now().to_msg(),
                                     self.agent.settings.frame_id, xy))

    def _on_point_reader(self, n: int) -> None:
        held = self.points[n][1].matched()
        if held is not None:
            self._send_point(n, held)

    def _await_acks(self):
        # neighbours may still need this agent's last rounds, the recorder its last record, and
        # the robot its last waypoint
        pubs = [pub for pub in (*self.topics.values(), self.waypoint_pub) if pub is not None]
        acked = all(pub.wait_for_all_acked(Duration(seconds=0)) for pub in pubs)
        if self.agent.settle(acked):
            self.destroy_timer(self.ack_timer)
            self.flush()
            self.done.set_result(True)

    def destroy_node(self):
        self.agent.stop()
        super().destroy_node()


def agents_done(nodes) -> list[Future]:
    return [node.done for node in nodes if isinstance(node, AgentNode)]


def main() -> int:
    """Run one agent: `ros2 run bildmacro_ros agent --ros-args -p agent_id:=3 ...`."""
    schedule_agent()  # before ROS starts its threads, which inherit it
    warm_kernel()  # before the participant: its start-up is all CPU (core/scenario.py)
    return run_nodes(lambda: [AgentNode()], agents_done)


if __name__ == "__main__":
    sys.exit(main())
