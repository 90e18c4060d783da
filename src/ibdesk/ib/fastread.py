"""An offset-based socket reader for ib_async 2.1.0's `Client` (the version is pinned).

ib_async's `Client._onSocketHasData` slices `self._data = self._data[msgEnd:]` after every
message, copying the whole rest of the buffer each time: quadratic in the size of a socket
read. At tens of thousands of depth messages a second a consumer that falls a little behind
gets larger reads, which cost more per message, so it falls further behind. This reader does
exactly what that method does, message by message, but walks the buffer with an offset and
keeps only the unparsed tail.
"""

from __future__ import annotations

import functools
import logging
import struct
from typing import Any

from ib_async.client import Client

_unpack_from = struct.unpack_from


def install_fast_reader(client: Client) -> None:
    """Route the client's socket data through `read_socket_data` instead of its own method."""
    client.conn.hasData -= client._onSocketHasData
    client.conn.hasData += functools.partial(read_socket_data, client)


def read_socket_data(client: Any, data: bytes) -> None:
    """`Client._onSocketHasData` of ib_async 2.1.0 with an offset instead of per-message slicing."""
    debug = client._logger.isEnabledFor(logging.DEBUG)
    if client._tcpDataArrived:
        client._tcpDataArrived()
    buffer = client._data + data if client._data else data
    client._numBytesRecv += len(data)
    parsing = bytearray(b"parsing")  # identity marker: a reset() while decoding replaces it
    client._data = parsing
    size = len(buffer)
    offset = 0
    was_reset = False
    while size - offset > 4:
        msg_end = offset + 4 + _unpack_from(">I", buffer, offset)[0]
        if msg_end > size:
            break
        fields = buffer[offset + 4 : msg_end].decode(errors="backslashreplace").split("\0")
        offset = msg_end
        fields.pop()  # the last field ends with \0 too
        client._numMsgRecv += 1
        if debug:
            client._logger.debug("<<< %s", ",".join(fields))
        if not client._serverVersion and len(fields) == 2:
            version, _conn_time = fields
            client._serverVersion = int(version)
            if client._serverVersion < client.MinClientVersion:
                client._onSocketDisconnected("TWS/gateway version must be >= 972")
                return
            client.decoder.serverVersion = client._serverVersion
            client.connState = Client.CONNECTED
            client.startApi()
            client.wrapper.connectAck()
            client._logger.info(f"Logged on to server version {client._serverVersion}")
        else:
            if not client._apiReady:
                msg_id = int(fields[0])
                if msg_id == 9:
                    _, _, valid_id = fields
                    client.updateReqId(int(valid_id))
                    client._hasReqId = True
                elif msg_id == 15:
                    _, _, accounts = fields
                    client._accounts = [a for a in accounts.split(",") if a]
                if client._hasReqId and client._accounts:
                    client._apiReady = True
                    client.apiStart.emit()
            client.decoder.interpret(fields)
        if client._data is not parsing:  # the connection was reset while decoding
            was_reset = True
            break
    if not was_reset:
        client._data = buffer[offset:]
    if client._tcpDataProcessed:
        client._tcpDataProcessed()
