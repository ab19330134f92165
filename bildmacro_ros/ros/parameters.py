# SPDX-License-Identifier: Apache-2.0
"""
Declaring node parameters.

Typed, read-only, described, with ranges; the agent's from its schema.
"""

from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.parameter import Parameter

from ..protocol.parameters import (AGENT_PARAMETERS, AgentSetup, check_settings, check_values,
                                   OPTIONAL, ParameterError, ParameterSpec, REQUIRED)

_TYPES = {
    bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE,
    str: Parameter.Type.STRING, "int[]": Parameter.Type.INTEGER_ARRAY,
    "float[]": Parameter.Type.DOUBLE_ARRAY,
}


def declare(node, name: str, kind, description: str, default=None, low=None, high=None,
            optional: bool = False):
    """
    Declare a typed, read-only parameter with a description and (for numbers) a range.

    Without a default the parameter is required: it is declared by type only, so an empty or
    missing list is reported by name instead of surfacing as rclpy's type error. An optional one
    reads None when it is not given.
    """
    descriptor = ParameterDescriptor(name=name, description=description, read_only=True)
    if kind is int and low is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    if kind is float and low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                              to_value=float(high), step=0.0)]
    try:
        if default is None:
            node.declare_parameter(name, _TYPES[kind], descriptor)
        else:
            node.declare_parameter(name, default, descriptor)
    except Exception as exc:  # noqa: BLE001 - rclpy raises several types for a bad override
        raise ParameterError(f"parameter '{name}': {exc}") from None
    try:
        value = node.get_parameter(name).value
    except Exception:  # noqa: BLE001 - ParameterUninitializedException: declared by type only
        value = None
    if value is None and optional:
        return None
    if value is None:
        raise ParameterError(f"parameter '{name}' is required ({description})")
    return list(value) if kind in ("int[]", "float[]") else value


def declare_spec(node, spec: ParameterSpec):
    """Declare one parameter of a node's table (protocol/parameters.py, node_parameters.py)."""
    low, high = spec.bounds or (None, None)
    default = None if spec.default_value in (REQUIRED, OPTIONAL) else spec.default_value
    return declare(node, spec.name, spec.kind, spec.description, default, low, high,
                   optional=spec.default_value is OPTIONAL)


def read_parameters(node, table):
    """Declare every parameter of a node's table and check them; the values as attributes."""
    return check_values(table, {spec.name: declare_spec(node, spec) for spec in table})


def read_agent_setup(node) -> AgentSetup:
    """
    Declare every agent parameter and check them together.

    ParameterError names the one at fault.
    """
    return check_settings({spec.name: declare_spec(node, spec) for spec in AGENT_PARAMETERS})
