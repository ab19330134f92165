# SPDX-License-Identifier: Apache-2.0
"""The compiled step's functions (numba); imported only when BILDMACRO_KERNEL=numba asks."""

import numba
from numba import types
from numba.extending import intrinsic
import numpy as np

from .family import EXP_FLOOR
from .kernel_linalg import solve_projected

# cache: compiled once per machine into __pycache__ (numba's cache, keyed by the source)
jit = numba.njit(cache=True, nogil=True)


# exp by Cody and Waite's reduction: x = n ln 2 + r with |r| <= ln 2 / 2, exp(r) by its Taylor
# polynomial to r^13 (remainder under 1e-17 of it), 2^n added to the exponent's bits. Unlike
# libm's exp it has no branch, so a grid of them is a loop without calls: 1.5 µs for 41 x 41,
# against 8.1 through libm. Within 1 ulp of numpy's exp for -708 < x < 709.
_LOG2E, _LN2_HI, _LN2_LO = 1.4426950408889634, 6.93147180369123816490e-01, \
    1.90821492927058770002e-10
_FAST_EXP_TOP = 700.0  # above, 2^n would overflow the exponent's bits: libm's exp instead


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _exp_floored(s, shift, e, powers):
    """Set e = exp(max(s - shift, EXP_FLOOR)) for a C-ordered grid s; powers: s.size int64s."""
    values, out = s.ravel(), e.ravel()
    fast = True
    for i in range(values.size):  # False for a NaN too: libm's exp then, as before
        fast &= values[i] - shift <= _FAST_EXP_TOP
    if not fast:
        for i in range(values.size):
            out[i] = np.exp(max(values[i] - shift, EXP_FLOOR))
        return
    for i in range(values.size):
        x = max(values[i] - shift, EXP_FLOOR)
        n = np.floor(x * _LOG2E + 0.5)
        r = (x - n * _LN2_HI) - n * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        out[i] = p
        powers[i] = np.int64(n)
    bits = out.view(np.int64)
    for i in range(values.size):
        bits[i] += powers[i] << 52


@jit
def _peak(s, lo, hi):
    """Return the largest s[a, b] for a, b in lo..hi-1, by columns: not one chain of 1 681 max."""
    best = s[lo, lo:hi].copy()  # independent lanes: a loop of vector max, 0.3 against 1.6 µs
    for a in range(lo + 1, hi):
        row = s[a, lo:hi]
        for b in range(best.size):
            best[b] = row[b] if row[b] > best[b] else best[b]
    peak = -np.inf
    for b in range(best.size):
        peak = max(peak, best[b])
    return peak


@jit
def _legendre(c, k, p, d):
    """P_0..P_{k-1} and their derivatives at c, by the recurrences of core/basis.py."""
    p[0], d[0] = 1.0, 0.0
    if k > 1:
        p[1], d[1] = c, 1.0
    for j in range(2, k):
        p[j] = ((2 * j - 1) * c * p[j - 1] - (j - 1) * p[j - 2]) / j
        d[j] = d[j - 2] + (2 * j - 1) * p[j - 1]


