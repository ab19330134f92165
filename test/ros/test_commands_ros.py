# SPDX-License-Identifier: Apache-2.0
"""
Commands as the drivers take them, over real DDS: TwistStamped, and robots that never stop.

gz-sim's DiffDrive and TurtleBot3 keep driving at their last command (docs/robots.md): the
embedded simulator with command_timeout 0 does the same, and a scripted robot stands in for one
whose pose the follower stops hearing.
"""

import signal
import time

from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry
import numpy as np
import pytest

from bildmacro_ros.launch_plan import NodeSpec
from bildmacro_ros.ros.messages import command_of, pose_of, set_heading
from bildmacro_ros.ros.topics import STREAM_PUB_QOS, STREAM_SUB_QOS, WAYPOINT_QOS
from robot_nodes import pose_msg, start, stop

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.usefixtures("no_leftover_processes")]

STAMPED = {"command_type": "twist_stamped"}


def follower(tmp_path, **parameters):
    return start(NodeSpec("waypoint_follower", "follower",
                          {"robot_ids": [0], "tolerance": 0.01, **parameters}), tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stamped_robot_that_never_stops_by_itself_is_stopped_when_the_follower_ends(tmp_path,
                                                                                      probe, sig):
    """A TwistStamped driver without command timeout: it drives, and stops on Ctrl-C or SIGTERM."""
    sim = start(NodeSpec("swarm_simulator", "swarm_simulator", {
        "robot_ids": [0], "initial_poses": [-0.8, 0.0, 0.0], "command_timeout": 0.0, **STAMPED}),
        tmp_path)
    drive = follower(tmp_path, **STAMPED)
    procs = [sim, drive]
    try:
        odom = []
        probe.node.create_subscription(Odometry, "robot_0/odom", lambda m: odom.append(
            (time.monotonic(), pose_of(m), m.twist.twist.linear.x)), STREAM_SUB_QOS)
        goal = probe.node.create_publisher(PoseStamped, "agent_0/waypoint", WAYPOINT_QOS)
        probe.wait(lambda: odom and goal.get_subscription_count(), 30,
                   "the simulator and the follower")
        goal.publish(pose_msg(0.9, 0.0))  # 1.7 m ahead: 3.4 s at 0.5 m/s
        probe.wait(lambda: odom[-1][2] > 0.1, 10, "the robot to drive on stamped commands")
        drive.send_signal(sig)  # mid-drive
        drive.wait(timeout=30)
        exited = time.monotonic()
        time.sleep(1.0)
        # a simulator step (50 ms) after the follower is gone
        after = [(t, p, v) for t, p, v in odom if t > exited + 0.1]
    finally:
        stop(procs)
    assert drive.returncode == 0
    # no timeout of its own: only the follower's last word, a zero command, stopped it
    assert after and all(v == 0.0 for _, _, v in after), after[:3]
    assert np.allclose(after[0][1], after[-1][1]), (after[0], after[-1])
    assert after[-1][1][0] < 0.5  # far from its goal: it did not just arrive


def test_a_robot_whose_pose_goes_stale_gets_zero_commands(tmp_path, probe):
    """A scripted robot publishes its pose, then falls silent: its commands turn to zero."""
    drive = follower(tmp_path, **STAMPED, odom_timeout=0.5)
    try:
        commands = []
        probe.node.create_subscription(TwistStamped, "robot_0/cmd_vel", lambda m: commands.append(
            (time.monotonic(), command_of(m), m.header.frame_id)), STREAM_SUB_QOS)
        odom = probe.node.create_publisher(Odometry, "robot_0/odom", STREAM_PUB_QOS)
        goal = probe.node.create_publisher(PoseStamped, "agent_0/waypoint", WAYPOINT_QOS)
        pose = Odometry()
        pose.header.frame_id = "map"
        set_heading(pose.pose.pose.orientation, 0.0)
        probe.wait(lambda: goal.get_subscription_count() and odom.get_subscription_count(), 30,
                   "the follower")
        goal.publish(pose_msg(0.5, 0.0))  # 0.5 m ahead of the pose below
        until = time.monotonic() + 10
        while not (commands and commands[-1][1][0] > 0.1):
            assert time.monotonic() < until, "no drive command while the pose was fresh"
            odom.publish(pose)
            time.sleep(0.05)
        silent_from = time.monotonic()  # the pose stops here: a bridge hiccup, a driver crash
        time.sleep(2.0)
    finally:
        stop([drive])
    late = [(t - silent_from, v, w) for t, (v, w, _), _ in commands if t > silent_from]
    stale = [c for c in late if c[0] > 0.5 + 0.3]  # odom_timeout, and some slack on a busy box
    assert stale and all(v == 0.0 and w == 0.0 for _, v, w in stale), late
    assert commands[0][2] == "robot_0/base_link"  # stamped in the robot's base frame
    assert commands[-1][1][:2] == (0.0, 0.0)  # and the last word at Ctrl-C


def test_a_command_subscriber_of_the_other_type_is_named_in_one_line(tmp_path, probe):
    """A Jazzy driver takes TwistStamped; a follower left at Twist says what to set."""
    drive = follower(tmp_path)  # command_type: twist
    try:
        probe.node.create_subscription(TwistStamped, "robot_0/cmd_vel", lambda m: None,
                                       STREAM_SUB_QOS)
        log = tmp_path / "waypoint_follower.log"
        until = time.monotonic() + 20
        while "robots.command_type: twist_stamped" not in log.read_text():
            assert time.monotonic() < until, log.read_text()
            time.sleep(0.1)
    finally:
        stop([drive])
    text = log.read_text()
    assert text.count("has a subscriber of type geometry_msgs/msg/TwistStamped") == 1, text


def test_a_stamped_command_older_than_the_timeout_is_ignored(tmp_path, probe):
    """As ros2_control's diff_drive_controller: the stamp, not the arrival, dates a command."""
    sim = start(NodeSpec("swarm_simulator", "swarm_simulator", {
        "robot_ids": [0], "initial_poses": [0.0, 0.0, 0.0], "command_timeout": 0.5, **STAMPED}),
        tmp_path)
    try:
        odom = []
        probe.node.create_subscription(Odometry, "robot_0/odom", lambda m: odom.append(
            m.twist.twist.linear.x), STREAM_SUB_QOS)
        command = probe.node.create_publisher(TwistStamped, "robot_0/cmd_vel", STREAM_PUB_QOS)
        probe.wait(lambda: odom and command.get_subscription_count(), 30, "the simulator")
        for age, moves in ((2.0, False), (0.0, True)):
            del odom[:]
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                msg = TwistStamped()
                now = probe.node.get_clock().now().nanoseconds * 1e-9 - age
                msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int(now % 1 * 1e9)
                msg.twist.linear.x = 0.2
                command.publish(msg)
                time.sleep(0.05)
            assert (max(odom) > 0.1) == moves, (age, odom)
    finally:
        stop([sim])
    assert "ignored a message on robot_0/cmd_vel: stale_stamp" in \
        (tmp_path / "swarm_simulator.log").read_text()


def test_a_pose_in_another_frame_is_refused_and_never_driven_on(tmp_path, probe):
    """A driver's own odometry where the swarm's frame is expected: one line, and zero commands."""
    drive = follower(tmp_path, **STAMPED)  # pose_source odometry: frame map
    try:
        commands = []
        probe.node.create_subscription(TwistStamped, "robot_0/cmd_vel", lambda m: commands.append(
            command_of(m)[:2]), STREAM_SUB_QOS)
        odom = probe.node.create_publisher(Odometry, "robot_0/odom", STREAM_PUB_QOS)
        goal = probe.node.create_publisher(PoseStamped, "agent_0/waypoint", WAYPOINT_QOS)
        pose = Odometry()
        pose.header.frame_id = "robot_0/odom"  # as TurtleBot3's driver publishes it
        set_heading(pose.pose.pose.orientation, 0.0)
        probe.wait(lambda: goal.get_subscription_count() and odom.get_subscription_count(), 30,
                   "the follower")
        goal.publish(pose_msg(0.5, 0.0))
        for _ in range(40):
            odom.publish(pose)
            time.sleep(0.05)
    finally:
        stop([drive])
    assert commands and all(c == (0.0, 0.0) for c in commands), commands
    text = (tmp_path / "waypoint_follower.log").read_text()
    assert text.count("ignored a message on robot_0/odom: wrong_frame 'robot_0/odom', not "
                      "'map'") == 1, text


def test_wheel_odometry_without_the_pose_each_robot_was_placed_at_is_refused(tmp_path):
    drive = follower(tmp_path, pose_source="wheel_odometry", pose_frame="robot_{i}/odom")
    assert drive.wait(timeout=60) == 2
    text = (tmp_path / "waypoint_follower.log").read_text()
    assert "wheel_odometry needs the pose the robot was placed at" in text, text
