# SPDX-License-Identifier: Apache-2.0
"""The launch plan both front ends share: graph, weights, per-agent parameters, seeds."""

import json
import os
from pathlib import Path
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import yaml

from bildmacro_ros.cli import main as cli_main
from bildmacro_ros.core.config import validate
from bildmacro_ros.core.graph import is_strongly_connected
from bildmacro_ros.core.scenario import build_scenario
from bildmacro_ros.dds_profiles import DDS_PROFILE_VARIABLES, discovery_port
from bildmacro_ros.entry import EXECUTABLES
from bildmacro_ros.launch_arguments import launch_arguments, plan_from_arguments
from bildmacro_ros.launch_plan import missing_executables, params_file_content, plan_swarm
from bildmacro_ros.options import options_of
from bildmacro_ros.scene import graph_edges
from bildmacro_ros.scheduling import AGENT_CPU, agent_cpus, AGENT_SCHEDULING

ROOT = Path(__file__).resolve().parents[2]


def weights_from_parameters(plan):
    n = len(plan.agents)
    w = np.zeros((n, n))
    for spec in plan.agents:
        p = spec.parameters
        w[p["agent_id"], p["agent_id"]] = p["self_weight"]
        w[p["agent_id"], p["neighbours"]] = p["neighbour_weights"]
    return w


@pytest.mark.parametrize("agents,p,seed", [(2, 1.0, 0), (12, 0.5, 3), (40, 0.15, 7)])
def test_plan_graph(agents, p, seed):
    graph = {"type": "erdos_renyi", "edge_probability": p}
    plan = plan_swarm(validate({"agents": agents, "seed": seed, "graph": graph}))
    w = weights_from_parameters(plan)
    assert np.allclose(w, plan.weights, atol=0)  # the parameters are the weights, exactly
    assert np.allclose(w.sum(axis=0), 1, atol=1e-12) and np.allclose(w.sum(axis=1), 1, atol=1e-12)
    assert is_strongly_connected(w > 0)
    for spec in plan.agents:
        i, near = spec.parameters["agent_id"], spec.parameters["neighbours"]
        assert near, "no agent may have an empty neighbour list"
        assert near == sorted(near) and i not in near
        for j in near:  # undirected ER: the lists are symmetric
            assert i in plan.agents[j].parameters["neighbours"]
        assert spec.parameters["listeners"] == len(near)
        assert len(spec.parameters["initial_y"]) == 49 and len(spec.parameters["initial_x"]) == 2
        assert spec.name == f"agent_{i}"


def test_plan_seeds_reproduce():
    a = plan_swarm(validate({"agents": 10, "seed": 5}))
    b = plan_swarm(validate({"agents": 10, "seed": 5}))
    c = plan_swarm(validate({"agents": 10, "seed": 6}))
    assert [s.parameters for s in a.agents] == [s.parameters for s in b.agents]
    assert [s.parameters for s in a.agents] != [s.parameters for s in c.agents]


def test_groups_and_params_file():
    plan = plan_swarm(validate({"agents": 7}), agents_per_process=3, namespace="/swarm",
                      recorders=1)
    assert [s.parameters["agent_ids"] for s in plan.processes] == [[0, 1, 2], [3, 4, 5], [6]]
    assert all(s.executable == "agent_group" and s.namespace == "/swarm" for s in plan.processes)
    doc = yaml.safe_load(params_file_content(plan))
    assert sorted(doc) == sorted([f"/swarm/agent_{i}" for i in range(7)]
                                 + [f"/swarm/agent_group_{g}" for g in range(3)]
                                 + ["/swarm/swarm_simulator", "/swarm/waypoint_follower"])
    assert doc["/swarm/agent_3"]["ros__parameters"] == plan.agents[3].parameters
    # agent 3 is read by one subscription per other process holding one of its neighbours
    groups = [set(s.parameters["agent_ids"]) for s in plan.processes]
    near = set(plan.agents[3].parameters["neighbours"])
    others = [g for g in groups if 3 not in g and g & near]
    assert plan.agents[3].parameters["listeners"] == len(others)
    # with a recorder, agents wait for it and publish records at its logging rate (~K/1000)
    assert plan.agents[3].parameters["recorders"] == 1
    assert plan.agents[3].parameters["record_every"] == 20  # K = 20000
    assert plan_swarm(validate({"agents": 7})).agents[3].parameters["record_every"] == 0


