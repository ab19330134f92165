# SPDX-License-Identifier: Apache-2.0
"""
The Gazebo files a plan writes, checked against what Gazebo Harmonic reads (no Gazebo here).

The tables below were read from the upstream sources (docs/families/gazebo.md): the SDF 1.10
elements from sdformat `sdf14` `sdf/1.10/*.sdf`, the systems' library and class names and the
elements each system reads from gz-sim `gz-sim8` (`src/systems/*/CMakeLists.txt`,
`GZ_ADD_PLUGIN_ALIAS`, `_sdf->Get/HasElement/FindElement`), the bridge's keys from ros_gz `jazzy`
`ros_gz_bridge/src/bridge_config.cpp:29-41`.
"""

import math
from pathlib import Path
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from bildmacro_ros.core.arena import Arena
from bildmacro_ros.core.config import validate
from bildmacro_ros.core.scenario import build_scenario
from bildmacro_ros.gazebo import bridge_entries, robot_sdf, spawns, wheel_separation, world_sdf
from bildmacro_ros.plan_folder import write_plan

# element -> (children, attributes) that SDF 1.10 allows ("*": any children)
SDF = {
    "sdf": ("actor light model world", "version"),
    "world": ("actor atmosphere audio frame gravity gui include joint light magnetic_field model "
              "physics plugin population road scene spherical_coordinates state wind", "name"),
    "model": ("allow_auto_disable enable_wind frame gripper include joint link model plugin pose "
              "self_collide static", "canonical_link name placement_frame"),
    "link": ("audio_sink audio_source battery collision enable_wind gravity inertial kinematic "
             "light must_be_base_link particle_emitter pose projector self_collide sensor "
             "velocity_decay visual", "name"),
    "joint": ("axis axis2 child gearbox_ratio gearbox_reference_body parent physics pose "
              "screw_thread_pitch sensor thread_pitch", "name type"),
    "axis": ("dynamics limit xyz", ""),
    "collision": ("geometry laser_retro max_contacts pose surface", "name"),
    "visual": ("cast_shadows geometry laser_retro material meta plugin pose transparency "
               "visibility_flags", "name"),
    "geometry": ("box capsule cylinder ellipsoid empty heightmap image mesh plane polyline "
                 "sphere", ""),
    "cylinder": ("length radius", ""), "sphere": ("radius", ""), "plane": ("normal size", ""),
    "inertial": ("fluid_added_mass inertia mass pose", ""),
    "inertia": ("ixx ixy ixz iyy iyz izz", ""),
    "surface": ("bounce contact friction soft_contact", ""),
    "friction": ("bullet ode torsional", ""),
    "light": ("attenuation cast_shadows diffuse direction intensity light_on pose specular spot "
              "visualize", "name type"),
    "physics": ("bullet dart max_contacts max_step_size ode provide_feedback real_time_factor "
                "real_time_update_rate simbody", "default name type"),
    "plugin": ("*", "filename name"),
}
SYSTEMS = {  # library: (class, the elements it reads)
    "gz-sim-physics-system": ("gz::sim::systems::Physics", None),
    "gz-sim-user-commands-system": ("gz::sim::systems::UserCommands", None),
    "gz-sim-scene-broadcaster-system": ("gz::sim::systems::SceneBroadcaster", None),
    "gz-sim-diff-drive-system": ("gz::sim::systems::DiffDrive", set(
        "child_frame_id frame_id left_joint max_acceleration max_angular_acceleration "
        "max_angular_jerk max_angular_velocity max_jerk max_linear_acceleration max_linear_jerk "
        "max_linear_velocity max_velocity min_acceleration min_angular_acceleration "
        "min_angular_jerk min_angular_velocity min_jerk min_linear_acceleration min_linear_jerk "
        "min_linear_velocity min_velocity odom_publish_frequency odom_topic right_joint tf_topic "
        "topic wheel_radius wheel_separation".split())),
    "gz-sim-odometry-publisher-system": ("gz::sim::systems::OdometryPublisher", set(
        "dimensions gaussian_noise odom_covariance_topic odom_frame odom_publish_frequency "
        "odom_topic robot_base_frame rpy_offset tf_topic xyz_offset".split())),
}
BRIDGE_KEYS = {"topic_name", "ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name",
               "direction", "publisher_queue", "subscriber_queue", "lazy"}
# ros_gz_bridge/ros_gz_bridge/mappings.py (jazzy): the ROS types each gz type bridges to
MAPPED = {"gz.msgs.Twist": {"geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped"},
          "gz.msgs.Odometry": {"nav_msgs/msg/Odometry"}}


def valid_sdf(text: str) -> ET.Element:
    """Parse, and check every element SDF 1.10 defines against its children and attributes."""
    root = ET.fromstring(text)
    assert root.tag == "sdf" and root.get("version") == "1.10"
    for element in root.iter():
        if element.tag not in SDF:
            continue
        children, attributes = SDF[element.tag]
        assert set(element.attrib) <= set(attributes.split()), (element.tag, element.attrib)
        if children != "*":
            assert {c.tag for c in element} <= set(children.split()), \
                (element.tag, {c.tag for c in element} - set(children.split()))
    for plugin in root.iter("plugin"):
        name, reads = SYSTEMS[plugin.get("filename")]
        assert plugin.get("name") == name
        assert reads is None or {c.tag for c in plugin} <= reads, plugin.get("filename")
    return root


