# SPDX-License-Identifier: Apache-2.0
"""Thin rclpy nodes: they parse parameters, move messages, and call the ROS-free objects that decide."""
