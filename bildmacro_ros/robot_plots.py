# SPDX-License-Identifier: Apache-2.0
"""The robots' pictures, robots.png and swarm.gif, in the arena's metres (robots.npz)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.transforms import Affine2D
import numpy as np

from .core.arena import Arena
from .core.family import ExponentialFamily
from .figure_style import DENSITY_UNIT, metres, plt


def _arena(robots) -> Arena:
    """Return the arena robots.npz was recorded in (C in metres for one without)."""
    if "arena" not in robots:
        return Arena()
    values = np.asarray(robots["arena"], float)
    return Arena.of(values[:2], values[2:4], values[4])


def _density(ax, image: np.ndarray, arena: Arena):
    """
    Draw a density of C where the arena puts it: stretched, turned and moved into the lab.

    Per square metre of the lab: p(c) times the area of C (4) over the arena's.
    """
    w, h = arena.size
    image = image * 4 / (w * h)
    place = Affine2D().rotate(arena.rotation).translate(*arena.centre)
    shown = ax.imshow(image.T, origin="lower", extent=(-w / 2, w / 2, -h / 2, h / 2),
                      cmap="viridis", interpolation="bilinear", transform=place + ax.transData,
                      vmin=0, vmax=float(image.max()))
    if arena.is_identity:
        metres(ax)
    else:  # the arena's bounding box in the lab's axes, and its outline
        corners = arena.corners()
        ax.plot(*np.vstack([corners, corners[:1]]).T, color="grey", lw=0.8)
        low, high = corners.min(axis=0), corners.max(axis=0)
        pad = 0.03 * float(np.max(high - low))
        ax.set_xlim(low[0] - pad, high[0] + pad), ax.set_ylim(low[1] - pad, high[1] + pad)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("x (m, lab)", fontsize=8), ax.set_ylabel("y (m, lab)", fontsize=8)
    return shown


def plot_robots(out: Path, family: ExponentialFamily, animation: bool = False, title: str = "",
                note=None) -> list[Path]:
    """
    Draw robots.png (and swarm.gif) from a swarm run's files.

    They are robots.npz, final_state.npz and weights.npy. Poses and waypoints are in the arena's
    metres (the lab's frame); the densities, functions on C, are drawn where the arena puts them.
    """
    from .scene import graph_edges

    out = Path(out)
    with np.load(out / "robots.npz") as robots, np.load(out / "final_state.npz") as final, \
            np.load(out / "snapshots.npz", allow_pickle=False) as snaps:
        target = snaps["target"]
        written = []
        if len(robots["time"]):
            edges = graph_edges(np.load(out / "weights.npy"))
            arena = _arena(robots)
            written.append(robots_figure(family, target, final["y"][0], robots["final_pose"],
                                         robots["x"], edges, robots["kl_time"] - robots["time"][0],
                                         robots["kl"], out / "robots.png", title, arena))
            if note is not None:
                note("robots.png")
            if animation:
                rounds = robots["round"] if "round" in robots else None
                written.append(swarm_animation(target, robots["time"], robots["pose"],
                                               out / "swarm.gif", rounds=rounds, title=title,
                                               note=note, arena=arena))
    return written


def _swarm_panel(ax, image, poses, title, x=None, edges=(), arena: Arena = Arena()):
    """One RViz-like view: a density, the graph's links, robots with headings, waypoints x_i."""
    shown = _density(ax, image, arena)
    for i, j in edges:
        ax.plot(poses[[i, j], 0], poses[[i, j], 1], color="white", lw=0.5, alpha=0.35)
    ax.quiver(poses[:, 0], poses[:, 1], np.cos(poses[:, 2]), np.sin(poses[:, 2]), color="white",
              scale=28, width=0.006, headwidth=3.5)
    ax.scatter(poses[:, 0], poses[:, 1], s=22, c="tab:orange", edgecolors="black", linewidths=0.5,
               zorder=3, label="robots (measured pose)")
    if x is not None:
        ax.scatter(x[:, 0], x[:, 1], s=40, marker="x", c="red", linewidths=1.0, zorder=4,
                   label="$x_i^K$ (algorithm)")
    ax.set_title(title, fontsize=10)
    bar = plt.colorbar(shown, ax=ax, shrink=0.85, pad=0.02)
    bar.set_label(DENSITY_UNIT, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def robots_figure(family: ExponentialFamily, target: np.ndarray, learned_y: np.ndarray,
                  pose: np.ndarray, x: np.ndarray, edges, times: np.ndarray, robot_kl: np.ndarray,
                  path: Path, title: str = "", arena: Arena = Arena()) -> Path:
    """Draw the swarm as RViz shows it, beside the target, and the KL of the robots' positions."""
    learned = np.exp(family.log_density(learned_y[None]))[0]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.0), constrained_layout=True)
    _swarm_panel(axes[0], learned, pose, r"robots over agent_0's learned $p(\cdot, y_0^K)$", x,
                 edges, arena)
    # below the map, not on it: a legend inside would cover robots
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
                   frameon=False)
    _swarm_panel(axes[1], target, pose, r"robots over the target $p^*$", arena=arena)
    ax = axes[2]
    if len(times):
        ax.plot(times, robot_kl, lw=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(r"$\ell$(robots' measured positions)")
    ax.set_title("KL of the robots' density to the target", fontsize=10)
    ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def swarm_animation(target: np.ndarray, times: np.ndarray, poses: np.ndarray, path: Path,
                    frames: int = 120, fps: int = 15, rounds: np.ndarray | None = None,
                    title: str = "", note=None, arena: Arena = Arena()) -> Path:
    """Write a GIF of the robots moving over the target, with fading trails (matplotlib, PIL)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    if len(times) == 0:
        raise ValueError("no robot poses were recorded")
    picks = np.unique(np.linspace(0, len(times) - 1, min(frames, len(times))).round().astype(int))
    fig, ax = plt.subplots(figsize=(4.8, 5.2), constrained_layout=True)
    shown = _density(ax, target, arena)
    bar = fig.colorbar(shown, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("target " + DENSITY_UNIT, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    trails = [ax.plot([], [], color="white", lw=0.8, alpha=0.6)[0] for _ in range(poses.shape[1])]
    dots = ax.scatter(poses[0, :, 0], poses[0, :, 1], s=24, c="tab:orange", edgecolors="black",
                      linewidths=0.5, zorder=3)
    label = ax.set_title("\n", fontsize=9)
    headline = title.split(": ")[-1] if title else ""
    fig.canvas.draw()
    # laid out once: per frame, constrained layout took most of the time
    fig.set_layout_engine("none")

    def draw(frame):
        n = picks[frame]
        for i, line in enumerate(trails):
            line.set_data(poses[: n + 1, i, 0], poses[: n + 1, i, 1])
        dots.set_offsets(poses[n, :, :2])
        k = f"k = {int(rounds[n])}, " if rounds is not None and rounds[n] >= 0 else ""
        label.set_text((headline + "\n" if headline else "")
                       + f"{k}t = {times[n] - times[0]:.1f} s")
        if note is not None and frame and frame % 30 == 0:
            note(f"swarm.gif frame {frame}/{len(picks)}")
        return trails + [dots, label]

    FuncAnimation(fig, draw, frames=len(picks),
                  blit=False).save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    if note is not None:
        note("swarm.gif")
    return path
