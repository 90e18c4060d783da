"""What the sim benchmarks share: the two ways they start a sim in a child process (own
interpreter, own GIL), its CPU, and the result tables they print.

- `sim_cli`: the real `ibdesk sim` command, as a user runs it.
- `SimChild`: an in-process `SimServer` in a child interpreter, configured with any
  `SimConfig` field and driven over stdin (pause, rate, restart, pacing rules, counts).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

CLOCK = "2025-07-30T16:30:00-04:00"  # after a full session, as in the tests
SEED = 7


@contextmanager
def sim_cli(*options: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`python -m ibdesk sim --port 0 --clock CLOCK *options` running; yields (process, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ibdesk", "sim", "--port", "0", "--clock", CLOCK, *options],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "IBDESK_SIM_SEED": str(SEED)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # "... listening on HOST:PORT"
        yield proc, int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The sim in a child process, configured with any SimConfig field (the CLI has no option for
# pacing rules) and driven over stdin: `restart D`, `rules SCALE SMALL_BAR_MAX_S` (for
# connections made afterwards), `rate X`, `pause`, `resume`, `counts`, `quit`.
# With `count_depth` it counts the depth messages it writes to each live connection.
SIM_CHILD = r"""
import asyncio, collections, dataclasses, json, sys, time
from ibdesk.ib.pacing import IB_PACING_RULES
from ibdesk.sim import connection as sim_connection
from ibdesk.sim import server as sim_server

spec = json.loads(sys.argv[1])
sent = collections.Counter()
if spec.get("count_depth"):
    flush = sim_connection.Connection.flush
    def counting_flush(self):
        # Walk the frames about to be written; count depth messages (ids 12 and 13) per
        # connection object (client ids repeat across connections).
        if self.out:
            data = "".join(self.out)
            i, n, size = 0, 0, len(data)
            while i + 4 <= size:
                if data.startswith(("12\0", "13\0"), i + 4):
                    n += 1
                i += 4 + ((ord(data[i + 2]) << 8) | ord(data[i + 3])) + (ord(data[i + 1]) << 16)
            sent[self] += n
            self.out[:] = [data]
        flush(self)
    sim_connection.Connection.flush = counting_flush
config = sim_server.SimConfig(
    port=0, clock=spec["clock"], seed=spec["seed"],
    events_per_s=spec["events_per_s"], depth_cap=spec["depth_cap"],
    symbols=tuple(spec["symbols"]),
)

def reply(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()

async def main():
    server = sim_server.SimServer(config)
    await server.start()
    reply(f"port {server.port}")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd, *args = line.decode().split()
        if cmd == "restart":
            closed = time.monotonic()
            await server.restart(float(args[0]))
            reply(f"{closed} {time.monotonic()}")
        elif cmd == "rules":
            new = IB_PACING_RULES.scaled(float(args[0]))
            new = dataclasses.replace(new, small_bar_max_s=float(args[1]))
            server.config = dataclasses.replace(server.config, pacing=new)
            reply("ok")
        elif cmd == "rate":
            server.config = dataclasses.replace(server.config, events_per_s=float(args[0]))
            server.source.events_per_s = float(args[0])  # the synthetic market's rate
            reply("ok")
        elif cmd in ("pause", "resume"):
            server.paused = cmd == "pause"
            server.flush_all()
            reply(f"{time.monotonic()}")
        elif cmd == "counts":
            reply(json.dumps({c.client_id: sent[c] for c in server.connections}))
        elif cmd == "quit":
            break
    await server.stop()

asyncio.run(main())
"""


class SimChild:
    """`ibdesk.sim` in a child process (own interpreter, own GIL), controlled over stdin."""

    def __init__(
        self,
        *,
        symbols: Sequence[str] = (),
        events_per_s: float = 50.0,
        depth_cap: int = 3,
        count_depth: bool = False,
        clock: str = CLOCK,
    ) -> None:
        self.spec: dict[str, Any] = {
            "clock": clock,
            "seed": SEED,
            "symbols": list(symbols),
            "events_per_s": events_per_s,
            "depth_cap": depth_cap,
            "count_depth": count_depth,
        }
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> SimChild:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIM_CHILD, json.dumps(self.spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._read().split()[1])
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _read(self) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sim child exited")
        return line.strip()

    def ask(self, command: str) -> str:
        """Send one command and return its one-line answer (blocking)."""
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def depth_sent(self, client_id: int) -> int:
        """Depth messages written so far to the live connection of `client_id`."""
        return int(json.loads(self.ask("counts")).get(str(client_id), 0))

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError, RuntimeError):
            self.ask("quit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> SimChild:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def quiet_logs() -> None:
    """Keep ib_async's and ibdesk's expected warnings (gaps, 2104s) out of the table."""
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("ib_async", "ibdesk"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a small aligned table (first column left, the rest right)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(title)
    for row in [header, *rows]:
        cells = [
            str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
            for i, c in enumerate(row)
        ]
        print("  ".join(cells))


def med_min_max(values: Sequence[float], fmt: str = "{:.2f}") -> list[str]:
    return [fmt.format(statistics.median(values)), fmt.format(min(values)), fmt.format(max(values))]
