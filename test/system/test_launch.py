# SPDX-License-Identifier: Apache-2.0
"""
`swarm.launch.py` run through the launch API (LaunchService), as `ros2 launch` runs it.

It ends by itself with exit 0, a SIGINT mid-run stops every node with exit 0 and keeps a complete
record, a failing argument or a missing package starts no process, and the run equals `bildmacro
simulate`. These tests need launch, launch_ros and this package built into an ament prefix
(`colcon build`), so they run under `colcon test` on a ROS install and skip where those are
missing (a pip install: launch and launch_ros are not on PyPI).
"""

import json
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from bildmacro_ros.protocol.outcome import process_cpus, process_scheduling
from bildmacro_ros.ros.bag import read_messages
from bildmacro_ros.scheduling import agent_cpus
from helpers import assert_same_run, bildmacro, node_pids, outcomes, ROOT


def _why_not_runnable() -> str | None:
    try:
        from ament_index_python.packages import get_package_prefix
        import launch
        import launch_ros  # noqa: F401
    except ImportError as exc:
        return f"launch and launch_ros are not installed here ({exc.name}): they come with a " \
               "ROS install"
    if not hasattr(launch, "LaunchService"):  # PyPI's unrelated package named launch
        return "the `launch` installed here is not ROS 2's launch"
    try:
        prefix = Path(get_package_prefix("bildmacro_ros"))
    except Exception:  # noqa: BLE001 - PackageNotFoundError
        return "bildmacro_ros is not built into an ament prefix here (colcon build)"
    if not (prefix / "lib" / "bildmacro_ros" / "agent").is_file():
        return f"bildmacro_ros's executables are not installed under {prefix}/lib (colcon build)"
    return None


REASON = _why_not_runnable()
pytestmark = [pytest.mark.ros, pytest.mark.slow,
              pytest.mark.skipif(REASON is not None, reason=REASON or ""),
              pytest.mark.usefixtures("no_leftover_processes")]

# `ros2 launch bildmacro_ros swarm.launch.py ARGS`, through the launch API
PROGRAM = """
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
arguments = [tuple(a.split(":=", 1)) for a in sys.argv[2:]]
service = LaunchService()
service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=arguments)]))
sys.exit(service.run())
"""
LAUNCH_FILE = ROOT / "launch" / "swarm.launch.py"
SMALL = ["config:=demo", "agents:=5", "seed:=2"]


