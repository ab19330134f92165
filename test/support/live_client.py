# SPDX-License-Identifier: Apache-2.0
"""
A Foxglove WebSocket client nothing in the package wrote: `websockets` and the published schemas.

It speaks the protocol as Foxglove's documentation gives it (subprotocol `foxglove.sdk.v1`): it
reads the server's `advertise`, subscribes to every channel, and decodes each binary
`messageData` frame (opcode 1, subscription id u32, log time u64, payload) with the schema the
channel names: protobuf ones with foxglove-schemas-protobuf's classes, JSON ones as JSON.
"""

from __future__ import annotations

import importlib
import json
import struct
import threading
import time

SUBPROTOCOL = "foxglove.sdk.v1"


def decoder(channel: dict):
    """Return a function that decodes a payload of this advertised channel."""
    if channel["encoding"] == "json":
        return lambda payload: json.loads(payload)
    assert channel["encoding"] == "protobuf", channel
    name = channel["schemaName"].removeprefix("foxglove.")
    cls = getattr(importlib.import_module(f"foxglove_schemas_protobuf.{name}_pb2"), name)
    return cls.FromString


class LiveClient:
    """Connects, subscribes to everything and keeps (topic, log time, decoded) in `messages`."""

    def __init__(self, port: int, host: str = "127.0.0.1", wait: float = 60.0,
                 leave_after: int | None = None):
        self.url, self.messages, self.channels = f"ws://{host}:{port}", [], {}
        self.wait = wait  # seconds to keep trying to connect (the server may not be up yet)
        self.leave_after = leave_after  # messages after which it hangs up, as a closed tab does
        self.error: BaseException | None = None
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def topic(self, name: str) -> list:
        return [(stamp, msg) for topic, stamp, msg in self.messages if topic == name]

    def _run(self) -> None:
        from websockets.sync.client import connect
        try:
            with self._connect(connect) as ws:
                assert ws.subprotocol == SUBPROTOCOL
                subs, decoders = {}, {}
                for frame in ws:
                    if isinstance(frame, str):
                        op = json.loads(frame)
                        if op["op"] == "advertise":
                            new = []
                            for channel in op["channels"]:
                                sub = len(subs) + 1
                                subs[sub] = channel["topic"]
                                decoders[sub] = decoder(channel)
                                self.channels[channel["topic"]] = channel
                                new.append({"id": sub, "channelId": channel["id"]})
                            ws.send(json.dumps({"op": "subscribe", "subscriptions": new}))
                        continue
                    if frame[0] != 1:  # messageData
                        continue
                    sub, stamp = struct.unpack_from("<IQ", frame, 1)
                    self.messages.append((subs[sub], stamp, decoders[sub](frame[13:])))
                    if self.leave_after is not None and len(self.messages) >= self.leave_after:
                        return
        except Exception as exc:  # noqa: BLE001 - the test reads it
            from websockets.exceptions import ConnectionClosed
            if not isinstance(exc, ConnectionClosed):
                self.error = exc
        finally:
            self.closed.set()

    def _connect(self, connect):
        until = time.monotonic() + self.wait
        while True:
            try:
                return connect(self.url, subprotocols=[SUBPROTOCOL], max_size=None)
            except ConnectionRefusedError:
                if time.monotonic() > until:
                    raise
                time.sleep(0.05)
