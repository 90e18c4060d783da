"""Benchmark: `ibdesk analyze-depth`'s analysis vs a straightforward pandas notebook version.

Run: .venv/bin/python bench/analysis_depth.py [--rows 470000] [--levels 20] [--days 5] [--reps 3]

Generates synthetic trading days (50 ms x 20-level snapshots, ~470k rows per day, plus
trades) as ibkr captures in a temp folder, then times, side by side in this one run:
- candidate: `ibdesk.depth.report.analyze_day` (chunked read, polars/numpy, JSON report dict);
- baseline: the same metrics as a user would write them in a pandas notebook (read the
  whole file, vectorised pandas/numpy, merge_asof, groupby/resample).
Both are checked to agree on key numbers first. Wall time: median/min/max over `--reps`
runs for one day and for `--days` days (baseline and candidate take turns, so a change in
the load of a shared machine hits both alike), and CPU time of all threads. Peak memory:
each implementation runs once in a fresh subprocess and reports its peak RSS growth,
compared with the size of the loaded columns (Arrow nbytes of ts + every level column +
the trade columns) and with the columns ibdesk actually decodes (ts, every size, the
prices of the 5 OFI levels, trades). The files are written like the store writes them
(`write_table_atomic`: zstd, 65,536-row row groups).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ibdesk.depth import synthetic
from ibdesk.depth.analysis import snapshot_columns
from ibdesk.depth.report import analyze_day
from ibdesk.store.parquet import write_table_atomic
from ibdesk.store.schemas import level_columns

SYMBOL = "BENCH"
FIRST_DAY = date(2024, 1, 2)
TICK = 0.01
WINDOW = "1s"
HORIZONS_S = (5, 60)


# --------------------------------------------------------------------------- data


def make_days(root: Path, days: int, rows: int, levels: int, trades: int) -> list[date]:
    out: list[date] = []
    for i in range(days):
        day = FIRST_DAY + timedelta(days=i)
        spec = synthetic.SyntheticDay(
            symbol=SYMBOL,
            day=day,
            rows=rows,
            levels=levels,
            interval_ms=50,
            trades=trades,
            seed=i,
            one_sided_share=0.005,
        )
        book = synthetic.snapshots_table(spec, "ibkr")
        folder = root / SYMBOL
        write_table_atomic(book, folder / f"{day.isoformat()}_snapshots_143000.parquet")
        tape = synthetic.trades_table(spec, book, "ibkr")
        write_table_atomic(tape, folder / f"{day.isoformat()}_trades_143000.parquet")
        out.append(day)
    return out


def loaded_bytes(root: Path, day: date, columns: list[str]) -> int:
    """Arrow size of these snapshot columns plus the trade columns of `day`."""
    folder = root / SYMBOL
    snaps = pq.read_table(folder / f"{day.isoformat()}_snapshots_143000.parquet", columns=columns)
    tape = pq.read_table(
        folder / f"{day.isoformat()}_trades_143000.parquet", columns=["ts", "price", "size", "side"]
    )
    return snaps.nbytes + tape.nbytes


# --------------------------------------------------------------------------- candidate


def candidate(root: Path, day: date) -> dict[str, Any]:
    return analyze_day(root, SYMBOL, day).report


# --------------------------------------------------------------------------- baseline


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return float(coef[1]), float(1 - resid @ resid / ((y - y.mean()) ** 2).sum())


def baseline(root: Path, day: date) -> dict[str, Any]:
    """The metrics the way a notebook would compute them with pandas."""
    folder = root / SYMBOL
    df = pd.read_parquet(folder / f"{day.isoformat()}_snapshots_143000.parquet")
    tr = pd.read_parquet(folder / f"{day.isoformat()}_trades_143000.parquet")
    levels = len([c for c in df.columns if c.startswith("bid_px_")])
    bid_sz = [f"bid_sz_{k:02d}" for k in range(levels)]
    ask_sz = [f"ask_sz_{k:02d}" for k in range(levels)]

    both = df["bid_px_00"].notna() & df["ask_px_00"].notna()
    df["mid"] = ((df["bid_px_00"] + df["ask_px_00"]) / 2).where(both)
    df["spread"] = (df["ask_px_00"] - df["bid_px_00"]).where(both)
    s = df["spread"].dropna()
    bps = (df["spread"] / df["mid"] * 1e4).dropna()
    dt = df["ts"].diff().shift(-1).dt.total_seconds()
    dt = dt.fillna(dt.median()).clip(upper=60)
    tw = (df["spread"] * dt)[both].sum() / dt[both].sum()
    spread = {
        "mean": s.mean(),
        "median": s.median(),
        "p95": s.quantile(0.95),
        "mean_bps": bps.mean(),
        "median_bps": bps.median(),
        "p95_bps": bps.quantile(0.95),
        "time_weighted_mean": tw,
    }

    depth = {}
    for label, n in (("1", 1), ("5", min(5, levels)), ("all", levels)):
        b = df[bid_sz[:n]].fillna(0).sum(axis=1)
        a = df[ask_sz[:n]].fillna(0).sum(axis=1)
        depth[f"bid_size_{label}"] = b.mean()
        depth[f"ask_size_{label}"] = a.mean()
        depth[f"imbalance_{label}"] = ((b - a) / (b + a)).replace([np.inf, -np.inf], np.nan).mean()

    ofi_cols = []
    for k in range(min(5, levels)):
        pb, qb = df[f"bid_px_{k:02d}"], df[f"bid_sz_{k:02d}"].fillna(0)
        pa, qa = df[f"ask_px_{k:02d}"], df[f"ask_sz_{k:02d}"].fillna(0)
        e = (
            np.where(pb >= pb.shift(), qb, 0)
            - np.where(pb <= pb.shift(), qb.shift(), 0)
            - np.where(pa <= pa.shift(), qa, 0)
            + np.where(pa >= pa.shift(), qa.shift(), 0)
        )
        ok = both & both.shift(fill_value=False) & pb.notna() & pa.notna()
        ok &= pb.shift().notna() & pa.shift().notna()
        df[f"ofi_{k}"] = pd.Series(e, index=df.index).where(ok)
        ofi_cols.append(f"ofi_{k}")

    micro_w = df["bid_sz_00"] / (df["bid_sz_00"] + df["ask_sz_00"])
    df["micro"] = (micro_w * df["ask_px_00"] + (1 - micro_w) * df["bid_px_00"] - df["mid"]).where(
        both
    )

    g = df.set_index("ts").resample(WINDOW)
    win = g[ofi_cols].sum()
    win["mid"] = g["mid"].last()
    win["micro"] = g["micro"].last()
    win = win.dropna(subset=["mid"])
    cum = df.set_index("ts")[ofi_cols].fillna(0).cumsum().resample(WINDOW).last().loc[win.index]
    d_ofi = cum.diff().iloc[1:]
    d_mid = win["mid"].diff().iloc[1:]
    beta, r2 = _ols(d_ofi["ofi_0"].to_numpy(), d_mid.to_numpy())
    multi_r2 = _ols(d_ofi.to_numpy(), d_mid.to_numpy())[1]
    corr = np.corrcoef(win["micro"].iloc[:-1].to_numpy(), d_mid.to_numpy())[0, 1]

    minute = df.set_index("ts").resample("1min")
    dyn = pd.DataFrame(
        {
            "spread": minute["spread"].mean(),
            "mid": minute["mid"].last(),
            "ofi": minute["ofi_0"].sum(),
            "bid_depth": minute[bid_sz].sum().fillna(0).sum(axis=1) / minute.size(),
        }
    )
    heat = minute[bid_sz + ask_sz].mean()

    tr = tr.sort_values("ts")
    mids = df.loc[both, ["ts", "mid"]]
    tr = pd.merge_asof(tr, mids, on="ts", allow_exact_matches=False)
    for h in HORIZONS_S:
        later = tr[["ts"]].assign(ts=tr["ts"] + pd.Timedelta(seconds=h))
        tr[f"mid_{h}"] = pd.merge_asof(later, mids, on="ts")["mid"].to_numpy()
        tr.loc[later["ts"] > df["ts"].iloc[-1], f"mid_{h}"] = np.nan
    tick = pd.Series(np.sign(tr["price"].diff()), index=tr.index)
    tick = tick.replace(0, np.nan).ffill().fillna(0)
    quote = pd.Series(np.sign(tr["price"] - tr["mid"]), index=tr.index).fillna(0)
    lee_ready = np.where(quote != 0, quote, tick)
    d = np.where(tr["side"] == "B", 1, np.where(tr["side"] == "S", -1, lee_ready))
    tr["d"] = d
    ok = (tr["d"] != 0) & tr["mid"].notna()
    eff = 2 * tr["d"] * (tr["price"] - tr["mid"]) / tr["mid"] * 1e4
    impact = {"effective_spread_bps": np.average(eff[ok], weights=tr["size"][ok])}
    for h in HORIZONS_S:
        real = 2 * tr["d"] * (tr["price"] - tr[f"mid_{h}"]) / tr["mid"] * 1e4
        okh = ok & tr[f"mid_{h}"].notna()
        impact[f"realized_spread_bps_{h}s"] = np.average(real[okh], weights=tr["size"][okh])
        impact[f"impact_bps_{h}s"] = np.average((eff - real)[okh], weights=tr["size"][okh])
    tr["sv"] = tr["d"] * tr["size"]
    sv_cum = tr.set_index("ts")["sv"].cumsum().resample(WINDOW).last().ffill()
    sv_at = sv_cum.reindex(win.index).ffill().fillna(0)
    kyle, kyle_r2 = _ols(sv_at.diff().iloc[1:].to_numpy(), d_mid.to_numpy())

    tr["tick"] = (tr["price"] / TICK).round()
    profile = pd.Series(tr.groupby("tick")["size"].sum()).sort_index()
    vols = profile.to_numpy()
    poc = int(np.argmax(vols))
    lo = hi = poc
    inside, target = vols[poc], 0.7 * vols.sum()
    while inside < target and (lo > 0 or hi < len(vols) - 1):
        above = vols[hi + 1 : hi + 3].sum() if hi < len(vols) - 1 else -1
        below = vols[max(lo - 2, 0) : lo].sum() if lo > 0 else -1
        if below >= above:
            inside += below
            lo = max(lo - 2, 0)
        else:
            inside += above
            hi = min(hi + 2, len(vols) - 1)
    prices = profile.index.to_numpy() * TICK
    return {
        "rows": len(df),
        "spread": spread,
        "depth": depth,
        "ofi": {"total": df["ofi_0"].sum(), "beta": beta, "r2": r2},
        "ofi_multilevel": {"r2": multi_r2},
        "microprice": {"mean_distance": df["micro"].mean(), "corr_next_mid_change": corr},
        "volume_profile": {"vpoc": prices[poc], "val": prices[lo], "vah": prices[hi]},
        "price_impact": {"kyle_lambda": kyle, "kyle_r2": kyle_r2, **impact},
        "dynamics": {"rows": len(dyn), "heat": heat.shape},
    }


# --------------------------------------------------------------------------- harness

CHECKS = (
    ("rows",),
    ("spread", "mean"),
    ("spread", "p95"),
    ("spread", "time_weighted_mean"),
    ("depth", "bid_size_all"),
    ("depth", "imbalance_5"),
    ("ofi", "total"),
    ("ofi", "beta"),
    ("ofi_multilevel", "r2"),
    ("microprice", "corr_next_mid_change"),
    ("volume_profile", "vpoc"),
    ("volume_profile", "vah"),
    ("price_impact", "kyle_lambda"),
    ("price_impact", "effective_spread_bps"),
    ("price_impact", "realized_spread_bps_60s"),
)


def _get(report: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = report
    for key in path:
        value = value[key]
    return float(value)


def check_agreement(root: Path, day: date) -> None:
    mine, theirs = candidate(root, day), baseline(root, day)
    for path in CHECKS:
        a, b = _get(mine, path), _get(theirs, path)
        if not np.isclose(a, b, rtol=1e-6, atol=1e-9):
            raise SystemExit(f"MISMATCH {'.'.join(path)}: candidate {a!r} vs baseline {b!r}")
    print(f"agreement: candidate and baseline match on {len(CHECKS)} key metrics")


Runs = tuple[list[float], list[float], list[float]]  # wall, CPU (user + sys), sys seconds


def time_runs(fns: list[Callable[[], object]], reps: int) -> list[Runs]:
    """Wall, CPU and system seconds (all threads of this process) of `reps` runs of each.

    The functions take turns (a, b, a, b, ...) so a change in the load of a shared machine
    hits both sides alike. System time is mostly page faults of fresh memory, which cost
    far more on a loaded machine: it is shown so the spread of the figures can be read.
    """
    out: list[Runs] = [([], [], []) for _ in fns]
    for _ in range(reps):
        for fn, (walls, cpus, syss) in zip(fns, out, strict=True):
            before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            fn()
            walls.append(time.perf_counter() - wall)
            after = resource.getrusage(resource.RUSAGE_SELF)
            sys_s = after.ru_stime - before.ru_stime
            cpus.append(after.ru_utime - before.ru_utime + sys_s)
            syss.append(sys_s)
    return out


def child(impl: str, root: Path, day: date) -> None:
    """Run one implementation once in this fresh process; print its peak RSS growth."""
    rss_before = _status_bytes("VmRSS")
    fn = candidate if impl == "candidate" else baseline
    fn(root, day)
    print(json.dumps({"peak_growth": _status_bytes("VmHWM") - rss_before}))


def _status_bytes(key: str) -> int:
    """A /proc/self/status memory line in bytes (VmHWM is the peak RSS of this process;
    unlike ru_maxrss it is not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_growth(impl: str, root: Path, day: date) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, "--root", str(root), "--day", day.isoformat()],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_growth"])


