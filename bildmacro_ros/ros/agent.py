# SPDX-License-Identifier: Apache-2.0
"""
The `agent` node: one robot's BILD-MACRO, fed by its in-neighbours' messages over DDS.

Each round k it publishes (x_i^k, y_i^k, r_i^k, q_i^k) on agent_<i>/state and waits until it
holds round-k messages from every in-neighbour; then it steps with the core's per-agent update
and publishes its waypoint x_i^{k+1} (agent_<i>/waypoint) and projected point x_hat_i^k
(agent_<i>/x_hat). When to step, wait, catch up or give up on a neighbour is decided by the
ROS-free RoundController (protocol/rounds.py); this node wires it to DDS.
"""

from __future__ import annotations

from pathlib import Path
import sys
import time

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Float64MultiArray, Int64MultiArray

from .lifecycle import parameter_services, run_nodes
from .messages import pose_of, pose_stamped, StateMessages
from .parameters import read_agent_setup
from .topics import (held_topic, LATCHED_QOS, odom_topic, projected_topic, QUIET_PUB, QUIET_SUB, RECORD_QOS,
                     record_topic, recorder_progress_topic, STATE_QOS, STATE_SUB_QOS, state_topic, STREAM_SUB_QOS,
                     WAYPOINT_QOS, waypoint_topic)
from ..core.bildmacro import agent_step, initial_state, reset_tracking
from ..core.faults import FaultInjector
from ..core.metrics import recorded_rounds
from ..core.scenario import build_problem
from ..protocol.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from ..protocol.faulty_link import FaultyLink
from ..protocol.outcome import AgentOutcome
from ..protocol.pacing import RecorderPace, WaypointPace
from ..protocol.parameters import ParameterError
from ..protocol.plausible import Bounds
from ..protocol.rounds import CatchUp, Finish, RoundController, RoundRules, Step
from ..protocol.wire import MalformedMessage, NeighbourState


