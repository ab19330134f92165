# SPDX-License-Identifier: Apache-2.0
"""Robot motion: the go-to-goal controller, unicycle kinematics, turtlesim's frame."""

import numpy as np
import pytest

from bildmacro_ros.core.motion import (body_frame_error, Gains, go_to_goal, Limits, TurtlesimFrame,
                                       unicycle_step, wrap_angle)

LIMITS, GAINS = Limits(max_speed=0.5, max_turn_rate=3.0), Gains(tolerance=0.01)


def drive(pose, goal, seconds=20.0, dt=0.02):
    """Close the loop: controller + exact unicycle, as the follower and the simulator run it."""
    pose = np.array(pose, float)
    path = [pose]
    for _ in range(int(seconds / dt)):
        v, w, distance = go_to_goal(pose, goal, LIMITS, GAINS)
        assert abs(v) <= LIMITS.max_speed + 1e-12 and abs(w) <= LIMITS.max_turn_rate + 1e-12
        assert v >= 0  # never drives away from the goal
        if distance <= GAINS.tolerance:
            return pose, np.array(path)
        pose = unicycle_step(pose, v, w, dt)
        path.append(pose)
    raise AssertionError(f"did not arrive: at {pose}, goal {goal}")


GOAL = np.array([0.3, -0.2])


@pytest.mark.parametrize("case,pose", [
    ("behind", [0.8, -0.2, 0.0]),            # goal straight behind: turn in place, then drive
    ("beside", [0.3, 0.3, 0.0]),              # goal 90 degrees to the right
    ("beside, other side", [0.3, -0.7, 0.0]),  # goal 90 degrees to the left
    ("facing away", [0.3, -0.5, -np.pi / 2]),  # goal ahead in C, but the robot looks away
    ("ahead", [-0.6, -0.2, 0.0]),
    ("on the goal, any heading", [0.3, -0.2, 2.0]),
])
def test_controller_converges_from_every_bearing(case, pose):
    final, path = drive(pose, GOAL)
    assert np.hypot(*(final[:2] - GOAL)) <= GAINS.tolerance
    # it heads for the goal: the path never strays far beyond the start's distance
    start = np.hypot(*(np.array(pose[:2]) - GOAL))
    assert np.hypot(*(path[:, :2] - GOAL).T).max() <= start + 0.05


def test_goal_behind_turns_in_place_towards_the_goal():
    v, w, _ = go_to_goal([0.0, 0.0, 0.0], [-1.0, 0.1], LIMITS, GAINS)
    assert v == 0 and w == LIMITS.max_turn_rate  # the goal is behind and slightly left: turn left
    v, w, _ = go_to_goal([0.0, 0.0, 0.0], [-1.0, -0.1], LIMITS, GAINS)
    assert v == 0 and w == -LIMITS.max_turn_rate


def test_body_frame_error_rotates_with_the_robot():
    # a robot at (1, 1) facing +y sees a goal at (1, 2) straight ahead, and (0, 1) on its left
    assert np.allclose(body_frame_error([1, 1, np.pi / 2], [1, 2]), (1, 0), atol=1e-12)
    assert np.allclose(body_frame_error([1, 1, np.pi / 2], [0, 1]), (0, 1), atol=1e-12)
    v, w, d = go_to_goal([1, 1, np.pi / 2], [1, 1.2], LIMITS, GAINS)
    assert w == pytest.approx(0, abs=1e-12) and v == pytest.approx(0.3) and d == pytest.approx(0.2)


def test_many_robots_at_once_match_one_at_a_time(rng):
    poses = np.column_stack([rng.uniform(-1, 1, (20, 2)), rng.uniform(-np.pi, np.pi, 20)])
    goals = rng.uniform(-1, 1, (20, 2))
    v, w, d = go_to_goal(poses, goals, LIMITS, GAINS)
    for i in range(20):
        assert np.allclose((v[i], w[i], d[i]), go_to_goal(poses[i], goals[i], LIMITS, GAINS))


@pytest.mark.parametrize("w", [0.0, 1e-12, 0.7, -2.5])
def test_unicycle_step_is_exact(w):
    """One exact step equals many small Euler steps (arcs and straight lines alike)."""
    pose, v, dt = np.array([0.1, -0.3, 0.4]), 0.4, 0.5
    fine = pose.copy()
    for _ in range(20000):
        fine = fine + dt / 20000 * np.array([v * np.cos(fine[2]), v * np.sin(fine[2]), w])
    exact = unicycle_step(pose, v, w, dt)
    assert np.allclose(exact[:2], fine[:2], atol=1e-5)
    assert wrap_angle(exact[2] - fine[2]) == pytest.approx(0, abs=1e-9)


def test_limits_and_gains_are_checked():
    with pytest.raises(ValueError, match="max_speed"):
        Limits(max_speed=0)
    with pytest.raises(ValueError, match="gains"):
        Gains(tolerance=-1)
    assert Limits(1, 2).clip(5, -5) == (1, -2)


def test_turtlesim_frame_maps_c_into_the_window_with_a_margin():
    frame = TurtlesimFrame(margin=0.1)
    corners = frame.to_turtlesim([[-1, -1], [1, 1], [0, 0]])
    assert np.allclose(corners[0], 0.1 * frame.size) and np.allclose(corners[1], 0.9 * frame.size)
    assert np.allclose(corners[2], frame.size / 2)
    xy = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    assert np.allclose(frame.from_turtlesim(frame.to_turtlesim(xy)), xy)
    # a velocity v in C moves the turtle by v * scale
    one_metre = frame.to_turtlesim([1, 0])[0] - frame.to_turtlesim([0, 0])[0]
    assert frame.scale == pytest.approx(one_metre)
    with pytest.raises(ValueError):
        TurtlesimFrame(margin=0.5)
    # without a margin, C's far corner is the window's: (500 - 1) px at 45 px per metre, where
    # turtlesim clamps a turtle (turtle_frame.cpp:149-150, turtle.cpp:284-300)
    assert np.allclose(TurtlesimFrame(margin=0.0).to_turtlesim([1, 1]), 499 / 45)
