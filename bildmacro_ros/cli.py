# SPDX-License-Identifier: Apache-2.0
"""
The `bildmacro` command.

Simulate (one process), swarm (nodes over DDS), plot (redraw figures).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import signal
import sys
import threading

from .commands import (cmd_plan, cmd_plot, cmd_record, cmd_robot, cmd_simulate, cmd_swarm,
                       EXIT_INTERRUPTED)
from .core.kernel import kernel_choice
from .launchers.processes import HANG_TIMEOUT
from .live import DEFAULT_HOST, DEFAULT_PORT
from .options import add_options, argparse_type

EXIT_BAD_INPUT = 2


_positive_int, _non_negative_int, _seconds = (argparse_type(kind)
                                              for kind in ("count", "whole", "seconds"))


def _port(text: str) -> int:
    port = _non_negative_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 0..65535, got {text!r}")
    return port


class HelpFormatter(argparse.HelpFormatter):
    """Show each option's default where it has one (None: the config's value, said in the help)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, "",
                                                   argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """
    One line for bad input, as for every other error of the command.

    The usage is a --help away.
    """

    def __init__(self, *args, **kwargs):
        # subcommands' parsers are of this class too
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _kill(text: str):
    """--kill AGENT@ROUND."""
    from .launchers.swarm import Kill

    agent, sep, at = text.partition("@")
    try:
        if not sep:
            raise ValueError
        return Kill(_non_negative_int(agent), _non_negative_int(at))
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError("must be AGENT@ROUND with whole numbers, e.g. 3@500, "
                                         f"got {text!r}") from None


def add_log_every(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-every", type=_positive_int,
                        help="metrics every K rounds (default: K/1000)")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--animation", action="store_true",
                        help="also write swarm.gif, the robots moving")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--live", action="store_true",
                        help="serve the swarm live to Foxglove or Lichtblick (WebSocket, "
                             "foxglove.sdk.v1; docs/live.md)")
    parser.add_argument("--live-address", default=DEFAULT_HOST, metavar="HOST",
                        help=f"the live view's address (default {DEFAULT_HOST}; another has no "
                             "authentication)")
    parser.add_argument("--live-port", type=_port, default=DEFAULT_PORT, metavar="PORT",
                        help=f"the live view's port (default {DEFAULT_PORT}; 0: any free one)")


