# SPDX-License-Identifier: Apache-2.0
"""One table of options (options.py): the command line and the launch file offer exactly it."""

import argparse

import pytest

from bildmacro_ros.cli import build_parser
from bildmacro_ros.core.config import FIELDS
from bildmacro_ros.launch_arguments import launch_arguments, plan_from_arguments
from bildmacro_ros.options import OPTIONS, options_of, run_inputs

# what the launchers take for themselves, beside the table: outputs, fault drills, a robot's id
OWN = {"help", "out", "overwrite", "method", "log_every", "no_plots", "quiet", "stall_timeout",
       "hang_timeout", "animation", "bag_every_round", "visualiser", "kill", "restart_after",
       "no_record", "live", "live_address", "live_port"}


def options(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest for action in sub.choices[command]._actions}


def test_each_command_offers_its_options_of_the_table_and_no_other_setting():
    for command in ("simulate", "swarm", "plan"):
        table = {option.name for option in options_of(command)}
        offered = options(command)
        assert table <= offered, (command, table - offered)
        assert offered - table <= OWN, (command, offered - table - OWN)


def test_the_launch_file_declares_exactly_the_table_and_plans_from_it():
    assert set(launch_arguments()) == {option.name for option in options_of("launch")}
    plan, cfg = plan_from_arguments(agents="4", deadline="0.7", late_policy="reuse", drop="0.1")
    assert cfg["faults"]["deadline"] == 0.7 and cfg["faults"]["late_policy"] == "reuse"
    agent = plan.agents[0].parameters
    assert agent["deadline"] == 0.7 and agent["drop"] == 0.1


def test_every_config_override_is_on_the_command_line_and_in_the_launch_file():
    for option in OPTIONS:
        if option.key is not None:
            assert option.key in FIELDS or option.key == "graph.edge_probability", option.name
            assert {"swarm", "launch"} <= option.commands, option.name


# a valid value of each kind, as text (flags have a form of their own on the command line)
EXAMPLES = {"count": "3", "whole": "7", "seconds": "0.4", "metres": "0.05", "probability": "0.1",
            "radians": "0.5", "pair": "3,1.5"}


def test_the_command_line_and_the_launch_file_read_each_value_alike():
    parser, read = build_parser(), 0
    for option in options_of("launch"):
        if option.key is None or option.kind not in EXAMPLES:
            continue
        text = EXAMPLES[option.kind]
        flag = "--" + option.name.replace("_", "-")
        given = vars(parser.parse_args(["swarm", flag, text]))
        from_cli = run_inputs({"config": "demo", option.name: given[option.name]})[0]
        from_launch = plan_from_arguments(config="demo", **{option.name: text})[1]
        assert from_cli == from_launch, option.name
        read += 1
    assert read >= 15
    with pytest.raises(ValueError, match="arena_size"):
        plan_from_arguments(arena_size="4")


def test_a_launch_without_arguments_shows_the_demo_and_the_command_line_the_paper():
    assert launch_arguments()["config"][0] == "demo"
    assert "(default: demo)" in launch_arguments()["config"][1]
    _, cfg = plan_from_arguments()
    demo = run_inputs({"config": "demo"})[0]
    assert cfg == demo and cfg["iterations"] == 4000
    assert vars(build_parser().parse_args(["swarm"]))["config"] == "default"
