# SPDX-License-Identifier: Apache-2.0
"""Poses from the sources labs have (protocol/pose_source.py), turned into the swarm's frame."""

import math

import numpy as np
import pytest

from bildmacro_ros.protocol.parameters import ParameterError
from bildmacro_ros.protocol.pose_source import PoseSource


def test_wheel_odometry_is_composed_with_the_pose_the_robot_was_placed_at():
    source = PoseSource.of("wheel_odometry", "robot_{i}/odom", 3, start=(0.5, 0.2, math.pi / 2))
    assert source.frame == "robot_3/odom"
    # 1 m straight ahead of a robot placed facing +y is 1 m up in the swarm's frame
    assert np.allclose(source.to_swarm(1.0, 0.0, 0.0), (0.5, 1.2, math.pi / 2))
    assert np.allclose(source.to_swarm(0.0, 0.0, math.pi), (0.5, 0.2, -math.pi / 2))


def test_a_pose_goes_through_the_source_and_back_unchanged():
    rng = np.random.default_rng(4)
    for start in rng.uniform(-3, 3, (20, 3)):
        source = PoseSource.of("wheel_odometry", "robot_{i}/odom", 0, start=tuple(start))
        pose = tuple(rng.uniform(-1, 1, 2)) + (float(rng.uniform(-3, 3)),)
        back = source.to_swarm(*source.from_swarm(*pose))
        assert np.allclose(back[:2], pose[:2]) and math.isclose(
            math.cos(back[2] - pose[2]), 1.0, abs_tol=1e-12)


def test_shared_frame_sources_pass_poses_through_and_every_source_checks_its_frame():
    for kind, frame in (("odometry", "map"), ("mocap", "world")):
        source = PoseSource.of(kind, frame, 1, start=(9.0, 9.0, 1.0))  # a start is not used
        assert source.to_swarm(0.1, 0.2, 0.3) == (0.1, 0.2, 0.3)
        assert source.refuses(frame) is None and source.refuses("robot_1/odom") == "wrong_frame"


def test_wheel_odometry_without_a_start_pose_is_refused_in_one_line():
    with pytest.raises(ParameterError, match="wheel_odometry needs the pose the robot was placed"):
        PoseSource.of("wheel_odometry", "robot_{i}/odom", 2)
