"""The nightly job for a real universe: a universal model over the 150 real stocks.

Data: ``../shared/data/stocks_daily.parquet`` (150 US stocks, 1999..2017-11-10)
as the ``--panel`` source of ``forecast nightly --universal`` (the library call
:func:`forecaster.jobs.nightly.run_nightly`, as the command makes it), in a
temporary home. Nights are the panel's last trading days. No synthetic series.

* **Night 1** (refit): no universal model yet, so it is fit on every ticker (one
  task: default network, 3 members, ``UNIVERSAL_DEFAULTS`` training), then each
  ticker's task fine-tunes from it (``FINE_TUNE_DEFAULTS``), keeps the fine-tune
  where it scores better on validation, and the first champion is promoted.
* **Nights 2..N** (daily updates, no refit due): each ticker's champion issues its
  forecast and VaR/ES; nothing is trained.

Fan-outs: ``--workers 2`` (local Dask) for every night; then the daily-update
nights again, from a copy of the home after night 1, on ``--workers 1`` and on a
loopback ``dask scheduler`` with two ``dask worker`` processes. Night 1 runs on
``--workers 2`` only (about 40 minutes; the other fan-outs would triple it).
Tasks that train run in a fresh child process of their worker (the default;
``--no-isolate`` runs them in the worker, as before 2026-12-05). A thread samples
the resident memory of every process below the driver (or of the loopback
cluster's processes) every second, and tells workers from task children by their
command line: per-worker RSS over time, and its spread after the fifth finished
task of the night. ``forecast predict`` for one ticker right after the last night
is timed as a user runs it (a fresh process). The extrapolation to 1,000 and 5,000
tickers is arithmetic on these figures, labelled as such.

    .venv/bin/python bench/nightly_scale.py        # writes bench/nightly_scale.md/.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
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

from forecaster.data.panel import read_panel  # noqa: E402
from forecaster.jobs.nightly import run_nightly  # noqa: E402
from forecaster.jobs.universe import FINE_TUNE_DEFAULTS, UNIVERSAL_DEFAULTS  # noqa: E402
from forecaster.settings import Settings  # noqa: E402

PANEL = ROOT.parent / "shared" / "data" / "stocks_daily.parquet"
DASK = Path(sys.executable).parent / "dask"
#: When each night's fifth task finished (time.time()): RSS spread is taken after it.
FIFTH: list[float] = []


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def history_bytes(settings: Settings) -> int:
    return sum(p.stat().st_size for p in settings.data_dir.glob("forecasts.sqlite*") if p.is_file())


@contextlib.contextmanager
def loopback_cluster(folder: Path, workers: int):
    """`dask scheduler` + ``workers`` `dask worker` processes on 127.0.0.1 (nanny, 1 thread)."""
    import distributed

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("FORECAST_HOME", "KERAS_HOME")}
    env["PYTHONPATH"] = str(ROOT)
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"
    processes = []
    try:
        for index, args in enumerate(
            [["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
            + [
                ["worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
                for _ in range(workers)
            ]
        ):
            cwd = folder / f"process-{index}"
            cwd.mkdir(parents=True)
            log = (cwd / "log.txt").open("wb")
            processes.append(
                subprocess.Popen(
                    [str(DASK), *args],
                    cwd=cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, [process.pid for process in processes]
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class RssSeries:
    """RSS (MB) of every process below ``roots`` (the driver excluded), sampled every second."""

    def __init__(self, roots: list[int], exclude: int, every: float = 1.0) -> None:
        self.roots, self.exclude, self.every = roots, exclude, every
        self.samples: dict[int, list[tuple[float, int]]] = {}
        self.roles: dict[int, str] = {}
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
                                if process.pid not in self.roles:
                                    line = " ".join(process.cmdline())
                                    self.roles[process.pid] = (
                                        "task child"
                                        if "forecaster.jobs.isolated" in line
                                        else "scheduler"
                                        if " scheduler" in line
                                        else "worker"
                                    )
                                self.samples.setdefault(process.pid, []).append((now, rss))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSeries:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self, fifth: list[float]) -> list[dict]:
        """Per process; ``fifth``: when each night's fifth task finished (time.time())."""
        marks = [t - self.start for t in fifth]
        out = []
        for pid, series in self.samples.items():
            values = [rss for _, rss in series]
            # the samples after the first fifth-finished-task mark of its life (a worker
            # lives one night on a local cluster, every night on the loopback one)
            mark = min((m for m in marks if m >= series[0][0]), default=None)
            after = [rss for t, rss in series if mark is not None and t >= mark]
            out.append(
                {
                    "pid": pid,
                    "role": self.roles.get(pid, "worker"),
                    "samples": len(values),
                    "after_fifth_spread_mb": (max(after) - min(after)) if after else None,
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
    finished = [0]

    def on_record(record: dict) -> None:
        finished[0] += 1
        if finished[0] == 5:
            FIFTH.append(time.time())
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
        "universe": {
            k: universe.get(k) for k in ("refit", "reason", "version", "seconds", "error")
        },
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
    entry["rss"] = rss.summary(FIFTH)
    return entry


def run_loopback(home: Path, names, nights, work: Path) -> dict:
    log("loopback scheduler, 2 dask workers")
    entry: dict = {"label": "loopback dask scheduler + 2 dask workers", "nights": []}
    with loopback_cluster(work / "cluster", 2) as (address, pids):
        with RssSeries(pids, exclude=-1) as rss:
            for as_of in nights:
                entry["nights"].append(one_night(home, names, as_of, scheduler=address))
                log(f"loopback {as_of}: {entry['nights'][-1]}")
    entry["rss"] = rss.summary(FIFTH)
    return entry


def after_night(home: Path, ticker: str) -> dict:
    """``forecast predict`` of one ticker and ``forecast report``, timed as fresh processes."""
    forecast = str(Path(sys.executable).parent / "forecast")
    env = {**os.environ, "FORECAST_HOME": str(home)}
    predict = ["predict", "--ticker", ticker, "--source", "panel", "--panel", str(PANEL)]
    started = time.perf_counter()
    done = subprocess.run([forecast, *predict], env=env, capture_output=True, check=False)
    predict_s = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    subprocess.run([forecast, "report"], env=env, capture_output=True, check=True)
    report_s = round(time.perf_counter() - started, 2)
    pages = sorted((home / "reports").glob("*.html"))
    shown = " ".join(predict).replace(str(PANEL), "../shared/data/stocks_daily.parquet")
    return {
        "predict_command": f"forecast {shown}",
        "predict_s": predict_s,
        "predict_exit": done.returncode,
        "report_command": "forecast report",
        "report_s": report_s,
        "page_mb": round(pages[-1].stat().st_size / 2**20, 2) if pages else None,
    }


def _mark(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def goals(result: dict) -> list[str]:
    """Each goal of the issue against the figures above (computed, not typed in)."""
    runs = {run["label"]: run for run in result["runs"]}
    two = runs.get("--workers 2")
    if two is None:
        return []
    refit, updates = two["nights"][0], two["nights"][1:]
    lines = []
    if updates:
        worst = max(n["wall_s"] for n in updates) / 60
        lines.append(
            f"- Nightly update of {result['tickers']} tickers with 2 workers ≤ 15 min: "
            f"{_mark(worst <= 15)} (slowest of nights 2–{len(two['nights'])}: {worst:.1f} min)."
        )
    lines.append(
        f"- Universal refit night of {result['tickers']} tickers ≤ 30 min: "
        f"{_mark(refit['wall_s'] / 60 <= 30)} ({refit['wall_s'] / 60:.1f} min, of which the "
        f"universal fit {refit['universe']['seconds'] or 0:.0f} s and the per-ticker fine-tunes the "
        f"rest)."
    )
    spreads = [
        (run["label"], w["after_fifth_spread_mb"])
        for run in result["runs"]
        for w in run["rss"]
        if w.get("role", "worker") == "worker" and w.get("after_fifth_spread_mb") is not None
    ]
    if spreads:
        label, worst = max(spreads, key=lambda item: item[1])
        lines.append(
            f"- Worker RSS flat, max − min ≤ 300 MB after the first 5 tasks: "
            f"{_mark(worst <= 300)} (largest: {worst} MB, {label})."
        )
    after = result.get("after")
    if after:
        lines.append(
            f"- `forecast predict` for one ticker right after a night ≤ 1.5 s: "
            f"{_mark(after['predict_s'] <= 1.5 and after['predict_exit'] == 0)} "
            f"({after['predict_s']} s)."
        )
        if after["page_mb"] is not None:
            lines.append(
                f"- Report page ≤ 1.5 MB: {_mark(after['page_mb'] <= 1.5)} ({after['page_mb']} MB "
                f"for {result['tickers']} tickers × {len(result['nights'])} nights)."
            )
    return lines


def extrapolation(result: dict) -> list[str]:
    """1,000 and 5,000 tickers from the measured per-ticker figures (arithmetic only)."""
    runs = {run["label"]: run for run in result["runs"]}
    two = runs.get("--workers 2")
    if two is None or len(two["nights"]) < 2:
        return []
    n, refit = result["tickers"], two["nights"][0]
    update = float(np.median([night["wall_s"] for night in two["nights"][1:]]))
    fit = refit["universe"]["seconds"] or 0.0
    tuning = refit["wall_s"] - fit
    registry = two["nights"][-1]["registry_mb"]
    lines = [
        f"Assumes every cost grows linearly with the tickers (the universal fit's epochs read "
        f"every ticker's rows once; a task is one ticker) and the same 2-core machine with 2 "
        f"workers. Measured per {n} tickers: daily update {update / 60:.1f} min (median of "
        f"nights 2–{len(two['nights'])}), universal fit {fit / 60:.1f} min, fine-tunes "
        f"{tuning / 60:.1f} min, registry {registry} MB.",
        "",
        "| tickers | daily update | refit night (fit + fine-tunes) | registry |",
        "|---|---|---|---|",
    ]
    for count in (1000, 5000):
        scale = count / n
        lines.append(
            f"| {count:,} | {update * scale / 60:.0f} min | {fit * scale / 60:.0f} + "
            f"{tuning * scale / 60:.0f} min | {registry * scale / 1024:.1f} GB |"
        )
    lines += [
        "",
        "The fine-tunes divide by the number of workers; the universal fit is one task and "
        "does not.",
    ]
    return lines


def render(result: dict) -> str:
    lines = [
        "# Nightly job for a real universe (universal model, 150 real stocks)",
        "",
        f"Measured {result['date']} on {result['machine']} with `.venv/bin/python "
        f"bench/nightly_scale.py{result['argv']}` (protocol: the script's docstring). Tickers: "
        f"{result['tickers']} real stocks from `../shared/data/stocks_daily.parquet`; nights: "
        f"{', '.join(result['nights'])}. Universal model: default network and members, "
        f"training {result['universal']}; fine-tune {result['fine_tune']}. Tasks that train "
        f"run {'in a fresh child process of their worker' if result['isolate'] else 'in the worker'}"
        ". `load` is the 1/5/15-minute load average at the end of the night.",
        "",
        "| fan-out | night | universe step | wall | per ticker (median / max) | ok / failed | "
        "decisions | fine-tune chosen | registry | history | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        for n in run["nights"]:
            u = n["universe"]
            step = (
                f"refit {u['seconds']:.0f} s"
                if u["refit"] and u["seconds"] is not None
                else "refit failed"
                if u.get("error")
                else "no refit"
            )
            lines.append(
                f"| {run['label']} | {n['as_of']} | {step} | {n['wall_s'] / 60:.1f} min | "
                f"{n['ticker_seconds_median']} / {n['ticker_seconds_max']} s | "
                f"{n['counts']['ok']} / {n['counts']['failed']} | {n['decisions']} | "
                f"{n['fine_tune_chosen']} | {n['registry_mb']} MB | {n['history_mb']} MB | "
                f"{n['load']} |"
            )
    lines += [
        "",
        "Worker RSS over each run (MB, sampled every second; a local cluster's workers live "
        'one night, the loopback cluster\'s every night; "after 5th" is max − min over the '
        "samples after the night's fifth finished task):",
        "",
        "| fan-out | worker | first | min | max | last | max − min | after 5th |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        workers = [w for w in run["rss"] if w.get("role", "worker") == "worker"]
        for index, worker in enumerate(workers):
            lines.append(
                f"| {run['label']} | {index + 1} | {worker['first_mb']} | {worker['min_mb']} | "
                f"{worker['max_mb']} | {worker['last_mb']} | {worker['max_mb'] - worker['min_mb']} "
                f"| {worker.get('after_fifth_spread_mb')} |"
            )
    children = [
        (run["label"], [w["max_mb"] for w in run["rss"] if w.get("role") == "task child"])
        for run in result["runs"]
    ]
    if any(peaks for _, peaks in children):
        lines += ["", "Task children (one per training task, exits when the task ends):", ""]
        lines += ["| fan-out | children seen | peak RSS median / max (MB) |", "|---|---|---|"]
        for label, peaks in children:
            if peaks:
                lines.append(f"| {label} | {len(peaks)} | {int(np.median(peaks))} / {max(peaks)} |")
    if result.get("after"):
        after = result["after"]
        lines += [
            "",
            f"After the last night, as a user runs them (fresh processes, home of the "
            f"--workers 2 run): `{after['predict_command']}` {after['predict_s']} s "
            f"(exit {after['predict_exit']}); `{after['report_command']}` {after['report_s']} s, "
            f"page {after['page_mb']} MB.",
        ]
    lines += ["", "## Goals", ""] + result.get("goals", []) + [""]
    lines += ["## Extrapolation (arithmetic on the figures above, not measured)", ""]
    lines += result.get("extrapolation", []) + [""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=150)
    parser.add_argument("--nights", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "nightly_scale"))
    parser.add_argument(
        "--no-isolate", action="store_true", help="train in the workers (no child process)"
    )
    parser.add_argument("--skip-others", action="store_true", help="only --workers 2")
    parser.add_argument("--smoke", action="store_true", help="a tiny model: check the script")
    args = parser.parse_args()
    if args.smoke:
        from forecaster.models.config import LSTMConfig

        OPTIONS["universal_options"] = LSTMConfig(
            units=4, lookback=10, context=42, epochs=1, patience=1, ensemble=1, batch_size=256
        )
        OPTIONS["fine_tune"] = {"epochs": 1}
    if args.no_isolate:
        OPTIONS["isolate"] = False
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
        "isolate": not args.no_isolate,
        "argv": "".join(f" {a}" for a in sys.argv[1:]),
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
                home,
                names,
                nights,
                "--workers 2",
                after_first=lambda: shutil.copytree(home, first),
                workers=2,
            )
        )
        result["after"] = after_night(home, names[0])
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
    result["goals"], result["extrapolation"] = goals(result), extrapolation(result)
    save()
    print(render(result))


if __name__ == "__main__":
    main()
