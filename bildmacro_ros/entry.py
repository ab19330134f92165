# SPDX-License-Identifier: Apache-2.0
"""
The executables' entry points: each imports its program only once a Ctrl-C can end it quietly.

A node's module takes a second or more to import (numpy, scipy, rclpy). A Ctrl-C in that time,
which a launch passes on to every node it started, would otherwise print a KeyboardInterrupt
traceback per node; the program had started nothing yet, so it ends as a stopped node does, with
exit code 0. This module imports nothing heavy, so that the window it leaves open is a few ms.
"""

from functools import partial
import importlib
import signal

# Every executable of this package and the function it runs; setup.py's console_scripts run
# each through run() below (a test keeps the two lists equal), and `bildmacro swarm` does too.
EXECUTABLES = {
    "bildmacro": "bildmacro_ros.cli:main",
    "agent": "bildmacro_ros.ros.agent:main",
    "agent_group": "bildmacro_ros.ros.agent_group:main",
    "recorder": "bildmacro_ros.launchers.recorder_node:main",
    "swarm_simulator": "bildmacro_ros.ros.swarm_simulator:simulator_main",
    "follower": "bildmacro_ros.ros.robots:follower_main",
    "turtlesim_bridge": "bildmacro_ros.ros.turtlesim_bridge:main",
    "visualiser": "bildmacro_ros.ros.visualiser:main",
    "settle": "bildmacro_ros.ros.settle:main",
}
# an interrupted command line exits 130 (commands.EXIT_INTERRUPTED); a node exits 0
INTERRUPTED = {"bildmacro": 130}


def run(executable: str) -> int:
    """Import the executable's program and run it; a Ctrl-C while it imports ends it quietly."""
    module, function = EXECUTABLES[executable].split(":")
    try:
        program = getattr(importlib.import_module(module), function)
    except KeyboardInterrupt:
        # a terminal and a launch both send one: the second must not interrupt the exit
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return INTERRUPTED.get(executable, 0)
    return program()


bildmacro = partial(run, "bildmacro")
agent = partial(run, "agent")
agent_group = partial(run, "agent_group")
recorder = partial(run, "recorder")
swarm_simulator = partial(run, "swarm_simulator")
follower = partial(run, "follower")
turtlesim_bridge = partial(run, "turtlesim_bridge")
visualiser = partial(run, "visualiser")
settle = partial(run, "settle")
