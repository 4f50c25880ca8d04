"""How the shared-nothing nightly scales: a 50-ticker universe on 1 and 2 local Dask
workers and on a loopback scheduler, registry and history growth over 30 nights, and
the default model's per-ticker cost; writes bench/nightly_scale.md.

    .venv/bin/python bench/nightly_scale.py            # about 20-40 minutes on 2 cores

The universe is SPY and QQQ (the S&P 500 and NASDAQ samples bundled with ``arch``,
real data) plus SYN03..SYN50: synthetic series for timing only, each a real sample
whose daily bars (return, and open/high/low relative to the close) are rotated by a
fixed number of days, so every series has the samples' length (5,031 days) and
realistic bars, but is not a market.

Settings. The 50-ticker and 30-night runs use SMALL (below: one member, 3 epochs,
8 units) so that they take minutes, not hours; the default configuration (3 members,
up to 60 epochs, 32 units) is timed on SPY and QQQ, one sequential night, and the
extrapolation to 500 and 5,000 tickers is made for it. Every figure is measured here;
the extrapolation is labelled as such. The machine is shared: `uptime` load is noted
beside each timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forecaster.data import sources  # noqa: E402
from forecaster.jobs.nightly import run_nightly  # noqa: E402
from forecaster.models.config import LSTMConfig  # noqa: E402
from forecaster.settings import Settings  # noqa: E402

SMALL = LSTMConfig(units=8, context=63, epochs=3, patience=1, ensemble=1, batch_size=256)
#: The 30-night growth run: the tests' tiny model on the last GROWTH_ROWS days. What it
#: measures (history rows and bytes, versions per night) does not depend on the model;
#: registry bytes for the default model follow from the default version's size.
GROWTH = LSTMConfig(units=4, lookback=10, context=42, epochs=1, patience=1, ensemble=1)
DASK = Path(sys.executable).parent / "dask"


def load() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def rotated(base: pd.DataFrame, shift: int) -> pd.DataFrame:
    """``base``'s daily bars rotated by ``shift`` days, rebuilt into prices (timing only)."""
    close = base["close"].to_numpy()
    returns = np.diff(np.log(close))
    relative = {name: np.log(base[name].to_numpy() / close) for name in ("open", "high", "low")}
    new_close = close[0] * np.exp(np.concatenate([[0.0], np.cumsum(np.roll(returns, shift))]))
    frame = pd.DataFrame(index=base.index)
    for name in ("open", "high", "low"):
        frame[name] = new_close * np.exp(np.roll(relative[name], shift + 1))
    frame["close"] = new_close
    frame["volume"] = np.roll(base["volume"].to_numpy(), shift)
    return frame[["open", "high", "low", "close", "volume"]]