@jit
def row_step(x, y, r, q, mean, cov, grad_f, phi, y_mix, r_mix, q_mix,
             u, u_t, u2w, u2w_t, uw, uw_t, lin, lin_t, gather, rows, cols, lo, hi, log_target, k,
             omega, gamma_x, gamma_y, delta,
             x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, phi_out, kl_out, x_hat):
    """local_step (core/bildmacro.py) for one agent; returns whether P_{>=omega} clipped q."""
    m = k * k
    z = np.empty(m)
    clipped = solve_projected(q, omega, grad_f, m, z)
    # (6a)-(6b): Jphi(x)^T z from the 1-D values and derivatives
    p1, p2, d1, d2 = np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    _legendre(x[0], k, p1, d1)
    _legendre(x[1], k, p2, d2)
    first = second = 0.0
    for a in range(k):
        row1 = row2 = 0.0
        for b in range(k):
            row1 += z[a * k + b] * p2[b]
            row2 += z[a * k + b] * d2[b]
        first += d1[a] * row1
        second += p1[a] * row2
    x_hat[0] = min(max(x[0] - gamma_x * first, -1.0), 1.0)
    x_hat[1] = min(max(x[1] - gamma_x * second, -1.0), 1.0)
    for c in range(2):
        x_out[c] = x[c] + delta * (x_hat[c] - x[c])
    # (7): y_{k+1} and the moments of p(., y_{k+1}) (ExponentialFamily.evaluate)
    for j in range(m):
        y_out[j] = y_mix[j] - gamma_y * r[j]
    s = u @ (y_out.reshape(k, k) @ u_t)
    peak = _peak(s, lo, hi)
    e = np.empty_like(s)
    _exp_floored(s, peak, e, np.empty(s.size, np.int64))
    m2 = u2w_t @ (e @ u2w)
    total = m2[0, 0]
    log_z = peak + np.log(total)
    m2 /= total
    for a in range(k):
        for b in range(k):
            mean_out[a * k + b] = m2[a, b]
    pairs = (lin @ m2) @ lin_t
    flat = pairs.ravel()
    for j in range(len(gather)):
        cov_out[j] = flat[gather[j]] - mean_out[rows[j]] * mean_out[cols[j]]
    dev = (s - log_target) * e
    proj = (uw_t @ (dev @ uw)) / total
    kl = proj[0, 0] - log_z
    kl_out[0] = kl
    for a in range(k):
        for b in range(k):
            grad_out[a * k + b] = proj[a, b] - (log_z + kl) * mean_out[a * k + b]
    # (8)-(9): the trackers, from phi at x_{k+1} and at x_k
    q1, q2 = np.empty(k), np.empty(k)
    _legendre(x_out[0], k, q1, d1)
    _legendre(x_out[1], k, q2, d2)
    for a in range(k):
        for b in range(k):
            j = a * k + b
            phi_out[j] = q1[a] * q2[b]
            grad_next = -phi_out[j] + mean_out[j] + omega * y_out[j]
            grad_now = -phi[j] + mean[j] + omega * y[j]
            r_out[j] = r_mix[j] + grad_next - grad_now
    for j in range(len(q)):
        q_out[j] = q_mix[j] + cov_out[j] - cov[j]
    return clipped


@intrinsic
def _doubles_at(typingctx, address):
    """Give the float64 pointer at an integer address (a message's y: NeighbourState.address)."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.float64)))
    return types.CPointer(types.float64)(address), codegen


def packed_constants(problem, steps) -> tuple:
    """
    Return (floats, ints): a problem's constants and step sizes in two buffers, for _constants.

    Two arguments instead of nineteen: numba types each argument of every call (50 ns an array).
    """
    family = problem.family
    matrices = (family.U, family.U.T, family.U2w, family.U2w.T, family.Uw, family.Uw.T,
                family._lin, family._lin.T, problem.log_target)
    floats = [np.array([problem.omega, steps.gamma_x, steps.gamma_y, steps.delta], dtype=float)]
    header = []
    for matrix in matrices:  # where each begins, and its shape
        header += [sum(map(len, floats)), *np.shape(matrix)]
        floats.append(np.ravel(matrix).astype(float))  # C order, transposes too
    ints = [header, [family.basis.size_1d, family._support.start, family._support.stop,
                     len(family._gather)], family._gather, family._rows, family._cols]
    return np.concatenate(floats), np.concatenate(ints).astype(np.int64)


@jit
def _matrix(floats, ints, j):
    at, rows, cols = ints[3 * j], ints[3 * j + 1], ints[3 * j + 2]
    return floats[at:at + rows * cols].reshape((rows, cols))


@jit
def _constants(floats, ints):
    """Return row_step's constants (u ... k) and parameters (omega ... delta) packed_constants'."""
    k, lo, hi, size = ints[27], ints[28], ints[29], ints[30]  # after 9 (start, rows, cols)
    indices = ints[31:]
    return ((_matrix(floats, ints, 0), _matrix(floats, ints, 1), _matrix(floats, ints, 2),
             _matrix(floats, ints, 3), _matrix(floats, ints, 4), _matrix(floats, ints, 5),
             _matrix(floats, ints, 6), _matrix(floats, ints, 7), indices[:size],
             indices[size:2 * size], indices[2 * size:3 * size], lo, hi, _matrix(floats, ints, 8),
             k), (floats[0], floats[1], floats[2], floats[3]))


@jit
def _agent_row(own, mixes, constants, parameters, outs):
    """row_step for one agent: own, its fields, and outs, AgentState's then x_hat, are one-row."""
    x, y, r, q, mean, cov, grad_f, phi = own
    x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, kl_out, phi_out, x_hat = outs
    return row_step(x[0], y[0], r[0], q[0], mean[0], cov[0], grad_f[0], phi[0], *mixes,
                    *constants, *parameters, x_out[0], y_out[0], r_out[0], q_out[0], mean_out[0],
                    cov_out[0], grad_out[0], phi_out[0], kl_out, x_hat[0])


@jit
def _add_row(weight, mixes, y, r, q):
    y_mix, r_mix, q_mix = mixes
    for c in range(len(y)):
        y_mix[c] += weight * y[c]
        r_mix[c] += weight * r[c]
    for c in range(len(q)):
        q_mix[c] += weight * q[c]