def test_the_world_is_one_gazebo_reads():
    world = valid_sdf(world_sdf()).find("world")
    systems = {p.get("filename") for p in world.iter("plugin")}
    # physics; UserCommands, which serves ros_gz_sim create; the scene for the GUI
    assert systems == {"gz-sim-physics-system", "gz-sim-user-commands-system",
                       "gz-sim-scene-broadcaster-system"}
    # the check itself: a misspelt element, a wrong class, an element a system never reads
    for wrong in (world_sdf().replace("<static>", "<statik>").replace("</static>", "</statik>"),
                  world_sdf().replace("systems::Physics", "systems::Physic"),
                  robot_sdf(0, 0.1, 0.2, 2.0).replace("<topic>", "<cmd_topic>")
                  .replace("</topic>", "</cmd_topic>")):
        with pytest.raises(AssertionError):
            valid_sdf(wrong)


@pytest.mark.parametrize("radius", [0.0, 0.1, 0.175])
def test_a_robot_model_drives_as_the_follower_commands_and_reports_its_world_pose(radius):
    model = valid_sdf(robot_sdf(3, radius, 0.22, 2.5)).find("model")
    assert model.get("name") == "robot_3"
    links = {link.get("name"): link for link in model.iter("link")}
    joints = {j.get("name"): j for j in model.iter("joint")}
    for joint in joints.values():
        assert joint.findtext("parent") in links and joint.findtext("child") in links
    (drive,) = [p for p in model.iter("plugin") if "diff-drive" in p.get("filename")]
    (odom,) = [p for p in model.iter("plugin") if "odometry" in p.get("filename")]
    # the wheels it turns exist, as far apart and as large as the model's
    left, right = (joints[drive.findtext(side)] for side in ("left_joint", "right_joint"))
    y = [float(links[j.findtext("child")].findtext("pose").split()[1]) for j in (left, right)]
    assert float(drive.findtext("wheel_separation")) == pytest.approx(y[0] - y[1])
    wheel = links[left.findtext("child")].find("collision/geometry/cylinder")
    assert float(drive.findtext("wheel_radius")) == float(wheel.findtext("radius"))
    body = float(links["base_link"].find("collision/geometry/cylinder").findtext("radius"))
    assert body == (radius or 0.1) and y[0] - y[1] == pytest.approx(wheel_separation(body))
    assert float(drive.findtext("max_linear_velocity")) == 0.22
    assert float(drive.findtext("max_angular_velocity")) == 2.5
    # commands on its own topic; its own odometry (from zero at spawn) off the pose topic
    assert drive.findtext("topic") == "/robot_3/cmd_vel"
    assert drive.findtext("odom_topic") not in (odom.findtext("odom_topic"),
                                                "/model/robot_3/odometry")
    assert odom.findtext("odom_topic") == "/robot_3/odom" and odom.findtext("odom_frame") == "map"
    assert odom.findtext("dimensions") == "2"


def test_the_bridge_carries_each_robots_command_in_and_pose_out():
    entries = bridge_entries([0, 4], "twist_stamped")
    assert len(entries) == 4
    for entry in entries:
        assert set(entry) <= BRIDGE_KEYS
        assert entry["direction"] in ("BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ")
        assert entry["ros_type_name"] in MAPPED[entry["gz_type_name"]]
        assert not entry["ros_topic_name"].startswith("/")  # in the swarm's namespace
    command, pose = entries[2], entries[3]
    model = ET.fromstring(robot_sdf(4, 0.1, 0.2, 2.0)).find("model")
    topics = {p.findtext("topic") or p.findtext("odom_topic") for p in model.iter("plugin")}
    assert {command["gz_topic_name"], pose["gz_topic_name"]} == topics
    assert (command["ros_topic_name"], pose["ros_topic_name"]) == ("robot_4/cmd_vel",
                                                                   "robot_4/odom")
    assert command["ros_type_name"] == "geometry_msgs/msg/TwistStamped"


def test_a_gazebo_plan_spawns_each_robot_at_its_start_pose_in_the_arena(tmp_path):
    cfg = validate({"agents": 4, "iterations": 5, "robots": {
        "simulator": "gazebo", "family": "gazebo", "radius": 0.1},
        "arena": {"centre": [3, 1.5], "size": [4, 3], "rotation": 0.5}})
    write_plan(cfg, None, tmp_path / "plan")
    folder = tmp_path / "plan" / "gazebo"
    assert sorted(p.name for p in folder.iterdir()) == [
        "bridge.yaml", "robot_0.sdf", "robot_1.sdf", "robot_2.sdf", "robot_3.sdf", "spawns.yaml",
        "world.sdf"]
    for path in folder.glob("*.sdf"):
        valid_sdf(path.read_text())
    listed = yaml.safe_load((folder / "spawns.yaml").read_text())
    x0 = build_scenario(cfg).x0
    assert np.allclose([[s["x"], s["y"]] for s in listed], Arena.from_config(cfg).to_lab(x0))
    assert [s["file"] for s in listed] == [f"robot_{i}.sdf" for i in range(4)]
    assert all(-math.pi <= s["Y"] <= math.pi for s in listed)
    assert len(yaml.safe_load((folder / "bridge.yaml").read_text())) == 8
    assert spawns([0], [1.0, 2.0, 7.0])[0]["Y"] == pytest.approx(7.0 - 2 * math.pi)


