# SPDX-License-Identifier: Apache-2.0
"""bildmacro_ros: BILD-MACRO swarm density control, a numpy core with thin ROS 2 nodes."""

__version__ = "0.1.0"
