"""What the sim benchmarks share: the real `ibdesk sim` CLI in a child process, and its CPU.

(`ib_download.SimChild` is the other way benches run a sim: an in-process `SimServer` in a
child interpreter that takes commands — pause, rate, restart, counts — over stdin.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

CLOCK = "2025-07-30T16:30:00-04:00"  # after a full session, as in the tests
SEED = "7"


@contextmanager
def sim_cli(*options: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`python -m ibdesk sim --port 0 --clock CLOCK *options` running; yields (process, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ibdesk", "sim", "--port", "0", "--clock", CLOCK, *options],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "IBDESK_SIM_SEED": SEED},
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
