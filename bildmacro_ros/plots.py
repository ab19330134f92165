# SPDX-License-Identifier: Apache-2.0
"""
Figures like the paper's.

Convergence curves (Fig. 1) and swarm snapshots over densities (Fig. 2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core.arena import Arena
from .core.family import ExponentialFamily
from .figure_style import DENSITY_UNIT, metres, plt
from .robot_plots import plot_robots

# what each method of a run folder is, in a figure's title: the reference is the paper's method
# (11)
METHOD_TITLES = {"distributed": "BILD-MACRO (Algorithm 1)",
                 "distributed over DDS": "BILD-MACRO (Algorithm 1) over DDS",
                 "centralized": "reference: centralised hypergradient method (11)"}


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
                     learned_label: str = "agent_0's", unit: str = "m") -> Path:
    """
    Row (a): agents over agent_0's learned density at each snapshot; row (b): the same over p*.

    Each learned density has a colour scale of its own (round 0's, from a random y, would saturate
    a shared one); the target row shares one. The algorithm's C is in metres (unit "m") unless an
    arena maps it into a lab (unit "C"; robots.png shows the lab).
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
            metres(ax, left=j == 0, bottom=row == 1, unit=unit)
            if row == 0:
                ax.set_title(f"k = {int(iterations[j])}", fontsize=10)
                fig.colorbar(shown, ax=ax, shrink=0.8, pad=0.02).ax.tick_params(labelsize=7)
        if j == 0:
            axes[0, 0].set_ylabel(f"(a) {learned_label} " + r"$p(\cdot, y^k)$" + f"\ny ({unit})",
                                  fontsize=9)
            axes[1, 0].set_ylabel("(b) target " + r"$p^*$" + f"\ny ({unit})", fontsize=9)
    bar = fig.colorbar(axes[1, -1].images[0], ax=list(axes[1]), shrink=0.8, pad=0.01)
    bar.set_label(DENSITY_UNIT if unit == "m" else "density (per unit area of C)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle((title + "\n" if title else "")
                 + f"agents at $x^k$ (white) over {learned_label} learned density "
                 "(top, each panel its own scale) and the target (bottom)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
                                        snaps["y"], out / "snapshots.png", title,
                                        unit="m" if Arena.from_config(cfg).is_identity else "C"))
        note("snapshots.png")
    if (out / "robots.npz").is_file() and (out / "final_state.npz").is_file():
        written += plot_robots(out, family, animation, title, note)
    return written
