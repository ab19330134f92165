# SPDX-License-Identifier: Apache-2.0
"""
How agents talk and when they step, without ROS.

The wire format, the inbox and the round rules.
"""
