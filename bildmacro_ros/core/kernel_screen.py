# SPDX-License-Identifier: Apache-2.0
"""The compiled pass over a neighbour message's numbers (numba); imported with the step's."""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def screen_norms(arr, start, m, out):
    """
    Fill out with what decoding and the plausibility bounds read of a message, in one pass.

    arr: the message's doubles; start: where x begins (the meta before it is read by the caller);
    out: [finite (1 or 0), max |x, x_hat|, max |y|, max |r|, max |q|, sum of q's packed entries
    squared, doubled off the diagonal (the squared Frobenius norm)]. Maxima are exact, so every
    verdict that compares one equals numpy's; the norm only decides whether to factorise.

    Returns where y's first double lies, when y, r and q lie one after another there (arr is
    contiguous), else 0: the compiled step then reads them in place (kernel_numba.py).
    """
    finite = True
    for i in range(arr.size):
        if not np.isfinite(arr[i]):
            finite = False
            break
    out[0] = 1.0 if finite else 0.0
    if not finite:
        return 0
    y = start + 4
    for slot, lo, hi in ((1, start, y), (2, y, y + m), (3, y + m, y + 2 * m)):
        big = 0.0
        for i in range(lo, hi):
            big = max(big, abs(arr[i]))
        out[slot] = big
    big, diagonal, total = 0.0, 0.0, 0.0
    i = y + 2 * m
    for row in range(m):
        value = arr[i]
        big, diagonal = max(big, abs(value)), diagonal + value * value
        for _ in range(row + 1, m):
            i += 1
            value = arr[i]
            big, total = max(big, abs(value)), total + value * value
        i += 1
    out[4], out[5] = big, diagonal + 2.0 * total
    return arr.ctypes.data + arr.itemsize * y if arr.strides[0] == arr.itemsize else 0
