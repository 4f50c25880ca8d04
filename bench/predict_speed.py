"""Speed benchmark: `forecast predict` without TensorFlow (NumPy engine) next to the Keras engine.

One command rewrites bench/predict_speed.md:

    .venv/bin/python bench/predict_speed.py [--runs 5] [--batch-runs 3] [--champions 100]

In a throw-away data home it trains one model with the default settings on the
S&P 500 sample (standing in for SPY), then times, in fresh processes (so every
import is counted):

1. `forecast predict --ticker SPY --source sample` with `--engine auto` (the
   default: NumPy on the saved weights) and `--engine keras` (TensorFlow);
   median of ``--runs`` runs each;
2. `forecast predict --all` over ``--champions`` SYNTHETIC tickers (SYN000,
   ...): copies of that one trained model registered as each ticker's champion,
   each with prices derived from the samples (S&P 500 or NASDAQ, every price
   scaled by a per-ticker factor and the last ``i mod 20`` days dropped), read
   with `--source csv --csv-dir`. They exist for timing only: the forecasts of
   a model trained on another series mean nothing.

Goals (issue 12): one ticker <= 1.5 s wall; 100 champions <= 15 s. The load
average (`uptime`) before and after each block is written next to the figures:
on a shared machine they are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORECAST = [sys.executable, "-m", "forecaster.cli"]
GOAL_ONE = 1.5
GOAL_BATCH = 15.0


def load() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(command: list[str], home: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh process; a failure stops the benchmark."""
    env = {**os.environ, "FORECAST_HOME": str(home)}
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return seconds, cpu


def timed(command: list[str], home: Path, runs: int) -> dict:
    before = load()
    measured = [run(command, home) for _ in range(runs)]
    seconds = [wall for wall, _ in measured]
    print(" ".join(command[3:]), [(round(w, 2), round(c, 2)) for w, c in measured], flush=True)
    return {
        "runs": runs,
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "cpu": statistics.median(cpu for _, cpu in measured),
        "load": f"{before} → {load()}",
    }


