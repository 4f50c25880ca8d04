"""Speed benchmark: `forecast predict` without TensorFlow (NumPy engine) next to the Keras engine.

One command rewrites bench/predict_speed.md:

    .venv/bin/python bench/predict_speed.py [--runs 5] [--batch-runs 3] [--champions 100]

In a throw-away data home it trains one model with the default settings on the
S&P 500 sample (standing in for SPY; or copies one with ``--from-home``), then
times, in fresh processes (so every import is counted):

1. `forecast predict --ticker SPY --source sample` with `--engine auto` (the
   default: NumPy on the saved weights) and `--engine keras` (TensorFlow);
   median of ``--runs`` runs each. "cold" runs start with no cached VaR/ES fit
   (``<home>/data/cache/risk`` removed before each run: the first predict of a
   model version), "cached" runs find the fit a previous run stored;
2. `forecast predict --all` over ``--champions`` SYNTHETIC tickers (SYN000,
   ...): copies of that one trained model registered as each ticker's champion,
   each with prices derived from the samples (S&P 500 or NASDAQ, every price
   scaled by a per-ticker factor and the last ``i mod 20`` days dropped), read
   with `--source csv --csv-dir`. They exist for timing only: the forecasts of
   a model trained on another series mean nothing. Cold (one run) and cached;
3. where the time of one cached NumPy run goes: `python -X importtime` (the
   top-level imports) in one more process.

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


def timed(command: list[str], home: Path, runs: int, cold: bool = False) -> dict:
    """Median wall time of ``runs`` fresh processes; ``cold``: no cached risk fit at each start."""
    before = load()
    measured = []
    for _ in range(runs):
        if cold:
            shutil.rmtree(home / "data" / "cache" / "risk", ignore_errors=True)
        measured.append(run(command, home))
    seconds = [wall for wall, _ in measured]
    label = "cold" if cold else "cached"
    print(
        label, " ".join(command[3:]), [(round(w, 2), round(c, 2)) for w, c in measured], flush=True
    )
    return {
        "runs": runs,
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "cpu": statistics.median(cpu for _, cpu in measured),
        "load": f"{before} → {load()}",
    }


#: Packages whose import time the breakdown shows (each counted where it is first imported).
BREAKDOWN = ("click", "pandas", "numpy", "pyarrow", "h5py", "scipy", "scipy.stats", "tensorflow")
OWN = "forecaster's own modules (self time)"


def import_breakdown(command: list[str], home: Path) -> tuple[float, float, dict[str, float]]:
    """One run under ``-X importtime``: wall s, all imports s, cumulative s of each package."""
    env = {**os.environ, "FORECAST_HOME": str(home)}
    start = time.perf_counter()
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"importtime run failed:\n{done.stderr[-2000:]}")
    total, packages = 0.0, {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.split("|", 2)
        if name.strip().split(".")[0] == "forecaster":
            packages[OWN] = packages.get(OWN, 0.0) + int(own.split(":")[1]) / 1e6
        if not name.startswith("  "):  # top level: the nested ones are in its cumulative time
            total += int(cumulative) / 1e6
        if name.strip() in BREAKDOWN:
            packages[name.strip()] = int(cumulative) / 1e6
    return seconds, total, packages


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
        "--keras-batch",
        action="store_true",
        help="Also time --all with --engine keras (a cold run first: minutes per 100 champions).",
    )
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
            ("auto", True): timed([*one, "--engine", "auto"], home, options.runs, cold=True),
            ("auto", False): timed([*one, "--engine", "auto"], home, options.runs),
        }
        run([*one, "--engine", "keras"], home)  # stores the Keras engine's own fit; not counted
        single[("keras", False)] = timed([*one, "--engine", "keras"], home, options.runs)
        breakdown = import_breakdown([*one, "--engine", "auto"], home)
        synthetic_champions(batch_home, home, options.champions, csv_dir)
        batch = [*FORECAST, "predict", "--all", "--source", "csv", "--csv-dir", str(csv_dir)]
        batch += ["--format", "csv", "--output", os.devnull]
        many = {
            ("auto", True): timed([*batch, "--engine", "auto"], batch_home, 1, cold=True),
            ("auto", False): timed([*batch, "--engine", "auto"], batch_home, options.batch_runs),
        }
        if options.keras_batch:  # its cold run alone took ~9 minutes here: off by default
            run([*batch, "--engine", "keras"], batch_home)  # the Keras engine's fits; not counted
            many[("keras", False)] = timed([*batch, "--engine", "keras"], batch_home, 1)
    write_report(options, started, train_s, single, many, breakdown)


def write_report(
    options, started: str, train_s: float, single: dict, many: dict, breakdown: tuple
) -> None:
    def row(case: str, key: tuple[str, bool], result: dict, goal: float) -> str:
        met = "yes" if result["median"] <= goal else "**no**"
        if case.startswith("`--all`") and options.champions != 100:
            met = "n/a (the goal is for 100)"
        engine, cold = key
        label = "NumPy (auto)" if engine == "auto" else "TensorFlow (keras)"
        fit = "cold (fit computed)" if cold else "cached"
        return (
            f"| {case} | {label} | {fit} | {result['runs']} | {result['median']:.2f} | "
            f"{result['min']:.2f} | {result['max']:.2f} | {result['cpu']:.2f} | "
            f"≤ {goal:g} s: {met} | {result['load']} |"
        )

    lines = [row("one ticker (SPY)", key, result, GOAL_ONE) for key, result in single.items()]
    lines += [
        row(f"`--all`, {options.champions} synthetic champions", key, result, GOAL_BATCH)
        for key, result in many.items()
    ]
    trained = (
        f"trained on the S&P 500 sample in {train_s:.0f} s"
        if train_s is not None
        else "trained on the S&P 500 sample beforehand (`--from-home`)"
    )
    cached_one, cold_one = single[("auto", False)], single[("auto", True)]
    cached_many, cold_many = many[("auto", False)], many[("auto", True)]
    speedup_one = single[("keras", False)]["median"] / cached_one["median"]
    keras_many = (
        f", `--all` ×{many[('keras', False)]['median'] / cached_many['median']:.1f}"
        if ("keras", False) in many
        else ""
    )
    import_wall, imports, packages = breakdown
    import_lines = ", ".join(
        f"{name} {packages[name]:.2f}" for name in BREAKDOWN if name in packages
    )
    absent = ", ".join(name for name in BREAKDOWN if name not in packages)
    text = f"""# Prediction speed: NumPy engine vs TensorFlow, with and without a cached VaR/ES fit