@jit
def agent_row_step(own_x, own_y, own_r, own_q, own_mean, own_cov, own_grad_f, own_phi,
                   self_weight, weights, ys, rs, qs, floats, ints,
                   x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, kl_out, phi_out,
                   x_hat):
    """
    row_step for one agent from its neighbours' stacked rows: sum_j a_ij (y_j, r_j, q_j) first.

    The agent's fields and the outputs are one-row (1, n) arrays, as AgentState holds them (the
    outputs in its order), so that a node's step takes and makes them without a view in Python.
    """
    mixes = (self_weight * own_y[0], self_weight * own_r[0], self_weight * own_q[0])
    for j in range(len(weights)):
        _add_row(weights[j], mixes, ys[j], rs[j], qs[j])
    return _agent_row((own_x, own_y, own_r, own_q, own_mean, own_cov, own_grad_f, own_phi),
                      mixes, *_constants(floats, ints),
                      (x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, kl_out, phi_out,
                       x_hat))


@jit
def agent_row_step_at(own_x, own_y, own_r, own_q, own_mean, own_cov, own_grad_f, own_phi,
                      self_weight, weights, addresses, floats, ints,
                      x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, kl_out, phi_out,
                      x_hat):
    """
    agent_row_step reading neighbour j's y, r and q where its message holds them, at addresses[j].

    No stacked copy of the rows: in an agent group each message reaches some 30 listeners, and
    stacking copied it for each. The caller keeps the messages alive (protocol Step.rows).
    """
    m, size = own_y.shape[1], own_q.shape[1]
    mixes = (self_weight * own_y[0], self_weight * own_r[0], self_weight * own_q[0])
    for j in range(len(weights)):
        row = numba.carray(_doubles_at(addresses[j]), 2 * m + size)
        _add_row(weights[j], mixes, row[:m], row[m:2 * m], row[2 * m:])
    return _agent_row((own_x, own_y, own_r, own_q, own_mean, own_cov, own_grad_f, own_phi),
                      mixes, *_constants(floats, ints),
                      (x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, kl_out, phi_out,
                       x_hat))


@numba.njit(cache=True, nogil=True, parallel=True)
def rows_step(x, y, r, q, mean, cov, grad_f, phi, y_mix, r_mix, q_mix, floats, ints,
              x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, phi_out, kl_out, x_hat,
              clipped):
    """row_step for every row of a batch (a swarm's step), the rows shared among the cores."""
    constants, parameters = _constants(floats, ints)
    for i in numba.prange(x.shape[0]):
        clipped[i] = row_step(x[i], y[i], r[i], q[i], mean[i], cov[i], grad_f[i], phi[i],
                              y_mix[i], r_mix[i], q_mix[i], *constants, *parameters,
                              x_out[i], y_out[i], r_out[i], q_out[i],
                              mean_out[i], cov_out[i], grad_out[i], phi_out[i],
                              kl_out[i:i + 1], x_hat[i])


@numba.njit(cache=True, nogil=True, parallel=True)
def mixed_rows_step(indptr, indices, data, x, y, r, q, mean, cov, grad_f, phi, floats, ints,
                    x_out, y_out, r_out, q_out, mean_out, cov_out, grad_out, phi_out, kl_out,
                    x_hat, clipped):
    """
    rows_step with the mixing in it: row i sums a_ij (y_j, r_j, q_j) over row i of the weights.

    The weights in CSR (indptr, indices, data), as scipy's product takes them and in its order;
    no swarm-sized mix is made, and the rows' mixing is shared among the cores with their steps.
    """
    constants, parameters = _constants(floats, ints)
    for i in numba.prange(x.shape[0]):
        y_mix, r_mix, q_mix = np.zeros(y.shape[1]), np.zeros(r.shape[1]), np.zeros(q.shape[1])
        for p in range(indptr[i], indptr[i + 1]):
            j, a = indices[p], data[p]
            for c in range(y.shape[1]):
                y_mix[c] += a * y[j, c]
                r_mix[c] += a * r[j, c]
            for c in range(q.shape[1]):
                q_mix[c] += a * q[j, c]
        clipped[i] = row_step(x[i], y[i], r[i], q[i], mean[i], cov[i], grad_f[i], phi[i],
                              y_mix, r_mix, q_mix, *constants, *parameters,
                              x_out[i], y_out[i], r_out[i], q_out[i],
                              mean_out[i], cov_out[i], grad_out[i], phi_out[i],
                              kl_out[i:i + 1], x_hat[i])
