"""Framing and the version handshake (pure)."""

from __future__ import annotations

import pytest

from ibdesk.sim.protocol import (
    SERVER_VERSION,
    FrameReader,
    HandshakeError,
    encode,
    negotiate,
    parse_version_offer,
)


def test_negotiates_min_of_client_max_and_178() -> None:
    assert negotiate(parse_version_offer("v157..178")) == 178
    assert negotiate(parse_version_offer("v100..226 +PACEAPI")) == SERVER_VERSION
    assert negotiate(parse_version_offer("v100..170")) == 170


def test_refuses_client_whose_minimum_exceeds_178() -> None:
    with pytest.raises(HandshakeError):
        negotiate(parse_version_offer("v179..200"))


def test_rejects_malformed_offer() -> None:
    with pytest.raises(HandshakeError):
        parse_version_offer("hello")


def test_frame_reader_handles_partial_reads() -> None:
    data = encode(1, "a", 2.5, True) + encode(9, 1, 42)
    reader = FrameReader()
    got = []
    for i in range(len(data)):
        got += reader.feed(data[i : i + 1])
    assert got == [["1", "a", "2.5", "1"], ["9", "1", "42"]]


def test_api_prefix_is_consumed_before_framing() -> None:
    reader = FrameReader()
    reader.feed_raw(b"AP")
    assert reader.take_prefix(b"API\x00") is None
    reader.feed_raw(b"I\x00")
    assert reader.take_prefix(b"API\x00") is True
    assert reader.feed(encode("v100..200")) == [["v100..200"]]
