# SPDX-License-Identifier: Apache-2.0
"""
The compiled step (core/kernel.py) against the numpy path, which stays the reference.

Row for row on the same inputs, through a clip of P_{>=omega} too, and for many rounds of a swarm;
test_bildmacro.py holds both paths to the independent implementation.
"""

import numpy as np
import pytest

from bildmacro_ros.core import graph
from bildmacro_ros.core.bildmacro import (agent_step, agent_steps, AgentState, initial_state,
                                          local_step, Mixer, swarm_step)
from bildmacro_ros.core.kernel import compiled_for, kernel_choice, KERNEL_VARIABLE, prepare_kernel
from bildmacro_ros.core.symmetric import pack, unpack
from test_bildmacro import STEPS, swarm  # noqa: I100, I201 - a test module beside this one

pytest.importorskip("numba", reason="numba is not installed here (requirements.txt pins it)")
FIELDS = ("x", "y", "r", "q", "mean", "cov", "grad_f", "kl", "phi")


def both(problem, state, mixes):
    numpy = local_step(problem, STEPS, state, *mixes, kernel="numpy")
    compiled = local_step(problem, STEPS, state, *mixes, kernel="numba")
    return numpy, compiled


def assert_same(numpy, compiled, rtol=1e-12, atol=1e-13):
    for name in FIELDS:
        assert np.allclose(getattr(compiled.state, name), getattr(numpy.state, name),
                           rtol=rtol, atol=atol), name
    # a clipped row's solve: the compiled step builds P_{>=omega}[q] from the eigenpairs below
    # omega and solves with its Cholesky factor, the numpy path from every eigenpair; their
    # roundings differ (3.8e-14 at most in x_hat over the agent-rows test below)
    clip_atol = np.where(numpy.clipped, 1e-12, 1e-14)[:, None]
    assert np.all(np.abs(compiled.x_hat - numpy.x_hat) <= clip_atol)
    assert np.array_equal(compiled.clipped, numpy.clipped)


def test_the_compiled_step_gives_the_numpy_steps_rows(problem):
    weights, state = swarm(problem, 9)
    mixer = Mixer(weights)
    for _ in range(20):
        mixes = (mixer(state.y), mixer(state.r), mixer(state.q))
        numpy, compiled = both(problem, state, mixes)
        assert_same(numpy, compiled)
        state = numpy.state


def test_the_compiled_step_clips_as_the_numpy_step_does(problem):
    """A q with eigenvalues below omega takes the eigh branch on both paths."""
    weights, state = swarm(problem, 4, seed=5)
    rng = np.random.default_rng(1)
    q = unpack(state.q)
    for i in (1, 3):  # a block direction with eigenvalue omega/10 (e_0 stays exact)
        v = np.zeros(problem.m)
        v[1:] = rng.standard_normal(problem.m - 1)
        v /= np.linalg.norm(v)
        lam = v @ q[i] @ v
        q[i] += (STEPS.omega / 10 - lam) * np.outer(v, v)
    state = AgentState(**{**state.__dict__, "q": pack(q)})
    mixer = Mixer(weights)
    numpy, compiled = both(problem, state, (mixer(state.y), mixer(state.r), mixer(state.q)))
    assert list(numpy.clipped) == [False, True, False, True]
    assert_same(numpy, compiled, rtol=1e-10, atol=1e-11)


def test_a_swarm_run_on_either_path_ends_in_the_same_state(problem):
    rng = np.random.default_rng(4)
    weights = graph.metropolis_weights(graph.erdos_renyi(8, 0.5, rng))
    start = initial_state(problem, rng.uniform(-1, 1, (8, 2)), rng.standard_normal((8, problem.m)))
    mixer, ends = Mixer(weights), {}
    for kernel in ("numpy", "numba"):
        state = start
        for _ in range(200):
            state = local_step(problem, STEPS, state, mixer(state.y), mixer(state.r),
                               mixer(state.q), kernel=kernel).state
        ends[kernel] = state
    for name in FIELDS:
        assert np.allclose(getattr(ends["numba"], name), getattr(ends["numpy"], name),
                           rtol=1e-9, atol=1e-10), name


def test_the_kernel_is_chosen_by_the_environment(monkeypatch):
    monkeypatch.delenv(KERNEL_VARIABLE, raising=False)
    assert kernel_choice() == "numpy"
    monkeypatch.setenv(KERNEL_VARIABLE, "Numba")
    assert kernel_choice() == "numba"
    monkeypatch.setenv(KERNEL_VARIABLE, "fortran")
    with pytest.raises(ValueError, match="BILDMACRO_KERNEL='fortran': choose one of numpy, numba"):
        kernel_choice()


