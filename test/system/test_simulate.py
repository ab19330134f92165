# SPDX-License-Identifier: Apache-2.0
"""
`bildmacro simulate` end to end.

Outputs, reproducibility from files, bad input, Ctrl-C, convergence.
"""

import csv
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse
import yaml

from bildmacro_ros.core.config import validate
from bildmacro_ros.core.scenario import build_scenario
from bildmacro_ros.simulate import run
from helpers import interrupt_after_rows

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "bildmacro_ros.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_outputs(tmp_path):
    out = tmp_path / "run"
    res = cli("simulate", "--agents", 6, "--iterations", 300, "--seed", 1, "--log-every", 10,
              "--out", out)
    assert res.returncode == 0, res.stderr
    assert "finished after 300/300" in res.stdout
    assert "300/300 iterations (100%)" in res.stderr  # the progress line
    with open(out / "metrics.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["iteration", "lower_grad_norm", "step_norm", "consensus_error", "kl",
                       "stand_ins"]
    assert [int(r[0]) for r in rows[1:]] == list(range(0, 300, 10)) + [299, 300]
    assert all(np.isfinite(float(v)) for r in rows[1:] for v in r)
    with np.load(out / "final_state.npz") as final:
        assert int(final["iteration"]) == 300
        # row K is iterate K
        assert float(rows[-1][4]) == pytest.approx(float(final["kl"]), rel=1e-12)
        assert final["x"].shape == (6, 2) and final["x_hat"].shape == (6, 2)
        assert final["y"].shape == (6, 49) and final["r"].shape == (6, 49)
        assert final["q"].shape == (6, 49, 49)
        assert np.allclose(final["q"], np.swapaxes(final["q"], 1, 2))
        assert np.all(np.abs(final["x"]) <= 1)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert validate(cfg)["agents"] == 6 and cfg["iterations"] == 300 and cfg["seed"] == 1
    for picture in ("convergence.png", "snapshots.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second run into the same folder is refused rather than mixed in
    again = cli("simulate", "--agents", 6, "--iterations", 5, "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    # the figures can be redrawn from the folder alone
    (out / "snapshots.png").unlink()
    assert cli("plot", out).returncode == 0 and (out / "snapshots.png").exists()


def test_init_and_weights_files_reproduce_a_run(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    res = cli("simulate", "--agents", 5, "--iterations", 100, "--seed", 3, "--out", first,
              "--no-plots")
    assert res.returncode == 0
    np.savetxt(tmp_path / "w.csv", np.load(first / "weights.npy"), delimiter=",", fmt="%.17g")
    res = cli("simulate", "--agents", 5, "--iterations", 100, "--seed", 99, "--init",
              first / "initial_state.npz", "--weights", tmp_path / "w.csv", "--out", second,
              "--no-plots")
    assert res.returncode == 0, res.stderr
    assert not (second / "convergence.png").exists()
    with np.load(first / "final_state.npz") as a, np.load(second / "final_state.npz") as b:
        for key in ("x", "x_hat", "y", "r", "q"):
            assert np.array_equal(a[key], b[key]), key


def test_a_sparse_graph_runs_as_the_same_weights_given_dense(tmp_path):
    (tmp_path / "c.yaml").write_text("graph: {type: geometric, radius: 0.5}\n")
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    res = cli("simulate", "--config", tmp_path / "c.yaml", "--agents", 80, "--iterations", 60,
              "--seed", 2, "--out", first, "--no-plots")
    assert res.returncode == 0, res.stderr
    # O(N) numbers on disk: weights.npz, and no dense copy beside it
    assert (first / "weights.npz").is_file() and not (first / "weights.npy").exists()
    weights = sparse.load_npz(first / "weights.npz").toarray()
    with np.load(first / "initial_state.npz") as init:
        gap = np.linalg.norm(init["x"][:, None] - init["x"][None], axis=-1)
    assert np.array_equal(weights > 0, (gap < 0.5) | np.eye(80, dtype=bool))  # radio range
    np.save(tmp_path / "w.npy", weights)
    for out, given in ((second, first / "weights.npz"), (third, tmp_path / "w.npy")):
        res = cli("simulate", "--agents", 80, "--iterations", 60, "--seed", 9, "--init",
                  first / "initial_state.npz", "--weights", given, "--out", out, "--no-plots")
        assert res.returncode == 0, res.stderr
    with np.load(first / "final_state.npz") as a:
        for out in (second, third):
            with np.load(out / "final_state.npz") as b:
                for key in ("x", "x_hat", "y", "r", "q"):
                    assert np.allclose(a[key], b[key], rtol=0, atol=1e-12), (out, key)


@pytest.mark.parametrize("setup,args,message", [
    (lambda d: (d / "c.yaml").write_text("algorithm: {gama_y: 0.1}\n"), ["--config", "c.yaml"],
     "config key 'algorithm.gama_y': unknown key (did you mean gamma_y?)"),
    (lambda d: np.save(d / "w.npy", np.eye(4) * 0.5), ["--agents", 4, "--weights", "w.npy"],
     "not doubly stochastic"),
    (lambda d: np.save(d / "w.npy", np.full((3, 3), 1 / 3)), ["--agents", 4, "--weights", "w.npy"],
     "the swarm has 4 agents"),
    (lambda d: np.savez(d / "i.npz", x=np.zeros((4, 2)), y=np.zeros((4, 10))),
     ["--agents", 4, "--init", "i.npz"], "init y must have shape (4, 49)"),
    (lambda d: None, ["--config", "nosuch.yaml"], "does not exist"),
    (lambda d: None, ["--agents", 1], "config key 'agents'"),
    (lambda d: (d / "c.yaml").write_text("target: {type: image, path: gone.png}\n"),
     ["--config", "c.yaml"], "gone.png: cannot read it (No such file or directory)"),
    (lambda d: ((d / "c.yaml").write_text("target: {type: image, path: text.png}\n"),
                (d / "text.png").write_text("no")), ["--config", "c.yaml"],
     "text.png: cannot read it (cannot identify image file"),
    (lambda d: (d / "c.yaml").write_text("agents: [1\n"), ["--config", "c.yaml"],
     "is not valid YAML (line 2"),
    (lambda d: None, ["--agents", 0],
     "argument --agents: must be >= 1, got 0 (see bildmacro simulate --help)"),
    (lambda d: None, ["--method", "best"], "argument --method: invalid choice"),
    (lambda d: None, ["--stall-timeout", 5], "unrecognized arguments: --stall-timeout 5"),
    (lambda d: None, ["--radius", 0.6],
     "config key 'robots.radius': must be in [0, 0.5], got 0.6"),
    (lambda d: np.savez(d / "i.npz", x=np.zeros((20, 2)), y=np.zeros((20, 49))),
     ["--init", "i.npz", "--radius", 0.05],
     "init x: robots 0 and 1 start 0.0000 m apart, closer than two radii (0.1 m, robots.radius "
     "0.05)"),
])
def test_bad_input_is_a_clear_error(tmp_path, setup, args, message):
    setup(tmp_path)
    args = [tmp_path / a if isinstance(a, str) and "." in a else a for a in args]
    res = cli("simulate", "--iterations", 3, "--out", tmp_path / "out", *args)
    assert res.returncode == 2
    assert message in res.stderr
    # one line, not a usage block or a traceback
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "out" / "final_state.npz").exists()


@pytest.mark.parametrize("command", ["simulate", "swarm", "plan"])
def test_help_names_every_preset_and_the_defaults(command):
    res = cli(command, "--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "preset name: default, paper, demo (default: default)" in text
    assert "(default: runs/" in text or command == "plan"
    if command != "simulate":
        assert "the config's faults.deadline, 2.0" in text


def test_ctrl_c_keeps_what_was_computed(tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = interrupt_after_rows(["simulate", "--agents", 5, "--iterations", 10**7,
                                                 "--log-every", 5, "--out", out], out, rows=5)
    assert code == 130, stderr
    assert "interrupted after" in stdout
    with np.load(out / "final_state.npz") as final:
        done = int(final["iteration"])
        assert 20 <= done < 10**7
        assert np.all(np.isfinite(final["y"]))
    assert (out / "snapshots.png").exists() and (out / "convergence.png").exists()


@pytest.mark.slow
def test_converges_to_the_centralised_kl(tmp_path):
    """
    Small omega-conditioning (1e-2), N = 10: the run converges to the centralised KL.

    Both residuals fall by orders of magnitude and the swarm's KL matches the centralised method's.
    """
    cfg = validate({"agents": 10, "seed": 2, "iterations": 5000,
                    "algorithm": {"gamma_x": 1e-2, "gamma_y": 0.09, "omega": 1e-2, "delta": 0.02}})
    dist = run(build_scenario(cfg), tmp_path / "d", "distributed", plots=False, progress=False)
    cent = run(build_scenario(cfg), tmp_path / "c", "centralized", plots=False, progress=False)
    metrics = np.genfromtxt(tmp_path / "d" / "metrics.csv", delimiter=",", names=True)
    assert metrics["lower_grad_norm"][-1] < 1e-3 * metrics["lower_grad_norm"][0]
    assert metrics["step_norm"][-1] < 1e-2 * metrics["step_norm"][0]
    assert metrics["consensus_error"][-1] < 1e-3 * metrics["consensus_error"][0]
    assert dist.final_kl < 0.1 * dist.initial_kl
    assert abs(dist.final_kl - cent.final_kl) < 0.01 * cent.final_kl


def test_tracking_reset_changes_the_run_only_from_its_first_reset_round(tmp_path):
    from bildmacro_ros.core.config import validate
    from bildmacro_ros.core.scenario import build_scenario
    from bildmacro_ros.simulate import Distributed

    def run(reset):
        cfg = validate({"agents": 5, "iterations": 30, "faults": {"tracking_reset": reset}})
        algo = Distributed(build_scenario(cfg))
        states = []
        for _ in range(30):
            algo.advance(measure=False)
            states.append(algo.state.r.copy())
        return states

    plain, reset = run(0), run(12)
    # rounds 1..11 identical
    assert all(np.array_equal(a, b) for a, b in zip(plain[:11], reset[:11]))
    assert not np.allclose(plain[11], reset[11])  # round 12's r is re-initialised
