# SPDX-License-Identifier: Apache-2.0
"""
A node process's life.

Start ROS, spin until the work is done, stop cleanly, never outlive its parent.
"""

from __future__ import annotations

from contextlib import contextmanager
import ctypes
import faulthandler
import os
import signal
import sys
import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from ..launch_plan import PARAMETER_SERVICES
from ..protocol.parameters import ParameterError


def end_with_parent(parent: int) -> None:
    """
    Have the kernel send this process SIGINT (a clean stop) when `parent` dies, even by SIGKILL.

    So a launcher killed outright leaves no node running on. On Linux; elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the kernel was told
        os.kill(os.getpid(), signal.SIGINT)


# seconds a process's DDS teardown may take (well under one normally)
TEARDOWN_TIMEOUT = 10.0


@contextmanager
def bounded_teardown(seconds: float = TEARDOWN_TIMEOUT):
    """
    End the process (exit code 1, every thread's stack on stderr) if the block outlasts seconds.

    Fast DDS 2.14 can deadlock deleting a DataWriter, its event thread in a remote participant's
    lease check (eProsima/Fast-DDS#6502, open): `make demo` once hung at its end for minutes with
    every file written. The thread is then stuck in rclpy's C++, possibly holding the GIL, so a
    Python thread cannot be relied on to end it: faulthandler's own thread needs no GIL.
    """
    try:
        sys.stderr.fileno()
        report = sys.stderr
    except (AttributeError, OSError, ValueError):  # a stream of Python's only (a notebook's)
        report = sys.__stderr__
    faulthandler.dump_traceback_later(seconds, exit=True, file=report)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def parameter_services() -> bool:
    """
    Tell whether nodes start parameter services (`ros2 param list/get/describe`): yes, by default.

    The launch plan sets BILDMACRO_PARAMETER_SERVICES=0 in the nodes' environment to leave them out
    (launch argument parameter_services:=false); a node's constructor needs it before its
    parameters can be read.
    """
    return os.environ.get(PARAMETER_SERVICES, "1") != "0"


class StopRequests:
    """
    SIGINT and SIGTERM as requests to stop, counted rather than raised.

    A signal raised as KeyboardInterrupt lands wherever the process happens to be: in a take
    inside rclpy's bindings (a RuntimeError there), or, for the second Ctrl-C that a terminal and
    `ros2 launch` both send, in the clean-up after the first, which then dies with a traceback and
    loses the run. Counted, a signal ends the spin loop at its next turn, and clean-up runs
    undisturbed. Where a further signal should cut work short (drawing figures once the data is
    saved), `raising()` lets the next one raise KeyboardInterrupt.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.count = 0
        self._raise_from: int | None = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.count > 0

    def install(self) -> "StopRequests":
        # signals reach the main thread only
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._on_signal) for sig in self.SIGNALS}
        return self

    def ignore(self) -> None:
        """
        Ignore further signals: the work is done or saved, and the process is on its way out.

        Python resets a handler of its own to the default at exit, so a SIGINT that arrives while
        DDS tears down (a launch's shutdown sends one to every node still running) would otherwise
        kill the process with -2 instead of letting it exit 0.
        """
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                signal.signal(sig, signal.SIG_IGN)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    @contextmanager
    def raising(self):
        """Within this block the next signal raises KeyboardInterrupt."""
        self._raise_from = self.count + 1
        try:
            yield
        finally:
            self._raise_from = None

    def _on_signal(self, signum, frame):
        self.count += 1
        if self._raise_from is not None and self.count >= self._raise_from:
            self._raise_from = None
            raise KeyboardInterrupt


def make_executor():
    """
    Return rclpy's EventsExecutor where it has one (Jazzy on), else a SingleThreadedExecutor.

    The SingleThreadedExecutor builds a new wait set, in Python, on every wake-up, and an agent
    wakes once per neighbour message: on the 10-agent relay (benchmarks/relay.py) it reached 113
    rounds/s against the EventsExecutor's 258. The EventsExecutor is driven only by spin_once with
    a timeout (spin_until below): spin_until_future_complete with timers is the pattern that
    stalls it (it spins and never runs the timers).
    """
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # Humble
        return SingleThreadedExecutor()
    return EventsExecutor()


def spin_until(executor, stops: StopRequests, done) -> None:
    """Spin until done() or a stop is requested, looking at both at least every 0.1 s."""
    while not stops.requested and not done():
        executor.spin_once(timeout_sec=0.1)


def run_nodes(make_nodes, until=None) -> int:
    """
    Spin the nodes make_nodes() returns until every future until(nodes) gives is done.

    Without until, they spin until stopped. Ctrl-C, SIGTERM and a launcher's shutdown are requests
    to stop: the process then ends with exit code 0, as ROS 2 nodes do, and without a traceback.
    Bad parameters exit 2.
    """
    stops = StopRequests().install()
    end_with_parent(os.getppid())  # killed outright, a launcher leaves no node behind
    try:
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # stops are ours to handle
    except Exception as exc:  # noqa: BLE001 - RCLError: the --ros-args could not be parsed
        print(f"error: could not start ROS with these arguments: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 2
    nodes = []
    try:
        nodes = make_nodes()
        executor = make_executor()
        for node in nodes:
            executor.add_node(node)
        futures = until(nodes) if until is not None else []
        spin_until(executor, stops, lambda: until is not None and all(f.done() for f in futures))
        return 0
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # a Ctrl-C during startup, before the loop
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        stops.ignore()
        # a node's teardown can hang in Fast DDS like the recorder's, spinning a core for good
        # (a follower whose launcher was killed did, in DomainParticipant::set_listener)
        with bounded_teardown():
            for node in nodes:
                if hasattr(node, "close"):  # its last word (a follower's stop to every robot)
                    node.close()
                node.destroy_node()
            rclpy.try_shutdown()
