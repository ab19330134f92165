# SPDX-License-Identifier: Apache-2.0
"""Thin rclpy nodes around the core: agent, monitor (recorder); wire.py is ROS-free."""