def test_plan_from_launch_arguments():
    plan, cfg = plan_from_arguments(agents="12", seed="3", edge_probability="0.6", iterations="50")
    assert len(plan.agents) == 12 and cfg["seed"] == 3 and cfg["iterations"] == 50
    assert cfg["graph"]["edge_probability"] == 0.6
    assert plan.agents[0].parameters["iterations"] == 50
    with pytest.raises(ValueError, match="agents:='twelve' is not a whole number"):
        plan_from_arguments(agents="twelve")
    with pytest.raises(ValueError, match="edge_probability"):
        plan_from_arguments(edge_probability="1.5")


def test_launch_file_is_a_thin_adapter():
    """Every launch argument is declared with a description, from the table the plan reads."""
    source = (ROOT / "launch" / "swarm.launch.py").read_text()
    assert "sys.argv" not in source
    assert "ARGUMENTS = launch_arguments()" in source
    declared = launch_arguments()
    assert set(declared) == {option.name for option in options_of("launch")}
    assert all(text for _, text in declared.values())
    with pytest.raises(ValueError, match="unknown launch arguments: agnets"):
        plan_from_arguments(agnets="3")
    assert "OpaqueFunction(function=launch_setup)" in source


def test_robot_nodes_follow_the_config():
    plan = plan_swarm(validate({"agents": 6, "seed": 1}), visualiser=True)
    by_name = {spec.name: spec for spec in plan.robots}
    assert set(by_name) == {"swarm_simulator", "waypoint_follower", "visualiser"}
    poses = np.array(by_name["swarm_simulator"].parameters["initial_poses"]).reshape(-1, 3)
    # every robot starts at its agent's x_i^0
    assert np.array_equal(poses[:, :2], plan.scenario.x0)
    assert by_name["waypoint_follower"].parameters["robot_ids"] == list(range(6))
    # followers stop within half the tolerance a waiting agent needs, so a stopped robot always
    # satisfies it
    follower, agent = by_name["waypoint_follower"].parameters, plan.agents[0].parameters
    assert follower["tolerance"] == agent["arrival_tolerance"] / 2
    flat = by_name["visualiser"].parameters["edges"]
    assert list(zip(flat[0::2], flat[1::2])) == graph_edges(plan.weights)
    # the default runs ahead
    assert not any(spec.parameters["wait_for_robot"] for spec in plan.agents)

    kinds = {sim: [(s.package, s.executable) for s in plan_swarm(validate(
        {"agents": 4,
         "robots": {"simulator": sim, "wait": True}})).robots]
             for sim in ("turtlesim", "gazebo", "none")}
    assert kinds["turtlesim"] == [("turtlesim", "turtlesim_node"),
                                  ("bildmacro_ros", "turtlesim_bridge"),
                                  ("bildmacro_ros", "follower")]
    # the world brings robot_<i>/cmd_vel and odom
    assert kinds["gazebo"] == [("bildmacro_ros", "follower")]
    assert kinds["none"] == []
    waiting = plan_swarm(validate({"agents": 4, "robots": {"wait": True}}))
    assert all(spec.parameters["wait_for_robot"] for spec in waiting.agents)
    # an agent with a robot waits for its follower before round 0, as for its listeners
    assert all(spec.parameters["followers"] == 1 for spec in waiting.agents)
    nobody = plan_swarm(validate({"agents": 4, "robots": {"wait": True, "simulator": "none"}}))
    assert all(spec.parameters["followers"] == 0 for spec in nobody.agents)
    # no robot to wait for
    assert not any(spec.parameters["wait_for_robot"] for spec in nobody.agents)


def test_robot_launch_arguments():
    plan, cfg = plan_from_arguments(agents="4", simulator="gazebo", wait_for_robots="true",
                                    rviz="true", record="/tmp/never")
    assert cfg["robots"]["simulator"] == "gazebo" and cfg["robots"]["wait"] is True
    assert [s.executable for s in plan.robots] == ["gz"] + ["create"] * 4 + [
        "parameter_bridge", "follower", "visualiser"]
    with pytest.raises(ValueError, match="robots.simulator"):
        plan_from_arguments(simulator="webots")
    with pytest.raises(ValueError, match="rviz:='maybe' must be true or false"):
        plan_from_arguments(rviz="maybe")


