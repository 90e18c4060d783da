"""Indicators against a plain-Python reference written straight from the formulas.

Random multi-day, multi-symbol bars (uneven spacing, zero volumes, pre-market bars): the
vectorized polars code and these loops must agree everywhere.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdesk.signals.indicators import IndicatorConfig, compute_indicators
from tests.signals.conftest import make_bars

NY = ZoneInfo("America/New_York")


def random_bars(seed: int, days: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    tables = []
    for symbol in ("AAA", "BBB"):
        rows = []
        price = 20.0
        for day in range(days):
            start = datetime(2024, 3, 7 + day, 8, 0, tzinfo=NY)  # spans the DST change
            minute = int(rng.integers(0, 120))
            while minute < 8 * 60:
                o = price
                c = max(1.0, price + float(rng.normal(0, 0.4)))
                h = max(o, c) + float(rng.uniform(0, 0.3))
                low = min(o, c) - float(rng.uniform(0, 0.3))
                volume = 0.0 if rng.random() < 0.3 else float(rng.integers(1, 5000))
                stamp = (start + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M")
                rows.append((stamp, o, h, low, c, volume))
                price = c
                minute += 1 + int(rng.integers(0, 4))
        tables.append(make_bars(rows, symbol))
    return pa.concat_tables(tables)


def as_of(day: list[tuple[int, float]], tod: int) -> float:
    """Cumulative volume of `day` at its last bar starting at or before `tod` (0 if none)."""
    i = bisect.bisect_right([t for t, _ in day], tod)
    return day[i - 1][1] if i else 0.0


def reference(rows: list[dict], cfg: IndicatorConfig) -> dict[str, list[float | None]]:
    """Straight loops over one symbol's bars, in time order."""
    out: dict[str, list[float | None]] = {k: [] for k in ("vwap", "ema_f", "ema_s", "atr", "rvol")}
    a_f, a_s = 2 / (cfg.ema_fast + 1), 2 / (cfg.ema_slow + 1)
    ema_f = ema_s = atr = None
    trs: list[float] = []
    prev_close = None
    day = None
    cum_pv = cum_v = 0.0
    history: list[list[tuple[int, float]]] = []  # per previous day: (tod, cum volume)
    today: list[tuple[int, float]] = []
    for i, r in enumerate(rows):
        local = r["ts"].astimezone(NY)
        tod = local.hour * 3600 + local.minute * 60
        if local.date() != day:
            if day is not None:
                history.append(today)
            day, cum_pv, cum_v, today = local.date(), 0.0, 0.0, []
        typical = (r["high"] + r["low"] + r["close"]) / 3
        cum_pv += typical * r["volume"]
        cum_v += r["volume"]
        out["vwap"].append(cum_pv / cum_v if cum_v > 0 else None)
        ema_f = r["close"] if ema_f is None else a_f * r["close"] + (1 - a_f) * ema_f
        ema_s = r["close"] if ema_s is None else a_s * r["close"] + (1 - a_s) * ema_s
        out["ema_f"].append(ema_f)
        out["ema_s"].append(ema_s)
        tr = r["high"] - r["low"]
        if prev_close is not None:
            tr = max(tr, abs(r["high"] - prev_close), abs(r["low"] - prev_close))
        trs.append(tr)
        n = cfg.atr_period
        if i == n - 1:
            atr = sum(trs) / n
        elif i >= n:
            assert atr is not None
            atr = (atr * (n - 1) + tr) / n
        out["atr"].append(atr)
        prev_close = r["close"]
        today.append((tod, cum_v))
        previous = history[-cfg.rvol_lookback_days :]
        if previous:
            avg = sum(as_of(d, tod) for d in previous)
            avg /= len(previous)
            out["rvol"].append(cum_v / avg if avg > 0 else None)
        else:
            out["rvol"].append(None)
    return out


def close_enough(got: list[float | None], want: list[float | None]) -> bool:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if (g is None) != (w is None):
            return False
        if g is not None and w is not None and g != pytest.approx(w, rel=1e-9, abs=1e-9):
            return False
    return True


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 100_000), st.integers(1, 4), st.integers(1, 3))
def test_indicators_match_the_reference_loops(seed: int, days: int, lookback: int) -> None:
    cfg = IndicatorConfig(ema_fast=3, ema_slow=7, atr_period=5, rvol_lookback_days=lookback)
    frame = compute_indicators(random_bars(seed, days), cfg)
    for symbol in ("AAA", "BBB"):
        part = frame.filter(frame.get_column("symbol") == symbol)
        want = reference(part.to_dicts(), cfg)
        assert close_enough(part.get_column("vwap").to_list(), want["vwap"])
        assert close_enough(part.get_column("ema_3").to_list(), want["ema_f"])
        assert close_enough(part.get_column("ema_7").to_list(), want["ema_s"])
        assert close_enough(part.get_column("atr_5").to_list(), want["atr"])
        assert close_enough(part.get_column("rvol").to_list(), want["rvol"])
