# SPDX-License-Identifier: Apache-2.0
"""
Neighbour messages as the agents send and take them.

Serialized bytes that are a Float64MultiArray.
"""

import array

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from bildmacro_ros.core.bildmacro import initial_state
from bildmacro_ros.core.symmetric import packed_size
from bildmacro_ros.protocol.wire import (decode, encode, layout_label, MalformedMessage,
                                         message_length)
from bildmacro_ros.ros.messages import StateMessages

M = 49


def message(k: int, sender: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    return encode(k, sender, rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2), rng.standard_normal(M),
                  rng.standard_normal(M), rng.standard_normal(packed_size(M)))


def as_object(payload: np.ndarray, label: str = layout_label(M)) -> Float64MultiArray:
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=payload.size, stride=payload.size)]
    msg.data = array.array("d", payload.tobytes())
    return msg


def test_a_built_message_is_the_float64multiarray_rclpy_would_serialize_and_reads_back(problem):
    state = initial_state(problem, np.array([[0.25, -0.5]]),
                          np.random.default_rng(4).standard_normal((1, M)))
    data, payload = StateMessages(M).build(12, 3, state, np.array([0.2, -0.4]))
    assert len(data) == len(serialize_message(as_object(payload)))
    received = deserialize_message(data, Float64MultiArray)  # what any subscriber of the type gets
    assert [(d.label, d.size, d.stride)
            for d in received.layout.dim] == [(layout_label(M), payload.size, payload.size)]
    assert np.array_equal(np.array(received.data), payload)
    # and what rclpy serializes from a message object reads as the same state
    assert np.array_equal(StateMessages(M).read(serialize_message(as_object(payload)), 3).q,
                          state.q[0])
    got = StateMessages(M).read(data, 3)
    assert (got.iteration, got.sender) == (12, 3)
    assert np.array_equal(np.concatenate([got.x, got.x_hat, got.y, got.r, got.q]), payload[4:])
    assert np.array_equal(got.q, state.q[0]) and np.array_equal(got.x_hat, [0.2, -0.4])


def test_a_message_from_another_serializer_or_layout_is_read_the_slow_way_and_checked():
    messages, payload = StateMessages(M), message(5, 2)
    # the same message with its label in another form: not the template's bytes, still decoded
    other = as_object(payload, label=layout_label(M) + " ")
    with pytest.raises(MalformedMessage) as exc:
        messages.read(serialize_message(other), 2)
    assert exc.value.reason == "wrong_layout"
    six = as_object(payload)
    six.layout.dim = [MultiArrayDimension(label=name, size=1, stride=1) for name in "abcdef"]
    with pytest.raises(MalformedMessage) as exc:
        messages.read(serialize_message(six), 2)
    assert exc.value.reason == "wrong_layout"
    longer = as_object(np.concatenate([payload, [0.0]]))
    with pytest.raises(MalformedMessage) as exc:
        messages.read(serialize_message(longer), 2)
    assert exc.value.reason == "wrong_size"
    nan = payload.copy()
    nan[40] = np.nan
    with pytest.raises(MalformedMessage) as exc:
        # the fast path checks what decode checks
        messages.read(serialize_message(as_object(nan)), 2)
    assert exc.value.reason == "non_finite"
    with pytest.raises(MalformedMessage) as exc:
        messages.read(serialize_message(as_object(payload)), 7)
    assert exc.value.reason == "wrong_sender"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=11000), st.booleans())
def test_no_bytes_crash_the_reader(data, with_prefix):
    messages = StateMessages(M)
    if with_prefix:  # the fast path's own prefix, followed by anything
        data = (messages.prefix + data)[:messages.size]
    try:
        got = messages.read(data, 1)
    except MalformedMessage:
        return
    # anything accepted is a well-formed message of the layout
    assert got.sender == 1 and got.q.size == message_length(M) - 4 - 2 - 2 - 2 * M
    decode(np.concatenate([[got.iteration, 1, M, 1], got.x, got.x_hat, got.y, got.r, got.q]), M, 1)
