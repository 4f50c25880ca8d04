"""Choose the default ensemble size and anchor on VALIDATION data only.

For each sample series (S&P 500 as SPY, NASDAQ Composite as QQQ), horizon and
setting (ensemble K, anchor), fits the default encoder LSTM with several seeds
on the standard split (test = last 20% of origins, never looked at here) and
reports the validation QLIKE — the rows that also drive early stopping and the
scale correction, so this is the in-sample end of the fit, the only place a
choice may be made without touching the test period — as mean ± std over
seeds, next to HAR fit on the training rows and scored on the same validation
rows. Writes Markdown to --output.

    .venv/bin/python bench/select_defaults.py --seeds 3 --output bench/select_defaults.md
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.features import split_dataset
from forecaster.data.loader import load_prices
from forecaster.models.baselines import HAR
from forecaster.models.config import LSTMConfig
from forecaster.models.lstm_forecaster import LSTMForecaster
from forecaster.settings import Settings

HERE = Path(__file__).resolve().parent
INDICES = {"SPY": "S&P 500", "QQQ": "NASDAQ Composite"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--horizons", default="1,5,22")
    parser.add_argument("--settings", default="1:none,1:har,5:none,5:har", help="K:anchor,...")
    parser.add_argument("--output", default=str(HERE / "select_defaults.md"))
    args = parser.parse_args()
    settings = [(int(k), anchor) for k, anchor in (s.split(":") for s in args.settings.split(","))]
    started = time.perf_counter()
    rows: list[str] = []

    def write(complete: bool) -> None:
        minutes = (time.perf_counter() - started) / 60
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
        status = "" if complete else "\n**Partial: the run was still going; rows so far.**\n"
        text = HEADER.format(
            stamp=stamp,
            minutes=minutes,
            seeds=args.seeds,
            horizons=args.horizons,
            settings=args.settings,
            cores=os.cpu_count(),
            machine=platform.machine(),
            last_seed=args.seeds - 1,
        )
        Path(args.output).write_text(text + status + "\n".join(rows) + "\n")

    with tempfile.TemporaryDirectory() as home:
        home_settings = Settings.resolve(home)
        series = {t: load_prices(t, source="sample", settings=home_settings) for t in INDICES}
    for horizon in (int(h) for h in args.horizons.split(",")):
        for ticker, data in series.items():
            base = LSTMConfig(horizon=horizon)
            dataset = LSTMForecaster(base).dataset(data.prices)
            split = split_dataset(dataset, test_fraction=0.2)
            validation = split.validation
            target = dataset.floored_target()[validation]
            har = HAR().fit(dataset, split.validation_start)
            har_qlike = metrics.qlike(target, har.predict(dataset, validation))
            for members, anchor in settings:
                scores, seconds = [], []
                for seed in range(args.seeds):
                    config = base.replace(ensemble=members, anchor=anchor, seed=seed)
                    clock = time.perf_counter()
                    model = LSTMForecaster(config).fit(dataset, split.test_start)
                    seconds.append(time.perf_counter() - clock)
                    scores.append(metrics.qlike(target, model.predict(dataset, validation)))
                    print(ticker, horizon, members, anchor, seed, f"{scores[-1]:.4f}", flush=True)
                mean, std = float(np.mean(scores)), float(np.std(scores, ddof=1))
                rows.append(
                    f"| {ticker} | {horizon} | {members} | {anchor} | {mean:.4f} ± {std:.4f} | "
                    f"{har_qlike:.4f} | {mean / har_qlike:.3f} | {np.mean(seconds):.0f} |"
                )
                write(complete=False)
    write(complete=True)
    print(f"wrote {args.output}")


HEADER = """# Choosing the default ensemble size and anchor (validation only)

Measured {stamp} by `bench/select_defaults.py --seeds {seeds} --horizons {horizons}
--settings {settings}` in {minutes:.0f} minutes on this machine ({cores} cores,
{machine}; other jobs were running, so the seconds are upper bounds). Default encoder
LSTM otherwise; the standard split (test = last 20% of origins, not used here). QLIKE on the
validation rows (last 15% before the test period), mean ± std over seeds 0..{last_seed};
HAR is fit on the training rows and scored on the same rows.

| series | h | ensemble K | anchor | LSTM QLIKE (validation) | HAR QLIKE | ratio | s per fit |
|---|---:|---:|---|---:|---:|---:|---:|
"""


if __name__ == "__main__":
    main()
