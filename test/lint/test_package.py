# SPDX-License-Identifier: Apache-2.0
"""package.xml declares what the code imports at run time (rosdep installs from it)."""

import ast
from pathlib import Path
import re

ROOT = Path(__file__).resolve().parents[2]

# import name -> rosdep key
ROS_KEYS = {"rclpy": "rclpy", "std_msgs": "std_msgs", "geometry_msgs": "geometry_msgs",
            "nav_msgs": "nav_msgs", "visualization_msgs": "visualization_msgs",
            "turtlesim": "turtlesim", "rcl_interfaces": "rcl_interfaces",
            "ament_index_python": "ament_index_python", "launch": "launch",
            "launch_ros": "launch_ros", "numpy": "python3-numpy", "scipy": "python3-scipy",
            "yaml": "python3-yaml", "matplotlib": "python3-matplotlib", "PIL": "python3-pil",
            "numba": "python3-numba",
            # numba's own dependency (Debian's python3-numba depends on python3-llvmlite)
            "llvmlite": "python3-numba"}


def imported_modules(paths=None):
    names = set()
    if paths is None:
        paths = list((ROOT / "bildmacro_ros").rglob("*.py")) + list((ROOT / "launch").glob("*.py"))
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_runtime_import_is_an_exec_depend():
    declared = set(re.findall(r"<exec_depend>([^<]+)</exec_depend>",
                              (ROOT / "package.xml").read_text()))
    used = imported_modules()
    third_party = {name for name in used if name in ROS_KEYS}
    assert {ROS_KEYS[name] for name in third_party} <= declared
    # rosbags and foxglove (foxglove-sdk) have no rosdep key: each is imported lazily, and
    # without it run.mcap, or the live view, is skipped with a warning (pip install them)
    unknown = {n for n in used
               if n not in ROS_KEYS and n not in ("bildmacro_ros", "rosbags", "foxglove")}
    import sys
    missing = unknown - set(sys.stdlib_module_names)
    assert not missing, f"imports without a rosdep key here: {missing}"


def test_every_source_file_names_the_licence_of_package_xml():
    licence = re.search(r"<license>([^<]+)</license>", (ROOT / "package.xml").read_text()).group(1)
    files = [p for folder in ("bildmacro_ros", "launch", "test", "benchmarks")
             for p in (ROOT / folder).rglob("*.py")]
    unmarked = [str(p.relative_to(ROOT)) for p in files + [ROOT / "setup.py"]
                if p.read_text().splitlines()[:1] != [f"# SPDX-License-Identifier: {licence}"]]
    assert len(files) > 50 and not unmarked, unmarked


def test_the_core_and_the_round_rules_import_nothing_from_ros():
    ros = set(ROS_KEYS) - {"numpy", "scipy", "yaml", "matplotlib", "PIL", "numba", "llvmlite"}
    for folder in ("core", "protocol"):
        for path in (ROOT / "bildmacro_ros" / folder).glob("*.py"):
            imported = imported_modules([path])
            assert not imported & ros, (path.name, imported & ros)


def import_graph() -> dict[str, set[str]]:
    """Return each module of the package -> the package's modules it imports, lazy imports too."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts): p
               for p in (ROOT / "bildmacro_ros").rglob("*.py")}
    modules = {name.removesuffix(".__init__"): path for name, path in modules.items()}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """
    Return the strongly connected groups of more than one module (Tarjan).

    Each holds a cycle.
    """
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def test_no_module_imports_itself_back_and_none_is_long():
    graph = import_graph()
    assert len(graph) > 40 and "bildmacro_ros.ros.agent" in graph["bildmacro_ros.ros.agent_group"]
    assert import_cycles(graph) == []
    sizes = {name: len(path.read_text().splitlines())
             for name, path in ((".".join(p.relative_to(ROOT).with_suffix("").parts), p)
                                for p in (ROOT / "bildmacro_ros").rglob("*.py"))}
    assert sizes["bildmacro_ros.ros.agent"] <= 250
    assert not {name: n for name, n in sizes.items() if n > 300}


if __name__ == "__main__":  # python test/lint/test_package.py: the import cycles, counted
    found = import_cycles(import_graph())
    print(f"{len(found)} import cycles among the package's modules"
          + "".join(f"\n  {c}" for c in found))


def test_every_package_a_launch_starts_is_an_exec_depend():
    from bildmacro_ros.launch_arguments import plan_from_arguments

    declared = set(re.findall(r"<exec_depend(?: condition=\"[^\"]*\")?>([^<]+)</exec_depend>",
                              (ROOT / "package.xml").read_text()))
    plan, _ = plan_from_arguments(agents="4", simulator="turtlesim", rviz="true")
    started = {spec.package for spec in plan.nodes()} - {"bildmacro_ros"}
    assert started == {"rviz2", "tf2_ros", "turtlesim"} and started <= declared
    # and the types the turtlesim bridge imports after Jazzy, on those distros only
    assert 'condition="$ROS_DISTRO != humble and $ROS_DISTRO != jazzy">turtlesim_msgs' in \
        (ROOT / "package.xml").read_text()
    plan, _ = plan_from_arguments(agents="4", simulator="gazebo", record="/tmp/never")
    started = {spec.package for spec in plan.nodes()} - {"bildmacro_ros"}
    # "" is gz, a program: Jazzy's gz_tools_vendor puts it on the PATH
    assert started == {"ros_gz_sim", "ros_gz_bridge", ""}
    assert started - {""} <= declared and "gz_tools_vendor" in declared
