# SPDX-License-Identifier: Apache-2.0
"""
The neighbour message: a labelled flat float64 layout and its validation.

Nothing here imports ROS: it works on plain arrays, so every rule is tested without DDS. On the
wire the array travels as `std_msgs/Float64MultiArray`; agent_<i>/state (every round, for the
neighbours) and agent_<i>/record (only the rounds a recorder needs) share the layout:

    index  label     size          content
    0      meta      4             iteration k, sender id, m, layout version
    4      x         2             the sender's position x_i^k
    6      x_hat     2             on agent_<i>/state: the last projected point
                                   x_hat_i^{k-1} (x_i^0 at k = 0); on agent_<i>/record:
                                   x_hat_i^k from round k's step
                                   (x_hat_i^{K-1} in the final record K)
    8      y         m             y_i^k
    8+m    r         m             r_i^k
    8+2m   q_upper   m(m+1)/2      q_i^k, upper triangle row by row: (0,0), (0,1), ..., (1,1), ...

The layout carries one dimension whose label names every segment with its size,
`bildmacro/1 meta:4 x:2 x_hat:2 y:49 r:49 q_upper:1225` (see `layout_label`): one label rather
than six dimensions, because rclpy builds a Python object per dimension on every message received.

Only numbers are read, never code or objects. A message that breaks any rule is dropped and
counted under its reason; it can never raise out of the receive path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..core.kernel import compiled_screen
from ..core.symmetric import packed_size

LAYOUT_VERSION = 1
META = 4
LABELS = ("meta", "x", "x_hat", "y", "r", "q_upper")


def segment_sizes(m: int) -> tuple[int, ...]:
    return (META, 2, 2, m, m, packed_size(m))


@cache  # asked with every message
def message_length(m: int) -> int:
    return sum(segment_sizes(m))


def layout_label(m: int) -> str:
    """Return the label of the message's single layout dimension: format, version and segments."""
    return f"bildmacro/{LAYOUT_VERSION} " + " ".join(f"{name}:{size}" for name,
                                                     size in zip(LABELS, segment_sizes(m)))


@dataclass
class NeighbourState:
    """One decoded message."""

    iteration: int
    sender: int
    x: np.ndarray
    x_hat: np.ndarray
    y: np.ndarray
    r: np.ndarray
    q: np.ndarray  # packed
    # what the compiled pass read of it (core/kernel_screen.py): max |y|, |r|, |q| and q's squared
    # Frobenius norm, for the plausibility bounds; None on the numpy path
    norms: np.ndarray | None = None
    # where y's first double lies, with r and q after it (the same pass found them consecutive):
    # the compiled step reads them there, the message kept alive by the step that holds it; 0:
    # unknown (the numpy path, or an array given strided), and the rows are stacked instead
    address: int = 0


def same_message(a: NeighbourState, b: NeighbourState) -> bool:
    """Tell whether two decoded messages are the same (a resend), or two different ones."""
    return a.iteration == b.iteration and all(
        np.array_equal(u, v) for u, v in ((a.x, b.x), (a.x_hat, b.x_hat), (a.y, b.y),
                                          (a.r, b.r), (a.q, b.q)))


def encode(iteration: int, sender: int, x, x_hat, y, r, q_packed) -> np.ndarray:
    m = len(y)
    meta = np.array([iteration, sender, m, LAYOUT_VERSION], dtype=float)
    # axis=None flattens each part: half the time of six ravel calls, once per round
    return np.concatenate([meta, x, x_hat, y, r, q_packed], axis=None)


class MalformedMessage(ValueError):
    """`reason` is a short counter key (wrong_size, non_finite, ...)."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


ASK = "ask"  # decode's screen: find out here whether this process runs the compiled pass


def decode(data, m: int, sender: int | None = None, label: str | None = None,
           screen=ASK) -> NeighbourState:
    """
    Check and split one message; raises MalformedMessage with the reason.

    label: the layout label the message carried (checked against layout_label(m) when given).
    screen: the compiled pass as core.kernel.compiled_screen() gives it (None: numpy's path), from
    a caller that already asked.
    """
    try:
        if isinstance(data, np.ndarray):
            arr = data.astype(np.float64, copy=False)
        else:
            arr = np.frombuffer(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MalformedMessage("not_float64", str(exc)) from None
    if arr.ndim != 1 or arr.size != message_length(m):
        raise MalformedMessage("wrong_size",
                               f"{arr.size} values, expected {message_length(m)} for m = {m}")
    if label is not None and label != layout_label(m):
        raise MalformedMessage("wrong_layout",
                               f"layout label {str(label)[:80]!r}, expected {layout_label(m)!r}")
    # one compiled pass reads every number decoding and the bounds need (BILDMACRO_KERNEL=numba)
    screen, norms, address = compiled_screen() if screen is ASK else screen, None, 0
    if screen is not None:
        norms = np.empty(6)
        if arr.flags.c_contiguous:
            address = screen(arr, META, m, norms)
        else:  # read in a copy: the rows are then stacked from the array given (no address)
            screen(np.ascontiguousarray(arr), META, m, norms)
    finite = np.all(np.isfinite(arr)) if norms is None else norms[0] == 1.0
    if not finite:
        raise MalformedMessage("non_finite", "NaN or infinity in the payload")
    k, who, size, version = arr[:META].tolist()  # Python floats: compared faster than numpy's
    if version != LAYOUT_VERSION or size != m:
        raise MalformedMessage("wrong_layout",
                               f"layout version {version:g} / m {size:g}, expected "
                               f"{LAYOUT_VERSION} / {m}")
    if k < 0 or k != int(k) or k > 2**53:
        raise MalformedMessage("bad_iteration", f"iteration {k!r} is not a whole number >= 0")
    if sender is not None and who != sender:
        raise MalformedMessage("wrong_sender", f"sender field {who:g} on agent {sender}'s topic")
    position = np.abs(arr[META:META + 4]).max() if norms is None else norms[1]
    if position > 1:
        raise MalformedMessage("position_outside", "x or x_hat outside C = [-1, 1]^2")
    y = META + 4
    return NeighbourState(int(k), int(who), arr[META:META + 2], arr[META + 2:y], arr[y:y + m],
                          arr[y + m:y + 2 * m], arr[y + 2 * m:],
                          None if norms is None else norms[2:], address)


def decode_message(msg, m: int, sender: int | None = None) -> NeighbourState:
    """
    Decode a received std_msgs/Float64MultiArray (anything with .data and .layout.dim).

    One labelled dimension is the layout; any other layout is reported as wrong_layout.
    """
    dims = msg.layout.dim
    return decode(msg.data, m, sender, dims[0].label if len(dims) == 1 else repr(dims))