def test_bodies_reach_the_simulator_and_every_follower_with_the_whole_swarm():
    plan, cfg = plan_from_arguments(agents="4", radius="0.05", safety="false")
    assert cfg["robots"]["radius"] == 0.05 and cfg["robots"]["safety"] is False
    simulator, follower = plan.robots
    assert simulator.parameters["radius"] == 0.05
    assert follower.parameters["radius"] == 0.05 and follower.parameters["safety"] is False
    assert follower.parameters["swarm_ids"] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="robots.radius"):
        plan_from_arguments(radius="-1")
    with pytest.raises(ValueError, match="safety:='sometimes' must be true or false"):
        plan_from_arguments(safety="sometimes")


def test_setup_declares_every_executable():
    source = (ROOT / "setup.py").read_text()
    declared = dict(line.strip().strip('",').split(" = ") for line in source.splitlines()
                    if " = bildmacro_ros." in line)
    assert declared == {name: f"bildmacro_ros.entry:{name}" for name in EXECUTABLES}
    from bildmacro_ros import entry
    for name, target in EXECUTABLES.items():  # each runs a function its module defines
        module, function = target.split(":")
        assert getattr(entry, name).args == (name,)
        source = ROOT.joinpath(*module.split(".")).with_suffix(".py").read_text()
        assert f"\ndef {function}(" in source, target


