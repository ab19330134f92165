# SPDX-License-Identifier: Apache-2.0
"""Code style: ament_flake8 (pycodestyle, pyflakes, import order) with setup.cfg's settings."""

from pathlib import Path

from ament_flake8.main import main_with_errors
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    paths = [str(ROOT / name) for name in ("bildmacro_ros", "launch", "test", "benchmarks",
                                           "setup.py")]
    rc, errors = main_with_errors(argv=["--config", str(ROOT / "setup.cfg"), *paths])
    assert rc == 0, f"Found {len(errors)} code style errors / warnings:\n" + "\n".join(errors)
