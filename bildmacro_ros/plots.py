# SPDX-License-Identifier: Apache-2.0
"""Figures like the paper's: convergence curves (Fig. 1) and swarm snapshots over densities (Fig. 2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .core.family import ExponentialFamily  # noqa: E402


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    data = np.genfromtxt(path, delimiter=",", names=True, ndmin=1)
    return {name: np.atleast_1d(data[name]) for name in data.dtype.names}


def _positive(values: np.ndarray) -> np.ndarray:
    # log axes cannot show exact zeros (e.g. the centralised method's consensus error)
    return np.where(values > 0, values, np.nan)


def convergence_figure(metrics: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    k = metrics["iteration"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    panels = [("lower_grad_norm", r"$\|\nabla_2 g(x^k, y^k)\|$", "(a) lower-level gradient", True),
              ("step_norm", r"$\|\hat x^k - x^k\|$", "(b) microscopic step", True),
              ("kl", r"$\ell(x^k) = \mathrm{KL}(p(\cdot,\theta(x^k))\,\|\,p^*)$", "(c) upper-level objective", False)]
    for ax, (name, label, caption, log) in zip(axes, panels):
        values = metrics[name]
        ax.plot(k, _positive(values) if log else values, lw=1.2)
        if log and np.any(values > 0):
            ax.set_yscale("log")
        ax.set_xlabel("iteration k")
        ax.set_ylabel(label)
        ax.set_title(caption, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def snapshots_figure(family: ExponentialFamily, target: np.ndarray, iterations: np.ndarray, positions: np.ndarray,
                     learned: np.ndarray, path: Path, learned_label: str = r"$p(\cdot, y_1^k)$") -> Path:
    """Row (a): agents over the learned density at each snapshot; row (b): the same over p*."""
    cols = len(iterations)
    fig, axes = plt.subplots(2, cols, figsize=(2.6 * cols + 0.6, 5.6), squeeze=False, constrained_layout=True)
    extent = (-1, 1, -1, 1)
    densities = np.exp(family.log_density(learned))
    top = max(float(target.max()), float(np.percentile(densities, 99)))
    for j in range(cols):
        for row, (image, caption) in enumerate([(densities[j], learned_label), (target, r"$p^*$")]):
            ax = axes[row, j]
            # grid index [a, b] is (c1 = g_a, c2 = g_b); imshow wants rows = c2
            ax.imshow(image.T, origin="lower", extent=extent, cmap="viridis", vmin=0, vmax=top,
                      interpolation="bilinear")
            ax.scatter(positions[j][:, 0], positions[j][:, 1], s=14, c="white", edgecolors="black", linewidths=0.4)
            ax.set_xlim(-1, 1), ax.set_ylim(-1, 1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_aspect("equal")
            if row == 0:
                ax.set_title(f"k = {int(iterations[j])}", fontsize=10)
            if j == 0:
                ax.set_ylabel(("(a) " if row == 0 else "(b) ") + caption, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_robots(out: Path, family: ExponentialFamily, animation: bool = False) -> list[Path]:
    """robots.png (and swarm.gif) from a swarm run's robots.npz, final_state.npz and weights.npy."""
    from .scene import graph_edges

    out = Path(out)
    with np.load(out / "robots.npz") as robots, np.load(out / "final_state.npz") as final, \
            np.load(out / "snapshots.npz", allow_pickle=False) as snaps:
        target = snaps["target"]
        written = []
        if len(robots["time"]):
            edges = graph_edges(np.load(out / "weights.npy"))
            written.append(robots_figure(family, target, final["y"][0], robots["final_pose"], final["x"], edges,
                                         robots["kl_time"] - robots["time"][0], robots["kl"], out / "robots.png"))
            if animation:
                written.append(swarm_animation(target, robots["time"], robots["pose"], out / "swarm.gif"))
    return written


