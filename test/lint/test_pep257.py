# SPDX-License-Identifier: Apache-2.0
"""Docstring style: ament_pep257, with the ament convention that ROS 2 packages use."""

from pathlib import Path

from ament_pep257.main import main
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    paths = [str(ROOT / name)
             for name in ("bildmacro_ros", "launch", "test", "benchmarks", "setup.py")]
    rc = main(argv=paths)
    assert rc == 0, "Found code style errors / warnings"
