# SPDX-License-Identifier: Apache-2.0
"""Config defaults, presets, targets, and validation errors that name the key at fault."""

import contextlib
import io
from pathlib import Path

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
import numpy as np
import pytest
import yaml

from bildmacro_ros.cli import main
from bildmacro_ros.core.config import ConfigError, DEFAULTS, load_config, validate
from bildmacro_ros.core.family import ExponentialFamily
from bildmacro_ros.core.scenario import build_scenario, check_init, load_init
from bildmacro_ros.core.target import image_density

ROOT = Path(__file__).resolve().parents[2]


def test_default_yaml_is_the_builtin_default():
    shipped = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    assert validate(shipped) == validate({}) == validate(DEFAULTS)
    assert shipped["algorithm"]["gamma_y"] == pytest.approx(0.9 / shipped["agents"])


def test_paper_preset_differs_only_in_gamma_y():
    paper, _ = load_config("paper")
    default, _ = load_config("default")
    assert paper["algorithm"]["gamma_y"] == 0.9
    paper["algorithm"]["gamma_y"] = default["algorithm"]["gamma_y"]
    assert paper == default


@pytest.mark.parametrize("raw,key,words", [
    ({"agentz": 3}, "agentz", "unknown key (did you mean agents?)"),
    ({"algorithm": {"gama_y": 0.1}}, "algorithm.gama_y", "did you mean gamma_y"),
    ({"agents": 1}, "agents", "in [2, 100000]"),
    ({"agents": 2.5}, "agents", "whole number"),
    ({"agents": True}, "agents", "whole number"),
    ({"graph": {"type": "erdos_renyi", "edge_probability": 0}}, "graph.edge_probability",
     "(0, 1]"),
    ({"graph": {"type": "erdos_renyi", "edge_probability": 1.5}}, "graph.edge_probability",
     "(0, 1]"),
    ({"graph": {"type": "ring", "edge_probability": 0.5}}, "graph.edge_probability",
     "only applies"),
    ({"graph": {"type": "explicit", "edges": [[0, 0]]}}, "graph.edges[0]", "self loop"),
    ({"graph": {"type": "explicit", "edges": [[0, 99]]}}, "graph.edges[0]", "in [0, 19]"),
    ({"graph": {"mean_degree": 4, "edge_probability": 0.5}}, "graph.mean_degree", "not both"),
    ({"graph": {"mean_degree": 20}}, "graph.mean_degree", "(0, 19]"),
    ({"graph": {"type": "ring", "mean_degree": 4}}, "graph.mean_degree", "only applies"),
    ({"graph": {"type": "geometric"}}, "graph.radius", "needs its radius"),
    ({"graph": {"type": "geometric", "radius": 0}}, "graph.radius", "(0, inf)"),
    ({"graph": {"radius": 0.3}}, "graph.radius", "only applies to graph.type geometric"),
    ({"graph": {"type": "geometric", "radius": 0.3, "edges": [[0, 1]]}}, "graph.edges",
     "only applies to graph.type explicit"),
    ({"algorithm": {"gamma_x": -1}}, "algorithm.gamma_x", "(0, inf)"),
    ({"algorithm": {"omega": float("nan")}}, "algorithm.omega", "finite"),
    ({"algorithm": {"delta": "fast"}}, "algorithm.delta", "must be a number"),
    ({"algorithm": {"delta": 1.5}}, "algorithm.delta", "(0, 1]"),
    ({"grid": {"step": 0.03}}, "grid.step", "whole intervals"),
    ({"grid": {"quadrature": "trapezium"}}, "grid.quadrature", "did you mean trapezoid"),
    ({"basis": {"order": 0}}, "basis.order", "[1, 20]"),
    ({"target": {"type": "gaussian_mixture", "components": []}}, "target.components", "non-empty"),
    ({"target": {"type": "gaussian_mixture",
                 "components": [{"weight": 1, "mean": [0], "std": 1}]}},
     "target.components[0].mean", "two numbers"),
    ({"target": {"type": "gaussian_mixture", "components": [{"weight": 1, "mean": [0, 0]}]}},
     "target.components[0].std", "missing"),
    ({"target": {"type": "image"}}, "target.path", "grayscale image"),
    ({"iterations": -5}, "iterations", ">= 0"),
])
def test_errors_name_the_key(raw, key, words):
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert err.value.key == key
    assert f"'{key}'" in str(err.value)
    assert words in str(err.value)


