# SPDX-License-Identifier: Apache-2.0
"""The robots users have: what each family's driver takes and gives, as config defaults."""

from __future__ import annotations

from typing import Any

# The robots users have, as their drivers are on Jazzy (docs/robots.md cites each value's source):
# what a family sets, unless the config sets it. custom and embedded: the package's defaults.
FAMILIES: dict[str, dict[str, Any]] = {
    "embedded": {},
    "turtlebot3": {"command_type": "twist_stamped", "command_timeout": 0.0, "max_speed": 0.21,
                   "max_turn_rate": 2.6, "pose_source": "wheel_odometry", "radius": 0.1},
    "turtlebot4": {"command_type": "twist_stamped", "command_timeout": 0.5, "max_speed": 0.3,
                   "max_turn_rate": 1.9, "pose_source": "wheel_odometry", "pose_frame": "odom",
                   "radius": 0.175},
    "ros2_control": {"command_type": "twist_stamped", "command_topic":
                     "diff_drive_controller/cmd_vel", "command_timeout": 0.5,
                     "pose_source": "wheel_odometry",
                     "pose_topic": "robot_{i}/diff_drive_controller/odom"},
    "gazebo": {"command_timeout": 0.0},
    "turtlesim": {"command_timeout": 1.0},
    "custom": {},
}
# what a robot's driver takes on its command topic: Jazzy's TurtleBot3, Create 3 and
# diff_drive_controller take TwistStamped (docs/robots.md, with their sources)
COMMANDS = ("twist", "twist_stamped")
# where a robot's pose comes from, and the topic and frame each source has by default:
# odometry already in the swarm's frame (the embedded simulator, turtlesim, Gazebo's
# OdometryPublisher); a driver's wheel odometry, from zero where the robot was switched on
# (TurtleBot3 src/odometry.cpp:75-80, diff_drive_controller.cpp:498-532), plus the pose it was
# placed at; or motion capture (vrpn_mocap: PoseStamped on /vrpn_mocap/<tracker>/pose in `world`)
POSE_SOURCES = {
    "odometry": {"pose_topic": "robot_{i}/odom", "pose_frame": "map"},
    "wheel_odometry": {"pose_topic": "robot_{i}/odom", "pose_frame": "robot_{i}/odom"},
    "mocap": {"pose_topic": "/vrpn_mocap/robot_{i}/pose", "pose_frame": "world"},
}
