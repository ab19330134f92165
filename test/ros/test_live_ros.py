# SPDX-License-Identifier: Apache-2.0
"""
`bildmacro swarm --live` over real DDS, watched by a client nothing here wrote (test/support).

The client connects with Foxglove's subprotocol, subscribes to every channel and decodes them with
the published schemas; what it sees must be the run's own data at the same round: the waypoints
and robots against the records in run.mcap, the learned density against agent 0's y, the metrics
against metrics.csv. A client that hangs up, a port in use and Ctrl-C cost the run nothing.
"""

import csv
import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from bildmacro_ros.core.arena import Arena
from bildmacro_ros.core.config import load_config
from bildmacro_ros.core.scenario import build_problem
from bildmacro_ros.protocol.wire import decode
from bildmacro_ros.ros.picture import grid_geometry
from helpers import bildmacro, interrupt_after_rows, ROOT
from live_client import LiveClient

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.usefixtures("no_leftover_processes")]
AGENTS, ITERATIONS = 6, 300
SWARM = ("swarm", "--config", "demo", "--agents", AGENTS, "--iterations", ITERATIONS,
         "--simulator", "none", "--no-plots", "--log-every", 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def records(run) -> dict:
    """Every (agent, round) record in run.mcap, decoded."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import get_typestore, Stores

    store, m = get_typestore(Stores.ROS2_JAZZY), build_problem(*load_config("demo"))[0].m
    out = {}
    with Reader(run) as reader:
        for connection, _, raw in reader.messages():
            if connection.topic.endswith("/record"):
                state = decode(np.asarray(store.deserialize_cdr(raw, connection.msgtype).data), m)
                out[state.sender, state.iteration] = state
    return out


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    out, port = tmp_path_factory.mktemp("live") / "run", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bildmacro_ros.cli", *map(str, SWARM),
                             "--out", str(out), "--live", "--live-port", str(port)], cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client, leaver = LiveClient(port), LiveClient(port, leave_after=3)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        proc.kill()
    client.closed.wait(10)
    leaver.closed.wait(10)
    return proc.returncode, stdout + stderr, client, leaver, out, port


def test_a_client_sees_the_runs_robots_waypoints_densities_and_metrics(live_run):
    code, output, client, leaver, out, port = live_run
    assert code == 0, output
    assert client.error is None and leaver.error is None
    assert len(leaver.messages) == 3  # it hung up; the run went on
    summary = json.loads((out / "summary.json").read_text())
    assert summary["live"] == f"ws://127.0.0.1:{port}" and summary["iterations"] == ITERATIONS
    assert {"foxglove.SceneUpdate", "foxglove.Grid", "foxglove.PosesInFrame",
            "foxglove.Log"} <= {c["schemaName"] for c in client.channels.values()}
    cfg, base = load_config("demo")
    problem, arena = build_problem(cfg, base)[0], Arena.from_config(cfg)
    run = records(out)
    learned = dict(client.topic("/learned_density"))
    scenes = client.topic("/swarm_markers")
    assert len(scenes) >= 3, len(scenes)
    for stamp, scene in scenes:
        entities = {e.id: e for e in scene.entities}
        k = int({kv.key: kv.value for kv in entities["robot_0"].metadata}["round"])
        x = np.array([run[i, k].x for i in range(AGENTS)])
        x_hat = np.array([run[i, k].x_hat for i in range(AGENTS)])
        spheres = entities["waypoints"].spheres
        assert np.allclose([[s.pose.position.x, s.pose.position.y] for s in spheres],
                           arena.to_lab(x_hat), atol=1e-12), k
        robots = [entities[f"robot_{i}"].cylinders[0].pose.position for i in range(AGENTS)]
        assert np.allclose([[p.x, p.y] for p in robots], arena.to_lab(x), atol=1e-12), k
        grid = learned[stamp]  # sent with the scene, the same log time
        density = np.exp(problem.family.log_density(run[0, k].y[None]))[0]
        image = grid_geometry(density, problem.family.grid.points, arena)[0]
        cells = np.frombuffer(grid.data, "<f4").reshape(-1, grid.column_count).T
        np.testing.assert_array_equal(cells, image.astype(np.float32))
    assert client.topic("/target_density")
    with open(out / "metrics.csv") as handle:
        rows = {int(r["iteration"]): r for r in csv.DictReader(handle)}
    metrics = client.topic("/swarm_metrics")
    assert len(metrics) >= ITERATIONS // 2, len(metrics)
    for _, row in metrics:
        k, values = int(row["data"][0]), row["data"][1:]
        expected = [float(rows[k][c])
                    for c in ("lower_grad_norm", "step_norm", "consensus_error", "kl")]
        assert values == expected, k


def test_ctrl_c_with_a_client_connected_ends_the_run_as_without_one(tmp_path):
    out, port = tmp_path / "run", free_port()
    client = LiveClient(port)
    code, stdout, stderr = interrupt_after_rows([*SWARM[:6], 10**6, *SWARM[7:], "--out", out,
                                                 "--live", "--live-port", port], out, rows=20)
    assert code == 130, stdout + stderr
    assert "Traceback" not in stderr, stderr
    client.closed.wait(10)
    assert client.error is None and client.topic("/swarm_metrics")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["iterations"] >= 19  # rows 0..19 at least
    for name in ("metrics.csv", "final_state.npz", "run.mcap", "metadata.yaml"):
        assert (out / name).is_file(), name


def test_a_port_in_use_costs_one_line_and_the_run_goes_on(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = bildmacro(*SWARM[:6], 100, *SWARM[7:], "--out", tmp_path / "run", "--live",
                        "--live-port", port)
    assert res.returncode == 0, res.stdout + res.stderr
    said = [line for line in res.stderr.splitlines() if "live view" in line]
    assert len(said) == 1 and "no live view" in said[0], res.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["live"] is None and summary["iterations"] == 100
