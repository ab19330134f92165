# SPDX-License-Identifier: Apache-2.0
"""
A run folder is a rosbag2 bag.

Read back by readers nobody here wrote (rosbags, mcap-ros2-support).
"""

import csv
import json
from pathlib import Path
import sys

import numpy as np
import pytest

from bildmacro_ros.core.arena import Arena
from bildmacro_ros.core.config import load_config
from bildmacro_ros.core.metrics import consensus_error
from bildmacro_ros.core.scenario import build_problem
from bildmacro_ros.protocol.wire import decode
from bildmacro_ros.ros.picture import TOPICS
from bildmacro_ros.scene import arena_raster, density_from_occupancy
from helpers import bildmacro

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.usefixtures("no_leftover_processes")]
AGENTS, ITERATIONS = 4, 60


def rosidl_hash(package: str, name: str) -> str:
    """Return a type's RIHS01 hash from the type description rosidl installed beside its .msg."""
    path = Path(sys.prefix) / "share" / package / "msg" / f"{name}.json"
    description = json.loads(path.read_text())
    return next(h["hash_string"] for h in description["type_hashes"]
                if h["type_name"] == f"{package}/msg/{name}")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bag") / "run"
    res = bildmacro("swarm", "--config", "demo", "--agents", AGENTS, "--iterations", ITERATIONS,
                    "--log-every", 2, "--bag-every-round", "--no-plots", "--out", out)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def test_rosbags_opens_the_run_folder_as_a_bag_with_every_rounds_record(run):
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import get_typestore, Stores

    store = get_typestore(Stores.ROS2_JAZZY)
    cfg, _ = load_config("demo")
    m = (cfg["basis"]["order"] + 1) ** 2
    records: dict[int, dict[int, object]] = {}
    with Reader(run) as reader:
        topics = {c.topic: c for c in reader.connections}
        record = topics["/agent_0/record"]
        assert record.msgtype == "std_msgs/msg/Float64MultiArray"
        # what `ros2 bag play` offers again: the record topic's own QoS, not the default
        (qos,) = record.ext.offered_qos_profiles
        assert (qos.reliability.name, qos.durability.name,
                qos.depth) == ("RELIABLE", "TRANSIENT_LOCAL", 100)
        assert record.digest == rosidl_hash("std_msgs", "Float64MultiArray")
        assert {f"/robot_{i}/pose" for i in range(AGENTS)} <= set(topics)
        for connection, _, raw in reader.messages():
            if not connection.topic.endswith("/record"):  # the metrics rows share the type
                continue
            msg = store.deserialize_cdr(raw, connection.msgtype)
            state = decode(np.asarray(msg.data), m, label=msg.layout.dim[0].label)
            assert connection.topic == f"/agent_{state.sender}/record"
            records.setdefault(state.iteration, {})[state.sender] = state
    # --bag-every-round: every round, none lost
    assert sorted(records) == list(range(ITERATIONS + 1))
    assert all(sorted(frame) == list(range(AGENTS)) for frame in records.values())
    # record by record: the bag holds what the recorder computed its rows from
    with open(run / "metrics.csv") as handle:
        rows = {int(r["iteration"]): float(r["consensus_error"]) for r in csv.DictReader(handle)}
    # rows stay every --log-every, with the last step and iterate K
    assert sorted(rows) == list(range(0, ITERATIONS, 2)) + [ITERATIONS - 1, ITERATIONS]
    for k, expected in rows.items():
        y = np.stack([records[k][i].y for i in range(AGENTS)])
        assert consensus_error(y) == pytest.approx(expected, rel=1e-12), k
    with np.load(run / "final_state.npz") as final:
        assert np.array_equal(np.stack([records[ITERATIONS][i].y for i in range(AGENTS)]),
                              final["y"])


