# SPDX-License-Identifier: Apache-2.0
"""
Plan folders (bildmacro plan).

Self-contained, one robot's nodes each, and bad input refused in one line.
"""

import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image
import pytest

from bildmacro_ros.core.config import load_config
from bildmacro_ros.core.scenario import build_problem
from bildmacro_ros.dds_profiles import DDS_PROFILE_VARIABLES
from bildmacro_ros.launch_arguments import robot_launch_arguments
from bildmacro_ros.launch_plan import plan_swarm
from bildmacro_ros.plan_folder import read_plan, write_plan
from bildmacro_ros.protocol.parameters import AGENT_PARAMETERS, check_settings, REQUIRED
from bildmacro_ros.protocol.recorder import Recorder
from bildmacro_ros.protocol.wire import NeighbourState
from bildmacro_ros.scheduling import AGENT_SCHEDULING
from helpers import assert_same_run, bildmacro, STEPS, stop_as_it_starts


def plan(tmp_path, name="plan", **robots):
    cfg, base = load_config("demo", {"agents": 4, "iterations": 50})
    cfg = dict(cfg, robots=dict(cfg["robots"], **robots))
    write_plan(cfg, base, tmp_path / name)
    return cfg, base, tmp_path / name


def test_a_plan_folder_is_all_a_robot_needs_even_with_an_image_target(tmp_path, monkeypatch):
    for name in DDS_PROFILE_VARIABLES:  # a profile of the user's own would replace the plan's
        monkeypatch.delenv(name, raising=False)
    picture = np.full((40, 40), 255, dtype=np.uint8)
    picture[5:20, 5:20] = 0
    Image.fromarray(picture).save(tmp_path / "letter.png")
    (tmp_path / "cfg.yaml").write_text("agents: 4\niterations: 30\ntarget: {type: image, path: "
                                       "letter.png}\n")
    cfg, base = load_config(tmp_path / "cfg.yaml")
    expected = build_problem(cfg, base)[0].target
    write_plan(cfg, base, tmp_path / "made")
    # copied to a robot; the original and the picture are gone
    robot = tmp_path / "elsewhere" / "copy"
    shutil.copytree(tmp_path / "made", robot)
    shutil.rmtree(tmp_path / "made")
    (tmp_path / "letter.png").unlink()
    copy = read_plan(robot)
    assert (robot / "target.png").is_file()
    assert "path: target.png" in (robot / "config.yaml").read_text()
    assert Path(copy.config()["target"]["path"]) == robot / "target.png"  # read where the copy is
    nodes = copy.computer_nodes(2)
    assert [n.executable for n in nodes] == ["swarm_simulator", "follower", "agent"]
    assert [n.parameters["robot_ids"] for n in nodes[:2]] == [[2], [2]]
    agent = nodes[-1].parameters
    assert agent["checkpoint_dir"] == "robot_2/checkpoints"
    assert agent["outcome_dir"] == "robot_2/outcomes"
    assert agent["recorders"] == 1 and agent["record_every"] >= 1
    # the agent, started in its copy of the folder, finds the picture there
    cwd = os.getcwd()
    try:
        os.chdir(robot)
        defaults = {spec.name: spec.default_value for spec in AGENT_PARAMETERS
                    if spec.default_value is not REQUIRED}
        setup = check_settings(dict(defaults, **agent))  # as the node declares them
        problem, _ = build_problem(setup.config)
    finally:
        os.chdir(cwd)
    assert np.allclose(problem.target, expected)
    scenario = copy.scenario()
    assert np.allclose(scenario.x0[2], agent["initial_x"]) and scenario.weights.shape == (4, 4)
    env = copy.environment
    assert all(Path(env[name]) == robot / "fastdds.xml" for name in DDS_PROFILE_VARIABLES)
    assert (robot / "fastdds.xml").read_text().count("<maxMessageSize>1400</maxMessageSize>") == 1


def test_robots_of_your_own_get_a_follower_and_really_wait(tmp_path):
    _, _, folder = plan(tmp_path, simulator="external", wait=True)
    nodes = read_plan(folder).computer_nodes(1)
    assert [n.executable for n in nodes] == ["follower", "agent"]
    assert nodes[-1].parameters["wait_for_robot"] is True
    assert nodes[-1].parameters["deadline"] == 0.0
    _, _, alone = plan(tmp_path, "alone", simulator="none")
    assert [n.executable for n in read_plan(alone).computer_nodes(0)] == ["agent"]