class AgentNode(Node):
    """Agent i of Algorithm 1. Rounds are driven by message arrival and a tick; nothing sleeps."""

    def __init__(self, node_name: str = "agent", bus=None, **kwargs):
        # Parameter services add ~7 waitables to every wake-up of the executor, and an agent wakes
        # once per neighbour message: BILDMACRO_PARAMETER_SERVICES=0 leaves them out (README).
        kwargs.setdefault("start_parameter_services", parameter_services())
        super().__init__(node_name, **kwargs)
        setup = read_agent_setup(self)
        s = self.settings = setup.settings
        self.id, self.iterations = s.agent_id, s.iterations
        self.neighbours = list(s.neighbours)
        try:
            self.problem, self.steps = build_problem(setup.config)
        except (ValueError, OSError) as exc:  # e.g. an image target that cannot be read
            raise ParameterError(f"parameter 'target': {exc}") from None
        self.m = self.problem.m
        self.bounds = Bounds.of(self.m, self.steps.omega, self.steps.gamma_y,
                                max(s.initial_y_bound, float(np.abs(setup.y0).max())))
        self.implausible: set[tuple[int, str]] = set()  # (neighbour, reason) already warned about
        self.state, self.x_hat, start = initial_state(self.problem, setup.x0[None], setup.y0[None]), setup.x0, 0
        self.checkpoint = checkpoint_path(s.checkpoint_dir, self.id) if s.checkpoint_dir else None
        if self.checkpoint is not None:
            self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        self.resumed_from = self._resume() if s.resume else None
        if self.resumed_from is not None:
            start = self.resumed_from
        self.rounds = RoundController(self.neighbours, s.neighbour_weights, s.self_weight, self.m, self.iterations,
                                      RoundRules(s.deadline, s.late_policy, s.dead_after, s.startup_timeout,
                                                 s.republish_period), start_round=start)
        self.link = FaultyLink(FaultInjector(s.fault_seed, s.drop, s.delay), self.id)
        self.messages = StateMessages(self.m)
        self.recent: list[bytes] = []  # the last two rounds sent (serialized), for re-sends
        self.done, self.outcome = Future(), None
        self.advancing = False
        self.state_pub = self.create_publisher(Float64MultiArray, state_topic(self.id), STATE_QOS,
                                               event_callbacks=QUIET_PUB)
        self.recorded = recorded_rounds(self.iterations, s.record_every) if s.record_every else set()
        self.record_pub = self.create_publisher(Float64MultiArray, record_topic(self.id), RECORD_QOS,
                                                event_callbacks=QUIET_PUB) if self.recorded else None
        # A recorder that was waited for at startup is also kept up with: no record is ever lost
        self.pace = None
        if self.record_pub is not None and s.recorders > 0:
            self.pace = RecorderPace()
            self.create_subscription(Int64MultiArray, recorder_progress_topic(), self._on_recorder_progress,
                                     LATCHED_QOS, event_callbacks=QUIET_SUB)
        self.waypoint_pub = self.create_publisher(PoseStamped, waypoint_topic(self.id), WAYPOINT_QOS,
                                                  event_callbacks=QUIET_PUB)
        self.projected_pub = self.create_publisher(PoseStamped, projected_topic(self.id), WAYPOINT_QOS,
                                                   event_callbacks=QUIET_PUB)
        self.bus = bus
        if bus is None:
            # raw: the callback gets the serialized message and StateMessages.read decodes it in one copy
            self.subs = [self.create_subscription(Float64MultiArray, state_topic(j), self._receiver(j), STATE_SUB_QOS,
                                                  event_callbacks=QUIET_SUB, raw=True) for j in self.neighbours]
        else:
            bus.register(self)
            self.subs = []  # the bus subscribes once per process to each remote neighbour
        self.listeners = len(self.neighbours) if s.listeners < 0 else s.listeners
        # Physical-robot mode: x_i^k is where the robot must be before round k is stepped, so the
        # algorithm never runs ahead of the measured pose and stays exactly Algorithm 1.
        self.robot_xy: np.ndarray | None = None
        self.held_at: np.ndarray | None = None  # the goal the follower says neighbours hold the robot back from
        if s.wait_for_robot:
            self.create_subscription(Odometry, odom_topic(self.id), self._on_odom, STREAM_SUB_QOS,
                                     event_callbacks=QUIET_SUB)
            self.create_subscription(PoseStamped, held_topic(self.id), self._on_held, LATCHED_QOS,
                                     event_callbacks=QUIET_SUB)
        # Waypoints at the rate a robot can use them, the newest always: a round-by-round stream of
        # poses at 150 rounds/s would cost every agent and follower a publish and a take per round.
        # A robot the rounds wait for needs each waypoint at once, and rounds then go at its pace.
        self.waypoints = WaypointPace(0.0 if s.wait_for_robot else 1.0 / s.waypoint_rate)
        if self.waypoints.period > 0:
            self.waypoint_timer = self.create_timer(self.waypoints.period, self._on_waypoint_timer)
        self.ready_timer = self.create_timer(0.01, self._try_start)
        self.tick_timer = self.create_timer(self.rounds.rules.tick, self._on_tick)  # one timer: see QUIET_SUB
        if self.link.injector.delay > 0:
            self.delay_timer = self.create_timer(0.005, self._release_delayed)
        self.get_logger().info(f"agent {self.id}: {len(self.neighbours)} in-neighbours {self.neighbours}, "
                               f"{self.iterations} iterations, waiting for discovery")

    # -- startup and robot -----------------------------------------------------------------------
    def _try_start(self):
        links = self.subs if self.bus is None else self.bus.remote_links(self.neighbours)
        matched = (self.state_pub.get_subscription_count() >= self.listeners
                   and all(sub.get_publisher_count() > 0 for sub in links)
                   and (self.record_pub is None or self.record_pub.get_subscription_count() >= self.settings.recorders))
        if not self.rounds.may_start(matched):
            return
        if not matched:
            self.get_logger().warning("discovery incomplete at startup_timeout; starting, re-sending until heard")
        self.destroy_timer(self.ready_timer)  # a cancelled timer would stay in every wait set
        self.rounds.start()
        self._publish_round()  # x_i^0 first: with wait_for_robot, round 0 waits for the robot to get there
        self.advance()

    def _on_odom(self, msg: Odometry):
        xy = np.array(pose_of(msg)[:2])
        if np.all(np.isfinite(xy)):
            self.robot_xy = xy
            self.advance()

    def _on_held(self, msg: PoseStamped):
        self.held_at = np.array([msg.pose.position.x, msg.pose.position.y])
        self.advance()

    def robot_at(self, xy: np.ndarray) -> bool:
        """
        Return True when no robot is waited for, or the robot is at xy.

        At xy: its measured pose within tolerance, or its follower's word that the robot's neighbours
        hold it back from exactly this waypoint (bodies with a safety filter, README).
        """
        if not self.settings.wait_for_robot:
            return True
        if self.held_at is not None and np.array_equal(self.held_at, xy):
            return True
        return self.robot_xy is not None and float(np.hypot(*(self.robot_xy - xy))) <= self.settings.arrival_tolerance

    def _on_recorder_progress(self, msg: Int64MultiArray):
        if self.id < len(msg.data):
            self.pace.heard(int(msg.data[self.id]))
            self.advance()

    def recorder_ready(self) -> bool:
        return self.pace is None or self.pace.may_step(publishes=self.rounds.k in self.recorded)

    # -- messages in -----------------------------------------------------------------------------
    def _receiver(self, sender: int):
        def on_message(data: bytes):
            try:
                state = self.messages.read(data, sender)
            except MalformedMessage as exc:
                self._filed(sender, self.rounds.reject(exc.reason))
                self.advance()
                return
            self.deliver(state)
        return on_message

    def deliver(self, msg: NeighbourState):
        """Take a decoded neighbour message from DDS, and do what it allows."""
        self.take(msg)
        self.advance()

    def take(self, msg: NeighbourState, verdict: str | None | bool = True) -> None:
        """
        File a decoded neighbour message without acting on it yet: the caller then calls advance.

        verdict: the message's plausibility (None, or why not) when the caller already checked it
        against equal bounds (an agent group checks each message once for all its listeners); True
        to check it here.
        """
        reason = self.bounds.check(msg) if verdict is True else verdict
        if reason is not None:
            self._implausible(msg, reason)
            return
        fate = self.link.admit(msg)
        if fate == "now":
            self._filed(msg.sender, self.rounds.receive(msg))
        elif fate == "lost":
            self._filed(msg.sender, self.rounds.reject("injected_loss"))

    def _implausible(self, msg: NeighbourState, reason: str):
        # at once for each neighbour and reason: a forger is named the moment it starts
        if (msg.sender, reason) not in self.implausible:
            self.implausible.add((msg.sender, reason))
            self.get_logger().warning(f"agent {self.id}: dropped agent {msg.sender}'s round-{msg.iteration} "
                                      f"message: {reason.replace('_', ' ')} (outside the bounds an honest "
                                      f"agent's values keep; README, Plausible messages)")
        self.rounds.reject(reason)

    def _release_delayed(self):
        due = self.link.due()
        for msg in due:
            self._filed(msg.sender, self.rounds.receive(msg))
        if due:
            self.advance()

    def _filed(self, sender: int, status: str):
        if status not in ("accepted", "duplicate", "stale", "injected_loss"):
            self.get_logger().warning(f"dropped a message from agent {sender}: {status} "
                                      f"(dropped so far: {dict(self.rounds.inbox.dropped)})", throttle_duration_sec=2.0)

    def _on_tick(self):
        self.rounds.tick()
        if self.rounds.started and self.rounds.k < self.iterations:
            if self.rounds.rules.deadline > 0 or (self.pace is not None and self.pace.holding):
                self.advance()
            self._resend()

    # -- rounds ----------------------------------------------------------------------------------
    def advance(self):
        """Do what the round rules answer (step, catch up, finish) until they answer wait."""
        # Not re-entrant: an in-process neighbour may answer while this agent publishes; the loop
        # asks again after every round, so it sees what arrived meanwhile.
        if self.advancing:
            return
        self.advancing = True
        try:
            while True:
                action = self.rounds.decide(robot_ready=self.robot_at(self.state.x[0]),
                                            recorder_ready=self.recorder_ready())
                self._log_events()
                if isinstance(action, Step):
                    if self._step(action):
                        return  # its group steps it with every other agent that is ready, then asks again
                elif isinstance(action, CatchUp):
                    self.get_logger().warning(f"agent {self.id}: behind at round {action.from_round}; catching up "
                                              f"with its neighbours at round {action.to_round}")
                    self._publish_round()
                elif isinstance(action, Finish):
                    self._finish()
                    return
                else:
                    return
        finally:
            self.advancing = False

    def _step(self, step: Step) -> bool:
        """Step round k now, or return True if this agent's group will step it (then it calls stepped())."""
        if self.bus is not None and self.bus.defer(self, step):
            return True
        self.stepped(step, agent_step(self.problem, self.steps, self.state, step.self_weight, step.weights,
                                      *step.stacked(self.m)))
        return False

    def stepped(self, step: Step, result):
        """Take round k's step result (core.StepResult, one row): record, publish round k+1, checkpoint."""
        if step.late:
            self.get_logger().warning(f"agent {self.id}: round {step.k} stepped without agents {step.late} "
                                      f"after the {self.settings.deadline:g} s deadline ({self.settings.late_policy})",
                                      throttle_duration_sec=2.0)
        before = self.state
        self.state, self.x_hat = result.state, result.x_hat[0]
        if step.k in self.recorded:  # round k with the x_hat^k its step produced
            self.record_pub.publish(self.messages.build(step.k, self.id, before, self.x_hat)[0])
            if self.pace is not None:
                self.pace.published(step.k)
        k = step.k + 1
        self.state = reset_tracking(self.problem, self.state, k, self.settings.tracking_reset)
        self._publish_round()
        if self.checkpoint is not None and k % self.settings.checkpoint_every == 0:
            save_checkpoint(self.checkpoint, k, self.state, self.x_hat)

    def _log_events(self):
        for event in self.rounds.drain_events():
            if event.kind == "dead":
                self.get_logger().warning(f"agent {self.id}: agent {event.neighbour} has been silent for "
                                          f"{event.silent:.1f} s ({self.settings.dead_after} deadlines) and is "
                                          f"declared dead at round {event.k}: dropped from the sums until it "
                                          f"is heard again")
            else:
                self.get_logger().info(f"agent {self.id}: agent {event.neighbour} is back at round {event.k}")

    def _resend(self):
        """
        Re-send this agent's last two rounds when a round has stalled.

        Neighbours are at most one round behind or ahead, so whichever message one of them lost is among
        these two.
        """
        if not self.rounds.should_resend():
            return
        for msg in self.recent:
            self.state_pub.publish(msg)
        self.rounds.resent()
        waited = self.rounds.waited()
        if waited > 5.0:
            missing = self.rounds.inbox.missing(self.rounds.k)
            what = f"agents {missing}" if missing else (f"the robot to reach {np.round(self.state.x[0], 3)} "
                                                        f"(odometry: {self.robot_xy})")
            self.get_logger().warning(f"round {self.rounds.k} has waited {waited:.0f} s for {what}",
                                      throttle_duration_sec=5.0)

    # -- messages out ----------------------------------------------------------------------------
    def _publish_round(self):
        """Round k begins: the waypoint x_i^k, the projected point, and the state for the neighbours."""
        if self.waypoints.new():
            self._send_waypoints()
        msg, payload = self.messages.build(self.rounds.k, self.id, self.state, self.x_hat)
        self.state_pub.publish(msg)
        self.recent = (self.recent + [msg])[-2:]
        self.rounds.sent()
        if self.bus is not None:
            self.bus.published(self.id, payload)

    def _on_waypoint_timer(self):
        if self.waypoints.due():
            self._send_waypoints()

    def _send_waypoints(self):
        """Publish the newest waypoint x_i^k and projected point."""
        stamp = self.get_clock().now().to_msg()
        self.waypoint_pub.publish(pose_stamped(stamp, self.settings.frame_id, self.state.x[0]))
        self.projected_pub.publish(pose_stamped(stamp, self.settings.frame_id, self.x_hat))

    # -- the end ---------------------------------------------------------------------------------
    def _resume(self) -> int | None:
        if self.checkpoint is None or not self.checkpoint.is_file():
            self.get_logger().warning(f"agent {self.id}: no checkpoint to resume from; starting from x_i^0, y_i^0")
            return None
        try:
            k, self.state, self.x_hat = load_checkpoint(self.checkpoint, self.problem, self.iterations)
        except ValueError as exc:
            raise ParameterError(f"parameter 'checkpoint_dir': {exc}") from None
        self.get_logger().info(f"agent {self.id}: resumed from round {k} ({self.checkpoint})")
        return k

    def _finish(self):
        if self.waypoints.flush():  # the last one, whatever the rate
            self._send_waypoints()
        if self.record_pub is not None:  # round K's state is the run's final state
            self.record_pub.publish(self.messages.build(self.rounds.k, self.id, self.state, self.x_hat)[0])
        # Stay until the last messages are acknowledged (polled: agents in one process share this
        # executor thread, so a blocking wait would stall the others).
        self.tick_timer.cancel()
        self.finish_deadline = time.monotonic() + (30.0 if self.settings.wait_for_robot else 5.0)
        self.ack_timer = self.create_timer(0.02, self._await_acks)

    def _await_acks(self):
        # neighbours may still need this agent's last rounds, and the recorder its last record
        pubs = [self.state_pub] + ([self.record_pub] if self.record_pub is not None else [])
        acked = all(pub.wait_for_all_acked(Duration(seconds=0)) for pub in pubs)
        if not (acked and self.robot_at(self.state.x[0])) and time.monotonic() < self.finish_deadline:
            return
        if not self.robot_at(self.state.x[0]):
            self.get_logger().warning(f"agent {self.id}: the robot did not reach its last waypoint in time")
        self.ack_timer.cancel()
        outcome = self.report()
        self.get_logger().info(f"agent {self.id}: finished {outcome.rounds} iterations in {outcome.seconds:.1f} s "
                               f"({outcome.rounds_per_second:.1f} rounds/s after round 1); {outcome.late_rounds} "
                               f"rounds stepped late; dropped messages: {outcome.dropped or 'none'}")
        self.done.set_result(True)

    def report(self) -> AgentOutcome:
        """Report this agent's outcome so far, written to outcome_dir when that is set."""
        self.outcome = self.rounds.outcome(self.id, self.resumed_from)
        if self.settings.outcome_dir:
            Path(self.settings.outcome_dir).mkdir(parents=True, exist_ok=True)
            self.outcome.write(self.settings.outcome_dir)
        return self.outcome

    def destroy_node(self):
        if self.outcome is None:  # stopped before it finished (Ctrl-C): still say how far it got
            self.report()
            # and keep the round it reached: a restart with resume then loses no round (a power
            # loss still goes back to the last periodic checkpoint)
            if self.checkpoint is not None and self.rounds.started:
                save_checkpoint(self.checkpoint, self.rounds.k, self.state, self.x_hat)
        super().destroy_node()


def agents_done(nodes) -> list[Future]:
    return [node.done for node in nodes if isinstance(node, AgentNode)]


def main() -> int:
    """Run one agent: `ros2 run bildmacro_ros agent --ros-args -p agent_id:=3 ...`."""
    import os
    if os.environ.get("TMP_PROFILE"):
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
        try:
            return run_nodes(lambda: [AgentNode()], agents_done)
        finally:
            prof.disable()
            prof.dump_stats(os.environ["TMP_PROFILE"] + f".{os.getpid()}")
    return run_nodes(lambda: [AgentNode()], agents_done)


if __name__ == "__main__":
    sys.exit(main())
