# SPDX-License-Identifier: Apache-2.0
"""Pure numpy/scipy implementation of BILD-MACRO; nothing here imports ROS."""