def test_a_plan_without_a_recorder_has_agents_that_neither_wait_for_one_nor_record(tmp_path):
    res = bildmacro("plan", "--config", "demo", "--agents", 3, "--no-record", "--out",
                    tmp_path / "p")
    assert res.returncode == 0, res.stderr
    agent = read_plan(tmp_path / "p").computer_nodes(0)[-1].parameters
    assert agent["recorders"] == 0 and agent["record_every"] == 0
    res = bildmacro("record", "--plan", tmp_path / "p", "--out", tmp_path / "run")
    assert res.returncode == 2 and "--no-record" in res.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,message", [
    (["robot", "--plan", "{tmp}/nothing", "--id", "0"], "is not a plan folder"),
    (["robot", "--plan", "{tmp}/p", "--id", "9"], "this plan has robots 0..2"),
    (["record", "--plan", "{tmp}/nothing", "--out", "{tmp}/run"], "is not a plan folder"),
    (["plan", "--config", "demo", "--agents", "3", "--out", "{tmp}/p"], "already holds a plan"),
    (["plan", "--config", "demo", "--agents", "3", "--wait-for-robots", "--simulator", "none",
      "--out", "{tmp}/q"],
     "--wait-for-robots needs robots"),
    (["record", "--plan", "{tmp}/p", "--out", "{tmp}/run", "--stall-timeout", "-5"],
     "must be a finite number"),
])
def test_bad_input_of_the_deployment_commands_is_one_line_and_exit_2(tmp_path, args, message):
    assert bildmacro("plan", "--config", "demo", "--agents", 3, "--out",
                     tmp_path / "p").returncode == 0
    res = bildmacro(*[a.format(tmp=tmp_path) for a in args])
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and sum("error" in line
                                                 for line in res.stderr.splitlines()) == 1


def test_robot_launch_arguments_are_checked():
    assert robot_launch_arguments("/tmp/p", "3", "true")[1:] == (3, True, 30.0)
    assert robot_launch_arguments("/tmp/p", "3", settle="2.5")[3] == 2.5
    with pytest.raises(ValueError, match="settle:=-1 must be between 0 and 3600"):
        robot_launch_arguments("/tmp/p", "3", settle="-1")
    with pytest.raises(ValueError, match="id:= is required"):
        robot_launch_arguments("/tmp/p", "")
    with pytest.raises(ValueError, match="not a whole number"):
        robot_launch_arguments("/tmp/p", "three")


def test_a_plans_nodes_get_the_dds_profile_unless_the_user_set_one(tmp_path, monkeypatch):
    _, _, folder = plan(tmp_path)
    for name in DDS_PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = read_plan(folder).environment
    assert all(env[name] == str(folder.resolve() / "fastdds.xml")
               for name in DDS_PROFILE_VARIABLES)
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", "/etc/my.xml")
    mine = read_plan(folder).environment
    assert not set(DDS_PROFILE_VARIABLES) & set(mine) and mine["OPENBLAS_NUM_THREADS"] == "1"
    # a robot's agent, alone on its computer, is no batch job (launch_plan.schedule_agent)
    assert AGENT_SCHEDULING not in env and AGENT_SCHEDULING not in mine
    # and so do a swarm's on one machine
    assert not set(DDS_PROFILE_VARIABLES) & set(plan_swarm(*load_config("demo")).environment)


def record(sender, k):
    one = np.zeros(1)
    return NeighbourState(k, sender, np.zeros(2), np.zeros(2), one, one, one)


def test_a_standalone_recorder_takes_a_silent_agent_as_gone_and_back_and_says_it_is_stale(problem):
    recorder = Recorder(problem, STEPS, agents=3, iterations=10, log_every=1)
    for k in range(4):
        for i in range(3):
            recorder.add(record(i, k), now=float(k))
    assert recorder.silent(now=5.0, after=10.0) == []
    for k in range(4, 8):  # agent 2 goes quiet after round 3
        for i in range(2):
            recorder.add(record(i, k), now=float(k))
    # everyone quiet: a stalled swarm has not left
    assert recorder.silent(now=20.0, after=10.0) == []
    assert recorder.silent(now=15.0, after=10.0) == [2]
    assert recorder.behind == [2]
    recorder.leave(2)
    # away, agent 2 is neither waited for nor named as behind
    assert recorder.progress == 7 and recorder.stale == {2: 3} and recorder.behind == [0, 1]
    recorder.add(record(0, 8), now=15.5)
    assert recorder.progress == 7 and recorder.behind == [1]
    for i in range(2):
        recorder.add(record(i, 10), now=16.0)
    assert recorder.complete and recorder.final()[0] == 10 and recorder.stale == {2: 3}
    recorder.rejoin(2)
    # back before the end: no longer stands in with an old record
    recorder.add(record(2, 8), now=17.0)
    assert recorder.stale == {}