def test_yaml_scientific_notation_without_dot_is_accepted():
    cfg = validate(yaml.safe_load("algorithm: {gamma_x: 1e-3}"))
    assert cfg["algorithm"]["gamma_x"] == 1e-3


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("agents: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_image_target_dark_is_dense(tmp_path):
    from PIL import Image

    pixels = np.full((60, 80), 255, dtype=np.uint8)
    pixels[:20, :20] = 0  # dark block in the top-left corner: c1 < 0, c2 > 0
    Image.fromarray(pixels).save(tmp_path / "corner.png")
    (tmp_path / "cfg.yaml").write_text("target: {type: image, path: corner.png}\n")
    cfg, base = load_config(tmp_path / "cfg.yaml")
    scenario = build_scenario(cfg, base)
    target, g = scenario.problem.target, scenario.problem.family.grid.points
    top_left = target[np.ix_(g < -0.6, g > 0.6)].mean()
    bottom_right = target[np.ix_(g > 0, g < 0)].mean()
    assert top_left > 20 * bottom_right
    assert np.isclose((scenario.problem.family.grid.weights * target).sum(), 1.0)
    with pytest.raises(ValueError, match="blank"):
        image_density(ExponentialFamily(), np.ones((5, 5)), floor=0.0)


def test_init_checks(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        check_init(np.zeros((3, 2)), np.zeros((4, 49)), 4, 49)
    with pytest.raises(ValueError, match="finite"):
        check_init(np.full((4, 2), np.nan), np.zeros((4, 49)), 4, 49)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        check_init(np.full((4, 2), 2.0), np.zeros((4, 49)), 4, 49)
    np.savez(tmp_path / "only_x.npz", x=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="lacks array"):
        load_init(tmp_path / "only_x.npz", 4, 49)
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(2))
    with pytest.raises(ValueError, match="plain numeric arrays"):
        load_init(tmp_path / "objects.npz", 4, 49)


def test_scenario_is_seeded():
    cfg = validate({"agents": 8, "seed": 4})
    a, b = build_scenario(cfg), build_scenario(cfg)
    assert np.array_equal(a.x0, b.x0) and np.array_equal(a.weights, b.weights)
    c = build_scenario(validate({"agents": 8, "seed": 5}))
    assert not np.array_equal(a.x0, c.x0)
    # given weights replace the sampled graph but leave the initial state alone
    d = build_scenario(cfg, weights=np.full((8, 8), 1 / 8))
    assert np.array_equal(d.x0, a.x0) and np.allclose(d.weights, 1 / 8)


# -- any input: a clear ConfigError, or a valid config; never another exception -----------------
_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                  st.floats(allow_nan=True), st.text(max_size=12),
                  st.lists(st.integers(-3, 3), max_size=3),
                  st.dictionaries(st.text(max_size=6), st.integers(), max_size=2))
_SECTION_KEYS = {section: list(value) for section, value in DEFAULTS.items()
                 if isinstance(value, dict)}


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(list(DEFAULTS) + ["agent", "faults"]), st.one_of(
    _JUNK, st.sampled_from(list(_SECTION_KEYS)).flatmap(
        lambda section: st.dictionaries(st.sampled_from(_SECTION_KEYS[section] + ["bogus"]),
                                        _JUNK, max_size=4))), max_size=4))
def test_any_config_is_valid_or_names_the_key_at_fault(raw):
    try:
        cfg = validate(raw)
    except ConfigError as exc:
        assert str(exc).startswith("config")
        return
    assert validate(cfg) == cfg  # what passes is complete and stable
    assert cfg["faults"]["late_policy"] in ("reuse", "drop") and 0 <= cfg["faults"]["drop"] < 1


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["agents", "iterations", "faults", "robots", "graph",
                                        "grid", "basis"]),
                       _JUNK, max_size=3))
def test_the_cli_answers_any_config_file_without_a_traceback(tmp_path, raw):
    """In-process: an exception escaping main() is exactly what would print a traceback."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["simulate", "--config", str(path), "--iterations", "0", "--agents", "3",
                     "--out", str(tmp_path / "run"), "--overwrite", "--no-plots", "--quiet"])
    assert code in (0, 2) and (code == 0 or err.getvalue().startswith("error: ")), err.getvalue()


def test_a_robot_family_sets_its_drivers_values_where_the_config_sets_none():
    robots = validate({"robots": {"family": "turtlebot3", "max_speed": 0.1}})["robots"]
    assert robots["command_type"] == "twist_stamped" and robots["command_timeout"] == 0.0
    assert robots["pose_source"] == "wheel_odometry" and robots["pose_frame"] == "robot_{i}/odom"
    assert robots["max_speed"] == 0.1 and robots["max_turn_rate"] == 2.6  # the config's, then its
    ros2_control = validate({"robots": {"family": "ros2_control"}})["robots"]
    assert ros2_control["command_topic"] == "diff_drive_controller/cmd_vel"
    assert ros2_control["pose_topic"] == "robot_{i}/diff_drive_controller/odom"
    assert validate({})["robots"]["command_type"] == "twist"  # embedded: the package's own
    with pytest.raises(ConfigError, match="robots.family.*one of embedded, turtlebot3"):
        validate({"robots": {"family": "turtlebot"}})


def test_the_family_option_applies_before_the_other_options_override_it():
    from bildmacro_ros.options import run_inputs

    cfg, _, _, _ = run_inputs({"config": "demo", "family": "turtlebot4", "radius": 0.05})
    robots = cfg["robots"]
    assert (robots["max_speed"], robots["pose_frame"], robots["radius"]) == (0.3, "odom", 0.05)
    # a saved run's config.yaml holds every value: read again, nothing moves
    assert validate(cfg) == cfg