Measured {started} on this machine ({os.cpu_count()} cores, Python
{platform.python_version()}, {platform.machine()}), by `bench/predict_speed.py`
(`.venv/bin/python bench/predict_speed.py --runs {options.runs} --batch-runs
{options.batch_runs} --champions {options.champions}{" --from-home HOME" if train_s is None else ""}`).
Wall time of fresh processes (imports included), seconds, and the CPU time
(user + system) of those processes, which depends much less on other work. The
machine is shared: the load column is the 1/5/15-minute load average before →
after each case; with a load above the core count every wall figure is an
upper bound.

Model: default settings (`encoder`, 3-member ensemble, 32 units, lookback 22),
{trained}. Every run prints the forecast and VaR/ES (t distribution, fit on
the model's ~3,800 standardized training returns). **cold**: no cached fit
(`data/cache/risk` removed before each run, as at the first predict of a new
model version): the network runs over every training origin and the t
distribution is fit (scipy.stats + scipy.optimize imported). **cached**: the
fit stored by an earlier run of the same version, engine and pre-cut prices is
used (`forecaster/evaluation/risk_cache.py`): the network runs on the last
origin only and scipy is not imported. Both print the same numbers.

The {options.champions} champions are SYNTHETIC, for timing only: copies of
that model registered as SYN000.. with prices derived from the samples
(S&P 500 or NASDAQ, scaled per ticker, 0–19 final days dropped), read with
`--source csv --csv-dir` (each CSV is parsed and cached on every run).

| case | engine | VaR/ES fit | runs | median s | min s | max s | CPU s (median) | goal (wall) | load before → after |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(lines)}

TensorFlow engine / NumPy engine, medians with a cached fit: one ticker ×{speedup_one:.1f}{keras_many}.
A cached fit saves {cold_one["median"] - cached_one["median"]:.2f} s wall
({cold_one["cpu"] - cached_one["cpu"]:.2f} s CPU) per single-ticker run and
{cold_many["median"] - cached_many["median"]:.1f} s wall over the {options.champions}
champions; NumPy `--all` wall / champions, cached: {cached_many["median"] / options.champions:.3f} s.

## Where the time of one cached NumPy run goes

One more run under `python -X importtime` ({import_wall:.2f} s wall, importtime's own
overhead included): {imports:.2f} s of it are imports. Cumulative import seconds of
each package where it is first imported (a package imported inside another counts
in both: numpy in pandas, pandas in forecaster): {import_lines}; not imported:
{absent or "none"}. The rest is interpreter start-up, reading the prices, the
model and the cached fit, and one forward pass.
"""
    Path(options.output).write_text(text)
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))  # tests.conftest.write_csv
    main()