def test_without_numba_one_warning_and_the_numpy_path(problem, monkeypatch):
    from bildmacro_ros.core import kernel

    weights, state = swarm(problem, 3)
    mixer = Mixer(weights)
    mixes = (mixer(state.y), mixer(state.r), mixer(state.q))
    monkeypatch.setattr(kernel, "_COMPILED", {})  # the compiled functions, back after the test
    monkeypatch.setitem(__import__("sys").modules, "bildmacro_ros.core.kernel_numba", None)
    with pytest.warns(RuntimeWarning, match="the compiled step is not available"):
        fell_back = local_step(problem, STEPS, state, *mixes, kernel="numba")
    numpy = local_step(problem, STEPS, state, *mixes, kernel="numpy")
    for name in FIELDS:
        assert np.array_equal(getattr(fell_back.state, name), getattr(numpy.state, name)), name


def test_a_nodes_compiled_step_from_its_neighbours_rows_is_the_numpy_one(problem, monkeypatch):
    """agent_step (a node) and agent_steps (a group) mix the neighbours' rows in the kernel."""
    weights, state = swarm(problem, 7)
    mixer = Mixer(weights)
    for _ in range(10):
        some = [5, 0, 3]
        inputs = [(weights[i, i], weights[i, graph.in_neighbours(weights, i)],
                   state.y[graph.in_neighbours(weights, i)],
                   state.r[graph.in_neighbours(weights, i)],
                   state.q[graph.in_neighbours(weights, i)]) for i in some]
        monkeypatch.setenv(KERNEL_VARIABLE, "numpy")
        numpy = [agent_step(problem, STEPS, state.rows(i), *args) for i, args in zip(some, inputs)]
        monkeypatch.setenv(KERNEL_VARIABLE, "numba")
        before = compiled_for(problem, STEPS).calls
        alone = [agent_step(problem, STEPS, state.rows(i), *args)
                 for i, args in zip(some, inputs)]
        grouped = agent_steps(problem, STEPS, [state.rows(i) for i in some], inputs)
        assert compiled_for(problem, STEPS).calls == before + 6
        for reference, one, group in zip(numpy, alone, grouped):
            assert_same(reference, one)
            assert_same(reference, group)
        state = swarm_step(problem, STEPS, state, mixer).state


def test_a_process_prepares_the_compiled_step_before_its_first_round(problem, monkeypatch):
    from bildmacro_ros.core.kernel import kernel_in_use

    monkeypatch.setenv(KERNEL_VARIABLE, "numpy")
    assert prepare_kernel(problem, STEPS) is None and kernel_in_use() == "numpy"
    monkeypatch.setenv(KERNEL_VARIABLE, "numba")
    seconds = prepare_kernel(problem, STEPS)
    assert seconds is not None and seconds >= 0 and kernel_in_use() == "numba"
    assert compiled_for(problem, STEPS).calls == 0  # the preparation is not a step


