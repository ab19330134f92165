# SPDX-License-Identifier: Apache-2.0
"""
`bildmacro record --plan PLAN --out RUN`.

Record a swarm that the robots' own commands started.
"""

from __future__ import annotations

import os
from pathlib import Path

from .session import METHOD, RecorderSession
from .summary import SwarmSummary
from ..plan_folder import read_plan
from ..progress import Progress
from ..ros.lifecycle import StopRequests
from ..run_folder import RunWriter


def record_plan(plan_dir: Path, out: Path, overwrite: bool = False, stall_timeout: float = 60.0,
                away_after: float = 10.0, plots: bool = True, animation: bool = False,
                progress: bool = True, settle_timeout: float = 30.0, stream=None,
                live: tuple[str, int] | None = None) -> SwarmSummary:
    """
    Record the swarm of a plan folder into `out`, until every agent still there has finished.

    An agent silent for away_after seconds while others record is recorded without (its last
    record stands in, and the summary names it); it is taken back with its next record. No
    recorded round for stall_timeout seconds ends the recording as a failure, with the rounds so
    far written. The recorder runs with the plan's environment (its DDS profile), as the robots'
    nodes do, so it speaks to them as they speak to each other.
    """
    plan = read_plan(plan_dir)
    if not plan.index["recorder"]:
        raise ValueError(f"the plan in {plan.folder} was made with --no-record: its agents "
                         "publish "
                         f"no records")
    scenario = plan.scenario()
    cfg = scenario.config
    robots = cfg["robots"]["simulator"] != "none"
    writer = RunWriter(out, scenario, METHOD, overwrite, progress=progress)
    os.environ.update(plan.environment)  # before DDS starts in this process
    session = RecorderSession(scenario, writer, int(plan.index["record_every"]), robots,
                              plan.namespace, away_after, live=live)
    meter = Progress(f"record N={plan.agents}", cfg["iterations"], stream, progress)
    stops = StopRequests().install()
    try:
        interrupted, failure = session.record(stops, meter, stall_timeout, plan.folder)
        if failure is None and not interrupted and robots:
            session.settle(settle_timeout, stops)
        meter.update(max(session.recorder.progress, 0), force=True)
        return session.close(plots, animation, stops, agents=plan.agents, processes=0,
                             interrupted=interrupted, failure=failure)
    finally:
        stops.restore()
