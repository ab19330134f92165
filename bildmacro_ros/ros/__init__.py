# SPDX-License-Identifier: Apache-2.0
"""Thin rclpy nodes: they read parameters, move messages, and call ROS-free objects that decide."""
