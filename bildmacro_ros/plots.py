# SPDX-License-Identifier: Apache-2.0
"""
Figures like the paper's.

Convergence curves (Fig. 1) and swarm snapshots over densities (Fig. 2).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .core.family import ExponentialFamily  # noqa: E402

# what each method of a run folder is, in a figure's title: the reference is the paper's method
# (11)
METHOD_TITLES = {"distributed": "BILD-MACRO (Algorithm 1)",
                 "distributed over DDS": "BILD-MACRO (Algorithm 1) over DDS",
                 "centralized": "reference: centralised hypergradient method (11)"}
DENSITY_UNIT = r"density (1/m$^2$)"


def config_label(cfg: dict) -> str:
    """Name the config a run used: the preset its model and steps match, else its step sizes."""
    from .core.config import load_config, PRESETS

    model = ("basis", "grid", "algorithm", "target", "graph")
    for name in PRESETS:
        preset, _ = load_config(name)
        if all(preset.get(key) == cfg.get(key) for key in model):
            return name
    steps = cfg["algorithm"]
    return (f"custom: gamma_x {steps['gamma_x']:g}, gamma_y {steps['gamma_y']:g}, omega "
            f"{steps['omega']:g}, "
            f"delta {steps['delta']:g}")


def run_title(method: str, agents: int, config: str, final_kl: float | None) -> str:
    """Return the title line of every figure of a run: method, N, config and final KL."""
    kl = f", final KL {final_kl:.4f}" if final_kl is not None and np.isfinite(final_kl) else ""
    return f"{METHOD_TITLES.get(method, method)}: N = {agents}, config {config}{kl}"


def _metres(ax, left: bool = True, bottom: bool = True) -> None:
    ax.set_xlim(-1, 1), ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.set_xticks([-1, 0, 1]), ax.set_yticks([-1, 0, 1])
    ax.tick_params(labelsize=7, labelleft=left, labelbottom=bottom)
    if bottom:
        ax.set_xlabel("x (m)", fontsize=8)
    if left:
        ax.set_ylabel("y (m)", fontsize=8)


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    data = np.genfromtxt(path, delimiter=",", names=True, ndmin=1)
    return {name: np.atleast_1d(data[name]) for name in data.dtype.names}


def _positive(values: np.ndarray) -> np.ndarray:
    # log axes cannot show exact zeros (e.g. the centralised method's consensus error)
    return np.where(values > 0, values, np.nan)


def convergence_figure(metrics: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    k = metrics["iteration"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    panels = [("lower_grad_norm", r"$\|\nabla_2 g(x^k, y^k)\|$", "(a) lower-level gradient", True),
              ("step_norm", r"$\|\hat x^k - x^k\|$ (m)", "(b) microscopic step", True),
              ("kl", r"$\ell(x^k) = \mathrm{KL}(p(\cdot,\theta(x^k))\,\|\,p^*)$",
               "(c) upper-level objective", False)]
    for ax, (name, label, caption, log) in zip(axes, panels):
        values = metrics[name]
        ax.plot(k, _positive(values) if log else values, lw=1.2)
        if log and np.any(values > 0):
            ax.set_yscale("log")
        ax.set_xlabel("iteration k")
        ax.set_ylabel(label)
        ax.set_title(caption, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    stood_in = metrics.get("stand_ins")
    # rows a late record left incomplete, marked where they are
    if stood_in is not None and np.any(stood_in > 0):
        rows = stood_in > 0
        axes[2].scatter(k[rows], metrics["kl"][rows], s=10, c="tab:red", zorder=3,
                        label=f"{int(rows.sum())} rows with stand-in records")
        axes[2].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def snapshots_figure(family: ExponentialFamily, target: np.ndarray, iterations: np.ndarray,
                     positions: np.ndarray, learned: np.ndarray, path: Path, title: str = "",
                     learned_label: str = "agent_0's") -> Path:
    """
    Row (a): agents over agent_0's learned density at each snapshot; row (b): the same over p*.

    Each learned density has a colour scale of its own (round 0's, from a random y, would saturate
    a shared one); the target row shares one.
    """
    cols = len(iterations)
    fig, axes = plt.subplots(2, cols, figsize=(2.9 * cols + 0.8, 6.4), squeeze=False,
                             constrained_layout=True)
    densities = np.exp(family.log_density(learned))
    for j in range(cols):
        for row, image in enumerate((densities[j], target)):
            ax = axes[row, j]
            # grid index [a, b] is (c1 = g_a, c2 = g_b); imshow wants rows = c2
            shown = ax.imshow(image.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis",
                              vmin=0, vmax=float(image.max()), interpolation="bilinear")
            ax.scatter(positions[j][:, 0], positions[j][:, 1], s=14, c="white", edgecolors="black",
                       linewidths=0.4)
            _metres(ax, left=j == 0, bottom=row == 1)
            if row == 0:
                ax.set_title(f"k = {int(iterations[j])}", fontsize=10)
                fig.colorbar(shown, ax=ax, shrink=0.8, pad=0.02).ax.tick_params(labelsize=7)
        if j == 0:
            axes[0, 0].set_ylabel(f"(a) {learned_label} " + r"$p(\cdot, y^k)$" + "\ny (m)",
                                  fontsize=9)
            axes[1, 0].set_ylabel("(b) target " + r"$p^*$" + "\ny (m)", fontsize=9)
    bar = fig.colorbar(axes[1, -1].images[0], ax=list(axes[1]), shrink=0.8, pad=0.01)
    bar.set_label(DENSITY_UNIT, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle((title + "\n" if title else "")
                 + f"agents at $x^k$ (white) over {learned_label} learned density "
                 "(top, each panel its own scale) and the target (bottom)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_robots(out: Path, family: ExponentialFamily, animation: bool = False, title: str = "",
                note=None) -> list[Path]:
    """
    Draw robots.png (and swarm.gif) from a swarm run's files.

    They are robots.npz, final_state.npz and weights.npy.
    """
    from .scene import graph_edges

    out = Path(out)
    with np.load(out / "robots.npz") as robots, np.load(out / "final_state.npz") as final, \
            np.load(out / "snapshots.npz", allow_pickle=False) as snaps:
        target = snaps["target"]
        written = []
        if len(robots["time"]):
            edges = graph_edges(np.load(out / "weights.npy"))
            written.append(robots_figure(family, target, final["y"][0], robots["final_pose"],
                                         final["x"], edges, robots["kl_time"] - robots["time"][0],
                                         robots["kl"], out / "robots.png", title))
            if note is not None:
                note("robots.png")
            if animation:
                rounds = robots["round"] if "round" in robots else None
                written.append(swarm_animation(target, robots["time"], robots["pose"],
                                               out / "swarm.gif", rounds=rounds, title=title,
                                               note=note))
    return written


def plot_run(out: Path, family: ExponentialFamily, animation: bool = False, progress: bool = True,
             stream=None) -> list[Path]:
    """
    Draw a run folder's figures, a line on stderr as each is done (progress).

    convergence.png and snapshots.png from its metrics.csv and snapshots.npz, and robots.png (and
    swarm.gif) when the run had robots.
    """
    import sys
    import time

    from .core.config import load_config

    out = Path(out)
    stream = stream or sys.stderr
    started = time.monotonic()

    def note(done: str) -> None:
        if progress:
            stream.write(f"figures: {done} ({time.monotonic() - started:.1f} s)\n")
            stream.flush()

    written = []
    final_kl = None
    if (out / "final_state.npz").is_file():
        with np.load(out / "final_state.npz") as final:
            final_kl = float(final["kl"]) if "kl" in final else None
    cfg, _ = load_config(out / "config.yaml")
    with np.load(out / "snapshots.npz", allow_pickle=False) as snaps:
        method = str(snaps["method"]) if "method" in snaps else ""
        title = run_title(method, snaps["x"].shape[1], config_label(cfg), final_kl)
        if len((out / "metrics.csv").read_text().splitlines()) > 1:
            written.append(convergence_figure(read_metrics(out / "metrics.csv"),
                                              out / "convergence.png", title))
            note("convergence.png")
        written.append(snapshots_figure(family, snaps["target"], snaps["iteration"], snaps["x"],
                                        snaps["y"], out / "snapshots.png", title))
        note("snapshots.png")
    if (out / "robots.npz").is_file() and (out / "final_state.npz").is_file():
        written += plot_robots(out, family, animation, title, note)
    return written


def _swarm_panel(ax, image, poses, title, x=None, edges=()):
    """One RViz-like view: a density, the graph's links, robots with headings, waypoints x_i."""
    shown = ax.imshow(image.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis", vmin=0,
                      vmax=float(image.max()), interpolation="bilinear")
    for i, j in edges:
        ax.plot(poses[[i, j], 0], poses[[i, j], 1], color="white", lw=0.5, alpha=0.35)
    ax.quiver(poses[:, 0], poses[:, 1], np.cos(poses[:, 2]), np.sin(poses[:, 2]), color="white",
              scale=28, width=0.006, headwidth=3.5)
    ax.scatter(poses[:, 0], poses[:, 1], s=22, c="tab:orange", edgecolors="black", linewidths=0.5,
               zorder=3, label="robots (measured pose)")
    if x is not None:
        ax.scatter(x[:, 0], x[:, 1], s=40, marker="x", c="red", linewidths=1.0, zorder=4,
                   label="$x_i^K$ (algorithm)")
    _metres(ax)
    ax.set_title(title, fontsize=10)
    bar = plt.colorbar(shown, ax=ax, shrink=0.85, pad=0.02)
    bar.set_label(DENSITY_UNIT, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def robots_figure(family: ExponentialFamily, target: np.ndarray, learned_y: np.ndarray,
                  pose: np.ndarray, x: np.ndarray, edges, times: np.ndarray, robot_kl: np.ndarray,
                  path: Path, title: str = "") -> Path:
    """Draw the swarm as RViz shows it, beside the target, and the KL of the robots' positions."""
    learned = np.exp(family.log_density(learned_y[None]))[0]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.0), constrained_layout=True)
    _swarm_panel(axes[0], learned, pose, r"robots over agent_0's learned $p(\cdot, y_0^K)$", x,
                 edges)
    # below the map, not on it: a legend inside would cover robots
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
                   frameon=False)
    _swarm_panel(axes[1], target, pose, r"robots over the target $p^*$")
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
                    title: str = "", note=None) -> Path:
    """Write a GIF of the robots moving over the target, with fading trails (matplotlib, PIL)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    if len(times) == 0:
        raise ValueError("no robot poses were recorded")
    picks = np.unique(np.linspace(0, len(times) - 1, min(frames, len(times))).round().astype(int))
    fig, ax = plt.subplots(figsize=(4.8, 5.2), constrained_layout=True)
    shown = ax.imshow(target.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis",
                      interpolation="bilinear")
    bar = fig.colorbar(shown, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("target " + DENSITY_UNIT, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    _metres(ax)
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
