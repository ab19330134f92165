# SPDX-License-Identifier: Apache-2.0
"""
Robots with bodies: what the safety filter prevents and what it costs (docs/robots.md's table).

For N = 12, 20 and 30 robots on the demo config and on an image target (a letter T, drawn here),
it runs `bildmacro swarm` with the embedded simulator and robots.radius 0.05 m, once with the
safety filter and once without, and prints for each run: the smallest distance between two
robots' centres over the whole run (at the simulator's rate; bodies touch below 0.1 m), the
contacts, the KL of the robots' measured positions against the algorithm's, and the seconds the
robots took to settle after the last round.

    python benchmarks/study_bodies.py --out runs/bodies             # the demo rows (~15 min)
    python benchmarks/study_bodies.py --agents 12 --targets demo    # one row pair
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import subprocess
import sys
import tempfile

import numpy as np

RADIUS = 0.05


def letter_target(folder: Path) -> Path:
    """Write a config whose target is a grayscale letter T (dark = dense), and return it."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (200, 200), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 30, 170, 70), fill=0)  # the bar
    draw.rectangle((80, 70, 120, 175), fill=0)  # the stem
    image.save(folder / "letter_t.png")
    config = folder / "letter_t.yaml"
    demo = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"
    config.write_text(demo.read_text()
                      + "\ntarget: {type: image, path: letter_t.png, floor: 0.01}\n")
    return config


def run(config: str, agents: int, iterations: int, filtered: bool, out: Path) -> dict:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(random.randint(0, 101)),
               ROS_LOG_DIR=tempfile.mkdtemp(prefix="bodies-roslog-"))
    cmd = [sys.executable, "-m", "bildmacro_ros.cli", "swarm", "--config", config, "--agents",
           str(agents), "--iterations", str(iterations), "--radius", str(RADIUS),
           "--agents-per-process", str(max(1, agents // 4)), "--out", str(out), "--overwrite",
           "--no-plots", "--quiet"] + ([] if filtered else ["--no-safety"])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    with np.load(out / "robots.npz") as robots:
        final = robots["round"] >= iterations
        times = robots["time"]
        settle = float(times[-1] - times[final][0]) if final.any() else float("nan")
        return {"closest": float(robots["closest"]), "contacts": int(robots["contacts"]),
                "robot_kl": float(robots["final_kl"]), "kl": summary["final_kl"], "settle": settle,
                "seconds": summary["seconds"]}


def picture(cases: dict[str, Path], path: Path) -> Path:
    """
    Draw the final bodies of runs without and with the filter over their target.

    The picture of docs/robots.md.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, axes = plt.subplots(1, len(cases), figsize=(5.2 * len(cases), 5.4),
                             constrained_layout=True, squeeze=False)
    for ax, (title, folder) in zip(axes[0], cases.items()):
        with np.load(folder / "robots.npz") as robots, np.load(folder / "snapshots.npz") as snaps:
            pose = robots["final_pose"]
            closest, contacts = float(robots["closest"]), int(robots["contacts"])
            target = snaps["target"]
        shown = ax.imshow(target.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis",
                          interpolation="bilinear")
        gaps = np.hypot(*(pose[:, None, :2] - pose[None, :, :2]).transpose(2, 0, 1))
        np.fill_diagonal(gaps, np.inf)
        for (x, y, heading), touching in zip(pose, gaps.min(axis=1) < 2 * RADIUS):
            ax.add_patch(Circle((x, y), RADIUS, facecolor="tab:red" if touching else "tab:orange",
                                edgecolor="black", linewidth=0.6, zorder=3))
            ax.plot([x, x + RADIUS * np.cos(heading)], [y, y + RADIUS * np.sin(heading)],
                    color="black", lw=0.8, zorder=4)
        ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_aspect("equal")
        ax.set_xlabel("x (m)"), ax.set_ylabel("y (m)")
        ax.set_title(f"{title}: {contacts} contacts over the run,\nclosest centres {closest:.3f} "
                     "m "
                     f"(bodies touch below {2 * RADIUS:g} m)", fontsize=10)
        fig.colorbar(shown, ax=ax, shrink=0.8).set_label(r"target density (1/m$^2$)")
    fig.suptitle(f"{len(pose)} robots of radius {RADIUS} m at the end of a run on a letter T "
                 "(red: touching)",
                 fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bodies"))
    parser.add_argument("--agents", type=int, nargs="+", default=[12, 20, 30])
    parser.add_argument("--targets", nargs="+", default=["demo", "letter"],
                        choices=["demo", "letter"])
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--picture", type=Path,
                        help="also draw the largest letter runs' final bodies here "
                        "(docs/bodies.png, in docs/robots.md)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    configs = {"demo": "demo", "letter": str(letter_target(args.out))}
    print(f"robots.radius {RADIUS} m (bodies touch below {2 * RADIUS:g} m), {args.iterations} "
          "rounds")
    print(f"{'target':7} {'N':>3} {'filter':6} {'closest (m)':>11} {'contacts':>8} "
          f"{'KL robots':>9} "
          f"{'KL x_i':>7} {'settle (s)':>10} {'run (s)':>7}")
    for target in args.targets:
        for agents in args.agents:
            for filtered in (True, False):
                case = args.out / f"{target}_{agents}_{'filter' if filtered else 'none'}"
                r = run(configs[target], agents, args.iterations, filtered, case)
                print(f"{target:7} {agents:>3} {'on' if filtered else 'off':6} "
                      f"{r['closest']:>11.4f} "
                      f"{r['contacts']:>8} {r['robot_kl']:>9.4f} {r['kl']:>7.4f} "
                      f"{r['settle']:>10.1f} "
                      f"{r['seconds']:>7.0f}", flush=True)
    if args.picture is not None:
        n = max(args.agents)
        target = "letter" if "letter" in args.targets else args.targets[0]
        print(picture({"without the filter": args.out / f"{target}_{n}_none",
                       "with the safety filter": args.out / f"{target}_{n}_filter"}, args.picture))
    return 0


if __name__ == "__main__":
    sys.exit(main())
