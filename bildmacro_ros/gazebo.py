# SPDX-License-Identifier: Apache-2.0
"""
What a Gazebo Harmonic swarm needs, generated from a plan: a world, robot models, spawns, bridge.

Read against gazebosim/gz-sim `gz-sim8` and gazebosim/ros_gz `jazzy` (docs/families/gazebo.md):

- gz topics have no spawn-time namespace (ros_gz `ros_gz_sim/src/create.cpp:41-53`), so each
  robot gets a model of its own whose systems name `/robot_<i>/...` topics;
- DiffDrive's odometry starts at zero where the model spawned, and it and OdometryPublisher both
  default to `/model/<name>/odometry` (`DiffDrive.cc:360-370`, `OdometryPublisher.cc:225-233`):
  DiffDrive's goes to `/robot_<i>/wheel_odom`, and OdometryPublisher, which publishes the model's
  pose in the world (`OdometryPublisher.cc:383-389`), to `/robot_<i>/odom` in `map`;
- DiffDrive has no command timeout (`DiffDrive.cc:605-644`): the follower stops the robots.

The world's origin is the lab's (`map`), where the arena lies; robots spawn at the plan's start
poses. `gazebo_nodes` adds what starts them to a launch: `gz sim -r` (without -r Gazebo starts
paused), one `ros_gz_sim create` per robot and `ros_gz_bridge`.
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import quoteattr

import yaml

from .launch_plan import NodeSpec, PROGRAM

# (library, class) of each gz-sim 8 system used: gz_add_system(<name>) builds
# gz-sim-<name>-system (src/systems/*/CMakeLists.txt), GZ_ADD_PLUGIN_ALIAS names the class
PLUGINS = {
    "physics": ("gz-sim-physics-system", "gz::sim::systems::Physics"),
    "user_commands": ("gz-sim-user-commands-system", "gz::sim::systems::UserCommands"),
    "scene_broadcaster": ("gz-sim-scene-broadcaster-system",
                          "gz::sim::systems::SceneBroadcaster"),
    "diff_drive": ("gz-sim-diff-drive-system", "gz::sim::systems::DiffDrive"),
    "odometry_publisher": ("gz-sim-odometry-publisher-system",
                           "gz::sim::systems::OdometryPublisher"),
}
SDF_VERSION = "1.10"  # sdformat 14, Harmonic's
WORLD = "bildmacro"
WHEEL_RADIUS = 0.033  # m, a TurtleBot3's
WHEEL_WIDTH = 0.018
BODY_HEIGHT = 0.08
DEFAULT_RADIUS = 0.1  # a model needs a body: robots.radius 0 (points) gets a burger's


def _plugin(kind: str, body: str = "") -> str:
    library, name = PLUGINS[kind]
    return f"<plugin filename={quoteattr(library)} name={quoteattr(name)}>{body}</plugin>"


def _inertial(mass: float, ixx: float, iyy: float, izz: float) -> str:
    return (f"<inertial><mass>{mass:g}</mass><inertia><ixx>{ixx:.6g}</ixx><ixy>0</ixy>"
            f"<ixz>0</ixz><iyy>{iyy:.6g}</iyy><iyz>0</iyz><izz>{izz:.6g}</izz></inertia>"
            "</inertial>")


def world_sdf() -> str:
    """Return the world: physics, spawning by service, scene for the GUI, ground and sun."""
    return f"""<?xml version="1.0"?>
<sdf version="{SDF_VERSION}">
  <world name="{WORLD}">
    <physics name="1ms" type="ignored">
      <max_step_size>0.001</max_step_size>
      <real_time_factor>1.0</real_time_factor>
    </physics>
    {_plugin("physics")}
    {_plugin("user_commands")}
    {_plugin("scene_broadcaster")}
    <light type="directional" name="sun">
      <cast_shadows>true</cast_shadows>
      <pose>0 0 10 0 0 0</pose>
      <diffuse>1 1 1 1</diffuse>
      <direction>-0.5 0.1 -0.9</direction>
    </light>
    <model name="ground_plane">
      <static>true</static>
      <link name="link">
        <collision name="collision">
          <geometry><plane><normal>0 0 1</normal><size>100 100</size></plane></geometry>
        </collision>
        <visual name="visual">
          <geometry><plane><normal>0 0 1</normal><size>100 100</size></plane></geometry>
        </visual>
      </link>
    </model>
  </world>
</sdf>
"""


def wheel_separation(radius: float) -> float:
    """Return the distance between the wheels' centres: inside a body of `radius`."""
    return 2 * (radius - WHEEL_WIDTH)


