# SPDX-License-Identifier: Apache-2.0
"""
The agent node's parameters: one table of name, type, description and config key.

The launch plan writes agent parameters from it (`parameters_from_config`), the node declares
and reads them from it (ros/parameters.py), and config errors name the parameter through it. A
parameter with a config key takes its default and range from `core/config.py` (FIELDS,
DEFAULTS); the others, which only a node has, carry theirs here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
import types
from typing import Any

import numpy as np
import yaml

from ..core import config as configs
from ..core.arena import Arena

REQUIRED = object()  # no default: the launch plan or the user must give it
OPTIONAL = object()  # no default, and none needed: the node reads None and decides
INT64 = 2**63 - 1


class ParameterError(ValueError):
    """A node parameter is missing or out of range; the message names it."""


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    kind: Any  # bool, int, float, str, "int[]" or "float[]"
    description: str
    config_key: str | None = None  # its dotted config key: default and range come from there
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None

    @property
    def default_value(self) -> Any:
        if self.config_key is None:
            return self.default
        value = configs.default(self.config_key)
        return _to_parameter(self, value)

    @property
    def bounds(self) -> tuple[float, float] | None:
        """
        Return the closed range a ROS descriptor can state.

        An open bound is checked by the config.
        """
        if self.kind not in (int, float):
            return None
        low, high = self.low, self.high
        field = configs.FIELDS.get(self.config_key) if self.config_key else None
        if field is not None:
            low, high = field.low, field.high
        if self.kind is int:
            return (-INT64 if low is None else int(low), INT64 if high is None else int(high))
        return (-math.inf if low is None else float(low), math.inf if high is None
                else float(high))


def check_values(table, values: dict) -> Any:
    """
    Check one node's parameter values against its table; return them as attributes.

    A parameter with a config key is checked as the config checks that key (open bounds too,
    which a ROS descriptor cannot state); ParameterError names the parameter.
    """
    for spec in table:
        field = configs.FIELDS.get(spec.config_key) if spec.config_key else None
        if field is not None:
            try:
                field.check(spec.config_key, values[spec.name])
            except configs.ConfigError as exc:
                raise ParameterError(f"parameter '{spec.name}': {str(exc).split(': ', 1)[-1]}") \
                    from None
    return types.SimpleNamespace(**values)


def _to_parameter(spec: ParameterSpec, value: Any) -> Any:
    """Return a config value as the parameter carries it (the target as one line of YAML)."""
    if spec.name == "target":
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return spec.kind(value) if spec.kind in (bool, int, float, str) else value


_P = ParameterSpec
# the density model: every node that evaluates p(., y) takes these four (the visualiser too)
DENSITY_MODEL = (
    _P("basis_order", int, "Legendre order kappa; m = (kappa+1)^2", "basis.order"),
    _P("grid_step", float, "grid spacing over [-1,1]^2", "grid.step"),
    _P("quadrature", str, "trapezoid or riemann", "grid.quadrature"),
    _P("target", str, "target density, a YAML mapping as in the config's target key", "target"),
)
# where C lies in the lab (core/arena.py): every node that turns x_i into metres, or back
ARENA = (
    _P("arena_centre", "float[]", "lab coordinates of C's centre (m)", "arena.centre"),
    _P("arena_size", "float[]", "width and height of C in the lab (m)", "arena.size"),
    _P("arena_rotation", float, "angle of C's x axis from the lab's (rad)", "arena.rotation"),
)


def arena_of(p) -> Arena:
    """Return the arena of a node's checked ARENA parameters."""
    return Arena.of(p.arena_centre, p.arena_size, p.arena_rotation)


