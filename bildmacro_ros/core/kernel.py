# SPDX-License-Identifier: Apache-2.0
"""
One agent's step (6)-(9) compiled with numba: `local_step` row by row, without numpy's calls.

A hundred numpy calls on arrays of 2 to 1 681 numbers, each a microsecond or more of overhead,
become the arithmetic alone; numpy's path (core/bildmacro.py) stays the reference, and tests hold
the two to the same rows. With it comes one pass over a neighbour message's numbers
(core/kernel_screen.py). BILDMACRO_KERNEL chooses: `numpy` (the default: each process pays
numba's import, and short runs lose their start-up; docs/speed.md) or `numba`. Without numba, or
when it fails to compile, one warning and the numpy path.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import time
from types import SimpleNamespace
import warnings
import weakref

import numpy as np

KERNEL_VARIABLE = "BILDMACRO_KERNEL"
KERNELS = ("numpy", "numba")
_COMPILED = {}  # "step": the compiled function, once made; None: numba cannot be used here
_STEPS = weakref.WeakKeyDictionary()  # problem -> {StepSizes: CompiledStep}
_CHOICES: dict = {}  # BILDMACRO_KERNEL's value as set -> the kernel it asks for
_LAST = [None]  # the last (problem, steps, CompiledStep): found by identity, not by hashing
BATCH = 8  # rows of the batch that compiles the swarm's step
KERNEL_DEPENDENCIES = ("kernel_linalg.py", "family.py")  # files kernel_numba.py calls into
FIELD_ORDER = ("x", "y", "r", "q", "mean", "cov", "grad_f", "kl", "phi")  # AgentState's


def kernel_choice() -> str:
    """Return the kernel BILDMACRO_KERNEL asks for (numpy unless it says numba)."""
    raw = os.environ.get(KERNEL_VARIABLE)
    choice = _CHOICES.get(raw)  # asked with every message and step: the variable parsed once
    if choice is None:
        choice = (raw or "numpy").strip().lower() or "numpy"
        if choice not in KERNELS:
            raise ValueError(f"{KERNEL_VARIABLE}={choice!r}: choose one of {', '.join(KERNELS)}")
        _CHOICES[raw] = choice
    return choice


def cache_dir(package: Path, writable: bool, environ) -> str | None:
    """
    Where numba keeps the compiled step: beside the code, or a per-user folder if it is read-only.

    numba's own choice for a read-only install is a folder in the working directory, which may be
    read-only too; NUMBA_CACHE_DIR set by the user wins.
    """
    if writable or environ.get("NUMBA_CACHE_DIR"):
        return None
    base = environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return str(Path(base) / "bildmacro_ros" / "numba")


def drop_stale_cache(package: Path) -> bool:
    """
    Delete kernel_numba's cached functions if a file they call into changed; True if it did.

    numba's cache compares only the source of the file a function is defined in (numba#1833):
    kernel_numba's functions take kernel_linalg's and family.py's EXP_FLOOR into their cache,
    and an edit of those alone would leave them stale. A hash of those files beside the cache
    finds the edit. For the cache beside the code (a source tree or writable install); an
    install in a read-only folder changes only by being installed again, which gives
    kernel_numba.py itself a new time stamp.
    """
    digest = hashlib.sha256(b"".join((package / name).read_bytes()
                                     for name in KERNEL_DEPENDENCIES)).hexdigest()
    folder = package / "__pycache__"
    record = folder / "kernel_numba.dependencies"
    if record.is_file() and record.read_text() == digest:
        return False
    for cached in folder.glob("kernel_numba.*.nb[ic]"):
        cached.unlink(missing_ok=True)  # another process starting may have deleted it
    folder.mkdir(exist_ok=True)
    record.write_text(digest)
    return True


def kernel_in_use() -> str:
    """Return the step this process runs: numba once asked for and made, else numpy."""
    return "numba" if kernel_choice() == "numba" and _COMPILED.get("step") is not None \
        else "numpy"


def compiled_step():
    """Return the compiled row step, or None (with one warning) where numba cannot make it."""
    if "step" not in _COMPILED:
        here = Path(__file__).parent
        folder = cache_dir(here, os.access(here, os.W_OK), os.environ)
        if folder is not None:  # read before numba is imported
            os.environ["NUMBA_CACHE_DIR"] = folder
        elif not os.environ.get("NUMBA_CACHE_DIR"):
            drop_stale_cache(here)
        try:
            from .kernel_numba import (agent_row_step, agent_row_step_at, mixed_rows_step,
                                       packed_constants, rows_step)
            from .kernel_screen import screen_norms
            _COMPILED.update(step=rows_step, agent=agent_row_step, agent_at=agent_row_step_at,
                             mixed=mixed_rows_step, screen=screen_norms,
                             pack=packed_constants)
        except Exception as exc:  # noqa: BLE001 - ImportError, or numba's own errors
            _unavailable(f"{type(exc).__name__}: {exc}")
    return _COMPILED["step"]


def compiled_screen():
    """Return the compiled pass over a message's numbers where this process runs numba, or None."""
    return _COMPILED.get("screen") if kernel_in_use() == "numba" else None


