# SPDX-License-Identifier: Apache-2.0
"""The README and docs/: every link and anchor resolves, and every command shown runs."""

import inspect
from pathlib import Path
import re
import shlex

import pytest

from bildmacro_ros.cli import build_parser
from bildmacro_ros.launch_arguments import launch_arguments, robot_launch_arguments

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """Return the anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text, fence, out = page.read_text(), False, set()
    for line in text.splitlines():
        fence ^= line.startswith("```")
        if not fence and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def code_lines(page: Path) -> list[str]:
    lines, fence = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif fence:
            lines.append(line.split(" #", 1)[0].strip())
    return lines


def test_the_readme_is_read_in_five_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_and_anchor_resolves(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: no {anchor!r} in {linked.name}"


def test_every_command_the_readme_shows_is_one_that_runs():
    parser, shown = build_parser(), 0
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    robot_arguments = set(inspect.signature(robot_launch_arguments).parameters)
    for line in code_lines(ROOT / "README.md"):
        words = shlex.split(line) if line else []
        if not words:
            continue
        if words[0].endswith("bildmacro"):
            parser.parse_args(words[1:])  # exits, failing the test, on an option it does not take
            shown += 1
        elif words[0] == "make":
            assert words[1] in targets, line
        elif words[:2] == ["ros2", "launch"]:
            assert words[2] == "bildmacro_ros" and (ROOT / "launch" / words[3]).is_file(), line
            swarm = words[3] == "swarm.launch.py"
            declared = set(launch_arguments()) if swarm else robot_arguments
            given = {word.split(":=")[0] for word in words[4:]}
            assert given <= declared, (line, given - declared)
    assert shown >= 8
