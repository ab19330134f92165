# SPDX-License-Identifier: Apache-2.0
"""What each `bildmacro` command does with its parsed options (cli.py parses them)."""

from __future__ import annotations

from pathlib import Path
import sys

EXIT_INTERRUPTED = 130
# options of the table (options.py) that the launchers take themselves, not the config
LAUNCHER_OWN = ("namespace", "agents_per_process")


def run_inputs(args):
    """
    Return (cfg, base, init, weights) from the table's options (options.py).

    ValueError if bad.
    """
    from .options import options_of, run_inputs as inputs

    return inputs({option.name: getattr(args, option.name) for option in options_of(args.command)
                   if option.name not in LAUNCHER_OWN})


def cmd_simulate(args) -> int:
    from .core.scenario import build_scenario
    from .simulate import run

    scenario = build_scenario(*run_inputs(args))
    summary = run(scenario, args.out, method=args.method, log_every=args.log_every,
                  plots=not args.no_plots, progress=not args.quiet, overwrite=args.overwrite)
    print(summary.describe())
    if summary.diverged:
        print(f"error: the run diverged ({summary.diverged}); try a smaller algorithm.gamma_y "
              f"(stable near 0.9/N)", file=sys.stderr)
        return 1
    return EXIT_INTERRUPTED if summary.interrupted else 0


def _report(summary) -> int:
    """
    Print a run's summary line; return its exit code.

    0, 1 on a failure, 130 when interrupted.
    """
    print(summary.describe())
    if summary.failure:
        return 1
    return EXIT_INTERRUPTED if summary.interrupted else 0


def live_address(args) -> tuple[str, int] | None:
    """Return (host, port) of the live view a swarm or a recording asked for (--live), or None."""
    return (args.live_address, args.live_port) if args.live else None


def cmd_swarm(args) -> int:
    from .launchers.swarm import run_swarm

    cfg, base, init, weights = run_inputs(args)
    kill = args.kill
    if kill is not None:
        kill.restart_after = args.restart_after
    elif args.restart_after is not None:
        raise ValueError("--restart-after needs --kill AGENT@ROUND")
    summary = run_swarm(cfg, base, args.out, init, weights,
                        agents_per_process=args.agents_per_process, namespace=args.namespace,
                        log_every=args.log_every, plots=not args.no_plots, progress=not args.quiet,
                        overwrite=args.overwrite, stall_timeout=args.stall_timeout,
                        hang_timeout=args.hang_timeout,
                        animation=args.animation, visualiser=args.visualiser, kill=kill,
                        bag_every_round=args.bag_every_round, live=live_address(args))
    return _report(summary)


def cmd_plan(args) -> int:
    from .plan_folder import read_plan, write_plan

    cfg, base, init, weights = run_inputs(args)
    index = write_plan(cfg, base, args.out, init, weights, args.namespace,
                       record=not args.no_record, overwrite=args.overwrite,
                       record_every=args.log_every)
    plan = read_plan(args.out)
    print(f"plan for {plan.agents} robots in {plan.folder}; copy this folder to every computer, "
          "then:")
    if plan.index["recorder"]:
        print(f"  first, on any computer:  bildmacro record --plan {plan.folder} --out RUN")
        # a colcon install puts bildmacro under lib/bildmacro_ros, not on the PATH
        print("    (on a ROS install:     ros2 run bildmacro_ros bildmacro record "
              f"--plan {plan.folder} --out RUN)")
    print(f"  on robot i's computer:   bildmacro robot --plan {plan.folder} --id i")
    print("    (on a ROS install:     ros2 launch bildmacro_ros robot.launch.py "
          f"plan:={plan.folder} id:=i)")
    print(f"every computer's command is in {index}")
    return 0


def cmd_robot(args) -> int:
    from .launchers.computer import run_computer

    summary = run_computer(args.plan, args.id, resume=args.resume, settle=args.settle,
                           hang_timeout=args.hang_timeout)
    return _report(summary)


def cmd_record(args) -> int:
    from .launchers.record import record_plan

    summary = record_plan(args.plan, args.out, overwrite=args.overwrite,
                          stall_timeout=args.stall_timeout, away_after=args.away_after,
                          plots=not args.no_plots, animation=args.animation,
                          progress=not args.quiet, live=live_address(args))
    return _report(summary)


def cmd_plot(args) -> int:
    from .core.config import load_config
    from .core.family import ExponentialFamily
    from .plots import plot_run

    run_dir = Path(args.run)
    needed = [n for n in ("config.yaml", "metrics.csv", "snapshots.npz")
              if not (run_dir / n).is_file()]
    if needed:
        raise ValueError(f"{run_dir} is not a run folder: missing {', '.join(needed)}")
    cfg, _ = load_config(run_dir / "config.yaml")
    family = ExponentialFamily(cfg["basis"]["order"], cfg["grid"]["step"],
                               cfg["grid"]["quadrature"])
    for path in plot_run(run_dir, family, args.animation):
        print(path)
    return 0