def write_universe(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    bases = {}
    for ticker in ("SPY", "QQQ"):
        frame = sources.fetch_sample(ticker).rename(columns=str.lower)
        bases[ticker] = frame[["open", "high", "low", "close", "volume"]]
    names = []
    for index in range(count):
        if index < 2:
            name, frame = ("SPY", "QQQ")[index], bases[("SPY", "QQQ")[index]]
        else:
            name = f"SYN{index + 1:02d}"
            frame = rotated(bases[("SPY", "QQQ")[index % 2]], 97 * index)
        out = frame.copy()
        out.index = pd.DatetimeIndex(out.index).strftime("%Y-%m-%d")
        out.index.name = "Date"
        out.rename(columns=str.title).to_csv(folder / f"{name}.csv")
        names.append(name)
    return names


class MemorySampler:
    """Peak resident memory of this process and of every process below ``roots``."""

    def __init__(self, roots: list[int], every: float = 0.25) -> None:
        self.roots, self.every = roots, every
        self.peaks: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for root in self.roots:
                with contextlib.suppress(psutil.Error):
                    top = psutil.Process(root)
                    for process in [top, *top.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            rss = process.memory_info().rss
                            name = " ".join(process.cmdline()[1:3])[:60]
                            if rss > self.peaks.get(process.pid, (0, ""))[0]:
                                self.peaks[process.pid] = (rss, name)
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def workers(self, driver: int) -> list[int]:
        """Peak RSS in MB of the worker processes (all but the driver), largest first."""
        peaks = [rss for pid, (rss, _) in self.peaks.items() if pid != driver]
        return sorted((round(rss / 2**20) for rss in peaks if rss > 150 * 2**20), reverse=True)

    def of(self, pid: int) -> int:
        return round(self.peaks.get(pid, (0, ""))[0] / 2**20)


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


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def history_bytes(settings: Settings) -> int:
    return sum(p.stat().st_size for p in settings.data_dir.glob("forecasts.sqlite*") if p.is_file())


def night(settings, names, csv_dir, as_of, options, **fan_out) -> dict:
    started, load_before = time.perf_counter(), load()
    report = run_nightly(
        names,
        settings=settings,
        source="csv",
        csv_dir=csv_dir,
        as_of=as_of,
        default_options=options,
        **fan_out,
    )
    wall = time.perf_counter() - started
    seconds = [record["seconds"] for record in report.records]
    failed = [f"{r['ticker']}: {r['error']}" for r in report.failed]
    return {
        "as_of": as_of,
        "fan_out": report.fan_out,
        "tickers": len(report.records),
        "counts": report.counts(),
        "failed": failed[:3],
        "wall": round(wall, 1),
        "per_ticker_mean": round(float(np.mean(seconds)), 2),
        "per_ticker_median": round(float(np.median(seconds)), 2),
        "load_before": load_before,
        "load_after": load(),
    }


def scale_runs(work: Path, names, csv_dir, nights, options) -> list[dict]:
    """Night 1 seeds champions once (loopback, 2 workers); night 2 is timed per fan-out."""
    seeded = Settings.resolve(work / "seeded")
    results = []
    with loopback_cluster(work / "cluster-seed", 2) as (address, _):
        first = night(seeded, names, csv_dir, nights[0], options, scheduler=address)
    first["what"] = "night 1 (first champions), loopback scheduler, 2 workers"
    results.append(first)
    driver = os.getpid()
    for label, workers in (("1 local worker", 1), ("2 local workers", 2)):
        home = work / label.replace(" ", "-")
        shutil.copytree(seeded.home, home)
        with MemorySampler([driver]) as sampler:
            result = night(
                Settings.resolve(home), names, csv_dir, nights[1], options, workers=workers
            )
        result.update(
            what=f"night 2, --workers {workers}",
            driver_mb=sampler.of(driver),
            worker_mb=sampler.workers(driver),
        )
        results.append(result)
    home = work / "loopback"
    shutil.copytree(seeded.home, home)
    with loopback_cluster(work / "cluster-2", 2) as (address, pids):
        with MemorySampler([driver, *pids]) as sampler:
            result = night(
                Settings.resolve(home), names, csv_dir, nights[1], options, scheduler=address
            )
    result.update(
        what="night 2, loopback scheduler (`dask scheduler` + 2 `dask worker`)",
        driver_mb=sampler.of(driver),
        worker_mb=sampler.workers(driver),
    )
    results.append(result)
    return results


def growth_run(work: Path, names, csv_dir, nights, options, keep=None) -> list[dict]:
    """One night after another on a loopback cluster; ``keep`` is nightly --keep (None: off)."""
    label = "growth" if keep is None else f"growth-keep-{keep}"
    settings = Settings.resolve(work / label)
    rows = []
    with loopback_cluster(work / f"cluster-{label}", 2) as (address, _):
        for index, as_of in enumerate(nights, start=1):
            result = night(settings, names, csv_dir, as_of, options, scheduler=address, keep=keep)
            result.update(
                night=index,
                registry_bytes=folder_bytes(settings.models_dir),
                history_bytes=history_bytes(settings),
                versions=sum(1 for _ in settings.models_dir.glob("*/*/manifest.json")),
            )
            rows.append(result)
            print(f"{label} night {index}: {result['wall']} s, {result['counts']}", flush=True)
    return rows


def default_run(work: Path, names, csv_dir, as_of) -> dict:
    settings = Settings.resolve(work / "default")
    result = night(settings, names, csv_dir, as_of, None)
    versions = list(settings.models_dir.glob("*/*/manifest.json"))
    result["version_bytes"] = round(np.mean([folder_bytes(p.parent) for p in versions]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=50)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--growth-tickers", type=int, default=5)
    parser.add_argument("--growth-rows", type=int, default=600)
    parser.add_argument("--default-tickers", type=int, default=2)
    parser.add_argument("--keep", type=int, default=5, help="nightly --keep of the second growth run")
    parser.add_argument("--from-json", help="Only render this JSON of an earlier run.")
    parser.add_argument(
        "--add-keep-run",
        metavar="JSON",
        help="Run only the growth run with --keep and add it to this JSON of an earlier run.",
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "nightly_scale.md"))
    args = parser.parse_args()

    if args.from_json:
        Path(args.output).write_text(render(json.loads(Path(args.from_json).read_text()), args))
        return
    if args.add_keep_run:
        log = json.loads(Path(args.add_keep_run).read_text())
        with tempfile.TemporaryDirectory(prefix="nightly-scale-") as scratch:
            short, nights = _growth_universe(Path(scratch), args)
            log["keep"] = args.keep
            log["growth_keep"] = growth_run(
                Path(scratch), sorted(p.stem for p in short.glob("*.csv")), short, nights, GROWTH,
                keep=args.keep,
            )
        log["keep_finished"] = f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC"
        Path(args.add_keep_run).write_text(json.dumps(log, indent=1) + "\n")
        Path(args.output).write_text(render(log, args))
        print(f"wrote {args.output}")
        return
    started = pd.Timestamp.now(tz="UTC")
    partial = Path(args.output).with_suffix(".partial.json")
    with tempfile.TemporaryDirectory(prefix="nightly-scale-") as scratch:
        work = Path(scratch)
        csv_dir = work / "csv"
        names = write_universe(csv_dir, args.tickers)
        calendar = pd.read_csv(csv_dir / "SPY.csv")["Date"].tolist()
        nights = calendar[-args.nights :]
        log = {"started": f"{started:%Y-%m-%d %H:%M} UTC", "cpus": os.cpu_count()}
        log["small"] = {k: v for k, v in SMALL.to_dict().items() if k != "init_options"}
        log["argv"] = sys.argv[1:]
        log["python"] = sys.version.split()[0]
        if args.default_tickers:
            print(f"default config, {args.default_tickers} tickers, sequential ...", flush=True)
            log["default"] = default_run(work, names[: args.default_tickers], csv_dir, nights[-1])
            print(json.dumps(log["default"]), flush=True)
            partial.write_text(json.dumps(log, indent=1) + "\n")
        print(f"scale: {len(names)} tickers ...", flush=True)
        log["scale"] = scale_runs(work, names, csv_dir, nights[-2:], SMALL)
        print(json.dumps(log["scale"]), flush=True)
        partial.write_text(json.dumps(log, indent=1) + "\n")
        print(f"growth: {args.growth_tickers} tickers x {args.nights} nights ...", flush=True)
        short = work / "csv-short"
        short.mkdir()
        for name in names[: args.growth_tickers]:
            lines = (csv_dir / f"{name}.csv").read_text().splitlines()
            (short / f"{name}.csv").write_text("\n".join([lines[0], *lines[-args.growth_rows :]]))
        log["growth_config"] = {k: v for k, v in GROWTH.to_dict().items() if k != "init_options"}
        log["growth_rows"] = args.growth_rows
        log["growth"] = growth_run(work, names[: args.growth_tickers], short, nights, GROWTH)
        log["keep"] = args.keep
        log["growth_keep"] = growth_run(
            work, names[: args.growth_tickers], short, nights, GROWTH, keep=args.keep
        )
    log["finished"] = f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC"
    Path(args.output).with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n")
    Path(args.output).write_text(render(log, args))
    print(f"wrote {args.output}")


def _keep_line(log: dict, size: float) -> str:
    """The with-retention bullet: measured when the JSON has a --keep growth run."""
    kept = log.get("growth_keep", [])
    if not kept:
        return (
            "- With `--keep N`: **not measured in this run**; at most about N + 2 versions per "
            f"ticker (N losing challengers, the champion, the previous champion, versions with "
            f"pending forecasts): with N = 5, 50 tickers about {_mb(size * 50 * 7)}."
        )
    last, tickers = kept[-1], kept[-1]["tickers"]
    per = last["versions"] / max(1, tickers)
    flat = next(row["night"] for row in kept if row["versions"] == last["versions"])
    return (
        f"- With nightly `--keep {log['keep']}` (measured, rows marked above): {last['versions']} "
        f"versions after {len(kept)} nights x {tickers} tickers ({per:.1f} per ticker; the count "
        f"first reached that on night {flat}); so with the default model 50 tickers "
        f"need about {_mb(size * 50 * per)} and 5,000 tickers {_mb(size * 5000 * per)}, whatever "
        "the number of nights."
    )


def _growth_universe(work: Path, args) -> tuple[Path, list[str]]:
    """The growth run's short CSVs (first ``--growth-tickers`` of the universe) and its nights."""
    csv_dir = work / "csv"
    names = write_universe(csv_dir, args.tickers)
    nights = pd.read_csv(csv_dir / "SPY.csv")["Date"].tolist()[-args.nights :]
    short = work / "csv-short"
    short.mkdir()
    for name in names[: args.growth_tickers]:
        lines = (csv_dir / f"{name}.csv").read_text().splitlines()
        (short / f"{name}.csv").write_text("\n".join([lines[0], *lines[-args.growth_rows :]]))
    return short, nights


def _mb(value: float) -> str:
    if value < 2**20:
        return f"{value / 1024:,.0f} KB"
    return f"{value / 2**20:,.1f} MB"


def _settings(config: dict) -> str:
    keys = ("init", "units", "lookback", "context", "epochs", "patience", "ensemble", "batch_size")
    return ", ".join(f"{key}={config[key]}" for key in keys)


def render(log: dict, args) -> str:
    """The Markdown report of one run's JSON log."""
    lines = [
        "# Nightly at scale: shared-nothing Dask fan-out",
        "",
        f"Measured {log['started']} to {log['finished']} on this machine ({log['cpus']} cores, "
        f"Python {log.get('python', '?')}), **not idle**: other agents' test suites ran at the "
        "same time (load averages 1 / 5 / 15 min are shown beside each run; on 2 cores a load "
        "of 8 leaves this job about a quarter of the CPU). Rerun on an idle machine with",
        "",
        "    .venv/bin/python bench/nightly_scale.py" + "".join(f" {a}" for a in log["argv"]),
        "",
        "(with no options: 50 tickers, 5 growth tickers, 2 default-config tickers).",
        "",
    ]
    scale = log.get("scale", [])
    if scale and scale[0]["tickers"] != 50:
        lines += [
            f"**This run used {scale[0]['tickers']} tickers, not the 50 asked for**: with the "
            "machine shared (load 5-9 on 2 cores) the four 50-ticker nights would have taken "
            "well over an hour of the time available. The universe, the fan-outs and the "
            "script are the 50-ticker ones; rerun without `--tickers` for the 50-ticker figures.",
            "",
        ]
    lines += [
        "## What was run",
        "",
    ]
    count = scale[0]["tickers"] if scale else 0
    lines += [
        f"- Universe: {count} tickers: SPY and QQQ are the real S&P 500 and NASDAQ Composite "
        "samples bundled with `arch` (1999-01-04 to 2018-12-31, 5,031 days); SYN03.. are "
        "**synthetic, for timing only**: a real sample's daily bars (close-to-close return and "
        "open/high/low relative to the close) rotated by 97 x k days, so each has the same "
        "length and realistic bars but is not a market. Source `csv`, one file per ticker.",
        f"- Model for the scale and growth runs (not the default, to keep the run in minutes): "
        f"scale `{_settings(log['small'])}`; growth `{_settings(log['growth_config'])}` on the "
        f"last {log['growth_rows']} days of each series."
        if "growth_config" in log
        else f"- Model for the scale runs: `{_settings(log['small'])}`.",
        "- Fan-outs: `--workers 1` and `--workers 2` (a LocalCluster started by the run, so its "
        "wall time includes starting the workers and their TensorFlow import), and a loopback "
        "cluster (`dask scheduler` + 2 `dask worker --nthreads 1` processes on 127.0.0.1, "
        "started before the run, so TensorFlow is imported already after the first night).",
        "- Night 1 (every ticker's first champion) is run once on the loopback cluster; its "
        "data home is copied, and night 2 (challenger vs champion: the champion's files go to "
        "the worker and are loaded there) is timed on each fan-out from the same state.",
        "- Per-ticker seconds: the run record's `seconds` (driver's load + task + driver's "
        "commit; queueing excluded). Peak memory: resident set size sampled every 0.25 s with "
        "psutil, of the driver and of every process below it (or below the cluster's processes).",
        "",
    ]
    if scale:
        lines += [
            f"## One night, {count} tickers",
            "",
            "| run | ok / failed | wall s | per ticker s, mean (median) | driver peak | worker peaks"
            " | load before -> after |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run in scale:
            workers = ", ".join(f"{mb} MB" for mb in run.get("worker_mb", [])) or "-"
            driver = f"{run['driver_mb']} MB" if "driver_mb" in run else "-"
            lines.append(
                f"| {run['what']} | {run['counts']['ok']} / {run['counts']['failed']} | "
                f"{run['wall']} | {run['per_ticker_mean']} ({run['per_ticker_median']}) | "
                f"{driver} | {workers} | {run['load_before']} -> {run['load_after']} |"
            )
        lines += [
            "",
            "Worker peaks list every process above 150 MB other than the driver (the loopback "
            "row includes the scheduler process when it passed that mark). The driver peak is "
            "the benchmark's own process, which had run the default-config night in-process "
            "before (TensorFlow loaded, ~1.2 GB); it is not what a driver needs: the driver "
            "never imports TensorFlow (a 4-ticker trial of this script on 2026-11-26 04:34 UTC, "
            "without the default-config night first, measured a driver peak of 278-282 MB).",
            "",
        ]
    default = log.get("default")
    if default:
        lines += [
            "## The default model, per ticker",
            "",
            f"`forecast nightly` with the default configuration (encoder, 32 units, 3 members, up "
            f"to 60 epochs, patience 6), sequential, first night, {default['tickers']} tickers "
            f"(SPY, QQQ): wall {default['wall']} s, per ticker {default['per_ticker_mean']} s "
            f"mean ({default['per_ticker_median']} median), load {default['load_before']} -> "
            f"{default['load_after']}. One default version (model, metadata, manifest) takes "
            f"{_mb(default['version_bytes'])} in the registry.",
            "",
        ]
    growth = log.get("growth", [])
    if growth:
        tickers = growth[0]["tickers"]
        last = growth[-1]
        nights = len(growth)
        lines += [
            f"## Registry and history over {nights} nights ({tickers} tickers, loopback cluster)",
            "",
            "| night | versions | registry | history (forecasts.sqlite) | wall s | load |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        shown = sorted({1, 2, 5, 10, 20, nights} & set(range(1, nights + 1)))
        for row in growth:
            if row["night"] in shown:
                lines.append(
                    f"| {row['night']} | {row['versions']} | {_mb(row['registry_bytes'])} | "
                    f"{_mb(row['history_bytes'])} | {row['wall']} | {row['load_before']} |"
                )
        kept = log.get("growth_keep", [])
        for row in kept:
            if row["night"] in shown:
                lines.append(
                    f"| {row['night']} with `--keep {log['keep']}` | {row['versions']} | "
                    f"{_mb(row['registry_bytes'])} | {_mb(row['history_bytes'])} | {row['wall']} | "
                    f"{row['load_before']} |"
                )
        per_version = last["registry_bytes"] / max(1, last["versions"])
        history_per = (last["history_bytes"] - growth[0]["history_bytes"]) / max(
            1, tickers * (nights - 1)
        )
        lines += [
            "",
            f"The first night includes the workers' TensorFlow import. "
            f"Without `--keep` the registry grows by one version per ticker per night (measured: "
            f"{last['versions']} versions after {nights} nights x {tickers} tickers), "
            f"{_mb(per_version)} each with the growth model. The history grows by about "
            f"{history_per / 1024:.1f} KB per ticker-night (one forecast row, its VaR/ES rows, "
            "one run row; SQLite pages).",
            "",
        ]
        if default:
            size = default["version_bytes"]
            lines += [
                "**Computed from these figures (not measured as such):**",
                "",
                f"- Registry without `--keep`, default model: {_mb(size)} x tickers x nights: "
                f"50 tickers x {nights} nights = {_mb(size * 50 * nights)}; 5,000 tickers x 252 "
                f"nights (a year) = {_mb(size * 5000 * 252)}.",
                _keep_line(log, size),
                f"- History: about {history_per / 1024:.1f} KB per ticker-night, so 5,000 "
                f"tickers x 252 nights = {_mb(history_per * 5000 * 252)} a year (retention does "
                "not touch the history).",
                "",
            ]
    if default and scale:
        per = default["per_ticker_mean"]
        one = next((run for run in scale if run["what"].startswith("night 2, --workers 1")), None)
        two = next((run for run in scale if run["what"].startswith("night 2, --workers 2")), None)
        loop = next(
            (run for run in scale if "loopback" in run["what"] and "night 2" in run["what"]), None
        )
        lines += [
            "## 500 and 5,000 tickers (extrapolation, on paper)",
            "",
            f"Assumes the default model's {per} s per ticker measured above (on this loaded "
            "machine; an idle one trains SPY in about 42 s, bench/select_defaults.md) and "
            "workers of one thread on their own 1-2 cores each, scaling linearly: hours = "
            "tickers x seconds / workers / 3600. Tasks are independent; the only serial part is "
            "the driver's per-ticker load and commit, which these figures do not separate (it "
            "is inside the per-ticker seconds) and which this extrapolation treats as parallel.",
            "",
            "| tickers | s per ticker | 1 worker | 4 workers | 16 workers | 64 workers |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        idle = 41.9  # bench/select_defaults.md: default SPY fit on the idle machine
        for tickers in (500, 5000):
            for seconds, where in ((per, "here, loaded"), (idle, "idle, select_defaults.md")):
                cells = [f"{tickers * seconds / n / 3600:.1f} h" for n in (1, 4, 16, 64)]
                lines.append(f"| {tickers:,} | {seconds} ({where}) | " + " | ".join(cells) + " |")
        peak = max((mb for run in scale for mb in run.get("worker_mb", [])), default=0)
        if one and two and loop:
            lines += [
                "",
                f"Measured speed-up of 2 workers over 1 on this 2-core machine, night 2: "
                f"{one['wall'] / two['wall']:.2f}x with local clusters (each started by the run), "
                f"{one['wall'] / loop['wall']:.2f}x for the loopback cluster (already started) — "
                "with other jobs holding most of the CPU, so not the speed-up of dedicated cores.",
                "",
                "To finish a 4-hour window (the systemd unit's limit) with the default model: "
                f"500 tickers need {max(1, -(-int(500 * per) // (4 * 3600)))} worker(s) at this "
                f"machine's loaded speed ({max(1, -(-int(500 * idle) // (4 * 3600)))} at the idle "
                f"speed), 5,000 tickers {max(1, -(-int(5000 * per) // (4 * 3600)))} workers "
                f"({max(1, -(-int(5000 * idle) // (4 * 3600)))} idle), each with its own "
                f"1-2 cores and about {peak / 1024:.1f} GB of memory (the largest worker peak above).",
            ]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
