# SPDX-License-Identifier: Apache-2.0
"""
Robots on separate computers: 6 agents, two on each of 3 emulated computers, a recorder apart.

Each started from its own copy of one plan folder by the per-robot command, over a user-space
switch with per-link loss, delay and cuts (test/support/netlab.py, test/support/deployment.py).
Needs root (CI is root); otherwise skipped with the reason.
"""

from pathlib import Path

import numpy as np
import pytest

from bildmacro_ros.core.config import load_config
from bildmacro_ros.core.scenario import build_scenario
from bildmacro_ros.simulate import run as simulate
import netlab

REASON = netlab.available()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=str(REASON))]


def reference(tmp_path: Path, iterations: int):
    """Run the same swarm offline (`bildmacro simulate`): return its final state and KL."""
    cfg, base = load_config("demo", {"agents": 6, "iterations": iterations})
    summary = simulate(build_scenario(cfg, base), tmp_path / "offline", plots=False,
                       progress=False)
    with np.load(tmp_path / "offline" / "final_state.npz") as data:
        return {key: data[key] for key in data.files}, summary.final_kl


def test_a_clean_network_equals_simulate(tmp_path):
    from deployment import deploy

    done = deploy(tmp_path / "clean", iterations=300)
    offline, _ = reference(tmp_path, 300)
    assert done.summary["iterations"] == 300 and done.alive == list(range(6)), done.summary
    for key in ("x", "y", "r", "q"):
        assert np.allclose(done.final[key], offline[key], rtol=0, atol=1e-9), key
    assert done.late_rounds == 0 and done.deaths == 0
    assert done.switch["forwarded"] > 10000  # the messages crossed the switch, not shared memory
    # every row, from the recorder on its own computer (before its backpressure, a CI run lost 665)
    assert done.summary["missing_rows"] == 0 and done.summary["stood_in"] == {}, done.summary


def test_ten_percent_loss_on_every_link_finishes_as_one_group(tmp_path):
    from deployment import deploy

    done = deploy(tmp_path / "lossy", iterations=300, loss=0.10)
    _, clean_kl = reference(tmp_path, 300)
    assert done.switch["lost"] > 1000
    assert done.alive == list(range(6)), {i: o.rounds for i, o in done.outcomes.items()}
    assert done.spread < 0.05, done.spread
    final_kl = done.summary["final_kl"]
    assert abs(final_kl - clean_kl) <= 0.5 * clean_kl, (final_kl, clean_kl)


def test_a_three_second_partition_of_one_computer_ends_as_one_group(tmp_path):
    from deployment import deploy, Fault

    done = deploy(tmp_path / "partition", iterations=1500,
                  faults=(Fault("partition", 2, at=150, seconds=3.0),))
    # each side of every cut link
    assert done.deaths >= 4, "the sides never declared each other dead"
    assert done.alive == list(range(6)), {i: o.rounds for i, o in done.outcomes.items()}
    assert done.spread < 0.05, done.spread
    assert any(o.catch_ups for o in done.outcomes.values())  # the side behind jumped to the other
    assert not done.summary["stale"]


def test_a_computer_that_loses_power_and_restarts_with_resume_rejoins(tmp_path):
    from deployment import deploy, Fault

    # long enough that the others, at 150 rounds/s here, are still running when it has rediscovered
    # them
    done = deploy(tmp_path / "power", iterations=3000,
                  faults=(Fault("power", 1, at=300, seconds=2.0),))
    restarted = [done.outcomes[i] for i in (2, 3)]
    # a periodic checkpoint
    assert all(o.resumed_from and o.resumed_from % 100 == 0 for o in restarted), restarted
    assert all(o.catch_ups for o in restarted), restarted
    assert done.alive == list(range(6)), {i: o.rounds for i, o in done.outcomes.items()}
    assert done.spread < 0.05, done.spread
    assert not done.summary["stale"]  # the recorder took both back
