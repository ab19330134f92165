# SPDX-License-Identifier: Apache-2.0
"""The arena: C in the lab's frame, and everything that turns x_i into metres or metres back."""

import math

import numpy as np
import pytest

from bildmacro_ros.core.arena import Arena, misplaced
from bildmacro_ros.core.config import ConfigError, validate
from bildmacro_ros.core.scenario import build_scenario, closest_pair
from bildmacro_ros.launch_plan import plan_swarm
from bildmacro_ros.protocol.arrival import Arrival
from bildmacro_ros.protocol.robot_track import RobotTrack, save_robot_track
from bildmacro_ros.scene import arena_raster

LAB = Arena((3.0, 1.5), (4.0, 3.0), math.radians(30))  # a 4 x 3 m arena, its centre off, turned


def test_c_goes_to_the_arena_and_back():
    c = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    assert np.allclose(LAB.to_c(LAB.to_lab(c)), c, atol=1e-12)
    corners = LAB.corners()
    sides = np.hypot(*np.diff(np.vstack([corners, corners[:1]]), axis=0).T)
    assert np.allclose(sides, [4, 3, 4, 3])  # width along C's x, height along its y
    assert np.allclose(corners.mean(axis=0), LAB.centre)
    # C's x axis points 30 degrees from the lab's
    assert np.allclose(LAB.to_lab([1, 0]) - LAB.centre, 2 * np.array([math.cos(math.pi / 6),
                                                                      math.sin(math.pi / 6)]))
    assert LAB.contains(LAB.to_lab([0.99, -0.99])) and not LAB.contains(LAB.to_lab([1.01, 0]))
    assert Arena().is_identity and np.array_equal(Arena().to_lab(c), c)
    # one point alone maps to the very bits it maps to among others: held goals compare exactly
    assert all(np.array_equal(LAB.to_lab(point), row) for point, row in zip(c, LAB.to_lab(c)))


def test_the_config_takes_an_arena_and_names_what_is_wrong():
    cfg = validate({"arena": {"centre": [3, 1.5], "size": [4, 3], "rotation": 0.5}})
    assert Arena.from_config(cfg) == Arena((3.0, 1.5), (4.0, 3.0), 0.5)
    assert Arena.from_config(validate({})).is_identity
    for arena, key in (({"size": [4, 0]}, "arena.size[1]"), ({"size": 4}, "arena.size"),
                       ({"centre": [0, "x"]}, "arena.centre[1]"),
                       ({"rotation": 7}, "arena.rotation"), ({"spin": 1}, "arena.spin")):
        with pytest.raises(ConfigError) as err:
            validate({"arena": arena})
        assert err.value.key == key, err.value


def test_robots_start_at_x0_in_the_arena_and_bodies_keep_their_distance_in_metres():
    cfg = validate({"agents": 12, "seed": 4, "robots": {"radius": 0.08},
                    "arena": {"centre": [3, 1.5], "size": [1.2, 0.9], "rotation": 0.5}})
    scenario = build_scenario(cfg)
    arena = Arena.from_config(cfg)
    # 0.16 m apart in a small arena is 0.36 apart along C's short side: C's own 0.16 would not do
    assert closest_pair(arena.to_lab(scenario.x0))[0] >= 0.16
    poses = np.array(arena.start_poses(scenario.x0)).reshape(-1, 3)
    assert np.allclose(poses[:, :2], arena.to_lab(scenario.x0))
    follower = next(s for s in plan_swarm(cfg).robots if s.executable == "follower")
    assert follower.parameters["arena_size"] == [1.2, 0.9]


def test_arrival_measures_metres_in_the_arena():
    x = np.array([0.5, -0.25])
    arrival = Arrival(True, 0.02, LAB)
    arrival.pose(LAB.to_lab(x) + [0.015, 0])
    assert arrival.at(x)
    arrival.pose(LAB.to_lab(x) + [0.025, 0])  # 0.025 m off, though 0.0125 of C's width
    assert not arrival.at(x)
    arrival.held(LAB.to_lab(x))  # the follower's goal is the waypoint it was sent
    assert arrival.at(x)


def test_the_robots_kl_is_that_of_their_positions_turned_back_into_c(tmp_path):
    cfg = validate({"agents": 10, "seed": 1, "basis": {"order": 3}, "grid": {"step": 0.1}})
    scenario = build_scenario(cfg)
    rng = np.random.default_rng(2)
    c_poses = np.concatenate([rng.uniform(-0.9, 0.9, (3, 10, 2)), np.zeros((3, 10, 1))], axis=2)
    lab_poses = c_poses.copy()
    lab_poses[..., :2] = LAB.to_lab(c_poses[..., :2])
    x = c_poses[-1, :, :2]
    plain = save_robot_track(tmp_path / "c.npz", scenario.problem,
                             {"time": np.arange(3.0), "pose": c_poses}, x)
    track = RobotTrack(10, LAB)
    in_lab = save_robot_track(tmp_path / "lab.npz", scenario.problem,
                              {**track.arrays(), "time": np.arange(3.0), "pose": lab_poses}, x)
    assert np.allclose(in_lab["kl"], plain["kl"]) and np.isfinite(plain["kl"]).all()
    assert np.allclose(in_lab["x"], LAB.to_lab(x)) and np.allclose(in_lab["x_c"], x)
    assert np.allclose(in_lab["error"], 0, atol=1e-12)
    track.latest[:] = lab_poses[-1]
    assert np.allclose(track.error(x), 0, atol=1e-12)


def test_an_occupancy_grid_of_the_arena_takes_the_nearest_grid_point():
    points = np.linspace(-1, 1, 21)
    density = np.add.outer(points, 10 * points)  # distinct along both axes
    same, cell = arena_raster(density, points, Arena())
    assert np.array_equal(same, density) and cell == pytest.approx(0.1)
    image, cell = arena_raster(density, points, LAB)
    assert cell == pytest.approx(0.15) and image.shape == (28, 21)  # 4 m and 3 m of 0.15 m cells
    for a, b in ((0, 0), (27, 20), (13, 10), (5, 17)):
        centre_c = (np.array([a, b]) - (np.array(image.shape) - 1) / 2) * cell / (np.array(
            LAB.size) / 2)
        nearest = np.abs(points[:, None] - centre_c).argmin(axis=0)
        assert image[a, b] == density[nearest[0], nearest[1]]


def test_hands_place_robots_off_by_the_placement_error_at_any_heading():
    poses = Arena().start_poses(np.random.default_rng(0).uniform(-1, 1, (20, 2)))
    assert misplaced(poses, 0.0, 3) is poses
    moved = np.array(misplaced(poses, 0.3, 3)).reshape(-1, 3)
    start = np.array(poses).reshape(-1, 3)
    assert np.allclose(np.hypot(*(moved[:, :2] - start[:, :2]).T), 0.3)
    assert np.ptp(moved[:, 2]) > 3 and not np.allclose(moved[:, 2], start[:, 2])
    assert misplaced(poses, 0.3, 3) == misplaced(poses, 0.3, 3)  # seeded
    cfg = validate({"agents": 6, "robots": {"placement_error": 0.3}})
    by_name = {s.executable: s for s in plan_swarm(cfg).robots}
    placed = np.array(by_name["swarm_simulator"].parameters["initial_poses"]).reshape(-1, 3)
    planned = np.array(by_name["follower"].parameters["initial_poses"]).reshape(-1, 3)
    assert np.allclose(np.hypot(*(placed[:, :2] - planned[:, :2]).T), 0.3)