def robot_sdf(robot: int, radius: float, max_speed: float, max_turn_rate: float) -> str:
    """
    Return robot i's model: a disc body of `radius` on two wheels and a caster.

    Its origin is on the wheels' axle, as the go-to-goal controller assumes. DiffDrive takes
    gz.msgs.Twist on /robot_<i>/cmd_vel within the follower's limits; OdometryPublisher gives its
    pose in the world on /robot_<i>/odom, in `map`.
    """
    r = radius if radius > 0 else DEFAULT_RADIUS
    ns, base = f"/robot_{robot}", f"robot_{robot}/base_link"
    separation = wheel_separation(r)
    body_mass, wheel_mass = 1.0, 0.1
    body = _inertial(body_mass, body_mass * (3 * r * r + BODY_HEIGHT ** 2) / 12,
                     body_mass * (3 * r * r + BODY_HEIGHT ** 2) / 12, body_mass * r * r / 2)
    wheel = _inertial(wheel_mass, wheel_mass * (3 * WHEEL_RADIUS ** 2 + WHEEL_WIDTH ** 2) / 12,
                      wheel_mass * (3 * WHEEL_RADIUS ** 2 + WHEEL_WIDTH ** 2) / 12,
                      wheel_mass * WHEEL_RADIUS ** 2 / 2)
    caster_radius = WHEEL_RADIUS / 2
    caster = _inertial(0.05, 0.05 * 0.4 * caster_radius ** 2, 0.05 * 0.4 * caster_radius ** 2,
                       0.05 * 0.4 * caster_radius ** 2)

    def wheel_link(side: str, y: float) -> str:
        return f"""
    <link name="{side}_wheel">
      <pose>0 {y:.6g} {WHEEL_RADIUS:g} -1.5707963 0 0</pose>
      {wheel}
      <collision name="collision">
        <geometry><cylinder><radius>{WHEEL_RADIUS:g}</radius>
          <length>{WHEEL_WIDTH:g}</length></cylinder></geometry>
      </collision>
      <visual name="visual">
        <geometry><cylinder><radius>{WHEEL_RADIUS:g}</radius>
          <length>{WHEEL_WIDTH:g}</length></cylinder></geometry>
      </visual>
    </link>
    <joint name="{side}_wheel_joint" type="revolute">
      <parent>base_link</parent>
      <child>{side}_wheel</child>
      <axis><xyz expressed_in="__model__">0 1 0</xyz></axis>
    </joint>"""

    diff_drive = (f"<left_joint>left_wheel_joint</left_joint>"
                  f"<right_joint>right_wheel_joint</right_joint>"
                  f"<wheel_separation>{separation:.6g}</wheel_separation>"
                  f"<wheel_radius>{WHEEL_RADIUS:g}</wheel_radius>"
                  f"<max_linear_velocity>{max_speed:g}</max_linear_velocity>"
                  f"<min_linear_velocity>{-max_speed:g}</min_linear_velocity>"
                  f"<max_angular_velocity>{max_turn_rate:g}</max_angular_velocity>"
                  f"<min_angular_velocity>{-max_turn_rate:g}</min_angular_velocity>"
                  f"<topic>{ns}/cmd_vel</topic>"
                  # its own odometry starts at zero where the robot spawned: out of the way
                  f"<odom_topic>{ns}/wheel_odom</odom_topic><tf_topic>{ns}/wheel_tf</tf_topic>"
                  f"<frame_id>robot_{robot}/odom</frame_id>"
                  f"<child_frame_id>{base}</child_frame_id>")
    odometry = (f"<odom_topic>{ns}/odom</odom_topic><odom_frame>map</odom_frame>"
                f"<robot_base_frame>{base}</robot_base_frame><dimensions>2</dimensions>"
                f"<odom_publish_frequency>50</odom_publish_frequency>")
    return f"""<?xml version="1.0"?>
<sdf version="{SDF_VERSION}">
  <model name="robot_{robot}">
    <link name="base_link">
      <pose>0 0 0 0 0 0</pose>
      {body}
      <collision name="collision">
        <pose>0 0 {WHEEL_RADIUS + BODY_HEIGHT / 2:g} 0 0 0</pose>
        <geometry><cylinder><radius>{r:g}</radius><length>{BODY_HEIGHT:g}</length></cylinder>
        </geometry>
      </collision>
      <visual name="visual">
        <pose>0 0 {WHEEL_RADIUS + BODY_HEIGHT / 2:g} 0 0 0</pose>
        <geometry><cylinder><radius>{r:g}</radius><length>{BODY_HEIGHT:g}</length></cylinder>
        </geometry>
      </visual>
    </link>{wheel_link("left", separation / 2)}{wheel_link("right", -separation / 2)}
    <link name="caster">
      <pose>{-0.7 * r:.6g} 0 {caster_radius:g} 0 0 0</pose>
      {caster}
      <collision name="collision">
        <geometry><sphere><radius>{caster_radius:g}</radius></sphere></geometry>
        <surface><friction><ode><mu>0</mu><mu2>0</mu2></ode></friction></surface>
      </collision>
    </link>
    <joint name="caster_joint" type="ball">
      <parent>base_link</parent>
      <child>caster</child>
    </joint>
    {_plugin("diff_drive", diff_drive)}
    {_plugin("odometry_publisher", odometry)}
  </model>
</sdf>
"""