AGENT_PARAMETERS = (
    _P("agent_id", int, "this agent's id i (0-based)", low=0,
       high=configs.FIELDS["agents"].high - 1),
    _P("agents", int, "swarm size N", "agents"),
    _P("neighbours", "int[]", "in-neighbour ids j (a_ij > 0, j != i)"),
    _P("neighbour_weights", "float[]", "a_ij, aligned with neighbours"),
    _P("self_weight", float, "a_ii", low=0.0, high=1.0),
    _P("gamma_x", float, "step size of (6a)", "algorithm.gamma_x"),
    _P("gamma_y", float, "step size of (7); stable near 0.9/N", "algorithm.gamma_y"),
    _P("omega", float, "regulariser and eigenvalue floor of P_{>=omega}", "algorithm.omega"),
    _P("delta", float, "convex-combination factor of (6b)", "algorithm.delta"),
    *DENSITY_MODEL, *ARENA,
    _P("initial_x", "float[]", "x_i^0 in [-1,1]^2"),
    _P("initial_y", "float[]", "y_i^0, m values"),
    _P("initial_y_bound", float,
       "the largest |y_j^0| entry over the swarm: the plausibility bound on neighbours' y "
       "grows from it (0: this agent's own, at least 5)", default=0.0, low=0.0),
    _P("iterations", int, "iterations K to run", "iterations"),
    _P("listeners", int, "subscribers to wait for before round 0 (-1: one per neighbour)",
       default=-1, low=-1, high=1_000_000),
    _P("record_every", int,
       "publish agent_<i>/record every this many rounds, for a recorder (0: never)", default=0,
       low=0, high=INT64),
    _P("followers", int, "waypoint subscribers (the robot's follower) to wait for before round 0",
       default=0, low=0, high=1000),
    _P("recorders", int, "record subscribers to wait for before round 0", default=0, low=0,
       high=1000),
    _P("startup_timeout", float, "seconds to wait for discovery before starting anyway",
       default=30.0, low=0.0, high=3600.0),
    _P("republish_period", float,
       "seconds a round may wait before this agent re-sends its last two rounds "
       "(heals a lost message)", default=30.0, low=0.01, high=3600.0),
    _P("frame_id", str, "frame of the published waypoints", default="map"),
    _P("wait_for_robot", bool,
       "step round k only once the robot's pose (robot_<i>/pose) is within "
       "arrival_tolerance of x_i^k", "robots.wait"),
    _P("arrival_tolerance", float, "metres in the arena; see wait_for_robot", "robots.tolerance"),
    _P("waypoint_rate", float,
       "publish agent_<i>/waypoint and x_hat at most this often (Hz; the newest always "
       "goes out, and every round's with wait_for_robot)", "robots.rate"),
    _P("deadline", float,
       "seconds a round waits for a neighbour's message before stepping without it "
       "(0: for ever)", "faults.deadline"),
    _P("late_policy", str,
       "for a late neighbour: reuse (its newest message stands in) or drop (its weight "
       "moves to self_weight)", "faults.late_policy"),
    _P("dead_after", int,
       "a neighbour silent for this many deadlines is declared dead and no longer waited "
       "for", "faults.dead_after"),
    _P("tracking_reset", int,
       "re-initialise r_i and q_i (Theorem 1) on every round that is a multiple of "
       "this (0: never)", "faults.tracking_reset"),
    _P("drop", float,
       "fault injection: probability that a neighbour's round never arrives (seeded)",
       "faults.drop"),
    _P("delay", float,
       "fault injection: neighbour messages arrive after a seeded uniform delay in [0, delay] "
       "s", "faults.delay"),
    _P("fault_seed", int, "seed of the injected faults", "faults.fault_seed"),
    _P("pin_writers", bool,
       "refuse a neighbour's messages while a second writer is on its topic (false: only "
       "report it; docs/security.md)",
       "faults.pin_writers"),
    _P("checkpoint_dir", str,
       "folder where this agent saves its state (agent_<i>.npz) every checkpoint_every "
       "rounds ('': none)", default=""),
    _P("checkpoint_every", int, "rounds between checkpoints", default=100, low=1, high=INT64),
    _P("resume", bool,
       "start from its checkpoint (a restarted robot); the agent then catches up with its "
       "neighbours' round", default=False),
    _P("outcome_dir", str,
       "folder where this agent writes agent_<i>.json, its outcome, when it stops "
       "('': none)", default=""),
)
del _P
BY_NAME = {spec.name: spec for spec in AGENT_PARAMETERS}
PARAMETER_OF_KEY = {spec.config_key: spec.name for spec in AGENT_PARAMETERS if spec.config_key}

_TYPES = {"int[]": list, "float[]": list}
AgentSettings = dataclasses.make_dataclass(
    "AgentSettings", [(spec.name, _TYPES.get(spec.kind, spec.kind)) for spec in AGENT_PARAMETERS],
    frozen=True)
