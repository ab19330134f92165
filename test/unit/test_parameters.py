# SPDX-License-Identifier: Apache-2.0
"""
The one agent-parameter schema.

The plan writes it, the node reads it, the config owns defaults and ranges.
"""

import argparse
import math
import re

import pytest

from bildmacro_ros.cli import build_parser
from bildmacro_ros.core.config import default, DEFAULTS, FIELDS, validate
from bildmacro_ros.launch_plan import plan_swarm
from bildmacro_ros.protocol.parameters import (AGENT_PARAMETERS, AgentSettings, BY_NAME,
                                               check_settings, config_from_parameters,
                                               ParameterError, REQUIRED)

NODE_DEFAULTS = {spec.name: spec.default_value for spec in AGENT_PARAMETERS
                 if spec.default_value is not REQUIRED}


def planned(agent=1, **cfg):
    plan = plan_swarm(validate({"agents": 5, "seed": 2, **cfg}), recorders=1, run_dir="/tmp/run")
    return plan, plan.agents[agent].parameters


def test_parameters_with_a_config_key_take_its_default_and_its_range():
    for spec in AGENT_PARAMETERS:
        if spec.config_key is None:
            continue
        if spec.name != "target":
            assert spec.default_value == default(spec.config_key), spec.name
        field = FIELDS.get(spec.config_key)
        if field is not None and spec.kind in (int, float):
            unbounded = 2**63 - 1 if spec.kind is int else math.inf
            expected = (-unbounded if field.low is None else field.low, unbounded
                        if field.high is None else field.high)
            assert spec.bounds == expected, spec.name
    assert BY_NAME["agents"].bounds == (2, 100000)  # one range for agents, the config's


def test_the_plan_writes_exactly_the_schema_and_the_node_reads_back_the_config():
    plan, params = planned(faults={"drop": 0.05, "late_policy": "reuse", "fault_seed": 9})
    assert set(params) <= set(BY_NAME)
    assert set(BY_NAME) - set(params) <= set(NODE_DEFAULTS)  # the rest have node defaults
    setup = check_settings({**NODE_DEFAULTS, **params})
    assert isinstance(setup.settings, AgentSettings) and setup.settings.agent_id == 1
    cfg = plan.scenario.config
    for key in ("agents", "iterations", "algorithm", "basis", "grid", "target", "faults"):
        assert setup.config[key] == cfg[key], key
    assert setup.settings.drop == 0.05 and setup.settings.fault_seed == 9
    assert params["checkpoint_dir"] == "/tmp/run/checkpoints"
    assert params["outcome_dir"] == "/tmp/run/outcomes"
    with pytest.raises(Exception):  # frozen: settings are read once, at startup
        setup.settings.deadline = 5.0


@pytest.mark.parametrize("name,value,message", [
    ("gamma_x", -1.0, "parameter 'gamma_x': must be in (0"),
    ("drop", 1.0, "parameter 'drop': must be in [0, 1)"),
    ("late_policy", "guess", "parameter 'late_policy': must be one of reuse, drop"),
    ("quadrature", "simpson", "parameter 'quadrature'"),
    ("target", "{type: image}", "parameter 'target'"),
    ("target", "{type: oops", "parameter 'target': not valid YAML"),
    ("neighbour_weights", [0.1], "parameters 'self_weight' + 'neighbour_weights' must sum to 1"),
    ("initial_y", [0.0], "parameter 'initial_y': needs 49"),
    ("agent_id", 7, "parameter 'agent_id': 7 is not below agents = 5"),
])
def test_a_bad_value_is_an_error_that_names_the_parameter(name, value, message):
    _, params = planned()
    with pytest.raises(ParameterError, match=re.escape(message)):
        check_settings({**NODE_DEFAULTS, **params, name: value})


def test_a_missing_required_parameter_is_named():
    _, params = planned()
    del params["neighbours"]
    with pytest.raises(ParameterError, match="parameter 'neighbours' is required"):
        check_settings({**NODE_DEFAULTS, **params})


def test_each_fault_setting_has_one_name_in_config_parameter_and_command_line():
    swarm = next(a for a in build_parser()._actions
                 if isinstance(a, argparse._SubParsersAction)).choices["swarm"]
    options = {action.dest: action.option_strings for action in swarm._actions}
    for key in DEFAULTS["faults"]:
        assert key in BY_NAME and BY_NAME[key].config_key == f"faults.{key}", key
        # a switch that is on by default is named by its off form: --no-pin-writers
        named = "--no-" if DEFAULTS["faults"][key] is True else "--"
        assert options.get(key) == [named + key.replace("_", "-")], key


def test_config_errors_from_parameters_name_the_parameter_not_the_config_key():
    with pytest.raises(ParameterError, match="parameter 'dead_after'"):
        config_from_parameters({"dead_after": 0})
    with pytest.raises(ParameterError, match="parameter 'arrival_tolerance'"):
        config_from_parameters({"arrival_tolerance": 5.0})
