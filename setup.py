# SPDX-License-Identifier: Apache-2.0
"""ament_python package setup; also a plain pip-installable package (see README)."""

from glob import glob

from setuptools import find_packages, setup

package_name = "bildmacro_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "benchmarks"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.rviz")
         + glob("config/*.xml") + glob("config/*.json")),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="bildmacro_ros developers",
    maintainer_email="bildmacro_ros@users.noreply.github.com",
    description="BILD-MACRO: distributed bilevel swarm density control on ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "bildmacro = bildmacro_ros.entry:bildmacro",
            "agent = bildmacro_ros.entry:agent",
            "agent_group = bildmacro_ros.entry:agent_group",
            "recorder = bildmacro_ros.entry:recorder",
            "swarm_simulator = bildmacro_ros.entry:swarm_simulator",
            "follower = bildmacro_ros.entry:follower",
            "turtlesim_bridge = bildmacro_ros.entry:turtlesim_bridge",
            "visualiser = bildmacro_ros.entry:visualiser",
            "settle = bildmacro_ros.entry:settle",
        ],
    },
)