# ros_gz_sim create's gflags (ros_gz `jazzy` ros_gz_sim/src/create.cpp:41-53) and their types
CREATE_FLAGS = {"world": str, "file": str, "param": str, "string": str, "topic": str,
                "name": str, "allow_renaming": bool, **{axis: float for axis in "xyzRPY"}}


def create_flags(arguments: list[str]) -> dict:
    """
    Read a command line as gflags reads it: -flag=value, or -flag value (bools: -flag).

    Stricter in one point: a number must come as -x=-1.5, one word, the form the plan writes.
    """
    flags, words = {}, list(arguments)
    while words:
        word = words.pop(0)
        assert word.startswith("-"), f"{word!r} is not a flag"
        name, _, value = word.lstrip("-").partition("=")
        kind = CREATE_FLAGS[name]
        if not _ and kind is not bool:
            value = words.pop(0)
            assert kind is str, f"-{name} {value}: the plan writes -{name}={value}"
        flags[name] = kind(value) if kind is not bool else value in ("", "true", "1")
    return flags


def test_a_gazebo_launch_starts_gazebo_running_the_spawns_and_the_bridge_on_its_files(tmp_path):
    from bildmacro_ros.launch_arguments import plan_from_arguments
    from bildmacro_ros.launch_plan import missing_executables
    from bildmacro_ros.run_folder import prepare_swarm_folder

    scratch = tmp_path / "scratch"
    plan, cfg = plan_from_arguments(scratch, agents="4", simulator="gazebo", family="gazebo",
                                    radius="0.1", arena_centre="-3,1.5", arena_rotation="2.5",
                                    namespace="team")
    prepare_swarm_folder(plan, scratch, inputs=True)
    started = [spec for spec in plan.nodes() if spec.name.startswith(("gazebo", "spawn_"))]
    gazebo, *spawned = started[:5]
    assert plan.nodes()[0] is gazebo  # the world exists before anything drives
    assert (gazebo.executable, gazebo.arguments[:2]) == ("gz", ["sim", "-r"])
    valid_sdf(Path(gazebo.arguments[2]).read_text())
    poses = Arena.from_config(cfg).start_poses(plan.scenario.x0)
    for i, spec in enumerate(spawned):
        assert (spec.package, spec.executable, spec.namespace) == ("ros_gz_sim", "create",
                                                                   "/team")
        flags = create_flags(spec.arguments)
        model = valid_sdf(Path(flags["file"]).read_text()).find("model")
        named = (flags["world"], flags["name"], model.get("name"))
        assert named == ("bildmacro", f"robot_{i}", f"robot_{i}")
        assert [flags["x"], flags["y"]] == poses[3 * i:3 * i + 2]  # exactly, the follower's
        assert math.isclose(math.cos(flags["Y"]), math.cos(poses[3 * i + 2]), abs_tol=1e-12)
        assert math.isclose(math.sin(flags["Y"]), math.sin(poses[3 * i + 2]), abs_tol=1e-12)
    assert min(min(create_flags(s.arguments)[a] for a in "xy") for s in spawned) < 0
    (bridge,) = [spec for spec in plan.robots if spec.package == "ros_gz_bridge"]
    assert bridge.executable == "parameter_bridge" and bridge.ros_arguments[0] == "-p"
    key, _, path = bridge.ros_arguments[1].partition(":=")
    entries = yaml.safe_load(Path(path).read_text())
    assert key == "config_file" and len(entries) == 8 and Path(path).parent == scratch / "gazebo"
    # follower on the same topics as the bridge, in the same namespace
    (follower,) = [spec for spec in plan.robots if spec.executable == "follower"]
    assert follower.namespace == bridge.namespace == "/team"
    assert missing_executables(plan, lambda package, exe: package == "bildmacro_ros") == [
        "gz", "ros_gz_bridge/parameter_bridge", "ros_gz_sim/create"]


def test_a_gazebo_launch_keeps_its_files_in_the_record_folder_or_needs_one(tmp_path):
    from bildmacro_ros.launch_arguments import plan_from_arguments

    plan, _ = plan_from_arguments(agents="3", simulator="gazebo", record=str(tmp_path / "run"))
    assert all(Path(p).parent == tmp_path / "run" / "gazebo" for p in plan.files)
    assert len(plan.files) == 3 + 3  # world, three models, bridge, spawns
    with pytest.raises(ValueError, match="simulator:=gazebo needs a folder"):
        plan_from_arguments(agents="3", simulator="gazebo")
    with pytest.raises(AssertionError):  # the check itself
        create_flags(["-x", "-1.5"])
    with pytest.raises(KeyError):
        create_flags(["-yaw=1.0"])