def synthetic_champions(home: Path, source_home: Path, count: int, csv_dir: Path) -> None:
    """Register the SPY model under SYN000.. with derived prices (timing only)."""
    import arch.data.nasdaq
    import arch.data.sp500

    from forecaster.models.record import ModelRecord
    from forecaster.models.registry import ModelRegistry
    from tests.conftest import write_csv

    samples = []
    for module in (arch.data.sp500, arch.data.nasdaq):
        frame = module.load()
        frame = frame[["Open", "High", "Low", "Close", "Volume"]].rename(columns=str.lower)
        frame.index.name = "date"
        samples.append(frame)
    trained = ModelRegistry(source_home / "models")
    spy = trained.champion("SPY")
    registry = ModelRegistry(home / "models")
    for index in range(count):
        ticker = f"SYN{index:03d}"
        prices = samples[index % 2].copy()
        prices[["open", "high", "low", "close"]] *= 1 + index / count
        if index % 20:
            prices = prices.iloc[: -(index % 20)]
        write_csv(csv_dir / f"{ticker}.csv", prices)
        record = ModelRecord.from_dict({**spy.record.to_dict(), "ticker": ticker})
        registry.save(record, lambda path: shutil.copyfile(spy.model_path, path), promote=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Runs per single-ticker case.")
    parser.add_argument("--batch-runs", type=int, default=3, help="Runs per --all case.")
    parser.add_argument("--champions", type=int, default=100, help="Synthetic champions.")
    parser.add_argument("--output", default=str(HERE / "predict_speed.md"))
    parser.add_argument(
        "--from-home",
        help="Use the SPY champion of this data home (trained with default settings) "
        "instead of training one.",
    )
    options = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as folder:
        home, batch_home = Path(folder) / "home", Path(folder) / "batch"
        csv_dir = Path(folder) / "prices"
        for path in (home, batch_home, csv_dir):
            path.mkdir()
        if options.from_home:
            shutil.copytree(Path(options.from_home) / "models" / "SPY", home / "models" / "SPY")
            train_s = None
        else:
            train_s, _ = run([*FORECAST, "train", "--ticker", "SPY", "--source", "sample"], home)
        one = [*FORECAST, "predict", "--ticker", "SPY", "--source", "sample"]
        run(one, home)  # warm the file cache once; not counted
        single = {
            engine: timed([*one, "--engine", engine], home, options.runs)
            for engine in ("auto", "keras")
        }
        synthetic_champions(batch_home, home, options.champions, csv_dir)
        batch = [*FORECAST, "predict", "--all", "--source", "csv", "--csv-dir", str(csv_dir)]
        batch += ["--format", "csv", "--output", os.devnull]
        many = {
            engine: timed([*batch, "--engine", engine], batch_home, options.batch_runs)
            for engine in ("auto", "keras")
        }
    write_report(options, started, train_s, single, many)


def write_report(options, started: str, train_s: float, single: dict, many: dict) -> None:
    def row(case: str, engine: str, result: dict, goal: float) -> str:
        met = "yes" if result["median"] <= goal else "**no**"
        if case.startswith("`--all`") and options.champions != 100:
            met = "n/a (the goal is for 100)"
        label = "NumPy (auto)" if engine == "auto" else "TensorFlow (keras)"
        return (
            f"| {case} | {label} | {result['runs']} | {result['median']:.2f} | "
            f"{result['min']:.2f} | {result['max']:.2f} | {result['cpu']:.2f} | ≤ {goal:g} s: {met} | "
            f"{result['load']} |"
        )

    lines = [row("one ticker (SPY)", engine, result, GOAL_ONE) for engine, result in single.items()]
    lines += [
        row(f"`--all`, {options.champions} synthetic champions", engine, result, GOAL_BATCH)
        for engine, result in many.items()
    ]
    trained = (
        f"trained on the S&P 500 sample in {train_s:.0f} s"
        if train_s is not None
        else "trained on the S&P 500 sample beforehand (`--from-home`)"
    )
    speedup_one = single["keras"]["median"] / single["auto"]["median"]
    speedup_many = many["keras"]["median"] / many["auto"]["median"]
    per_ticker = many["auto"]["median"] / options.champions
    text = f"""# Prediction speed: NumPy engine vs TensorFlow

Measured {started} on this machine ({os.cpu_count()} cores, Python
{platform.python_version()}, {platform.machine()}), by `bench/predict_speed.py`
(`.venv/bin/python bench/predict_speed.py --runs {options.runs} --batch-runs
{options.batch_runs} --champions {options.champions}`). Wall time of fresh
processes (imports included), seconds, and the CPU time (user + system) of
those processes, which depends much less on other work. The machine is shared:
the load column is the 1/5/15-minute load average before → after each case;
with a load above the core count every wall figure is an upper bound.

Model: default settings (`encoder`, 3-member ensemble, 32 units, lookback 22),
{trained}. Every run prints the forecast
and VaR/ES (t distribution, fit on the model's ~3,800 standardized training
returns: the network runs over every origin, not only the last).

The {options.champions} champions are SYNTHETIC, for timing only: copies of
that model registered as SYN000.. with prices derived from the samples
(S&P 500 or NASDAQ, scaled per ticker, 0–19 final days dropped), read with
`--source csv --csv-dir` (each CSV is parsed and cached on every run).

| case | engine | runs | median s | min s | max s | CPU s (median) | goal (wall) | load before → after |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(lines)}

TensorFlow engine / NumPy engine, medians: one ticker ×{speedup_one:.1f}, `--all` ×{speedup_many:.1f};
NumPy `--all` wall / champions: {per_ticker:.2f} s.
"""
    Path(options.output).write_text(text)
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))  # tests.conftest.write_csv
    main()