def plot_run(out: Path, family: ExponentialFamily, animation: bool = False) -> list[Path]:
    """
    Draw a run folder's figures.

    convergence.png and snapshots.png from its metrics.csv and snapshots.npz, and robots.png (and
    swarm.gif) when the run had robots.
    """
    out = Path(out)
    written = []
    with np.load(out / "snapshots.npz", allow_pickle=False) as snaps:
        method = str(snaps["method"]) if "method" in snaps else ""
        title = f"BILD-MACRO ({method}), N = {snaps['x'].shape[1]}" if method else out.name
        if len((out / "metrics.csv").read_text().splitlines()) > 1:
            written.append(convergence_figure(read_metrics(out / "metrics.csv"), out / "convergence.png", title))
        written.append(snapshots_figure(family, snaps["target"], snaps["iteration"], snaps["x"], snaps["y"],
                                        out / "snapshots.png"))
    if (out / "robots.npz").is_file() and (out / "final_state.npz").is_file():
        written += plot_robots(out, family, animation)
    return written


def _swarm_panel(ax, image, top, poses, title, x=None, edges=()):
    """One RViz-like view: a density, the graph's links, robots with headings, waypoints x_i."""
    ax.imshow(image.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis", vmin=0, vmax=top,
              interpolation="bilinear")
    for i, j in edges:
        ax.plot(poses[[i, j], 0], poses[[i, j], 1], color="white", lw=0.5, alpha=0.35)
    ax.quiver(poses[:, 0], poses[:, 1], np.cos(poses[:, 2]), np.sin(poses[:, 2]), color="white", scale=28,
              width=0.006, headwidth=3.5)
    ax.scatter(poses[:, 0], poses[:, 1], s=22, c="tab:orange", edgecolors="black", linewidths=0.5, zorder=3,
               label="robots (measured)")
    if x is not None:
        ax.scatter(x[:, 0], x[:, 1], s=40, marker="x", c="red", linewidths=1.0, zorder=4, label="$x_i$ (algorithm)")
    ax.set_xlim(-1, 1), ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)


def robots_figure(family: ExponentialFamily, target: np.ndarray, learned_y: np.ndarray, pose: np.ndarray,
                  x: np.ndarray, edges, times: np.ndarray, robot_kl: np.ndarray, path: Path) -> Path:
    """Return the swarm as RViz shows it, beside the target, and the KL of the robots' measured positions."""
    learned = np.exp(family.log_density(learned_y[None]))[0]
    top = max(float(target.max()), float(learned.max()))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), constrained_layout=True)
    _swarm_panel(axes[0], learned, top, pose, r"robots over agent 1's learned $p(\cdot, y_1)$", x, edges)
    axes[0].legend(loc="lower left", fontsize=7, framealpha=0.6)
    _swarm_panel(axes[1], target, top, pose, r"robots over the target $p^*$")
    ax = axes[2]
    if len(times):
        ax.plot(times, robot_kl, lw=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(r"$\ell$(robots' measured positions)")
    ax.set_title("KL of the robots' density to the target", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def swarm_animation(target: np.ndarray, times: np.ndarray, poses: np.ndarray, path: Path, frames: int = 120,
                    fps: int = 15) -> Path:
    """Return a GIF of the robots moving over the target, with fading trails (matplotlib + Pillow)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    if len(times) == 0:
        raise ValueError("no robot poses were recorded")
    picks = np.unique(np.linspace(0, len(times) - 1, min(frames, len(times))).round().astype(int))
    fig, ax = plt.subplots(figsize=(4.2, 4.4), constrained_layout=True)
    ax.imshow(target.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis", interpolation="bilinear")
    ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_aspect("equal")
    trails = [ax.plot([], [], color="white", lw=0.8, alpha=0.6)[0] for _ in range(poses.shape[1])]
    dots = ax.scatter(poses[0, :, 0], poses[0, :, 1], s=24, c="tab:orange", edgecolors="black", linewidths=0.5,
                      zorder=3)
    title = ax.set_title("", fontsize=10)

    def draw(frame):
        n = picks[frame]
        for i, line in enumerate(trails):
            line.set_data(poses[: n + 1, i, 0], poses[: n + 1, i, 1])
        dots.set_offsets(poses[n, :, :2])
        title.set_text(f"t = {times[n] - times[0]:.1f} s")
        return trails + [dots, title]

    FuncAnimation(fig, draw, frames=len(picks), blit=False).save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path
