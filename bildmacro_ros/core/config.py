# SPDX-License-Identifier: Apache-2.0
"""The run configuration: defaults, presets, and validation whose errors name the key at fault."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .basis import QUADRATURES
from .faults import LATE_POLICIES
from .fields import _bool, _choice, _float, _mapping, _number, ConfigError, Field
from .graph_config import graph_section
from .robot_families import COMMANDS, FAMILIES, POSE_SOURCES

PRESETS = ("default", "paper", "demo")
TARGET_TYPES = ("gaussian_mixture", "image")
# external: your own robots (real drivers, or a Gazebo world) behind their robot_<i>/ topics
SIMULATORS = ("embedded", "turtlesim", "gazebo", "external", "none")

DEFAULTS: dict[str, Any] = {
    "agents": 20,
    "seed": 0,
    "basis": {"order": 6},
    "grid": {"step": 0.05, "quadrature": "trapezoid"},
    "target": {
        "type": "gaussian_mixture",
        "components": [
            {"weight": 0.5, "mean": [-0.5, -0.5], "std": 0.2},
            {"weight": 0.5, "mean": [0.5, 0.4], "std": 0.25},
        ],
    },
    "graph": {"type": "erdos_renyi", "edge_probability": 0.5, "weights": "metropolis"},
    "algorithm": {"gamma_x": 1.0e-3, "gamma_y": 0.045, "omega": 1.0e-4, "delta": 0.02},
    "iterations": 20000,
    # the robots (bildmacro swarm and the launch file; simulate ignores them), docs/robots.md.
    # radius: each body, a disc (m; 0: points), kept apart by a safety filter unless safety is
    # false, against robots within sensing_range. command_timeout: the embedded simulator's (0:
    # never stops, as gz-sim's DiffDrive). pose_topic, pose_frame: {i} is the robot's id, by
    # default the pose source's. family: the robots' kind, whose values (FAMILIES) stand where the
    # config sets none. placement_error: the embedded simulator puts each robot this far (m) from
    # the plan's start, at any heading, as a person placing robots by hand does
    "robots": {"family": "embedded", "simulator": "embedded", "wait": False, "tolerance": 0.02,
               "max_speed": 0.5, "max_turn_rate": 3.0, "rate": 20.0, "radius": 0.0, "safety": True,
               "sensing_range": 0.5, "command_type": "twist", "command_topic": "cmd_vel",
               "command_timeout": 0.5, "pose_source": "odometry", "pose_topic": None,
               "pose_frame": None, "placement_error": 0.0},
    # C = [-1, 1]^2 in the lab's frame: its centre and size (width, height; m) and the angle of its
    # x axis (rad). Robots, bodies, speeds and tolerances are in the lab's metres (docs/robots.md)
    "arena": {"centre": [0.0, 0.0], "size": [2.0, 2.0], "rotation": 0.0},
    # late and dead neighbours over DDS, seeded fault injection, tracking re-initialisation, and
    # impostors on a neighbour's topic (pin_writers false: reported, not refused; docs/security.md)
    "faults": {"deadline": 2.0, "late_policy": "drop", "dead_after": 3, "tracking_reset": 0,
               "drop": 0.0, "delay": 0.0, "fault_seed": 0, "pin_writers": True},
}


# mappings whose keys merge one by one
SECTIONS = ("basis", "grid", "algorithm", "robots", "arena", "faults")
FIELDS: dict[str, Field] = {
    "agents": Field("int", 2, 100000),
    "seed": Field("int", 0, 2**32 - 1),
    "iterations": Field("int", 0),
    "basis.order": Field("int", 1, 20),
    "grid.step": Field("float", 0.01, 1),
    "grid.quadrature": Field("choice", choices=QUADRATURES),
    "algorithm.gamma_x": Field("float", 0, low_open=True),
    "algorithm.gamma_y": Field("float", 0, low_open=True),
    "algorithm.omega": Field("float", 0, low_open=True),
    "algorithm.delta": Field("float", 0, 1, low_open=True),
    "robots.family": Field("choice", choices=tuple(FAMILIES)),
    "robots.simulator": Field("choice", choices=SIMULATORS),
    "robots.wait": Field("bool"),
    "robots.tolerance": Field("float", 0, 1, low_open=True),
    "robots.max_speed": Field("float", 0, 100, low_open=True),
    "robots.max_turn_rate": Field("float", 0, 100, low_open=True),
    "robots.rate": Field("float", 1, 1000),
    "robots.radius": Field("float", 0, 0.5),
    "robots.safety": Field("bool"),
    "robots.sensing_range": Field("float", 0, 10, low_open=True),
    "robots.command_type": Field("choice", choices=COMMANDS),
    "robots.command_topic": Field("topic"),
    "robots.command_timeout": Field("float", 0, 60),
    "robots.pose_source": Field("choice", choices=tuple(POSE_SOURCES)),
    "robots.pose_topic": Field("pattern"),
    "robots.pose_frame": Field("pattern"),
    "robots.placement_error": Field("float", 0, 10),
    "arena.centre": Field("pair", -1e4, 1e4),
    "arena.size": Field("pair", 0, 1e4, low_open=True),
    "arena.rotation": Field("float", -3.15, 3.15),  # [-pi, pi] and a rounding's slack
    # 0 waits for ever: Algorithm 1's synchronous rounds, where one silent robot stalls the swarm
    "faults.deadline": Field("float", 0, 3600),
    "faults.late_policy": Field("choice", choices=LATE_POLICIES),
    "faults.dead_after": Field("int", 1, 1_000_000),
    "faults.tracking_reset": Field("int", 0),
    "faults.drop": Field("float", 0, 1, high_open=True),
    "faults.delay": Field("float", 0, 60),
    "faults.fault_seed": Field("int", 0, 2**32 - 1),
    "faults.pin_writers": Field("bool"),
}


def default(key: str) -> Any:
    """Return DEFAULTS at a dotted key: 2.0 for faults.deadline."""
    value: Any = DEFAULTS
    for part in key.split("."):
        value = value[part]
    if value is None and key in ("robots.pose_topic", "robots.pose_frame"):  # the source's
        value = POSE_SOURCES[DEFAULTS["robots"]["pose_source"]][key.rpartition(".")[2]]
    return copy.deepcopy(value)


# -- sections -----------------------------------------------------------------------------------
def _target(spec: dict) -> dict:
    spec = _mapping("target", spec, ("type", "components", "path", "invert", "floor"))
    kind = _choice("target.type", spec.get("type"), TARGET_TYPES)
    if kind == "gaussian_mixture":
        _mapping("target", spec, ("type", "components"))
        comps = spec.get("components")
        if not isinstance(comps, list) or not comps:
            raise ConfigError("target.components",
                              "must be a non-empty list of {weight, mean, std}")
        out = []
        for n, comp in enumerate(comps):
            key = f"target.components[{n}]"
            _mapping(key, comp, ("weight", "mean", "std"))
            for field in ("weight", "mean", "std"):
                if field not in comp:
                    raise ConfigError(f"{key}.{field}", "is missing")
            mean = comp["mean"]
            if not isinstance(mean, list) or len(mean) != 2:
                raise ConfigError(f"{key}.mean",
                                  f"must be a list of two numbers [c1, c2], got {mean!r}")
            out.append({
                "weight": _float(f"{key}.weight", comp["weight"], 0, low_open=True),
                "mean": [_number(f"{key}.mean[{i}]", v) for i, v in enumerate(mean)],
                "std": _float(f"{key}.std", comp["std"], 0, low_open=True),
            })
        return {"type": kind, "components": out}
    _mapping("target", spec, ("type", "path", "invert", "floor"))
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError("target.path", "must name a grayscale image file")
    return {"type": kind, "path": path,
            "invert": _bool("target.invert", spec.get("invert", False)),
            "floor": _float("target.floor", spec.get("floor", 0.01), 0, 1, high_open=True)}


def validate(raw: dict) -> dict:
    """Return a complete, typed config from a partial one (missing keys take DEFAULTS)."""
    if raw is None:
        raw = {}
    _mapping("", raw, tuple(DEFAULTS))
    merged = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        # target and graph are replaced whole: their keys depend on their type
        if key in SECTIONS and isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    for section in SECTIONS:
        _mapping(section, merged[section], tuple(DEFAULTS[section]))
    family = _choice("robots.family", merged["robots"]["family"], tuple(FAMILIES))
    given = raw.get("robots") if isinstance(raw.get("robots"), dict) else {}
    merged["robots"].update({key: value for key, value in FAMILIES[family].items()
                             if key not in given})
    cfg: dict[str, Any] = {key: {} if key in SECTIONS else None for key in DEFAULTS}
    for key, spec in FIELDS.items():
        section, _, name = key.rpartition(".")
        source, holder = (merged[section], cfg[section]) if section else (merged, cfg)
        holder[name] = spec.check(key, source[name])
    # memory grows as (2 / step)^2 m^2: 0.01 (201 x 201 points) is ~0.4 GB at order 6, the finest
    # allowed
    step = cfg["grid"]["step"]
    if abs(2 / step - round(2 / step)) > 1e-9 * (2 / step):
        raise ConfigError("grid.step",
                          "must divide the side 2 into whole intervals (e.g. 0.05, 0.1), got "
                          f"{step:g}")
    robots = cfg["robots"]
    for key, value in POSE_SOURCES[robots["pose_source"]].items():
        robots[key] = value if robots[key] is None else robots[key]
    cfg["target"] = _target(merged["target"])
    cfg["graph"] = graph_section(merged["graph"], cfg["agents"])
    return cfg


def preset_dirs() -> list[Path]:
    """
    Where shipped presets live.

    The source tree, then the share/ folder of the prefix this package is installed in (a colcon
    install space, or a virtual environment).
    """
    import sys

    package = Path(__file__).resolve().parents[1]  # .../bildmacro_ros
    dirs = [package.parent / "config"]  # the source tree (or colcon --symlink-install)
    # <prefix>/lib/pythonX.Y/site-packages/bildmacro_ros: colcon's and pip's layout alike
    if len(package.parents) > 3:
        dirs.append(package.parents[3] / "share" / "bildmacro_ros" / "config")
    dirs.append(Path(sys.prefix) / "share" / "bildmacro_ros" / "config")
    return list(dict.fromkeys(dirs))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """Return a config file's path, or a preset's (default, paper, demo) among those shipped."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if str(name_or_path) in PRESETS:
        for folder in preset_dirs():
            candidate = folder / f"{name_or_path}.yaml"
            if candidate.is_file():
                return candidate
        looked = ", ".join(map(str, preset_dirs()))
        raise ConfigError("", f"preset {name_or_path!r} is not installed (looked in {looked})")
    raise ConfigError("", f"config file {str(name_or_path)!r} does not exist (presets: "
                          f"{', '.join(PRESETS)})")


def load_config(name_or_path: str | Path | None = None,
                overrides: dict | None = None) -> tuple[dict, Path | None]:
    """Read, merge overrides (top-level keys), validate. Returns the config and its folder."""
    raw: dict = {}
    base = None
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        base = path.parent
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError("", f"{path} is not valid YAML{where}: {problem}") from None
        if not isinstance(raw, dict):
            raise ConfigError("", f"{path} must hold a mapping of keys, not {type(raw).__name__}")
    for key, value in (overrides or {}).items():
        if value is not None and "." in key:  # robots.family: before the family's defaults
            section, leaf = key.split(".")
            raw[section] = dict(raw.get(section) or {}, **{leaf: value})
        elif value is not None:
            raw[key] = value
    cfg = validate(raw)
    if cfg["target"]["type"] == "image" and base is not None:
        # pin the picture to this config's folder, so a copied config.yaml still finds it
        path = Path(cfg["target"]["path"]).expanduser()
        cfg["target"]["path"] = str(path if path.is_absolute() else (base / path).resolve())
    return cfg, base


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
