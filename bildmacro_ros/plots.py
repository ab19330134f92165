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
            ax.imshow(image.T, origin="lower", extent=extent, cmap="viridis", vmin=0, vmax=top, interpolation="bilinear")
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


def plot_run(out: Path, family: ExponentialFamily) -> list[Path]:
    """convergence.png and snapshots.png from a run folder's metrics.csv and snapshots.npz."""
    out = Path(out)
    written = []
    with np.load(out / "snapshots.npz", allow_pickle=False) as snaps:
        method = str(snaps["method"]) if "method" in snaps else ""
        title = f"BILD-MACRO ({method}), N = {snaps['x'].shape[1]}" if method else out.name
        if len((out / "metrics.csv").read_text().splitlines()) > 1:
            written.append(convergence_figure(read_metrics(out / "metrics.csv"), out / "convergence.png", title))
        written.append(snapshots_figure(family, snaps["target"], snaps["iteration"], snaps["x"], snaps["y"],
                                        out / "snapshots.png"))
    return written
