"""Speed benchmark: build the default dataset from the full S&P 500 sample.

Times ``build_dataset`` + ``split_dataset`` + ``FeatureScaler.fit`` (default
FeatureSpec: garman-klass, lookback 22, context 252, horizon 1) on the 5031 days
of the ``arch`` S&P 500 sample, in this process, and prints the median and range
of several runs. Nothing is written; a measured result goes, dated, into
bench/README.md. (This used to be a wall-time assertion in
tests/data/test_features.py, which a busy shared machine could fail.)

    .venv/bin/python bench/build_dataset_speed.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import pandas as pd

from forecaster.data.features import FeatureScaler, FeatureSpec, build_dataset, split_dataset


def sp500() -> pd.DataFrame:
    """The S&P 500 sample as a validated-shape price frame (as in the data tests)."""
    from arch.data import sp500 as sample

    raw = sample.load().drop(columns="Adj Close")
    raw.columns = raw.columns.str.lower()
    raw.index.name = "date"
    return raw.astype("float64")


def once(prices: pd.DataFrame, spec: FeatureSpec) -> float:
    """Wall seconds of one build + split + scaler fit."""
    started = time.perf_counter()
    dataset = build_dataset(prices, spec)
    split = split_dataset(dataset)
    FeatureScaler().fit(dataset, split.train)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs after one warm-up")
    args = parser.parse_args()
    prices = sp500()
    spec = FeatureSpec()
    once(prices, spec)  # warm-up: first-call imports and allocations
    seconds = [once(prices, spec) for _ in range(args.runs)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"build_dataset + split + scaler fit, S&P 500 sample ({len(prices)} days), "
        f"{args.runs} runs: median {statistics.median(seconds) * 1000:.1f} ms "
        f"(min {min(seconds) * 1000:.1f}, max {max(seconds) * 1000:.1f}); "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f}"
    )


if __name__ == "__main__":
    main()