def test_swarm_refuses_simulators_it_cannot_start(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("robots: {simulator: turtlesim}\n")
    code = cli_main(["swarm", "--agents", "3", "--iterations", "5", "--config",
                     str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")])
    assert code == 2
    assert "needs a ROS install" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_launch_checks_every_executable_before_it_starts_any():
    plan, _ = plan_from_arguments(agents="4", simulator="turtlesim", rviz="true",
                                  record="/tmp/run")
    installed = {("bildmacro_ros", exe) for exe in EXECUTABLES}
    assert missing_executables(plan, lambda package, exe: (package, exe) in installed) == [
        "rviz2/rviz2", "tf2_ros/static_transform_publisher", "turtlesim/turtlesim_node"]
    assert missing_executables(plan, lambda package, exe: True) == []
    assert {spec.executable for spec in plan.nodes()} == {
        "turtlesim_node", "turtlesim_bridge", "follower", "visualiser", "agent", "recorder",
        "rviz2", "static_transform_publisher"}


def test_rviz_gets_a_map_frame_at_the_arena():
    plan, _ = plan_from_arguments(agents="4", rviz="true", arena_centre="3,1.5",
                                  arena_rotation="0.5", namespace="team")
    (frame,) = [s for s in plan.viewers if s.package == "tf2_ros"]
    # static_transform_publisher's named arguments (ros2/geometry2, Jazzy and Humble)
    words = dict(zip(frame.arguments[0::2], frame.arguments[1::2]))
    assert words == {"--x": "3.0", "--y": "1.5", "--yaw": "0.5", "--frame-id": "map",
                     "--child-frame-id": "arena"}
    assert frame.namespace == "/team" and plan.viewers[-1].executable == "rviz2"
    plain, _ = plan_from_arguments(agents="4")
    assert plain.viewers == []


def test_a_recorded_launch_records_like_bildmacro_swarm(tmp_path):
    plan, cfg = plan_from_arguments(agents="4", iterations="300", record=str(tmp_path / "run"))
    recorder = plan.recorder
    assert recorder.executable == "recorder"
    assert recorder.parameters["out"] == str(tmp_path / "run")
    # K / 1000 rounded up
    assert recorder.parameters["log_every"] == plan.agents[0].parameters["record_every"] == 1
    assert plan.agents[2].parameters["checkpoint_dir"] == str(tmp_path / "run" / "checkpoints")
    assert plan.agents[2].parameters["outcome_dir"] == str(tmp_path / "run" / "outcomes")
    # the same thread environment as bildmacro swarm
    assert plan.environment["OPENBLAS_NUM_THREADS"] == "1"
    # parameter services on by default
    assert "BILDMACRO_PARAMETER_SERVICES" not in plan.environment
    quiet, _ = plan_from_arguments(agents="4", parameter_services="false")
    assert quiet.environment["BILDMACRO_PARAMETER_SERVICES"] == "0" and quiet.recorder is None


def test_agent_groups_have_unique_node_names():
    plan = plan_swarm(validate({"agents": 7}), agents_per_process=3)
    assert [spec.ros_arguments for spec in plan.processes] == [
        ["-r", f"agent_group:__node:=agent_group_{g}"] for g in range(3)]
    doc = yaml.safe_load(params_file_content(plan))
    assert doc["/agent_group_1"]["ros__parameters"]["agent_ids"] == [3, 4, 5]


def test_a_live_launch_has_its_recorder_serve_the_view_and_needs_one(tmp_path):
    plan, _ = plan_from_arguments(agents="4", record=str(tmp_path / "run"), live="true")
    assert plan.recorder.parameters["live"] is True
    assert plan_from_arguments(agents="4", record=str(tmp_path / "run2"))[0].recorder \
        .parameters["live"] is False
    with pytest.raises(ValueError, match=r"live:=true needs record:=DIR"):
        plan_from_arguments(agents="4", live="true")


def test_a_launch_refuses_to_record_over_an_earlier_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    plan_from_arguments(agents="4", record=str(run))  # an empty folder will do
    (run / "metrics.csv").write_text("iteration\n")
    with pytest.raises(ValueError, match=r"record:=.* already holds metrics.csv"):
        plan_from_arguments(agents="4", record=str(run))
    assert (run / "metrics.csv").read_text() == "iteration\n"  # untouched
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="already holds a file"):
        plan_from_arguments(agents="4", record=str(tmp_path / "file"))


def test_every_command_a_plan_suggests_exists_in_the_install_it_names(tmp_path, capsys):
    import re

    from bildmacro_ros.cli import build_parser

    assert cli_main(["plan", "--agents", "3", "--iterations", "5", "--out",
                     str(tmp_path / "plan")]) == 0
    # "  first, on any computer:  CMD" and "    (on a ROS install:     CMD)"
    commands = [m.group(1).replace("RUN", "run").replace(" i", " 0").replace(":=i", ":=0")
                for m in re.finditer(r":[ ]{2,}(\S.*?)\)?$", capsys.readouterr().out, re.M)]
    assert len(commands) == 4, commands
    for command in commands:
        words = command.split()
        if words[0] == "bildmacro":  # a pip install's command line
            build_parser().parse_args(words[1:])
        elif words[:3] == ["ros2", "run", "bildmacro_ros"]:  # a colcon install's executable
            assert words[3] in EXECUTABLES
            build_parser().parse_args(words[4:])
        else:
            assert words[:3] == ["ros2", "launch", "bildmacro_ros"], command
            assert (ROOT / "launch" / words[3]).is_file()


def test_a_swarm_on_one_machine_gets_the_short_lease_unless_the_user_set_a_profile(monkeypatch):
    for name in DDS_PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    cfg = validate({"agents": 3, "iterations": 10})
    env = plan_swarm(cfg).environment
    assert {env[name] for name in DDS_PROFILE_VARIABLES} == {
        str(ROOT / "config" / "fastdds_one_machine.xml")}
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    # what Fast DDS reads: a participant profile, the default one, with a 5 s lease announced
    # every second (five announcements lost in a row end a live process's lease)
    ns = {"p": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ElementTree.parse(env["FASTRTPS_DEFAULT_PROFILES_FILE"]).getroot()
    (profile,) = root.findall("p:participant", ns)
    assert profile.get("is_default_profile") == "true"
    discovery = profile.find("p:rtps/p:builtin/p:discovery_config", ns)
    assert discovery.find("p:leaseDuration/p:sec", ns).text == "5"
    assert discovery.find("p:leaseAnnouncement/p:sec", ns).text == "1"
    # and a default writer profile that asks for acknowledgements every 50 ms, not with every
    # message, and suppresses re-sends for 50 ms, not 0 (each woke every process per message)
    (writer,) = root.findall("p:data_writer", ns)
    assert writer.get("is_default_profile") == "true"
    assert writer.find("p:qos/p:disable_heartbeat_piggyback", ns).text == "true"
    for period in ("heartbeatPeriod", "nackSupressionDuration"):
        assert writer.find(f"p:times/p:{period}/p:sec", ns).text == "0"
        assert writer.find(f"p:times/p:{period}/p:nanosec", ns).text == "50000000"
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/mine.xml")
    assert not set(DDS_PROFILE_VARIABLES) & set(plan_swarm(cfg).environment)


def test_a_runs_profile_lists_the_discovery_ports_beyond_rmws_first_32(monkeypatch, tmp_path):
    """
    rmw_fastrtps's LOCALHOST discovery announces to the first 32 participants' ports only.

    A run's own copy of the profile lists the ports after those as initial peers, for twice its
    processes: its participants find each other however many there are on the machine.
    """
    for name in DDS_PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    cfg = validate({"agents": 40, "iterations": 10})
    plan = plan_swarm(cfg, recorders=1, run_dir=tmp_path, agents_per_process=4)
    path = str(tmp_path / "fastdds_one_machine.xml")
    assert {plan.environment[name] for name in DDS_PROFILE_VARIABLES} == {path}
    ns = {"p": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ElementTree.fromstring(plan.files[path])
    (profile,) = root.findall("p:participant", ns)
    peers = profile.findall("p:rtps/p:builtin/p:initialPeersList/p:locator/p:udpv4", ns)
    assert {peer.find("p:address", ns).text for peer in peers} == {"127.0.0.1"}
    # ten groups of four, the robots' processes and the launcher's
    participants = len(plan.processes) + len(plan.robots) + 1
    assert len(plan.processes) == 10 and participants > 10
    # slot 32 of domain 42 hears on 7400 + 250 * 42 + 10 + 2 * 32, and so on
    assert [int(peer.find("p:port", ns).text) for peer in peers] == \
        [17910 + 64 + 2 * slot for slot in range(2 * participants)]
    assert discovery_port(42, 32) == 17974
    # the rest is the shipped profile's, untouched
    discovery = profile.find("p:rtps/p:builtin/p:discovery_config", ns)
    assert discovery.find("p:leaseDuration/p:sec", ns).text == "5"
    (writer,) = root.findall("p:data_writer", ns)
    assert writer.find("p:qos/p:disable_heartbeat_piggyback", ns).text == "true"
    assert plan_swarm(cfg).files == {}  # without a run folder, the shipped profile
    # ros2 launch: in the record:= folder, or without one in the launch's scratch folder
    for scratch, record in ((tmp_path / "scratch", ""), (None, str(tmp_path / "run"))):
        plan, _ = plan_from_arguments(scratch, agents="3", record=record)
        written = (scratch or tmp_path / "run") / "fastdds_one_machine.xml"
        assert plan.environment["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(written)
        assert "<initialPeersList>" in plan.files[str(written)]


def test_a_sparse_graph_reaches_the_nodes_as_dense_rows():
    cfg = validate({"agents": 12, "seed": 4, "graph": {"type": "geometric", "radius": 1.2}})
    plan = plan_swarm(cfg)
    sparse_weights = build_scenario(cfg).weights
    assert isinstance(plan.scenario.weights, np.ndarray)
    assert np.array_equal(plan.scenario.weights, sparse_weights.toarray())
    assert np.array_equal(weights_from_parameters(plan), sparse_weights.toarray())


SCHEDULED = """
import json, os, sys, threading
from bildmacro_ros.scheduling import schedule_agent
became = schedule_agent()
seen = []
thread = threading.Thread(target=lambda: seen.append((os.sched_getscheduler(0),
                                                      sorted(os.sched_getaffinity(0)))))
thread.start()
thread.join()
batch = os.sched_getscheduler(0) == os.SCHED_BATCH
print(json.dumps([became, batch, seen[0][0] == os.SCHED_BATCH, sorted(os.sched_getaffinity(0)),
                  seen[0][1]]))
"""


def scheduled(asked: str | None, cpu: str | None = None) -> tuple[list, str]:
    """Run SCHEDULED with these choices; return what it printed and its stderr."""
    env = {name: value for name, value in os.environ.items()
           if name not in (AGENT_SCHEDULING, AGENT_CPU)}
    env.update({name: value for name, value in ((AGENT_SCHEDULING, asked), (AGENT_CPU, cpu))
                if value is not None})
    res = subprocess.run([sys.executable, "-c", SCHEDULED], env=env, cwd=ROOT, text=True,
                         capture_output=True, check=True)
    return json.loads(res.stdout), res.stderr


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux's scheduling policies")
@pytest.mark.parametrize("asked,batch", [("pinned", True), ("batch", True), ("normal", False),
                                         (None, False)])
def test_an_agent_process_runs_as_a_batch_job_when_its_swarm_asks(monkeypatch, asked, batch):
    allowed = sorted(os.sched_getaffinity(0))
    became, policy, thread_policy, cpus, thread_cpus = scheduled(asked)[0]
    # the process, and a thread it starts after (as rclpy's and DDS's are)
    assert [became, policy, thread_policy] == [batch] * 3
    assert cpus == thread_cpus == allowed  # no CPU named: left free
    # a swarm on one machine asks for it, unless the user chose for it
    monkeypatch.delenv(AGENT_SCHEDULING, raising=False)
    assert plan_swarm(validate({"agents": 3})).environment[AGENT_SCHEDULING] == "pinned"
    monkeypatch.setenv(AGENT_SCHEDULING, "normal")
    assert plan_swarm(validate({"agents": 3})).environment[AGENT_SCHEDULING] == "normal"
    monkeypatch.setenv(AGENT_SCHEDULING, "fast")
    with pytest.raises(ValueError, match="BILDMACRO_AGENT_SCHEDULING='fast': choose one of "
                                         "pinned, batch, normal"):
        plan_swarm(validate({"agents": 3}))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux's CPU affinity")
def test_a_pinned_agent_process_and_its_later_threads_stay_on_their_cpu():
    allowed = sorted(os.sched_getaffinity(0))
    last = str(allowed[-1])
    became, policy, _, cpus, thread_cpus = scheduled("pinned", last)[0]
    assert became and policy and cpus == thread_cpus == [allowed[-1]]
    # only when pinned: a batch job named a CPU stays free
    assert scheduled("batch", last)[0][3] == allowed
    # a CPU it may not use: one warning, still a batch job, free
    (became, policy, _, cpus, _), err = scheduled("pinned", str(max(allowed) + 4096))
    assert became and policy and cpus == allowed
    assert "BILDMACRO_AGENT_CPU" in err and "not kept on that CPU" in err


def test_pinned_agent_processes_take_the_cpus_in_turn_once_they_fill_them():
    assert agent_cpus(5, {0, 1}) == [0, 1, 0, 1, 0]
    assert agent_cpus(2, {0, 1}) == [0, 1]
    assert agent_cpus(4, {7, 2, 5}) == [2, 5, 7, 2]  # in the CPUs' order
    # fewer processes than CPUs: each would have its own, and its DDS threads no idle one
    assert agent_cpus(3, range(4)) == [None] * 3
    assert agent_cpus(2, set()) == [None, None]


def test_a_swarm_plan_names_each_agent_process_its_cpu(monkeypatch):
    monkeypatch.delenv(AGENT_SCHEDULING, raising=False)
    allowed = sorted(os.sched_getaffinity(0))
    count = 2 * len(allowed) + 1
    for per_process, processes in ((1, count), (2, -(-count // 2))):
        plan = plan_swarm(validate({"agents": count}), agents_per_process=per_process)
        expected = agent_cpus(processes, allowed)
        assert [spec.environment.get(AGENT_CPU) for spec in plan.processes] == \
            [None if cpu is None else str(cpu) for cpu in expected]
        assert AGENT_CPU not in plan.environment  # the process's own, not every node's
    monkeypatch.setenv(AGENT_SCHEDULING, "batch")
    plan = plan_swarm(validate({"agents": count}))
    assert all(AGENT_CPU not in spec.environment for spec in plan.processes)
