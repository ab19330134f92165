# SPDX-License-Identifier: Apache-2.0
"""A config value checked as its key requires: numbers in ranges, whole numbers, choices, flags."""

from __future__ import annotations

from dataclasses import dataclass
import difflib
import math
import re
from typing import Any


class ConfigError(ValueError):
    """A config value is wrong; `key` is its dotted path, e.g. algorithm.gamma_y."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}" if key else f"config: {message}")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, f"must be a number, got {value!r}")
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string; accept it
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(key, f"must be a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(key, f"must be finite, got {value}")
    return value


def _float(key, value, low=None, high=None, low_open=False, high_open=False) -> float:
    value = _number(key, value)
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        rng = f"in {lo or '(-inf'}, {hi or 'inf)'}"
        raise ConfigError(key, f"must be {rng}, got {value:g}")
    return value


def _int(key, value, low=None, high=None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(key, f"must be a whole number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(key, f"must be {bounds}, got {value}")
    return value


def _choice(key, value, options) -> str:
    if value not in options:
        hint = difflib.get_close_matches(str(value), options, n=1)
        raise ConfigError(key, f"must be one of {', '.join(options)}, got {value!r}"
                          + (f" (did you mean {hint[0]}?)" if hint else ""))
    return value


def _bool(key, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    return value


def _topic(key, value) -> str:
    # relative, so that it lands in each robot's namespace robot_<i>/ (ROS 2 name rules)
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]\w*(/[A-Za-z]\w*)*", value):
        raise ConfigError(key, f"must be a relative topic name such as cmd_vel or "
                               f"diff_drive_controller/cmd_vel, got {value!r}")
    return value


def _pattern(key, value) -> str | None:
    if value is None:
        return None
    name = value.replace("{i}", "0") if isinstance(value, str) else None
    if name is None or not re.fullmatch(r"/?[A-Za-z]\w*(/[A-Za-z]\w*)*", name):
        raise ConfigError(key, f"must be a topic or frame name in which {{i}} stands for the "
                               f"robot's id, such as robot_{{i}}/odom, got {value!r}")
    return value


def _pair(key, value, low=None, high=None, low_open=False) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(key, f"must be a list of two numbers [a, b], got {value!r}")
    return [_float(f"{key}[{n}]", v, low, high, low_open) for n, v in enumerate(value)]


@dataclass(frozen=True)
class Field:
    """
    One scalar config key: its type and the values it admits (bounds, or options).

    The one source of these ranges: the agents' settings take theirs from here.
    """

    # int, float, bool, choice, pair (two floats, each in the bounds), topic (a relative ROS
    # topic name) or pattern (a topic or frame name in which {i} stands for the robot's id;
    # None: the default of another key's choice)
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def check(self, key: str, value: Any) -> Any:
        if self.kind == "int":
            return _int(key, value, self.low, self.high)
        if self.kind == "float":
            return _float(key, value, self.low, self.high, self.low_open, self.high_open)
        if self.kind == "bool":
            return _bool(key, value)
        if self.kind == "topic":
            return _topic(key, value)
        if self.kind == "pair":
            return _pair(key, value, self.low, self.high, self.low_open)
        if self.kind == "pattern":
            return _pattern(key, value)
        return _choice(key, value, self.choices)


# keys that changed name, so an old config gets the new name in its error
RENAMED = {"faults.seed": "faults.fault_seed"}


def _mapping(key, value, allowed) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a mapping, got {type(value).__name__}")
    for name in value:
        if name not in allowed:
            hint = difflib.get_close_matches(str(name), list(allowed), n=1)
            full = f"{key}.{name}" if key else str(name)
            hint = [RENAMED[full].rpartition(".")[2]] if full in RENAMED else hint
            raise ConfigError(full, "unknown key" + (f" (did you mean {hint[0]}?)" if hint else "")
                              + f"; allowed here: {', '.join(allowed)}")
    return value
