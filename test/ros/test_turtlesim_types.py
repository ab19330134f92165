# SPDX-License-Identifier: Apache-2.0
"""Which package turtlesim's types come from: turtlesim_msgs after Jazzy, turtlesim before."""

import sys
import types

import pytest

from bildmacro_ros.protocol.parameters import ParameterError
from bildmacro_ros.ros.turtlesim_bridge import turtlesim_types

pytestmark = pytest.mark.ros
NAMES = ("Pose", "SetPen", "Spawn", "TeleportAbsolute")


def installed(monkeypatch, package):
    """Install a package shaped as rosidl generates turtlesim's: Pose in msg, the rest in srv."""
    made = {name: type(name, (), {"package": package}) for name in NAMES}
    msg = types.ModuleType(f"{package}.msg")
    srv = types.ModuleType(f"{package}.srv")
    msg.Pose = made["Pose"]
    for name in NAMES[1:]:
        setattr(srv, name, made[name])
    root = types.ModuleType(package)
    root.msg, root.srv = msg, srv
    for name, module in ((package, root), (f"{package}.msg", msg), (f"{package}.srv", srv)):
        monkeypatch.setitem(sys.modules, name, module)


def absent(monkeypatch, package):
    for name in (package, f"{package}.msg", f"{package}.srv"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


@pytest.mark.parametrize("present", [("turtlesim_msgs",), ("turtlesim",),
                                     ("turtlesim_msgs", "turtlesim")])
def test_the_types_come_from_turtlesim_msgs_first_and_turtlesim_second(monkeypatch, present):
    for package in ("turtlesim_msgs", "turtlesim"):
        (installed if package in present else absent)(monkeypatch, package)
    found = turtlesim_types()
    assert [t.__name__ for t in found] == list(NAMES)
    assert {t.package for t in found} == {present[0]}  # turtlesim_msgs wins where both exist


def test_without_either_the_error_names_both(monkeypatch):
    absent(monkeypatch, "turtlesim_msgs")
    absent(monkeypatch, "turtlesim")
    with pytest.raises(ParameterError, match="neither turtlesim_msgs .* nor turtlesim"):
        turtlesim_types()