AgentSettings.__doc__ = "Every agent parameter of AGENT_PARAMETERS, read and checked."
AgentSettings.__module__ = __name__


def parameters_from_config(cfg: dict, names=None, table=None) -> dict:
    """
    Return a node's parameters that have a config key, with the config's values.

    table: the node's (default: the agent's); names: a subset.
    """
    out = {}
    for spec in AGENT_PARAMETERS if table is None else table:
        if spec.config_key is None or (names is not None and spec.name not in names):
            continue
        value: Any = cfg
        for part in spec.config_key.split("."):
            value = value[part]
        out[spec.name] = _to_parameter(spec, value)
    return out


def config_from_parameters(values: dict, extra: dict | None = None) -> dict:
    """
    Return a validated config from parameter values (those with a config key; the rest default).

    A ConfigError becomes a ParameterError that names the parameter.
    """
    raw: dict = {}
    for name, value in values.items():
        key = BY_NAME[name].config_key
        if key is None:
            continue
        if name == "target":
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ParameterError(f"parameter 'target': not valid YAML: {exc}") from None
        section, _, leaf = key.rpartition(".")
        (raw.setdefault(section, {}) if section else raw)[leaf] = value
    raw.update(extra or {})
    try:
        return configs.validate(raw)
    except configs.ConfigError as exc:
        key = exc.key.split("[")[0]
        name = PARAMETER_OF_KEY.get(key, "target" if key.startswith("target") else key)
        raise ParameterError(f"parameter '{name}': {str(exc).split(': ', 1)[-1]}") from None


@dataclass(frozen=True)
class AgentSetup:
    """What an agent node starts from: its checked settings, the config they make, x_i^0, y_i^0."""

    settings: Any  # AgentSettings
    config: dict
    x0: np.ndarray
    y0: np.ndarray


def check_settings(values: dict) -> AgentSetup:
    """Check one agent's parameter values together; ParameterError names the one at fault."""
    missing = [spec.name for spec in AGENT_PARAMETERS if spec.name not in values]
    if missing:
        raise ParameterError(f"parameter '{missing[0]}' is required "
                             f"({BY_NAME[missing[0]].description})")
    s = AgentSettings(**{name: values[name] for name in BY_NAME})
    i, near, w = s.agent_id, list(s.neighbours), list(s.neighbour_weights)
    if i >= s.agents:
        raise ParameterError(f"parameter 'agent_id': {i} is not below agents = {s.agents}")
    if not near:
        raise ParameterError("parameter 'neighbours': an agent needs at least one in-neighbour")
    if len(set(near)) != len(near) or i in near or min(near) < 0 or max(near) >= s.agents:
        raise ParameterError(f"parameter 'neighbours': {near} must be distinct ids in [0, "
                             f"{s.agents - 1}] "
                             f"other than agent_id {i}")
    if len(w) != len(near):
        raise ParameterError(f"parameter 'neighbour_weights': {len(w)} weights for {len(near)} "
                             "neighbours")
    if min(w) <= 0 or s.self_weight <= 0:
        raise ParameterError("parameters 'neighbour_weights', 'self_weight': every weight must be "
                             "> 0")
    if abs(s.self_weight + sum(w) - 1) > 1e-9:
        raise ParameterError("parameters 'self_weight' + 'neighbour_weights' must sum to 1 (row "
                             "of a doubly "
                             f"stochastic matrix), got {s.self_weight + sum(w):.12g}")
    cfg = config_from_parameters(values)
    m = (s.basis_order + 1) ** 2
    x0, y0 = np.array(s.initial_x, dtype=float), np.array(s.initial_y, dtype=float)
    if x0.shape != (2,) or not np.all(np.isfinite(x0)) or np.any(np.abs(x0) > 1):
        raise ParameterError("parameter 'initial_x': needs 2 finite values in [-1, 1], got "
                             f"{list(s.initial_x)}")
    if y0.shape != (m,) or not np.all(np.isfinite(y0)):
        raise ParameterError(f"parameter 'initial_y': needs {m} finite values for basis_order "
                             f"{s.basis_order}, got {y0.size}")
    return AgentSetup(s, cfg, x0, y0)
