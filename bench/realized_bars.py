"""`forecast realized --bars` on 3 years of SPY 5-minute bars: wall time, and the daily rv5
next to the Oxford-Man realized library's .SPX rv5.

One command rewrites bench/realized_bars.md:

    .venv/bin/python bench/realized_bars.py [--runs 5]

1. Wall time: ``--runs`` fresh processes of
   `forecast realized --bars ../shared/data/intraday/spy_5min_2018_2020.parquet --format csv`
   (Python start-up and every import included, output captured), median, min
   and max, with the CPU time (user + system) and the load average before and
   after. A bare `python -c pass` is timed the same way for scale. Goal: under 5 s.
2. Check: the daily measures printed by that command, 2018-2019, full days only
   (`partial` false), next to the Oxford-Man library's .SPX (`realized_library.parquet`
   rv5; `realized_library_spx_full.csv.gz` bv and rsv, the library's downside
   semivariance): Pearson correlation of the levels and of the logs, and the
   median ratio bars / library, on the common days. Different instruments (the
   SPY ETF against the S&P 500 index) and different feeds and sampling (IB bars'
   closes against the library's own tick cleaning): a report, not an equality.
   The first-hour-missing days are shown apart, to size what a partial day lacks.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
BARS = DATA / "intraday" / "spy_5min_2018_2020.parquet"
LIBRARY = DATA / "realized_library.parquet"
LIBRARY_FULL = DATA / "realized_library_spx_full.csv.gz"
GOAL = 5.0


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one fresh process, and its stdout; a failure stops the run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def relative(path: Path) -> str:
    return os.path.relpath(path, ROOT)


def compare(ours: pd.Series, theirs: pd.Series) -> dict[str, float]:
    joined = pd.concat([ours, theirs], axis=1, join="inner").dropna()
    joined = joined[(joined.iloc[:, 0] > 0) & (joined.iloc[:, 1] > 0)]
    a, b = joined.iloc[:, 0], joined.iloc[:, 1]
    return {
        "days": len(joined),
        "corr": float(np.corrcoef(a, b)[0, 1]),
        "corr_log": float(np.corrcoef(np.log(a), np.log(b))[0, 1]),
        "median_ratio": float((a / b).median()),
        "p10": float((a / b).quantile(0.1)),
        "p90": float((a / b).quantile(0.9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not BARS.is_file():
        sys.exit(f"{BARS} not found")
    command = [
        sys.executable, "-m", "forecaster.cli", "realized", "--bars", relative(BARS),
        "--format", "csv",
    ]  # fmt: skip
    shown = f"forecast realized --bars {relative(BARS)} --format csv"
    load_before = load()
    bare = [timed([sys.executable, "-c", "pass"])[0] for _ in range(args.runs)]
    runs = [timed(command) for _ in range(args.runs)]
    load_after = load()
    walls = [wall for wall, _, _ in runs]
    cpus = [cpu for _, cpu, _ in runs]
    output = runs[-1][2]
    daily = pd.read_csv(io.StringIO(output), index_col="date", parse_dates=["date"])

    period = daily.loc["2018-01-01":"2019-12-31"]
    full = period[~period["partial"]]
    late = period[period["bars"] == 66]
    library = pd.read_parquet(LIBRARY)
    spx = library[library["symbol"] == ".SPX"].copy()
    spx.index = pd.to_datetime(spx["date"])
    record = pd.read_csv(LIBRARY_FULL, index_col="date", parse_dates=["date"])
    rows = [
        ("rv5", "rv5 (`realized_library.parquet`)", full["rv5"], spx["rv5"]),
        ("rv5", "rv5 (`realized_library_spx_full.csv.gz`)", full["rv5"], record["rv5"]),
        ("bv", "bv", full["bv"], record["bv"]),
        ("rsv-neg", "rsv (downside)", full["rsv-neg"], record["rsv"]),
        ("rv5, first hour missing (66 bars)", "rv5", late["rv5"], spx["rv5"]),
    ]
    now = datetime.now(timezone.utc)
    median = statistics.median(walls)
    lines = [
        "# `forecast realized --bars`: speed on 3 years of SPY 5-minute bars, and the check "
        "against the Oxford-Man library",
        "",
        f"Measured {now:%Y-%m-%d %H:%M} UTC on this machine ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.machine()}), by `bench/realized_bars.py` "
        f"(`.venv/bin/python bench/realized_bars.py --runs {args.runs}`). The machine is "
        "shared with other jobs: with a load above the core count the wall figures are upper "
        "bounds.",
        "",
        "## Wall time",
        "",
        f"`{shown}` in {args.runs} fresh processes: {len(daily)} days from 58,020 bars, CSV "
        "captured. Wall time includes Python start-up and every import (pandas, pyarrow; no "
        "TensorFlow).",
        "",
        "| case | runs | median s | min s | max s | CPU s (median) | goal | load before → after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| `{shown}` | {args.runs} | {median:.2f} | {min(walls):.2f} | {max(walls):.2f} | "
        f"{statistics.median(cpus):.2f} | < {GOAL:g} s: **{'yes' if median < GOAL else 'no'}** "
        f"| {load_before} → {load_after} |",
        f"| `python -c pass` (start-up alone) | {args.runs} | {statistics.median(bare):.2f} | "
        f"{min(bare):.2f} | {max(bare):.2f} | | | |",
        "",
        "## Daily measures from the bars next to the Oxford-Man library (.SPX), 2018-2019",
        "",
        f"2018-2019 in the bars: {len(period)} days, {len(full)} full (78 bars), "
        f"{int(period['partial'].sum())} partial ({int((period['bars'] == 42).sum())} half-days, "
        f"{len(late)} with the first hour missing). Full days are compared on the days the "
        "library also has. SPY (the ETF, Interactive Brokers 5-minute bars, 09:30-16:00) is "
        "not the S&P 500 index (the library's own tick data and cleaning), so this is a "
        "report, not an equality test. The library's rv5 and bv are not scaled by n/(n-1); "
        "neither are ours.",
        "",
        "| bars measure | library measure | common days | correlation | correlation of logs | "
        "median ratio bars / library | 10%-90% of the ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ours_name, theirs_name, ours, theirs in rows:
        result = compare(ours, theirs)
        lines.append(
            f"| {ours_name} | {theirs_name} | {result['days']} | {result['corr']:.4f} | "
            f"{result['corr_log']:.4f} | {result['median_ratio']:.3f} | "
            f"{result['p10']:.3f}-{result['p90']:.3f} |"
        )
    returns = pd.concat([full["open-to-close"], record["open_to_close"]], axis=1, join="inner")
    lines += [
        "",
        f"Open-to-close log return, bars against the library's `open_to_close`, {len(returns)} "
        f"common full days: correlation {returns.corr().iloc[0, 1]:.4f}, median absolute "
        f"difference {returns.diff(axis=1).iloc[:, 1].abs().median():.2e}.",
    ]
    lines += [
        "",
        "The last row is why partial days are flagged and never scored as full days: with "
        "09:30-10:25 missing, the bars' rv5 is a fraction of the whole session's.",
        "",
    ]
    (HERE / "realized_bars.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
