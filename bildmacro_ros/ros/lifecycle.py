# SPDX-License-Identifier: Apache-2.0
"""A node process's life: start ROS, spin until the work is done, stop cleanly, never outlive its parent."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from ..protocol.parameters import ParameterError


def end_with_parent(parent: int) -> None:
    """
    Have the kernel send this process SIGINT (a clean shutdown) when `parent` dies, even by SIGKILL.

    So a launcher killed outright leaves no node running on. On Linux; elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the kernel was told
        os.kill(os.getpid(), signal.SIGINT)


def run_nodes(make_nodes, until=None) -> int:
    """
    Spin the nodes make_nodes() returns until every future until(nodes) gives is done (no until: until shutdown).

    Ctrl-C and external shutdown end cleanly (exit 130 if that cuts the work short); bad parameters exit
    2.
    """
    try:
        rclpy.init()
    except Exception as exc:  # noqa: BLE001 - RCLError: the --ros-args could not be parsed
        print(f"error: could not start ROS with these arguments: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    nodes = []
    try:
        nodes = make_nodes()
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        futures = until(nodes) if until is not None else None
        if futures is None:
            executor.spin()
        for future in futures or ():
            executor.spin_until_future_complete(future)
        return 0
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 130 if until is not None else 0  # Ctrl-C is how a node without an end is stopped
    except RuntimeError:
        # Ctrl-C shuts the context down first; a take already under way then fails in rclpy's
        # bindings instead of raising KeyboardInterrupt
        if rclpy.ok():
            raise
        return 130 if until is not None else 0
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
