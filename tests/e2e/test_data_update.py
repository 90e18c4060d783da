"""`ibdesk data update` against `ibdesk sim`: only missing regular-hours bars are fetched."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _compute
import pyarrow.parquet as pq

from ibdesk.store.inventory import Gap
from ibdesk.update import gap_request
from tests.clirunner import invoke

pc: Any = _compute  # pyarrow.compute's functions are generated at import time

DAY = "2025-07-30"


def _day_file(data_root: Path, symbol: str) -> Path:
    return data_root / "bars" / symbol / "1_min" / f"{DAY}.parquet"


def test_update_fills_a_hole_without_refetching_or_duplicating(sim: Any, data_root: Path) -> None:
    port = str(sim.port)
    assert invoke(["run", "--port", port, "--symbols", "AAPL", "--rth-only"]).exit_code == 0
    path = _day_file(data_root, "AAPL")
    full = pq.read_table(path)
    assert full.num_rows == 390
    keep = np.ones(full.num_rows, dtype=bool)
    keep[100:160] = False
    holed = full.filter(pa.array(keep))
    pq.write_table(holed.replace_schema_metadata(full.schema.metadata), path)
    assert pq.read_table(path).num_rows == 330

    result = invoke(["data", "update", "--port", port, "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)["symbols"]["AAPL"]
    assert report["gaps"] == 1
    assert report["requests"] == 1
    assert report["bars_added"] == 60
    repaired = pq.read_table(path)
    assert repaired.num_rows == 390
    assert pc.count_distinct(repaired.column("ts")).as_py() == 390

    again = json.loads(invoke(["data", "update", "--port", port, "--json"]).stdout)["symbols"][
        "AAPL"
    ]
    assert again["gaps"] == 0
    assert again["requests"] == 0


def test_gap_request_covers_the_gap_in_seconds() -> None:
    gap = Gap(date(2025, 7, 30), 1_753_882_200_000_000_000, 1_753_885_800_000_000_000, 60)
    end, duration = gap_request(gap)
    assert duration == "3600 S"
    assert int(end.timestamp() * 1e9) == gap.end_ns
