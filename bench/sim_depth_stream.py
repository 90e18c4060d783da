"""Benchmark: the sim's depth-update stream to one raw socket reader vs a raw loopback copy.

Starts `ibdesk sim` in its own process with a very high book event rate, subscribes one
raw-socket reader to 20 rows of TSLA depth and counts messages per second. The baseline
replays the very same bytes through a plain loopback socket (sender thread -> reader) with
the same counting code, so the ratio says how close the sim gets to the socket's limit.

Reproduce: .venv/bin/python bench/sim_depth_stream.py [--seconds 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import threading
import time

from simhelpers import cpu_s, sim_cli

TSLA_CON_ID = 76792991


def frame(*fields: object) -> bytes:
    body = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def count_frames(buffer: bytearray) -> int:
    """Count complete frames at the front of `buffer` and remove them."""
    offset = 0
    count = 0
    size = len(buffer)
    unpack = struct.unpack_from
    while size - offset >= 4:
        end = offset + 4 + unpack(">I", buffer, offset)[0]
        if end > size:
            break
        offset = end
        count += 1
    del buffer[:offset]
    return count


def read_for(
    sock: socket.socket, seconds: float, keep: bytearray | None, buffer: bytearray
) -> tuple[int, float]:
    """Read and count messages for `seconds`; returns (messages, elapsed). `buffer` holds
    a partial frame between calls."""
    messages = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        if keep is not None:
            keep += chunk
        buffer += chunk
        messages += count_frames(buffer)
    return messages, time.perf_counter() - start


def subscribe(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    offer = b"v100..178"
    sock.sendall(b"API\x00" + struct.pack(">I", len(offer)) + offer)
    sock.sendall(frame(71, 2, 1, ""))
    sock.sendall(
        frame(
            10,
            5,
            1,
            TSLA_CON_ID,
            "TSLA",
            "STK",
            "",
            0.0,
            "",
            "",
            "SMART",
            "",
            "USD",
            "TSLA",
            "NMS",
            20,
            0,
            "",
        )
    )
    return sock


def sim_run(port: int, pid: int, seconds: float, keep: bytearray | None) -> tuple[float, float]:
    """(messages/s at the reader, messages per CPU-second of the sim process)."""
    sock = subscribe(port)
    buffer = bytearray()
    with sock:
        read_for(sock, 0.5, keep, buffer)  # warm up: handshake, snapshot, first updates
        cpu0 = cpu_s(pid)
        messages, elapsed = read_for(sock, seconds, keep, buffer)
        cpu = cpu_s(pid) - cpu0
    return messages / elapsed, messages / max(cpu, 1e-9)


def raw_run(data: bytes, seconds: float) -> float:
    """Replay `data` (repeatedly) over a loopback socket; count at the reader."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def send() -> None:
        conn, _ = listener.accept()
        with conn:
            view = memoryview(data)
            try:
                while not stop.is_set():
                    conn.sendall(view)
            except OSError:
                return

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        buffer = bytearray()
        read_for(sock, 0.3, None, buffer)
        messages, elapsed = read_for(sock, seconds, None, buffer)
        stop.set()
    listener.close()
    sender.join(2)
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with sim_cli("--rate", "5000000", "--symbols", "TSLA") as (proc, port):
        captured = bytearray()
        runs = [
            sim_run(port, proc.pid, args.seconds, captured if i == 0 else None)
            for i in range(args.repeats)
        ]
        sim_rates = [rate for rate, _ in runs]
        per_cpu = [n for _, n in runs]
        sample = bytes(captured)
        cut = 0
        while cut + 4 <= len(sample):  # whole frames only, so the replay stays framed
            nxt = cut + 4 + struct.unpack_from(">I", sample, cut)[0]
            if nxt > len(sample):
                break
            cut = nxt
        raw_rates = [raw_run(sample[:cut], args.seconds) for _ in range(args.repeats)]
    print(f"depth stream, 1 reader, TSLA x 20 rows, {args.repeats} x {args.seconds:.0f} s")
    print(f"{'run':<28}{'median msg/s':>14}{'min':>12}{'max':>12}")
    for name, rates in (("ibdesk sim (depth stream)", sim_rates), ("raw loopback copy", raw_rates)):
        print(
            f"{name:<28}{statistics.median(rates):>14,.0f}{min(rates):>12,.0f}{max(rates):>12,.0f}"
        )
    ratio = statistics.median(sim_rates) / statistics.median(raw_rates)
    print(f"ratio sim/raw (median): {ratio:.3f}")
    print(
        f"sim messages per CPU-second of the sim process: median {statistics.median(per_cpu):,.0f}"
        f" (min {min(per_cpu):,.0f}, max {max(per_cpu):,.0f}); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("target: sim >= 200,000 msg/s")


if __name__ == "__main__":
    main()