def test_bildmacro_simulates_preparation_compiles_the_swarms_step_too(problem, monkeypatch):
    """What `bildmacro simulate` prepares: the batch and CSR steps, with no fall back to numpy."""
    import warnings

    from bildmacro_ros.core.kernel import kernel_in_use, prepare_kernel

    monkeypatch.setenv(KERNEL_VARIABLE, "numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "the compiled step is not available" would raise
        assert prepare_kernel(problem, STEPS, batch=True) is not None
    assert kernel_in_use() == "numba" and compiled_for(problem, STEPS).calls == 0


def test_a_read_only_install_keeps_the_compiled_step_in_a_per_user_folder(tmp_path):
    from bildmacro_ros.core.kernel import cache_dir

    assert cache_dir(tmp_path, True, {}) is None  # numba's own __pycache__ beside the code
    assert cache_dir(tmp_path, False, {"XDG_CACHE_HOME": "/home/u/.cache"}) == \
        "/home/u/.cache/bildmacro_ros/numba"
    assert cache_dir(tmp_path, False, {"NUMBA_CACHE_DIR": "/mine"}) is None  # the user's wins


@pytest.mark.parametrize("sparse_graph", [False, True])
def test_the_compiled_swarm_step_mixes_each_row_as_the_mixer_does(problem, sparse_graph):
    """The step of bildmacro simulate: compiled, it mixes in the kernel, row by row, in CSR."""
    rng = np.random.default_rng(6)
    n = 70 if sparse_graph else 9
    adjacency = graph.erdos_renyi_sparse(n, 6, rng) if sparse_graph \
        else graph.erdos_renyi(n, 0.5, rng)
    mixer = Mixer(graph.metropolis_weights(adjacency))
    state = initial_state(problem, rng.uniform(-1, 1, (n, 2)), rng.standard_normal((n, problem.m)))
    for _ in range(15):
        numpy = swarm_step(problem, STEPS, state, mixer, kernel="numpy")
        calls = compiled_for(problem, STEPS).calls
        compiled = swarm_step(problem, STEPS, state, mixer, kernel="numba")
        assert compiled_for(problem, STEPS).calls == calls + 1  # the compiled step ran
        assert_same(numpy, compiled)
        state = numpy.state


def test_the_compiled_solve_proves_the_clip_idle_by_a_bound_or_else_by_cholesky(problem):
    """
    The compiled solve skips the Cholesky of q - omega I where the bound clears 2 omega.

    Near omega and below it, it runs that Cholesky and decides as the numpy path does.
    """
    from bildmacro_ros.core import kernel_linalg
    from bildmacro_ros.core.symmetric import solve_projected

    rng = np.random.default_rng(8)
    m, omega = problem.m, 1e-2
    # near the identity, as the steady swarm's q is for the bound: a rotation by few degrees
    basis = np.linalg.qr(np.eye(m - 1) + 0.01 * rng.standard_normal((m - 1, m - 1)))[0]
    for smallest, certified, clipped in ((10 * omega, True, False), (1.2 * omega, False, False),
                                         (0.5 * omega, False, True)):
        block = basis @ np.diag(np.linspace(smallest, 3.0, m - 1)) @ basis.T
        q = np.zeros((m, m))
        q[0, 0], q[1:, 1:] = omega, block
        row, rhs = pack(q[None])[0], rng.standard_normal(m)
        low = np.empty((m - 1, m - 1))
        assert kernel_linalg._cholesky(row, m, 0.0, low)
        bound = kernel_linalg.smallest_eigenvalue_bound(low)
        assert 0 < bound <= np.linalg.eigvalsh(block).min() * (1 + 1e-12)
        # asked only whether it clears a floor, it stops early with 0.0 where it cannot
        for floor in (0.5 * bound, 2.0 * bound, 1e3 * bound):
            early = kernel_linalg.smallest_eigenvalue_bound(low, floor)
            assert early == (bound if bound > floor else 0.0)
        assert kernel_linalg._certified_above(low, row, m, omega) == certified
        z = np.empty(m)
        assert kernel_linalg.solve_projected(row, omega, rhs, m, z) == clipped
        reference, reference_clipped = solve_projected(row[None], omega, rhs[None])
        assert reference_clipped[0] == clipped
        assert np.allclose(z, reference[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m", [2, 5, 10, 49])
def test_the_compiled_cholesky_is_lapacks_and_fails_where_lapacks_does(m):
    """Blocks of 1, 4, 9 and 48 rows: four rows at a time, and the rows left over."""
    from bildmacro_ros.core import kernel_linalg

    rng = np.random.default_rng(m)
    factor = rng.standard_normal((m - 1, m - 1))
    block = factor @ factor.T + 0.1 * np.eye(m - 1)
    q = np.zeros((m, m))
    q[0, 0], q[1:, 1:] = 1.0, block
    row, low = pack(q[None])[0], np.empty((m - 1, m - 1))
    smallest = np.linalg.eigvalsh(block).min()
    for shift in (0.0, 0.5 * smallest):
        assert kernel_linalg._cholesky(row, m, shift, low)
        lapack = np.linalg.cholesky(block - shift * np.eye(m - 1))
        assert np.allclose(np.tril(low), lapack, rtol=1e-12, atol=1e-12 * np.abs(lapack).max())
    assert not kernel_linalg._cholesky(row, m, 1.01 * smallest, low)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(block - 1.01 * smallest * np.eye(m - 1))


def test_the_compiled_exp_is_numpys_to_an_ulp_and_libms_where_it_cannot_be():
    from bildmacro_ros.core.family import EXP_FLOOR
    from bildmacro_ros.core.kernel_numba import _exp_floored

    rng = np.random.default_rng(9)
    s = rng.uniform(-760.0, 40.0, (41, 41))
    s[0, :5] = (0.0, -700.0, 0.5 * np.log(2), -0.5 * np.log(2), 1e-300)
    e = np.empty_like(s)
    for shift in (0.0, 39.0):
        _exp_floored(s, shift, e, np.empty(s.size, np.int64))
        reference = np.exp(np.maximum(s - shift, EXP_FLOOR))
        assert np.all(np.abs(e - reference) <= np.spacing(reference))
    s[3, 3] = 800.0  # beyond the bits of 2^n: libm's exp for the grid
    _exp_floored(s, 0.0, e, np.empty(s.size, np.int64))
    reference = np.exp(np.maximum(s[:3], EXP_FLOOR))
    assert np.isinf(e[3, 3]) and np.all(np.abs(e[:3] - reference) <= np.spacing(reference))
    s[3, 3] = np.nan
    _exp_floored(s, 0.0, e, np.empty(s.size, np.int64))
    assert np.isnan(e[3, 3]) and np.isfinite(np.delete(e.ravel(), 3 * 41 + 3)).all()


def test_a_change_to_a_file_the_kernel_calls_into_drops_its_cached_functions(tmp_path):
    from bildmacro_ros.core.kernel import drop_stale_cache, KERNEL_DEPENDENCIES

    for name in KERNEL_DEPENDENCIES:
        (tmp_path / name).write_text(f"# {name}\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    cached = [cache / "kernel_numba.row_step-86.py311.nbi", cache / "kernel_numba.x.py311.1.nbc"]
    other = cache / "kernel_screen.screen_norms-20.py311.nbi"
    for path in cached + [other]:
        path.write_text("compiled")
    assert drop_stale_cache(tmp_path)  # nothing on record: what is there may be stale
    assert not any(path.exists() for path in cached) and other.exists()
    for path in cached:
        path.write_text("compiled again")
    assert not drop_stale_cache(tmp_path)
    assert all(path.exists() for path in cached)
    (tmp_path / KERNEL_DEPENDENCIES[0]).write_text("# edited\n")
    assert drop_stale_cache(tmp_path)
    assert not any(path.exists() for path in cached) and other.exists()


def test_the_compiled_steps_fields_come_in_agent_states_order():
    from dataclasses import fields

    from bildmacro_ros.core.kernel import FIELD_ORDER

    assert FIELD_ORDER == tuple(f.name for f in fields(AgentState))


def test_a_step_reads_its_neighbours_messages_in_place_as_stacked_rows(problem, monkeypatch):
    """
    Messages decoded by the compiled pass carry where their y, r, q lie; the step reads them there.

    The rows then need no stacked copy, and the step equals the one from stacked rows, and the
    numpy path's; where an address is unknown (numpy's decoding, a strided array), none is used.
    """
    from bildmacro_ros.core.bildmacro import agent_step_at
    from bildmacro_ros.protocol.round_types import Step
    from bildmacro_ros.protocol.wire import decode, encode

    weights, state = swarm(problem, 6)
    i, near = 2, graph.in_neighbours(weights, 2)

    def messages():
        return [decode(np.frombuffer(encode(0, j, state.x[j], state.x[j], state.y[j], state.r[j],
                                            state.q[j]).tobytes()), problem.m, j) for j in near]

    monkeypatch.setenv(KERNEL_VARIABLE, "numba")
    prepare_kernel(problem, STEPS)  # as a node does before its first message (alone, it is made)
    step = Step(0, weights[i, i], weights[i, near], messages(), [])
    addresses = step.addresses()
    assert addresses is not None and len(set(addresses)) == len(near)
    calls = compiled_for(problem, STEPS).calls
    stacked = step.stacked(problem.m)
    in_place = agent_step_at(problem, STEPS, state.rows(i), step.self_weight, step.weights,
                             addresses, lambda: pytest.fail("stacked rows were asked for"))
    assert compiled_for(problem, STEPS).calls == calls + 1
    compiled = agent_step(problem, STEPS, state.rows(i), step.self_weight, step.weights, *stacked)
    for name in FIELDS:  # the same kernel arithmetic on the same numbers
        assert np.array_equal(getattr(in_place.state, name), getattr(compiled.state, name)), name
    monkeypatch.setenv(KERNEL_VARIABLE, "numpy")
    assert_same(agent_step(problem, STEPS, state.rows(i), step.self_weight, step.weights,
                           *stacked), in_place)
    assert Step(0, weights[i, i], weights[i, near], messages(), []).addresses() is None
    monkeypatch.setenv(KERNEL_VARIABLE, "numba")
    strided = np.repeat(encode(0, near[0], state.x[near[0]], state.x[near[0]], state.y[near[0]],
                               state.r[near[0]], state.q[near[0]]), 2)[::2]
    read = decode(strided, problem.m, near[0])
    # the pass read a contiguous copy: the same numbers as the message itself gives
    assert read.address == 0 and np.array_equal(read.norms, step.rows[0].norms)