def row(name: str, runs: Runs, base: Runs | None) -> str:
    walls, cpus, syss = runs
    med, cpu = statistics.median(walls), statistics.median(cpus)
    ratio = f"{statistics.median(base[0]) / med:6.1f}x" if base else "     - "
    cpu_ratio = f"{statistics.median(base[1]) / cpu:6.1f}x" if base else "     - "
    spread = f"{med:7.2f} {min(walls):7.2f} {max(walls):7.2f}"
    return f"{name:<24} {spread}  {ratio}   {cpu:7.2f}  {cpu_ratio}  {statistics.median(syss):7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=470_000)
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--trades", type=int, default=60_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", choices=["candidate", "baseline"])
    parser.add_argument("--root", type=Path)
    parser.add_argument("--day", type=date.fromisoformat)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root, args.day)
        return

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory(prefix="ibdesk-bench-") as tmp:
        root = Path(tmp)
        days = make_days(root, args.days, args.rows, args.levels, args.trades)
        print(
            f"data: {args.days} day(s) x {args.rows} snapshots x {args.levels} levels "
            f"(50 ms), {args.trades} trades/day"
        )
        check_agreement(root, days[0])

        print(
            f"\n{'':<24} {'wall s':>7} {'':>7} {'':>7}  {'wall':>7}   {'cpu s':>7}  {'cpu':>7}"
            f"  {'sys s':>7}"
        )
        heads = ("median", "min", "max")
        print(
            f"{'':<24} {' '.join(f'{h:>7}' for h in heads)}  {'ratio':>7}   {'median':>7}  ratio"
            f"   {'median':>7}"
        )
        one_base, one_cand = time_runs(
            [lambda: baseline(root, days[0]), lambda: candidate(root, days[0])], args.reps
        )
        print(row("1 day   pandas baseline", one_base, None))
        print(row("1 day   ibdesk", one_cand, one_base))
        reps_multi = max(1, args.reps - 1)
        multi_base, multi_cand = time_runs(
            [
                lambda: [baseline(root, d) for d in days],
                lambda: [candidate(root, d) for d in days],
            ],
            reps_multi,
        )
        print(row(f"{len(days)} days  pandas baseline", multi_base, None))
        print(row(f"{len(days)} days  ibdesk", multi_cand, multi_base))

        loaded = loaded_bytes(root, days[0], ["ts", *level_columns(args.levels)])
        used = snapshot_columns(args.levels)
        decoded = loaded_bytes(root, days[0], used)
        print(
            f"\npeak memory (1 day; loaded columns = ts + every level column + trades = "
            f"{loaded / 2**20:.0f} MiB; ibdesk decodes only the {len(used)} snapshot "
            f"columns it uses + trades = {decoded / 2**20:.0f} MiB)"
        )
        print(f"{'':<24} {'peak MiB':>8} {'x loaded':>9} {'x decoded':>10}")
        for impl, label in (("baseline", "pandas baseline"), ("candidate", "ibdesk")):
            growth = peak_growth(impl, root, days[0])
            print(
                f"{label:<24} {growth / 2**20:8.0f} {growth / loaded:9.2f} {growth / decoded:10.2f}"
            )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\nreproduce: .venv/bin/python bench/analysis_depth.py")


if __name__ == "__main__":
    main()
