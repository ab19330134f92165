# SPDX-License-Identifier: Apache-2.0
"""
Every node's parameters come from one table.

The plan writes exactly them, the node reads them.
"""

import pytest

from bildmacro_ros.core.config import FIELDS, validate
from bildmacro_ros.entry import EXECUTABLES
from bildmacro_ros.launch_arguments import plan_from_arguments
from bildmacro_ros.launch_plan import plan_swarm
from bildmacro_ros.protocol.node_parameters import NODE_PARAMETERS
from bildmacro_ros.protocol.parameters import (AGENT_PARAMETERS, check_values, ParameterError,
                                               REQUIRED)

TABLES = {"agent": AGENT_PARAMETERS, **NODE_PARAMETERS}


def test_every_node_of_the_package_has_a_table():
    nodes = set(EXECUTABLES) - {"bildmacro"}
    assert set(TABLES) == nodes


@pytest.mark.parametrize("simulator", ["embedded", "turtlesim", "none"])
def test_the_plan_writes_every_required_parameter_and_no_other(simulator, tmp_path):
    plan, _ = plan_from_arguments(agents="5", simulator=simulator, rviz="true",
                                  record=str(tmp_path), agents_per_process="2")
    specs = plan.agents + [spec for spec in plan.nodes() if spec.package == "bildmacro_ros"]
    assert {spec.executable for spec in specs} >= {"agent", "agent_group", "recorder"}
    for spec in specs:
        table = {p.name: p for p in TABLES[spec.executable]}
        assert set(spec.parameters) <= set(table), (spec.name, set(spec.parameters) - set(table))
        required = {name for name, p in table.items() if p.default_value is REQUIRED}
        assert required <= set(spec.parameters), (spec.name, required - set(spec.parameters))


def test_a_parameter_with_a_config_key_takes_the_config_value_default_and_range():
    cfg = validate({"agents": 4, "robots": {"max_speed": 0.22, "rate": 15.0, "radius": 0.05,
                                            "sensing_range": 0.7}})
    plan = plan_swarm(cfg, visualiser=True)
    written = {spec.executable: spec.parameters for spec in plan.robots}
    for executable, table in NODE_PARAMETERS.items():
        for p in table:
            if p.config_key is None:
                continue
            field = FIELDS.get(p.config_key)
            if field is not None and p.kind in (int, float):
                assert p.bounds[0] == field.low and p.bounds[1] in (field.high, 2**63 - 1,
                                                                    float("inf"))
            if executable in written and p.name != "target":
                value = cfg
                for part in p.config_key.split("."):
                    value = value[part]
                assert written[executable][p.name] == value, (executable, p.name)


def test_a_value_the_config_refuses_is_refused_by_the_node_naming_the_parameter():
    table = NODE_PARAMETERS["follower"]
    good = {p.name: p.default_value for p in table}
    good.update(robot_ids=[0], max_speed=0.5, max_turn_rate=3.0, rate=20.0, radius=0.0,
                safety=True, sensing_range=0.5)
    assert check_values(table, good).sensing_range == 0.5
    with pytest.raises(ParameterError, match="parameter 'sensing_range'"):
        check_values(table, dict(good, sensing_range=0.0))  # the config's range is open at 0
    with pytest.raises(ParameterError, match="parameter 'radius'"):
        check_values(table, dict(good, radius=0.6))