def bridge_entries(robots: list[int], command_type: str) -> list[dict]:
    """
    Return ros_gz_bridge's YAML entries: each robot's command in, its world pose out.

    The ROS names are relative, so the bridge run in the swarm's namespace serves it; the keys
    and directions are those `ros_gz_bridge/src/bridge_config.cpp` parses (jazzy).
    """
    command = "geometry_msgs/msg/TwistStamped" if command_type == "twist_stamped" \
        else "geometry_msgs/msg/Twist"
    out = []
    for i in robots:
        out += [{"ros_topic_name": f"robot_{i}/cmd_vel", "gz_topic_name": f"/robot_{i}/cmd_vel",
                 "ros_type_name": command, "gz_type_name": "gz.msgs.Twist",
                 "direction": "ROS_TO_GZ"},
                {"ros_topic_name": f"robot_{i}/odom", "gz_topic_name": f"/robot_{i}/odom",
                 "ros_type_name": "nav_msgs/msg/Odometry", "gz_type_name": "gz.msgs.Odometry",
                 "direction": "GZ_TO_ROS"}]
    return out


def spawns(robots: list[int], poses: list[float]) -> list[dict]:
    """Return `ros_gz_sim create` arguments per robot: its model at the plan's start pose."""
    return [{"name": f"robot_{i}", "file": f"robot_{i}.sdf", "world": WORLD,
             "x": poses[3 * slot], "y": poses[3 * slot + 1], "z": 0.0,
             "Y": math.atan2(math.sin(poses[3 * slot + 2]), math.cos(poses[3 * slot + 2]))}
            for slot, i in enumerate(robots)]


def gazebo_files(cfg: dict, poses: list[float]) -> dict[str, str]:
    """
    Return the files of a Gazebo swarm by name: world, models, bridge and spawns.

    world.sdf, robot_<i>.sdf, bridge.yaml (ros_gz_bridge's config_file) and spawns.yaml (each
    robot's `ros_gz_sim create` arguments).
    """
    robots = cfg["robots"]
    ids = list(range(cfg["agents"]))
    return {"world.sdf": world_sdf(),
            **{f"robot_{i}.sdf": robot_sdf(i, robots["radius"], robots["max_speed"],
                                           robots["max_turn_rate"]) for i in ids},
            "bridge.yaml": yaml.safe_dump(bridge_entries(ids, robots["command_type"]),
                                          sort_keys=False),
            "spawns.yaml": yaml.safe_dump(spawns(ids, poses), sort_keys=False)}


def write_gazebo(folder: Path, cfg: dict, poses: list[float]) -> list[Path]:
    """Write gazebo_files into folder/gazebo/ and return their paths."""
    out = Path(folder) / "gazebo"
    out.mkdir(parents=True, exist_ok=True)
    files = gazebo_files(cfg, poses)
    for name, text in files.items():
        (out / name).write_text(text)
    return [out / name for name in files]


def spawn_arguments(spawn: dict, folder: Path) -> list[str]:
    """
    Return `ros_gz_sim create`'s command line for one robot of spawns().

    Its gflags (`create.cpp:41-53`), each as -flag=value: a negative value after a bare -x would
    be read as a flag of its own.
    """
    return ["-world", spawn["world"], "-file", str(folder / spawn["file"]), "-name",
            spawn["name"], *(f"-{axis}={float(spawn[axis])!r}" for axis in ("x", "y", "z", "Y"))]


def gazebo_nodes(cfg: dict, poses: list[float], folder: Path,
                 namespace: str) -> tuple[list[NodeSpec], dict[Path, str]]:
    """
    Return what a launch starts for a Gazebo swarm, and the files they read (in folder/gazebo).

    Gazebo with the world, running; a spawn per robot (each waits for the world's create service,
    then exits); the bridge, in the swarm's namespace. The spawns and the bridge may start before
    Gazebo is up: both wait for it.
    """
    out = Path(folder) / "gazebo"
    files = {out / name: text for name, text in gazebo_files(cfg, poses).items()}
    specs = [NodeSpec("gazebo", "gz", {}, namespace, package=PROGRAM,
                      arguments=["sim", "-r", str(out / "world.sdf")])]
    specs += [NodeSpec(f"spawn_{spawn['name']}", "create", {}, namespace, package="ros_gz_sim",
                       arguments=spawn_arguments(spawn, out))
              for spawn in spawns(list(range(cfg["agents"])), poses)]
    specs.append(NodeSpec("gazebo_bridge", "parameter_bridge", {}, namespace,
                          package="ros_gz_bridge",
                          ros_arguments=["-p", f"config_file:={out / 'bridge.yaml'}"]))
    return specs, files
