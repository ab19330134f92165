# SPDX-License-Identifier: Apache-2.0
"""The neighbour message format and the per-round inbox: every rule, and no input that crashes."""

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from bildmacro_ros.core.symmetric import packed_size
from bildmacro_ros.protocol.inbox import Inbox, MAX_AHEAD
from bildmacro_ros.protocol.wire import (decode, encode, layout_label, MalformedMessage,
                                         message_length)

M = 49


def message(k=0, sender=1, m=M, seed=0):
    rng = np.random.default_rng(seed)
    return encode(k, sender, rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2), rng.standard_normal(m),
                  rng.standard_normal(m), rng.standard_normal(packed_size(m)))


def test_roundtrip_and_size():
    data = message(7, 3)
    assert data.size == message_length(M) == 4 + 2 + 2 + 49 + 49 + 1225
    assert data.nbytes == 8 * 1331 == 10648  # payload bytes per agent per round, as documented
    assert layout_label(M) == "bildmacro/1 meta:4 x:2 x_hat:2 y:49 r:49 q_upper:1225"
    msg = decode(data.tobytes(), M, 3, layout_label(M))
    assert (msg.iteration, msg.sender) == (7, 3)
    assert np.array_equal(np.concatenate([msg.x, msg.x_hat, msg.y, msg.r, msg.q]), data[4:])


@pytest.mark.parametrize("mutate,reason", [
    (lambda d: d[:-1], "wrong_size"),
    (lambda d: np.concatenate([d, [0.0]]), "wrong_size"),
    (lambda d: np.where(np.arange(d.size) == 60, np.nan, d), "non_finite"),
    (lambda d: np.where(np.arange(d.size) == 100, np.inf, d), "non_finite"),
    (lambda d: np.where(np.arange(d.size) == 0, -1.0, d), "bad_iteration"),
    (lambda d: np.where(np.arange(d.size) == 0, 2.5, d), "bad_iteration"),
    (lambda d: np.where(np.arange(d.size) == 1, 9.0, d), "wrong_sender"),
    (lambda d: np.where(np.arange(d.size) == 2, 36.0, d), "wrong_layout"),
    (lambda d: np.where(np.arange(d.size) == 3, 2.0, d), "wrong_layout"),
    (lambda d: np.where(np.arange(d.size) == 4, 1.5, d), "position_outside"),
])
def test_malformed_reasons(mutate, reason):
    with pytest.raises(MalformedMessage) as err:
        decode(mutate(message(2, 1)), M, 1)
    assert err.value.reason == reason


def test_label_checked():
    with pytest.raises(MalformedMessage, match="wrong_layout"):
        decode(message(), M, 1, "bildmacro/1 meta:4 x:2 x_hat:2 y:36 r:36 q_upper:666")


def test_inbox_rounds():
    inbox = Inbox([1, 4], M)
    assert inbox.offer(4, message(0, 4), current=0) == "accepted"
    assert not inbox.complete(0) and inbox.missing(0) == [1]
    assert inbox.offer(4, message(0, 4), current=0) == "duplicate"
    assert inbox.offer(1, message(1, 1), current=0) == "accepted"  # a round ahead: kept for later
    assert inbox.offer(1, message(0, 1), current=0) == "accepted"
    assert inbox.complete(0)
    got = inbox.take(0)
    assert sorted(got) == [1, 4] and all(got[j].sender == j for j in got)
    assert inbox.offer(4, message(0, 4), current=1) == "stale"
    assert inbox.offer(4, message(1 + MAX_AHEAD + 1, 4), current=1) == "too_far_ahead"
    assert inbox.offer(2, message(1, 2), current=1) == "not_a_neighbour"
    assert inbox.offer(4, message(1, 4)[:10], current=1) == "wrong_size"
    assert inbox.dropped == {"duplicate": 1, "stale": 1, "too_far_ahead": 1, "not_a_neighbour": 1,
                             "wrong_size": 1}
    assert inbox.offer(4, message(1, 4), current=1) == "accepted" and inbox.complete(1)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(
    st.binary(max_size=12000),
    st.lists(st.floats(allow_nan=True, allow_infinity=True),
             max_size=1400).map(lambda v: np.array(v, dtype=float)),
    st.builds(lambda k, s, bad: np.where(np.arange(message_length(M)) == bad % message_length(M),
                                         np.nan, message(k % 50, s % 3)),
              st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.builds(lambda k, s: message(k, s), st.integers(0, 100), st.integers(-3, 5)),
))
def test_no_input_crashes_the_inbox(data):
    inbox = Inbox([1, 2], M)
    status = inbox.offer(1, data, current=3)
    assert status in {"accepted", "stale", "duplicate", "too_far_ahead", "wrong_size",
                      "non_finite", "wrong_layout", "bad_iteration", "wrong_sender",
                      "position_outside", "not_float64"}
    assert inbox.accepted + sum(inbox.dropped.values()) == 1