def _unavailable(reason: str) -> None:
    warnings.warn(f"the compiled step is not available ({reason}); using the numpy path",
                  RuntimeWarning, stacklevel=3)
    _COMPILED["step"] = None
    _COMPILED.pop("screen", None)


def compiled_for(problem, steps) -> "CompiledStep | None":
    """Return the problem's compiled step, or None where it cannot run (numpy path)."""
    if compiled_step() is None:
        return None
    last = _LAST[0]
    if last is not None and last[0] is problem and last[1] is steps:  # a node's every round
        return last[2]
    table = _STEPS.setdefault(problem, {})
    if steps not in table:
        table[steps] = CompiledStep(problem, steps)
    _LAST[0] = (problem, steps, table[steps])
    return table[steps]


def run_compiled(problem, steps, state, *inputs, how: str = "rows"):
    """
    Return local_step's (fields in AgentState's order, x_hat, clipped) from the compiled step.

    inputs, by how: rows, the rows' mixes (y_mix, r_mix, q_mix); agent, one agent's (self_weight,
    weights, y, r, q) as agent_step takes them, mixed in the kernel; agent_at, its (self_weight,
    weights, addresses) as agent_step_at takes them; mixed, the swarm's weights in CSR
    (Mixer.rows), each row mixed in the kernel. None when numba is missing or its first compile
    fails: one warning, then the numpy path.
    """
    compiled = compiled_for(problem, steps)
    if compiled is None:
        return None
    try:
        return (compiled if how == "rows" else getattr(compiled, how))(state, *inputs)
    except Exception as exc:  # noqa: BLE001 - numba's typing and lowering errors
        if compiled.calls:  # it ran before: this is not a compiler's failure
            raise
        _unavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        _STEPS.clear()
        _LAST[0] = None
        return None


def will_compile(batch: bool = False) -> bool:
    """Tell whether the step is not in numba's cache yet: preparing it will compile it."""
    function = _COMPILED.get("step" if batch else "agent")
    try:  # numba's index file of the function (a private attribute: unknown means no)
        return not Path(function._cache._cache_file._index_path).exists()
    except AttributeError:
        return False


def prepare_kernel(problem, steps, batch: bool = False, note=None) -> float | None:
    """
    With BILDMACRO_KERNEL=numba, compile the step now (or load it from numba's cache).

    Returns the seconds it took, None on the numpy path. A node calls it while it starts, so
    that round 0 does not pay for it; a launcher calls it before it starts the nodes, so that
    they load one cache instead of each compiling its own at once (numba's weak spot). batch:
    the swarm's step too (bildmacro simulate). note(text) hears, before, that it compiles.
    """
    if kernel_choice() != "numba":
        return None
    start = time.perf_counter()
    compiled = compiled_for(problem, steps)
    if compiled is None:
        return None
    if note is not None and will_compile(batch):
        note("compiling the step with numba: once, some 10 s (BILDMACRO_KERNEL=numba)")
    m, size = problem.m, problem.m * (problem.m + 1) // 2
    rows = SimpleNamespace(x=np.zeros((1, 2)), y=np.zeros((1, m)), r=np.zeros((1, m)),
                           q=np.tile(np.eye(m)[np.triu_indices(m)], (1, 1)), mean=np.zeros((1, m)),
                           cov=np.zeros((1, size)), grad_f=np.zeros((1, m)), kl=np.zeros(1),
                           phi=np.zeros((1, m)))
    try:
        compiled.agent(rows, 1.0, np.zeros(0), np.zeros((0, m)), np.zeros((0, m)),
                       np.zeros((0, size)))
        compiled.agent_at(rows, 1.0, np.zeros(0), np.zeros(0, np.int64))
        if batch:
            many = SimpleNamespace(**{name: np.repeat(value, BATCH, axis=0)
                                      for name, value in vars(rows).items()})
            compiled(many, many.y, many.r, many.q)
            compiled.mixed(many, np.arange(BATCH + 1), np.arange(BATCH), np.ones(BATCH))
        # and the pass over a neighbour message (protocol/wire.py), so round 0 loads nothing
        message = np.zeros(10 + 2 * m + size)  # writable as a group's own, read-only as taken
        for numbers in (message, np.frombuffer(message.tobytes())):
            _COMPILED["screen"](numbers, 4, m, np.empty(6))
        compiled.calls = 0
    except Exception as exc:  # noqa: BLE001 - numba's typing and lowering errors
        _unavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        _STEPS.clear()
        _LAST[0] = None
        return None
    return time.perf_counter() - start


