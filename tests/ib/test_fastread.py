"""The offset-based reader decodes exactly what ib_async's own reader decodes."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import IB

from ibdesk.ib.fastread import read_socket_data


def _frame(*fields: str) -> bytes:
    body = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def _client_recording_fields() -> tuple[Any, list[list[str]]]:
    client = IB().client
    seen: list[list[str]] = []
    client.decoder.interpret = lambda fields: seen.append(list(fields))  # type: ignore[method-assign]
    client._serverVersion = 178
    client._apiReady = True
    return client, seen


_messages = st.lists(
    st.lists(st.text(alphabet="abcXYZ0123456789.-", max_size=12), min_size=1, max_size=8),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_messages, st.data())
def test_same_fields_as_ib_async_whatever_the_read_boundaries(
    messages: list[list[str]], data: st.DataObject
) -> None:
    stream = b"".join(_frame(*m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    theirs, theirs_seen = _client_recording_fields()
    ours, ours_seen = _client_recording_fields()
    for chunk in chunks:
        theirs._onSocketHasData(chunk)
        read_socket_data(ours, chunk)
    assert ours_seen == theirs_seen == messages
    assert ours._data == theirs._data == b""
    assert ours._numMsgRecv == theirs._numMsgRecv == len(messages)


def test_keeps_an_incomplete_tail_for_the_next_read() -> None:
    client, seen = _client_recording_fields()
    frame = _frame("12", "1", "7", "0")
    read_socket_data(client, frame + frame[:5])
    assert seen == [["12", "1", "7", "0"]]
    read_socket_data(client, frame[5:])
    assert seen == [["12", "1", "7", "0"], ["12", "1", "7", "0"]]


def test_a_reset_while_decoding_voids_the_rest_of_the_read() -> None:
    client, seen = _client_recording_fields()

    def decode_then_drop(fields: list[str]) -> None:
        seen.append(list(fields))
        client.reset()  # what a disconnect does from inside a handler

    client.decoder.interpret = decode_then_drop  # type: ignore[method-assign]
    frame = _frame("12", "1", "7", "0")
    read_socket_data(client, frame * 3 + frame[:5])
    assert seen == [["12", "1", "7", "0"]]
    assert client._data == b""
    assert client._numMsgRecv == 0
