# SPDX-License-Identifier: Apache-2.0
"""
The barrier-certificate safety filter (core/safety.py).

An exact QP, and robots that never touch.
"""

import numpy as np
import pytest
from scipy.optimize import minimize

from bildmacro_ros.core.motion import Gains, go_to_goal, Limits, unicycle_step
from bildmacro_ros.core.safety import (BodyWatch, closest_feasible, HeldBack, point_to_unicycle,
                                       projected_point, safe_command, SafetySettings,
                                       unicycle_to_point)

LIMITS, GAINS = Limits(), Gains()
SAFE = SafetySettings(radius=0.05)


def test_the_two_variable_qp_is_solved_exactly(rng):
    """Against scipy's SLSQP on random problems whose nominal breaks some constraints."""
    for _ in range(60):
        k = rng.integers(1, 7)
        normals = rng.standard_normal((k, 2))
        bounds = rng.uniform(0.0, 1.0, k)  # 0 is always feasible, as with h >= 0
        nominal = rng.standard_normal(2) * 3
        ours = closest_feasible(nominal, normals, bounds)
        ref = minimize(lambda u: np.sum((u - nominal) ** 2), np.zeros(2),
                       jac=lambda u: 2 * (u - nominal),
                       constraints=[{"type": "ineq", "fun": lambda u: bounds - normals @ u,
                                     "jac": lambda u: -normals}], method="SLSQP",
                       options={"ftol": 1e-14})
        assert ours is not None and np.all(normals @ ours <= bounds + 1e-9)
        assert np.sum((ours - nominal) ** 2) <= ref.fun + 1e-7, (ours, ref.x)


def test_an_empty_feasible_set_is_reported():
    assert closest_feasible([1.0, 0.0], [[1.0, 0.0], [-1.0, 0.0]], [-1.0, -1.0]) is None


def test_the_projected_point_map_is_exact_both_ways(rng):
    pose = np.array([0.1, -0.2, 0.7])
    v, w = 0.3, -1.2
    u = unicycle_to_point(pose, v, w, 0.03)
    assert np.allclose(point_to_unicycle(pose, u, 0.03), (v, w))
    dt = 1e-6  # and u is the point's velocity
    moved = projected_point(unicycle_step(pose, v, w, dt), 0.03)
    assert np.allclose((moved - projected_point(pose, 0.03)) / dt, u, atol=1e-5)


def drive(poses: np.ndarray, goals: np.ndarray, settings: SafetySettings | None,
          seconds: float = 30.0, rate: float = 20.0):
    """
    Drive unicycles to their goals at `rate` Hz, each filtered against all the others.

    Return the track.
    """
    dt, track = 1.0 / rate, [poses.copy()]
    for _ in range(int(seconds * rate)):
        v, w, _ = go_to_goal(poses, goals, LIMITS, GAINS)
        if settings is not None:
            for i in range(len(poses)):
                v[i], w[i], _ = safe_command(poses[i], v[i], w[i], np.delete(poses, i, axis=0),
                                             settings, LIMITS.max_speed, LIMITS.max_turn_rate)
        v, w = LIMITS.clip(v, w)
        poses = unicycle_step(poses, v, w, dt)
        track.append(poses.copy())
    return np.array(track)


def closest_pair(track: np.ndarray) -> float:
    """Return the smallest distance between two robots' centres over a whole track."""
    gaps = track[:, :, None, :2] - track[:, None, :, :2]
    distance = np.hypot(gaps[..., 0], gaps[..., 1])
    n = track.shape[1]
    distance[:, np.arange(n), np.arange(n)] = np.inf
    return float(distance.min())


@pytest.mark.parametrize("name,poses,goals", [
    ("head-on", [[-0.5, 0.0, 0.0], [0.5, 0.01, np.pi]], [[0.5, 0.0], [-0.5, 0.0]]),
    ("crossing", [[-0.5, 0.0, 0.0], [0.0, -0.55, np.pi / 2]], [[0.5, 0.0], [0.0, 0.5]]),
])
def test_two_robots_driven_into_each_other_keep_their_bodies_apart(name, poses, goals):
    poses, goals = np.array(poses), np.array(goals)
    assert closest_pair(drive(poses, goals, None)) < 2 * SAFE.radius  # unfiltered, they collide
    track = drive(poses, goals, SAFE)
    assert closest_pair(track) >= 2 * SAFE.radius, name
    # and still get there
    assert np.all(np.hypot(*(track[-1, :, :2] - goals).T) <= 0.05), track[-1]