def planned(tmp_path, agents: int, iterations: int, log_every: int,
            simulator: str, *extra) -> tuple[Path, Path]:
    """
    Make a plan folder with `bildmacro plan`.

    Return it and the run folder its recorder will write.
    """
    made = bildmacro("plan", "--config", "demo", "--agents", agents, "--iterations", iterations,
                     "--log-every", log_every, "--simulator", simulator, "--out",
                     tmp_path / "plan", *extra)
    assert made.returncode == 0, made.stderr
    return tmp_path / "plan", tmp_path / "run"


def start(*args) -> subprocess.Popen:
    """Start `bildmacro ARGS` in the background, with SIGINT as a terminal user has it."""
    return subprocess.Popen([sys.executable, "-m", "bildmacro_ros.cli", *map(str, args)],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_processes")
def test_robots_started_one_by_one_from_a_plan_drive_their_robots_and_equal_simulate(tmp_path):
    # TurtleBot3s (TwistStamped, no command timeout, wheel odometry from where each is placed)
    plan_dir, run = planned(tmp_path, 3, 80, 1, "embedded", "--family", "turtlebot3",
                            "--radius", 0)
    recorder = start("record", "--plan", plan_dir, "--out", run, "--quiet", "--no-plots")
    robots = [start("robot", "--plan", plan_dir, "--id", i) for i in range(3)]
    try:
        said = [proc.communicate(timeout=120)[0] for proc in robots]
        recorded = recorder.communicate(timeout=60)[0]
    finally:
        for proc in robots + [recorder]:
            proc.kill()
    assert [proc.returncode for proc in robots] == [0, 0, 0], said
    assert all("agent finished at round 80/80" in text and "robot at its last waypoint" in text
               for text in said), said
    assert all(f"robot {i}: place it at x = " in text for i, text in enumerate(said)), said
    assert recorder.returncode == 0, recorded
    assert "recording of a swarm of 3 agents finished" in recorded, recorded
    ref = tmp_path / "simulate"
    res = bildmacro("simulate", "--config", "demo", "--agents", 3, "--iterations", 80,
                    "--log-every", 1, "--out", ref, "--no-plots", "--quiet")
    assert res.returncode == 0, res.stderr
    assert_same_run(ref, run)
    with np.load(run / "robots.npz") as robots_data:  # the recorder measured the robots, settled
        assert robots_data["error"].max() <= 0.02


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_processes")
def test_a_robot_whose_agent_process_hangs_restarts_it_and_the_swarm_finishes(tmp_path):
    plan_dir, run = planned(tmp_path, 2, 200, 10, "none")
    recorder = start("record", "--plan", plan_dir, "--out", run, "--quiet", "--no-plots")
    robots = [start("robot", "--plan", plan_dir, "--id", i, "--hang-timeout", 4)
              for i in range(2)]
    try:
        frozen = stop_as_it_starts(plan_dir, "agent_1")
        said = [proc.communicate(timeout=120)[0] for proc in robots]
        recorded = recorder.communicate(timeout=60)[0]
    finally:
        for proc in robots + [recorder]:
            proc.kill()
    assert [proc.returncode for proc in robots] == [0, 0], said
    assert "robot 1: restarted its agent's process" in said[1], said
    assert "restarted" not in said[0], said
    assert all("agent finished at round 200/200" in text for text in said), said
    assert recorder.returncode == 0 and "finished" in recorded, recorded
    assert not os.path.exists(f"/proc/{frozen}")


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_processes")
def test_ctrl_c_stops_a_recorder_and_a_robot_with_their_work_kept(tmp_path):
    plan_dir, run = planned(tmp_path, agents=2, iterations=30000, log_every=10, simulator="none")
    procs = [start("record", "--plan", plan_dir, "--out", run, "--quiet", "--no-plots")]
    procs += [start("robot", "--plan", plan_dir, "--id", i) for i in range(2)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
                (run / "metrics.csv").is_file()
                and len((run / "metrics.csv").read_text().splitlines()) > 20):
            time.sleep(0.1)
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        said = [proc.communicate(timeout=60)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [130, 130, 130], said
    assert "interrupted" in said[0] and all("agent interrupted at round" in text
                                            for text in said[1:]), said
    assert len((run / "metrics.csv").read_text().splitlines()) > 20
    assert (run / "final_state.npz").is_file()
    for i in range(2):  # each robot kept its agent's round for a resume
        with np.load(plan_dir / f"robot_{i}" / "checkpoints" / f"agent_{i}.npz") as checkpoint:
            assert int(checkpoint["iteration"]) > 200