def add_hang_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hang-timeout", type=_seconds, default=HANG_TIMEOUT,
                        help="restart an agent process that uses no CPU for this many seconds "
                             f"(default {HANG_TIMEOUT:g}): Fast DDS can hang one, docs/faults.md")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bildmacro", description="BILD-MACRO swarm density control.")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="run the whole swarm in one process (vectorised)",
                         description="Run BILD-MACRO (or the centralised reference) for a whole "
                                     "swarm in one "
                                     "process and write metrics.csv, final_state.npz, config.yaml "
                                     "and figures.")
    add_options(sim, "simulate")
    sim.add_argument("--method", choices=("distributed", "centralized"), default="distributed",
                     help="distributed: Algorithm 1; centralized: method (11) with exact theta(x)")
    sim.add_argument("--out", type=Path, default=Path("runs/simulate"),
                     help="output folder (default: runs/simulate)")
    sim.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    sim.add_argument("--no-plots", action="store_true",
                     help="skip convergence.png and snapshots.png")
    add_log_every(sim)
    sim.add_argument("--quiet", action="store_true", help="no progress line")
    sim.set_defaults(func=cmd_simulate)

    swarm = sub.add_parser("swarm", help="one agent node per robot over real DDS, recorded",
                           description="Start the launch plan's agent nodes as separate processes "
                                       "over DDS "
                                       "(as `ros2 launch bildmacro_ros swarm.launch.py` does), "
                                       "record every "
                                       "round, and write the same files as `bildmacro simulate`.")
    add_options(swarm, "swarm", {"simulator": ("embedded", "none")})
    swarm.add_argument("--out", type=Path, default=Path("runs/swarm"),
                       help="output folder (default: runs/swarm)")
    swarm.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    add_log_every(swarm)
    swarm.add_argument("--stall-timeout", type=_seconds, default=60.0,
                       help="give up when no recorded round (one every --log-every rounds) "
                            "completes for this "
                            "many seconds (default 60)")
    add_hang_timeout(swarm)
    add_output_arguments(swarm)
    swarm.add_argument("--bag-every-round", action="store_true",
                       help="agents record every round, so run.mcap holds every round's (x, y, r, "
                            "q), 10.7 kB per "
                            "agent and round; metrics rows stay every --log-every rounds")
    swarm.add_argument("--visualiser", action="store_true",
                       help="also run the RViz visualiser node (MarkerArray, OccupancyGrid), for "
                            "an RViz on this "
                            "domain")
    faults = next(group for group in swarm._action_groups if group.title == "faults")
    faults.add_argument("--kill", type=_kill, metavar="AGENT@ROUND",
                        help="SIGKILL agent AGENT's process once it has sent round ROUND")
    faults.add_argument("--restart-after", type=_seconds, metavar="SECONDS",
                        help="restart the killed agent this many seconds later; it resumes from "
                             "its checkpoint")
    swarm.set_defaults(func=cmd_swarm)

    plan = sub.add_parser("plan", help="write a plan folder for robots on separate computers; "
                                       "runs nothing",
                          description="Write everything the robots of one swarm need, one "
                                      "computer each: every agent's and robot's parameters, the "
                                      "weights, the initial state, the resolved config, the DDS "
                                      "profile and each computer's command (plan.yaml). Copy "
                                      "the folder to every robot.")
    add_options(plan, "plan", {"simulator": ("embedded", "external", "gazebo", "none")})
    plan.add_argument("--out", type=Path, required=True, help="the plan folder to write")
    plan.add_argument("--overwrite", action="store_true", help="replace a previous plan in --out")
    add_log_every(plan)
    plan.add_argument("--no-record", action="store_true",
                      help="no recorder will run: agents neither wait for one nor publish records")
    plan.set_defaults(func=cmd_plan)

    robot = sub.add_parser("robot",
                           help="on robot i's computer: start its agent and robot nodes from a "
                                "plan",
                           description="Start robot i's nodes as the plan folder lists them "
                                       "(agent i, and its "
                                       "follower and simulated body where the plan has them), "
                                       "from this computer's "
                                       "copy of the folder; end when the agent has finished and "
                                       "the robot has "
                                       "reached its last waypoint.")
    robot.add_argument("--plan", type=Path, required=True,
                       help="the plan folder (made by bildmacro plan)")
    robot.add_argument("--id", type=_non_negative_int, required=True, help="this robot's id i")
    robot.add_argument("--resume", action="store_true",
                       help="a restart: resume from the robot's last checkpoint and catch up with "
                            "the swarm")
    robot.add_argument("--settle", type=_seconds, default=30.0,
                       help="seconds the robot may take to reach its last waypoint after the last "
                            "round (default 30)")
    add_hang_timeout(robot)
    robot.set_defaults(func=cmd_robot)

    record = sub.add_parser("record",
                            help="record a plan's swarm into a run folder, on any computer",
                            description="Record the swarm of a plan folder (started with "
                                        "bildmacro robot or "
                                        "robot.launch.py) into the same run folder bildmacro "
                                        "swarm writes. Start it "
                                        "before the robots: each agent waits for it before round "
                                        "0.")
    record.add_argument("--plan", type=Path, required=True,
                        help="the plan folder (made by bildmacro plan)")
    record.add_argument("--out", type=Path, required=True, help="output folder")
    record.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    record.add_argument("--stall-timeout", type=_seconds, default=60.0,
                        help="give up when no recorded round completes for this many seconds "
                             "(default 60)")
    record.add_argument("--away-after", type=_seconds, default=10.0,
                        help="record on without an agent silent this many seconds while others "
                             "record; its last "
                             "record stands in until it is back (default 10)")
    add_output_arguments(record)
    record.set_defaults(func=cmd_record)

    plot = sub.add_parser("plot", help="redraw a run folder's figures")
    plot.add_argument("run", type=Path, help="a folder written by bildmacro simulate or swarm")
    plot.add_argument("--animation", action="store_true",
                      help="also redraw swarm.gif (swarm runs with robots)")
    plot.set_defaults(func=cmd_plot)
    return parser


def _terminate_as_interrupt(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (kill, timeout, a job scheduler) is a Ctrl-C: the nodes are stopped, the run kept
    on_term = signal.signal(signal.SIGTERM, _terminate_as_interrupt) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        kernel_choice()  # a misspelt BILDMACRO_KERNEL is refused before anything starts
        return args.func(args)
    except ValueError as exc:  # every bad input surfaces as ValueError (ConfigError is one)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


if __name__ == "__main__":
    sys.exit(main())
