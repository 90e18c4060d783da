"""An offset-based socket reader for ib_async's `Client` (its internals via `ibdesk.ib.compat`).

ib_async's `Client._onSocketHasData` slices `self._data = self._data[msgEnd:]` after every
message, copying the whole rest of the buffer each time: quadratic in the size of a socket
read. At tens of thousands of depth messages a second a consumer that falls a little behind
gets larger reads, which cost more per message, so it falls further behind. Once the API is
ready this reader decodes the same messages in the same order, but walks the buffer with an
offset and keeps only the unparsed tail; the handshake (server version, next id, accounts)
stays with ib_async's own reader.
"""

from __future__ import annotations

import logging
import struct

from ib_async.client import Client

from ibdesk.ib import compat

_unpack_from = struct.unpack_from


def install_fast_reader(client: Client) -> None:
    """Route the client's socket data through `read_socket_data` instead of its own method."""
    own = compat.own_socket_reader(client)

    def read(data: bytes) -> None:
        if client.isReady():
            read_socket_data(client, data)
        else:
            own(data)

    compat.replace_socket_reader(client, read)


def read_socket_data(client: Client, data: bytes) -> None:
    """What `Client._onSocketHasData` does once the API is ready, with an offset instead of
    per-message slicing: every complete message to the decoder, the tail kept for the next read.

    A reset while decoding (the connection dropped) voids the rest of the read, as there.
    """
    arrived, processed = compat.tcp_data_hooks(client)
    if arrived:
        arrived()
    logger = compat.client_logger(client)
    debug = logger.isEnabledFor(logging.DEBUG)
    pending = compat.unparsed_bytes(client)
    buffer = pending + data if pending else data
    compat.count_bytes_received(client, len(data))
    interpret = client.decoder.interpret
    size = len(buffer)
    offset = 0
    messages = 0
    was_reset = False
    while size - offset > 4:
        msg_end = offset + 4 + _unpack_from(">I", buffer, offset)[0]
        if msg_end > size:
            break
        fields = buffer[offset + 4 : msg_end].decode(errors="backslashreplace").split("\0")
        offset = msg_end
        fields.pop()  # the last field ends with \0 too
        messages += 1
        if debug:
            logger.debug("<<< %s", ",".join(fields))
        interpret(fields)
        if not client.isReady():  # Client.reset() while decoding: the connection is gone
            was_reset = True
            break
    if not was_reset:
        compat.set_unparsed_bytes(client, buffer[offset:])
        compat.count_messages_received(client, messages)
    if processed:
        processed()