def test_a_swarm_converging_on_two_points_never_touches(rng):
    n = 12
    start = np.column_stack([np.linspace(-0.9, 0.9, n), rng.uniform(-0.9, 0.9, n),
                             rng.uniform(-np.pi, np.pi, n)])
    # every robot wants the same two spots
    goals = np.repeat([[-0.5, -0.5], [0.5, 0.4]], n // 2, axis=0)
    track = drive(start, goals, SAFE, seconds=20.0)
    assert closest_pair(track) >= 2 * SAFE.radius
    assert closest_pair(drive(start, goals, None, seconds=20.0)) < 0.01  # unfiltered, they pile up


def test_no_radius_or_no_neighbour_leaves_the_command_alone():
    assert safe_command([0, 0, 0], 0.3, 0.1, [[0.05, 0, 0]], SafetySettings(radius=0.0),
                        0.5) == (0.3, 0.1, False)
    # dodging, within limits
    v, w, changed = safe_command([0, 0, 0], 0.5, 0.0, [[0.2, 0.01, 0]], SAFE, 0.5, 3.0)
    assert changed and abs(v) <= 0.5 and abs(w) <= 3.0
    assert safe_command([0, 0, 0], 0.3, 0.1, np.empty((0, 3)), SAFE, 0.5) == (0.3, 0.1, False)
    far = SafetySettings(radius=0.05, sensing_range=0.5)
    assert safe_command([0, 0, 0], 0.3, 0.1, [[0.9, 0, 0]], far, 0.5) == (0.3, 0.1, False)


def test_a_robot_counts_as_held_back_once_the_filter_has_kept_it_from_progress_for_a_second():
    hold = HeldBack(after=1.0, still=0.01)
    assert not hold.update(0.0, True, 0.30)
    assert not hold.update(0.9, False, 0.295)  # no progress, the filter acting now and then
    assert hold.update(1.0, False, 0.295)
    # the next goal, a few cm on: still held back
    assert hold.update(1.1, True, 0.29, new_goal=True)
    # it came 2 cm closer: progress, the clock starts again
    assert not hold.update(1.2, True, 0.27)
    assert not hold.update(2.1, True, 0.27) and hold.update(2.2, True, 0.27)
    hold.clear()  # it reached its goal
    assert not hold.update(2.3, True, 0.05, new_goal=True)


def test_a_robot_turning_in_place_is_not_held_back():
    hold = HeldBack(after=1.0, still=0.01)
    # no progress for 3 s, but no filter
    assert not any(hold.update(t / 20, False, 0.4) for t in range(60))


def test_contacts_are_counted_once_per_pair_and_the_closest_distance_kept():
    watch = BodyWatch(3, radius=0.05)
    assert watch.step([[0, 0], [0.2, 0], [0.5, 0]]) == []
    assert [(a, b) for a, b, _ in watch.step([[0, 0], [0.08, 0], [0.5, 0]])] == [(0, 1)]
    assert watch.step([[0, 0], [0.07, 0], [0.5, 0]]) == []  # still touching: the same contact
    assert watch.step([[0, 0], [0.2, 0], [0.5, 0]]) == [] and watch.contacts == 1
    watch.step([[0, 0], [0.09, 0], [0.12, 0]])  # 0 and 1 again, and 1 and 2
    assert watch.contacts == 3 and watch.closest == pytest.approx(0.03) and watch.steps == 5


def test_robots_with_bodies_start_two_radii_apart_and_keep_the_rest_of_the_seeded_start():
    from bildmacro_ros.core.config import load_config
    from bildmacro_ros.core.scenario import build_scenario, closest_pair

    cfg, base = load_config("demo", {"agents": 30})
    points = build_scenario(cfg, base)
    bodies = build_scenario(dict(cfg, robots=dict(cfg["robots"], radius=0.05)), base)
    assert closest_pair(points.x0)[0] < 0.1 <= closest_pair(bodies.x0)[0]
    kept = np.all(points.x0 == bodies.x0, axis=1)
    assert kept.sum() >= 20 and np.array_equal(points.y0,
                                               bodies.y0) and np.array_equal(points.weights,
                                                                             bodies.weights)
    with pytest.raises(ValueError, match="start 0.0"):
        build_scenario(dict(cfg, robots=dict(cfg["robots"], radius=0.05)), base,
                       init=(points.x0, points.y0))
