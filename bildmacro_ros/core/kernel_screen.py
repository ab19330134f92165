# SPDX-License-Identifier: Apache-2.0
"""The compiled pass over a neighbour message's numbers (numba); imported with the step's."""

import numba
import numpy as np

# A running sum or max is a chain of dependent operations, 4 cycles each; numba vectorizes a sum
# only if it may reassociate it, and a maximum of doubles not at all. A message is read with every
# neighbour's round, so the pass takes the vector forms below: 0.65 µs a call, from 2.1.
MAGNITUDE = np.uint64(0x7FFFFFFFFFFFFFFF)  # every bit of a double but its sign


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _all_finite(arr) -> bool:
    # x * 0 is 0 for a finite x and NaN for an infinite one or a NaN, and a sum keeps a NaN in
    # any order: reassociation alone allows neither x * 0 = 0 nor dropping a NaN
    total = 0.0
    for i in range(arr.size):
        total += arr[i] * 0.0
    return total == 0.0


# The helpers take slices, not bounds: a loop from lo to hi was not vectorized (0.4 µs, not 0.1).
@numba.njit(cache=True, nogil=True)
def _max_magnitude(bits):
    # finite doubles without their sign order as their bits do, as unsigned integers: the
    # integer maximum is the exact max |x|, and integers reduce in vectors
    big = np.uint64(0)
    for i in range(bits.size):
        value = bits[i] & MAGNITUDE
        big = value if value > big else big
    return big


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _sum_squares(arr) -> float:
    total = 0.0
    for i in range(arr.size):
        total += arr[i] * arr[i]
    return total


@numba.njit(cache=True, nogil=True)
def screen_norms(arr, start, m, out):
    """
    Fill out with what decoding and the plausibility bounds read of a message, in one pass.

    arr: the message's doubles, contiguous; start: where x begins (the meta before it is read by
    the caller); out: [finite (1 or 0), max |x, x_hat|, max |y|, max |r|, max |q|, sum of q's
    packed entries squared, doubled off the diagonal (the squared Frobenius norm)]. Maxima are
    exact, so every verdict that compares one equals numpy's; the norm only decides whether to
    factorise (summed in another order than numpy's, it may differ in its last bits).

    Returns where y's first double lies (y, r and q follow it): the compiled step reads them in
    place (kernel_numba.py).
    """
    finite = _all_finite(arr)
    out[0] = 1.0 if finite else 0.0
    if not finite:
        return 0
    y = start + 4
    q = y + 2 * m
    bits, maxima = arr.view(np.uint64), out.view(np.uint64)
    maxima[1], maxima[2] = _max_magnitude(bits[start:y]), _max_magnitude(bits[y:y + m])
    maxima[3], maxima[4] = _max_magnitude(bits[y + m:q]), _max_magnitude(bits[q:])
    # every packed entry squared twice, less the diagonal's once: row i's diagonal entry is
    # followed by the m - 1 - i entries right of it
    diagonal, i = 0.0, q
    for row in range(m):
        diagonal += arr[i] * arr[i]
        i += m - row
    out[5] = 2.0 * _sum_squares(arr[q:]) - diagonal
    return arr.ctypes.data + arr.itemsize * y