def start_launch(*arguments, log: Path, launch_file: Path = LAUNCH_FILE) -> subprocess.Popen:
    # its own process group, as a terminal gives a command; SIGINT as a terminal user has it
    return subprocess.Popen([sys.executable, "-c", PROGRAM, str(launch_file), *arguments],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finish(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def assert_complete_record(out: Path, agents: int) -> int:
    """
    Check that the record folder holds the run, every file `bildmacro swarm` writes, readable.

    Return K.
    """
    for name in ("final_state.npz", "metrics.csv", "snapshots.npz", "config.yaml", "weights.npy",
                 "initial_state.npz", "agents.params.yaml", "robots.npz", "convergence.png",
                 "snapshots.png"):
        assert (out / name).is_file(), name
    assert any((out / "logs").iterdir()) and sorted(outcomes(out)) == list(range(agents))
    with np.load(out / "final_state.npz") as final:
        assert np.all(np.isfinite(final["y"]))
        reached = int(final["iteration"])
    bag = [(topic, msg) for topic, _, msg in read_messages(out / "run.mcap")]  # a readable bag
    assert {f"/agent_{i}/waypoint" for i in range(agents)} <= {topic for topic, _ in bag}
    records = {(topic, int(msg.data[0])) for topic, msg in bag if topic.endswith("/record")}
    # the final state's records
    assert all((f"/agent_{i}/record", reached) in records for i in range(agents))
    return reached


def test_a_launch_ends_by_itself_and_computes_what_simulate_computes(tmp_path):
    out, log = tmp_path / "launched", tmp_path / "launch.log"
    leftovers = set(Path(tempfile.gettempdir()).glob("bildmacro-launch-*"))
    code = finish(start_launch(*SMALL, "iterations:=150", f"record:={out}", log=log), timeout=180)
    assert code == 0, log.read_text()[-3000:]
    assert assert_complete_record(out, 5) == 150
    reports = outcomes(out)
    assert all(r.finished and r.rounds == 150 for r in reports.values())
    # each agent process kept on its CPU, as bildmacro swarm keeps them: the plan's environment
    allowed = sorted(os.sched_getaffinity(0))
    assert [reports[i].cpus for i in range(5)] == [allowed if cpu is None else [cpu]
                                                   for cpu in agent_cpus(5, allowed)]
    assert {r.scheduling for r in reports.values()} == {"batch"}
    summary = json.loads((out / "summary.json").read_text())  # as bildmacro swarm writes it
    assert summary["iterations"] == 150 and summary["agents"] == 5, summary
    ref = tmp_path / "simulate"
    res = bildmacro("simulate", "--config", "demo", "--agents", 5, "--iterations", 150,
                    "--log-every", 1, "--init", out / "initial_state.npz", "--weights",
                    out / "weights.npy", "--out", ref, "--no-plots", "--quiet")
    assert res.returncode == 0, res.stderr
    assert_same_run(ref, out, metrics=False)
    # measured after they settled on the last waypoints
    with np.load(out / "robots.npz") as robots:
        assert robots["error"].max() <= 0.02
    assert set(Path(tempfile.gettempdir()).glob("bildmacro-launch-*")) == leftovers


def test_agent_groups_end_by_themselves_and_leave_nothing_behind(tmp_path):
    log = tmp_path / "launch.log"
    leftovers = set(Path(tempfile.gettempdir()).glob("bildmacro-launch-*"))
    code = finish(start_launch(*SMALL, "iterations:=60", "agents_per_process:=3",
                               "simulator:=none", log=log),
                  timeout=180)
    assert code == 0, log.read_text()[-3000:]
    assert log.read_text().count("finished 60 iterations") == 5
    # its temporary folder
    assert set(Path(tempfile.gettempdir()).glob("bildmacro-launch-*")) == leftovers


@pytest.mark.parametrize("group", [True, False], ids=["terminal-ctrl-c", "sigint-to-launch"])
def test_a_sigint_mid_run_stops_every_node_with_exit_0_and_keeps_the_run(tmp_path, group):
    out, log = tmp_path / "interrupted", tmp_path / "launch.log"
    # a row every 30 rounds
    proc = start_launch(*SMALL, "iterations:=30000", f"record:={out}", log=log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                (out / "metrics.csv").exists()
                and len((out / "metrics.csv").read_text().splitlines()) > 10):
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT) if group else proc.send_signal(signal.SIGINT)
        code = finish(proc, timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "process has died" not in text, text[-3000:]
    assert assert_complete_record(out, 5) >= 10
    assert not node_pids()


def _installed(package: str) -> bool:
    from ament_index_python.packages import get_package_prefix, PackageNotFoundError
    try:
        get_package_prefix(package)
        return True
    except PackageNotFoundError:
        return False


@pytest.mark.parametrize("arguments,message,needs", [
    (["agents:=five"], "agents:='five' is not a whole number", None),
    (["rviz:=true"], "cannot start rviz2/rviz2", "rviz2"),
    (["simulator:=turtlesim"], "cannot start turtlesim/turtlesim_node", "turtlesim"),
    (["simulator:=gazebo", "family:=gazebo"],
     "cannot start gz, ros_gz_bridge/parameter_bridge, ros_gz_sim/create: not installed",
     "ros_gz_sim"),
])
def test_a_launch_that_cannot_start_something_starts_nothing(tmp_path, arguments, message, needs):
    if needs is not None and (_installed(needs) or needs == "ros_gz_sim" and shutil.which("gz")):
        pytest.skip(f"{needs} is installed here")
    leftovers = set(Path(tempfile.gettempdir()).glob("bildmacro-launch-*"))
    log, out = tmp_path / "launch.log", tmp_path / "never"
    code = finish(start_launch(*SMALL, *arguments, f"record:={out}", log=log), timeout=60)
    text = log.read_text()
    assert code != 0 and message in text, text
    assert "process started" not in text and not out.exists(), text
    assert set(Path(tempfile.gettempdir()).glob("bildmacro-launch-*")) == leftovers


def test_a_launch_refuses_a_folder_that_holds_a_run(tmp_path):
    out, log = tmp_path / "old", tmp_path / "launch.log"
    out.mkdir()
    (out / "metrics.csv").write_text("iteration\n0\n")
    code = finish(start_launch(*SMALL, f"record:={out}", log=log), timeout=60)
    text = log.read_text()
    assert code != 0 and f"record:={out} already holds metrics.csv" in text, text
    assert "process started" not in text and sorted(p.name for p in out.iterdir()) == [
        "metrics.csv"], text


def _importing(pid: int) -> bool:
    """Tell whether a node process has got as far as its own imports (numpy is mapped)."""
    try:
        return "numpy" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # it has ended
        return True


@pytest.mark.parametrize("after", [0.0, 0.5, 1.5])
def test_a_ctrl_c_while_the_nodes_start_ends_every_one_without_a_traceback(tmp_path, after):
    log = tmp_path / "launch.log"
    proc = start_launch(*SMALL, "iterations:=30000", log=log)
    started = 7  # the simulator, the follower and five agents
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and log.read_text().count("process started") < started:
        time.sleep(0.01)
    # Once every node runs the package's code: its imports (numpy, rclpy: 0.4 s unloaded) and
    # on. The first 40 ms of a node, in the interpreter and setuptools' console-script wrapper,
    # are not the package's (docs/launch.md).
    pids = [int(p) for p in re.findall(r"process started with pid \[(\d+)\]", log.read_text())]
    while time.monotonic() < deadline and not all(_importing(pid) for pid in pids):
        time.sleep(0.005)
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the launch and every node
    code = finish(proc, timeout=60)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert text.count("process started") == started, text[-3000:]
    assert not node_pids()


def test_robot_launches_run_a_plan_one_robot_each_and_compute_what_simulate_computes(tmp_path):
    plan, run = tmp_path / "plan", tmp_path / "run"
    made = bildmacro("plan", "--config", "demo", "--agents", 3, "--iterations", 80, "--log-every",
                     1, "--simulator", "embedded", "--out", plan)
    assert made.returncode == 0, made.stderr
    recorder = subprocess.Popen([sys.executable, "-m", "bildmacro_ros.cli", "record", "--plan",
                                 str(plan), "--out", str(run), "--quiet", "--no-plots"],
                                stdout=open(tmp_path / "record.log", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
    launches = [start_launch(f"plan:={plan}", f"id:={i}", log=tmp_path / f"robot_{i}.log",
                             launch_file=ROOT / "launch" / "robot.launch.py") for i in range(3)]
    try:
        codes = [finish(proc, timeout=180) for proc in launches]
        assert recorder.wait(timeout=60) == 0, (tmp_path / "record.log").read_text()
    finally:
        for proc in launches + [recorder]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert codes == [0, 0,
                     0], [(tmp_path / f"robot_{i}.log").read_text()[-2000:] for i in range(3)]
    reports = [outcomes(plan / f"robot_{i}")[i] for i in range(3)]
    assert all(report.finished for report in reports)
    # alone on its computer, a robot's agent is scheduled as its launch was, on every CPU
    assert all(report.scheduling == process_scheduling() and report.cpus == process_cpus()
               for report in reports)
    # each launch waited for its robot at its last waypoint, as bildmacro robot does
    assert all("is at its last waypoint" in (tmp_path / f"robot_{i}.log").read_text()
               for i in range(3))
    with np.load(run / "robots.npz") as robots:
        assert robots["error"].max() <= 0.02
    ref = tmp_path / "simulate"
    res = bildmacro("simulate", "--config", "demo", "--agents", 3, "--iterations", 80,
                    "--log-every", 1, "--out", ref, "--no-plots", "--quiet")
    assert res.returncode == 0, res.stderr
    assert_same_run(ref, run)


def test_a_robot_launch_with_a_bad_id_starts_nothing(tmp_path):
    made = bildmacro("plan", "--config", "demo", "--agents", 3, "--out", tmp_path / "plan")
    assert made.returncode == 0, made.stderr
    log = tmp_path / "robot.log"
    code = finish(start_launch(f"plan:={tmp_path / 'plan'}", "id:=7", log=log,
                               launch_file=ROOT / "launch" / "robot.launch.py"), timeout=60)
    text = log.read_text()
    assert code != 0 and "this plan has robots 0..2" in text, text
    assert "process started" not in text, text
