"""The nightly job for a real universe: a universal model over the 150 real stocks.

Data: ``../shared/data/stocks_daily.parquet`` (150 US stocks, 1999..2017-11-10)
as the ``--panel`` source of ``forecast nightly --universal`` (the library call
:func:`forecaster.jobs.nightly.run_nightly`, as the command makes it), in a
temporary home. Nights are the panel's last trading days.

* **Night 1** (refit): no universal model yet, so it is fit on every ticker (one
  task: default network, 3 members, ``UNIVERSAL_DEFAULTS`` training), then each
  ticker's task fine-tunes from it (``FINE_TUNE_DEFAULTS``), keeps the fine-tune
  where it scores better on validation, and the first champion is promoted.
* **Nights 2..N** (daily updates, no refit due): each ticker's champion issues its
  forecast and VaR/ES; nothing is trained.

Fan-outs: ``--workers 2`` (local Dask) for every night; then the daily-update
nights again, from a copy of the home after night 1, on ``--workers 1`` and on a
loopback ``dask scheduler`` with two ``dask worker`` processes. A thread samples
the resident memory of every process below the driver (or of the loopback
cluster's processes) every second: per-worker RSS over time. The extrapolation
to 1,000 and 5,000 tickers is arithmetic on these figures, labelled as such.

    .venv/bin/python bench/nightly_universe.py        # writes bench/nightly_universe.md/.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from nightly_scale import folder_bytes, history_bytes, loopback_cluster  # noqa: E402

from forecaster.data.panel import read_panel  # noqa: E402
from forecaster.jobs.nightly import run_nightly  # noqa: E402
from forecaster.jobs.universe import FINE_TUNE_DEFAULTS, UNIVERSAL_DEFAULTS  # noqa: E402
from forecaster.settings import Settings  # noqa: E402

PANEL = ROOT.parent / "shared" / "data" / "stocks_daily.parquet"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class RssSeries:
    """RSS (MB) of every process below ``roots`` (the driver excluded), sampled every second."""

    def __init__(self, roots: list[int], exclude: int, every: float = 1.0) -> None:
        self.roots, self.exclude, self.every = roots, exclude, every
        self.samples: dict[int, list[tuple[float, int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start = time.time()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = round(time.time() - self.start, 1)
            for root in self.roots:
                with contextlib.suppress(psutil.Error):
                    top = psutil.Process(root)
                    for process in [top, *top.children(recursive=True)]:
                        if process.pid == self.exclude:
                            continue
                        with contextlib.suppress(psutil.Error):
                            rss = round(process.memory_info().rss / 2**20)
                            if rss > 150:  # workers, not the small nanny/resource tracker
                                self.samples.setdefault(process.pid, []).append((now, rss))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSeries:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> list[dict]:
        out = []
        for pid, series in self.samples.items():
            values = [rss for _, rss in series]
            out.append(
                {
                    "pid": pid,
                    "samples": len(values),
                    "first_mb": values[0],
                    "max_mb": max(values),
                    "min_mb": min(values),
                    "last_mb": values[-1],
                    # every 10th sample: the curve, small enough for the JSON
                    "curve": series[::10],
                }
            )
        return sorted(out, key=lambda entry: -entry["max_mb"])


def one_night(home: Path, names: list[str], as_of: str, **fan_out) -> dict:
    settings = Settings.resolve(home)
    seconds: list[float] = []
    universe: dict = {}
    started = time.time()

    def on_record(record: dict) -> None:
        if record.get("seconds") is not None:
            seconds.append(record["seconds"])
        if len(seconds) % 25 == 0:
            log(f"  {as_of}: {len(seconds)}/{len(names)} tickers ({time.time() - started:.0f} s)")

    report = run_nightly(
        names,
        settings=settings,
        panel_path=str(PANEL),
        as_of=as_of,
        universal=True,
        keep=5,
        on_record=on_record,
        on_universe=universe.update,
        **OPTIONS,
        **fan_out,
    )
    counts = report.counts()
    decisions: dict[str, int] = {}
    for record in report.records:
        key = record["decision"] or record["status"]
        decisions[key] = decisions.get(key, 0) + 1
    fine_tuned = sum(
        1 for r in report.records if "challenger: fine-tuned" in (r.get("decision_reason") or "")
    )
    failures = {r["ticker"]: r["error"] for r in report.records if r["status"] == "failed"}
    return {
        "as_of": as_of,
        "wall_s": round(time.time() - started, 1),
        "universe": {k: universe.get(k) for k in ("refit", "reason", "version", "seconds", "error")},
        "counts": counts,
        "decisions": decisions,
        "fine_tune_chosen": fine_tuned,
        "ticker_seconds_median": round(float(np.median(seconds)), 2) if seconds else None,
        "ticker_seconds_max": round(float(np.max(seconds)), 2) if seconds else None,
        "failures": dict(list(failures.items())[:10]),
        "registry_mb": round(folder_bytes(settings.models_dir) / 2**20, 1),
        "history_mb": round(history_bytes(settings) / 2**20, 2),
        "load": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
    }


#: Extra run_nightly options (``--smoke``: a tiny model, to check the script quickly).
OPTIONS: dict = {}


def run_fan_out(home: Path, names, nights, label: str, after_first=None, **fan_out) -> dict:
    log(f"{label}: {len(nights)} nights")
    entry: dict = {"label": label, "nights": []}
    with RssSeries([os.getpid()], exclude=os.getpid()) as rss:
        for index, as_of in enumerate(nights):
            entry["nights"].append(one_night(home, names, as_of, **fan_out))
            log(f"{label} {as_of}: {entry['nights'][-1]}")
            if index == 0 and after_first is not None:
                after_first()
    entry["rss"] = rss.summary()
    return entry


def run_loopback(home: Path, names, nights, work: Path) -> dict:
    log("loopback scheduler, 2 dask workers")
    entry: dict = {"label": "loopback dask scheduler + 2 dask workers", "nights": []}
    with loopback_cluster(work / "cluster", 2) as (address, pids):
        with RssSeries(pids, exclude=-1) as rss:
            for as_of in nights:
                entry["nights"].append(one_night(home, names, as_of, scheduler=address))
                log(f"loopback {as_of}: {entry['nights'][-1]}")
    entry["rss"] = rss.summary()
    return entry


def render(result: dict) -> str:
    lines = [
        "# Nightly job for a real universe (universal model, 150 real stocks)",
        "",
        f"Measured {result['date']} on {result['machine']} with `.venv/bin/python "
        "bench/nightly_universe.py` (protocol: the script's docstring). Tickers: "
        f"{result['tickers']} real stocks from `../shared/data/stocks_daily.parquet`; nights: "
        f"{', '.join(result['nights'])}. Universal model: default network and members, "
        f"training {result['universal']}; fine-tune {result['fine_tune']}.",
        "",
        "| fan-out | night | universe step | wall | per ticker (median / max) | ok / failed | "
        "decisions | fine-tune chosen | registry | history | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        for n in run["nights"]:
            u = n["universe"]
            step = (
                f"refit {u['seconds']:.0f} s" if u["refit"] and u["seconds"] is not None
                else "refit failed" if u.get("error") else "no refit"
            )
            lines.append(
                f"| {run['label']} | {n['as_of']} | {step} | {n['wall_s'] / 60:.1f} min | "
                f"{n['ticker_seconds_median']} / {n['ticker_seconds_max']} s | "
                f"{n['counts']['ok']} / {n['counts']['failed']} | {n['decisions']} | "
                f"{n['fine_tune_chosen']} | {n['registry_mb']} MB | {n['history_mb']} MB | "
                f"{n['load']} |"
            )
    lines += ["", "Worker RSS over each run (MB, sampled every second):", ""]
    lines += ["| fan-out | worker | first | min | max | last | max − min |", "|---|---|---|---|---|---|---|"]
    for run in result["runs"]:
        for index, worker in enumerate(run["rss"][:4]):
            lines.append(
                f"| {run['label']} | {index + 1} | {worker['first_mb']} | {worker['min_mb']} | "
                f"{worker['max_mb']} | {worker['last_mb']} | {worker['max_mb'] - worker['min_mb']} |"
            )
    lines += ["", "## Goals", ""] + result.get("goals", []) + [""]
    lines += ["## Extrapolation (arithmetic on the figures above, not measured)", ""]
    lines += result.get("extrapolation", []) + [""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=150)
    parser.add_argument("--nights", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "nightly_universe"))
    parser.add_argument("--skip-others", action="store_true", help="only --workers 2")
    parser.add_argument("--smoke", action="store_true", help="a tiny model: check the script")
    args = parser.parse_args()
    if args.smoke:
        from forecaster.models.config import LSTMConfig

        OPTIONS["universal_options"] = LSTMConfig(
            units=4, lookback=10, context=42, epochs=1, patience=1, ensemble=1, batch_size=256
        )
        OPTIONS["fine_tune"] = {"epochs": 1}
    names = read_panel(PANEL).tickers[: args.tickers]
    import pandas as pd

    dates = pd.read_parquet(PANEL, columns=["date"])["date"].drop_duplicates().sort_values()
    nights = [f"{d:%Y-%m-%d}" for d in dates.iloc[-args.nights :]]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "tickers": len(names),
        "nights": nights,
        "universal": UNIVERSAL_DEFAULTS,
        "fine_tune": FINE_TUNE_DEFAULTS,
        "runs": [],
    }

    def save() -> None:
        Path(args.out + ".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        Path(args.out + ".md").write_text(render(result))

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        home, first = work / "home", work / "after-night-1"
        result["runs"].append(
            run_fan_out(
                home, names, nights, "--workers 2",
                after_first=lambda: shutil.copytree(home, first), workers=2,
            )
        )
        save()
        if not args.skip_others:  # the daily-update nights again, from the home after night 1
            copy = work / "copy-1"
            shutil.copytree(first, copy)
            result["runs"].append(run_fan_out(copy, names, nights[1:], "--workers 1", workers=1))
            save()
            copy = work / "copy-loopback"
            shutil.copytree(first, copy)
            result["runs"].append(run_loopback(copy, names, nights[1:], work))
            save()
    save()
    print(render(result))


if __name__ == "__main__":
    main()