def test_mcap_ros2_decodes_every_message_from_the_schemas_in_the_file(run):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    import yaml

    counts: dict[str, int] = {}
    with open(run / "run.mcap", "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, _, decoded in reader.iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            # what rosbag2's MCAP storage puts on a channel: the QoS offered, and the type's hash
            assert "offered_qos_profiles" in channel.metadata, channel.topic
            if channel.topic.endswith("/record"):
                assert channel.metadata["topic_type_hash"] == rosidl_hash("std_msgs",
                                                                          "Float64MultiArray")
            if channel.topic == "/agent_1/waypoint":
                assert decoded.header.frame_id == "map" and abs(decoded.pose.position.x) <= 1

    info = yaml.safe_load((run / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and info["relative_file_paths"] == ["run.mcap"]
    assert {t["topic_metadata"]["name"]: t["message_count"]
            for t in info["topics_with_message_count"]} == counts
    assert info["message_count"] == sum(counts.values())


def test_the_bag_holds_the_live_views_picture_as_ros_messages(run):
    """What `--live` serves, in the bag as ROS messages: Foxglove opens it, RViz replays it."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import get_typestore, Stores

    store = get_typestore(Stores.ROS2_JAZZY)
    cfg, base = load_config("demo")
    problem, arena = build_problem(cfg, base)[0], Arena.from_config(cfg)
    by_topic: dict[str, list] = {}
    states = {}
    with Reader(run) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, stamp, raw in reader.messages():
            msg = store.deserialize_cdr(raw, connection.msgtype)
            if connection.topic.endswith("/record"):
                state = decode(np.asarray(msg.data), problem.m)
                states[state.sender, state.iteration] = state
            else:
                by_topic.setdefault(connection.topic, []).append((stamp, msg))
    assert {topic: types[topic] for topic in TOPICS.values() if topic != "/swarm_log"} == {
        "/swarm_markers": "visualization_msgs/msg/MarkerArray",
        "/swarm_robots": "geometry_msgs/msg/PoseArray",
        "/target_density": "nav_msgs/msg/OccupancyGrid",
        "/learned_density": "nav_msgs/msg/OccupancyGrid",
        "/swarm_metrics": "std_msgs/msg/Float64MultiArray"}
    with open(run / "metrics.csv") as handle:
        rows = {int(r["iteration"]): r for r in csv.DictReader(handle)}
    round_at = {}
    for stamp, msg in by_topic["/swarm_metrics"]:
        k = int(msg.data[0])
        round_at[stamp] = k
        assert list(msg.data[1:]) == [float(rows[k][c]) for c in
                                      ("lower_grad_norm", "step_norm", "consensus_error", "kl")]
    assert sorted(round_at.values()) == sorted(rows)  # every row
    learned = dict(by_topic["/learned_density"])
    assert len(by_topic["/swarm_markers"]) >= 2
    heard = 0
    for stamp, markers in by_topic["/swarm_markers"]:
        k = round_at[stamp]  # the scene and its row share a time
        waypoints = sorted((m for m in markers.markers if m.ns == "waypoints"), key=lambda m: m.id)
        x_hat = np.array([states[i, k].x_hat for i in range(AGENTS)])
        assert np.allclose([[m.pose.position.x, m.pose.position.y] for m in waypoints],
                           arena.to_lab(x_hat), atol=1e-12), k
        # robots from their sampled poses: the first scenes may come before some robots' samples
        drawn = sum(m.ns == "robots" for m in markers.markers)
        assert heard <= drawn <= AGENTS, k  # a robot once heard stays drawn
        heard = drawn
        grid = learned[stamp]
        density = np.exp(problem.family.log_density(states[0, k].y[None]))[0]
        image = arena_raster(density, problem.family.grid.points, arena)[0]
        shown = density_from_occupancy(np.array(grid.data), grid.info.width, float(image.max()))
        assert np.abs(shown - image).max() <= image.max() / 200 + 1e-12, k
    assert len(by_topic["/target_density"]) == 1
    final = by_topic["/swarm_markers"][-1][1].markers  # round K's, once the robots were heard
    assert sum(m.ns == "robots" for m in final) == AGENTS
