# SPDX-License-Identifier: Apache-2.0
"""
The live view's server and messages (live.py), read by an outside client (test/support).

A real WebSocket server in this process and a `websockets` client that decodes each channel with
Foxglove's published protobuf schemas; no ROS.
"""

import socket
import time

import numpy as np
import pytest

from bildmacro_ros.core.metrics import COLUMNS
from bildmacro_ros.live import LiveView, metrics_message, POINT_RADIUS, STATE_COLOURS, STATES
from bildmacro_ros.scene import robot_states
from live_client import LiveClient


@pytest.fixture
def served():
    view = LiveView.start("127.0.0.1", 0, say=pytest.fail)
    client = LiveClient(view.port)
    try:
        yield view, client
    finally:
        view.close()
        client.closed.wait(5)


def wait_for(client, topic, count=1):
    until = time.monotonic() + 10
    while len(client.topic(topic)) < count and time.monotonic() < until:
        time.sleep(0.02)
    assert client.error is None
    return client.topic(topic)


def test_a_metrics_row_has_float64multiarrays_shape_round_first():
    values = {c: float(n) for n, c in enumerate(COLUMNS[1:-1], start=1)}
    row = metrics_message(7, values)
    assert row["data"] == [7.0, 1.0, 2.0, 3.0, 4.0]
    assert row["layout"]["dim"][0]["label"] == "iteration,lower_grad_norm,step_norm," \
                                               "consensus_error,kl"


def test_a_robot_is_held_back_only_from_exactly_its_goal_and_arrived_within_tolerance():
    goals = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    robots = np.array([[0.005, 0.0, 0.0], [1.5, 1.0, 0.0], [2.0, 2.0, 0.0]])
    held = np.array([[np.nan, np.nan], [1.0, 1.0], [2.0, 2.0 + 1e-12]])
    assert [STATES[s] for s in robot_states(robots, goals, held, 0.01)] == [
        "arrived", "held back", "arrived"]
    assert STATES[robot_states(robots[1:2], goals[1:2], held[:1], 0.01)[0]] == "moving"


def test_a_client_decodes_the_scene_poses_and_log_with_foxglove_schemas(served):
    view, client = served
    wait_for(client, "/swarm_log", 0)
    robots = np.array([[0.1, -0.2, 0.5], [0.4, 0.3, -1.0]])
    waypoints = np.array([[0.12, -0.18], [0.35, 0.31]])
    for _ in range(50):  # until the client has subscribed: the server drops what nobody takes
        view.show_round(123, 9, robots, [0, 2], 0.0, waypoints, [(0, 1)])
        if client.topic("/swarm_markers"):
            break
        time.sleep(0.05)
    view.show_log(456, "warning", "agent_3", "agent 3: agent 1 is declared dead")
    (_, scene), = wait_for(client, "/swarm_markers")[:1]
    entities = {e.id: e for e in scene.entities}
    for i in (0, 1):
        body = entities[f"robot_{i}"]
        (cylinder,), (arrow,) = body.cylinders, body.arrows
        assert [cylinder.pose.position.x, cylinder.pose.position.y] == pytest.approx(robots[i, :2])
        assert cylinder.size.x == pytest.approx(2 * POINT_RADIUS)
        assert 2 * np.arctan2(arrow.pose.orientation.z, arrow.pose.orientation.w) == \
            pytest.approx(robots[i, 2])
        colour = STATE_COLOURS[[0, 2][i]]
        assert [cylinder.color.r, cylinder.color.g, cylinder.color.b] == pytest.approx(colour[:3])
        assert {kv.key: kv.value for kv in body.metadata} == {"round": "9",
                                                              "state": STATES[[0, 2][i]]}
    spheres = entities["waypoints"].spheres
    assert np.allclose([[s.pose.position.x, s.pose.position.y] for s in spheres], waypoints)
    (line,) = entities["edges"].lines
    assert np.allclose([[p.x, p.y] for p in line.points], robots[[0, 1], :2])
    (_, poses), = wait_for(client, "/swarm_robots")[:1]
    assert poses.frame_id == "map" and len(poses.poses) == 2
    (_, log), = wait_for(client, "/swarm_log")
    assert log.name == "agent_3" and "declared dead" in log.message and log.level == 3  # WARNING


def test_a_grid_carries_the_density_as_float32_cells_rows_along_y(served):
    view, client = served
    image = np.random.default_rng(0).random((5, 3))  # 5 cells along the arena's x, 3 along y
    for _ in range(50):
        view.show_grid("learned", 77, image, 0.25, (-0.6, -0.4, 0.3))
        if client.topic("/learned_density"):
            break
        time.sleep(0.05)
    (_, grid), = wait_for(client, "/learned_density")[:1]
    assert (grid.column_count, grid.cell_size.x, grid.cell_stride, grid.row_stride) == (
        5, 0.25, 4, 20)
    assert grid.fields[0].name == "density" and grid.frame_id == "map"
    assert [grid.pose.position.x, grid.pose.position.y] == pytest.approx([-0.6, -0.4])
    cells = np.frombuffer(grid.data, dtype="<f4").reshape(3, 5).T
    np.testing.assert_array_equal(cells, image.astype(np.float32))


def test_a_port_in_use_is_one_line_and_no_view():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        said = []
        assert LiveView.start("127.0.0.1", taken.getsockname()[1], say=said.append) is None
    assert len(said) == 1 and "no live view" in said[0] and "runs on" in said[0]


def test_another_address_is_served_with_a_warning_that_it_has_no_authentication():
    said = []
    # another address, still on loopback: no test listens beyond this machine
    view = LiveView.start("127.0.0.2", 0, say=said.append)
    try:
        assert view is not None and len(said) == 1 and "without authentication" in said[0]
    finally:
        view.close()
