# SPDX-License-Identifier: Apache-2.0
"""What every figure shares: matplotlib without a display, the density unit, C's axes in metres."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files: no display, and no GUI toolkit needed
import matplotlib.pyplot as plt  # noqa: E402, F401 (the figures' modules take it from here)

DENSITY_UNIT = r"density (1/m$^2$)"


def metres(ax, left: bool = True, bottom: bool = True, unit: str = "m") -> None:
    """Show C = [-1, 1]^2 with equal axes, in m as the default arena has it (or units of C)."""
    ax.set_xlim(-1, 1), ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.set_xticks([-1, 0, 1]), ax.set_yticks([-1, 0, 1])
    ax.tick_params(labelsize=7, labelleft=left, labelbottom=bottom)
    if bottom:
        ax.set_xlabel(f"x ({unit})", fontsize=8)
    if left:
        ax.set_ylabel(f"y ({unit})", fontsize=8)