class CompiledStep:
    """A problem's constants laid out for the compiled step, and the step over a batch of rows."""

    def __init__(self, problem, steps):
        self.function = compiled_step()
        self.agent_function = _COMPILED.get("agent")
        self.agent_at_function = _COMPILED.get("agent_at")
        self.mixed_function = _COMPILED.get("mixed")
        self.constants = _COMPILED["pack"](problem, steps)  # (floats, ints)
        self.m, size = problem.m, problem.m * (problem.m + 1) // 2
        widths = {"x": 2, "q": size, "cov": size}
        self.row_shapes = [(1,) if name == "kl" else (1, widths.get(name, self.m))
                           for name in FIELD_ORDER] + [(1, 2)]
        self.calls = 0

    @staticmethod
    def _outputs(state):
        out = {name: np.empty_like(getattr(state, name)) for name in FIELD_ORDER}
        return out, np.empty((len(state.y), 2)), np.zeros(len(state.y), dtype=np.bool_)

    def agent(self, own, self_weight, weights, y, r, q):
        """
        Return agent_step's (fields, x_hat, clipped) for one agent's row and its neighbours'.

        A node's every round: the outputs are made from shapes known in advance.
        """
        c = np.ascontiguousarray
        y, r, q = c(y, dtype=float), c(r, dtype=float), c(q, dtype=float)
        if y.ndim != 2 or q.ndim != 2:  # one neighbour's rows given flat
            y, r, q = y.reshape(-1, self.m), r.reshape(-1, self.m), q.reshape(len(y), -1)
        return self._agent(self.agent_function, own, self_weight, weights, y, r, q)

    def agent_at(self, own, self_weight, weights, addresses):
        """Return agent's result, reading neighbour j's y, r, q in place at addresses[j]."""
        if len(addresses) != len(weights):
            raise ValueError(f"{len(addresses)} addresses for {len(weights)} weights")
        return self._agent(self.agent_at_function, own, self_weight, weights,
                           np.ascontiguousarray(addresses, dtype=np.int64))

    def _agent(self, function, own, self_weight, weights, *neighbours):
        out = list(map(np.empty, self.row_shapes))  # AgentState's order, then x_hat
        # the agent's own rows as they come: numba compiles a variant for any other layout
        clipped = function(own.x, own.y, own.r, own.q, own.mean, own.cov, own.grad_f, own.phi,
                           float(self_weight), np.ascontiguousarray(weights, dtype=float),
                           *neighbours, *self.constants, *out)
        self.calls += 1
        return out[:-1], out[-1], np.array([clipped])

    def mixed(self, state, indptr, indices, data):
        """Return __call__'s result, each row mixing its neighbours' rows (weights in CSR)."""
        out, x_hat, clipped = self._outputs(state)
        rows = [np.ascontiguousarray(a, dtype=float) for a in
                (state.x, state.y, state.r, state.q, state.mean, state.cov, state.grad_f,
                 state.phi)]
        self.mixed_function(np.asarray(indptr, dtype=np.int64),
                            np.asarray(indices, dtype=np.int64),
                            np.ascontiguousarray(data, dtype=float), *rows, *self.constants,
                            out["x"], out["y"], out["r"], out["q"],
                            out["mean"], out["cov"], out["grad_f"], out["phi"], out["kl"],
                            x_hat, clipped)
        self.calls += 1
        return [out[name] for name in FIELD_ORDER], x_hat, clipped

    def __call__(self, state, y_mix, r_mix, q_mix):
        """Return (next state's fields in AgentState's order, x_hat, clipped) for every row."""
        out, x_hat, clipped = self._outputs(state)
        rows = [np.ascontiguousarray(a, dtype=float) for a in
                (state.x, state.y, state.r, state.q, state.mean, state.cov, state.grad_f,
                 state.phi, y_mix, r_mix, q_mix)]
        # a swarm's step (bildmacro simulate) on every core; an agent group's agents go one by one
        self.function(*rows, *self.constants, out["x"], out["y"], out["r"],
                      out["q"], out["mean"], out["cov"], out["grad_f"], out["phi"], out["kl"],
                      x_hat, clipped)
        self.calls += 1
        return [out[name] for name in FIELD_ORDER], x_hat, clipped
