"""Does pooling help a short history? QQQ from 2011 only, with and without SPY.

On the bundled samples (S&P 500 standing in for SPY, NASDAQ Composite for QQQ),
QQQ is given only its history from 2011-01-03; its test period is the last 20%
of those origins (the standard split). Every model uses the default LSTM
settings (no tuning; the test period is only scored) and the same cut, QQQ's
test start, so no row of either series on or after it is used:

* ``har``: HAR fit on QQQ before the cut;
* ``qqq-only``: the LSTM fit on QQQ's short history alone;
* ``spy zero-shot``: the LSTM fit on SPY (full history, cut at QQQ's test
  start), forecasting QQQ as a ticker it never saw (QQQ standardized by its
  own rows before the cut);
* ``pooled spy+qqq``: one LSTM pooled on both series, serving QQQ;
* ``spy -> fine-tuned qqq``: the SPY model fine-tuned on QQQ's training rows
  (same settings, its weights as the start).

QLIKE on QQQ's test period, mean ± std over seeds, and the ratio to HAR.

    .venv/bin/python bench/pooled.py --seeds 3 --output bench/pooled.md
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
SHORT_START = "2011-01-03"
MODELS = ("qqq-only", "spy zero-shot", "pooled spy+qqq", "spy -> fine-tuned qqq")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default=str(HERE / "pooled.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.resolve(home)
        spy = load_prices("SPY", source="sample", settings=settings)
        qqq = load_prices(
            "QQQ", source="sample", start=pd.Timestamp(SHORT_START), settings=settings
        )
    base = LSTMConfig()
    spy_set = LSTMForecaster(base).dataset(spy.prices)
    qqq_set = LSTMForecaster(base).dataset(qqq.prices)
    split = split_dataset(qqq_set, test_fraction=0.2)
    cut, test = split.test_start, split.test
    target = qqq_set.floored_target()[test]
    har = metrics.qlike(target, HAR().fit(qqq_set, cut).predict(qqq_set, test))
    scores: dict[str, list[float]] = {name: [] for name in MODELS}
    for seed in range(args.seeds):
        config = base.replace(seed=seed)

        def score(name: str, forecaster: LSTMForecaster, seed: int = seed) -> None:
            value = metrics.qlike(target, forecaster.predict(qqq_set, test))
            scores[name].append(value)
            print(f"seed {seed} {name}: QLIKE {value:.4f}", flush=True)

        score("qqq-only", LSTMForecaster(config, threads=args.threads).fit(qqq_set, cut))
        spy_model = LSTMForecaster(config, threads=args.threads).fit_pooled({"SPY": spy_set}, cut)
        score("spy zero-shot", spy_model.for_ticker("QQQ", qqq_set))
        both = {"SPY": spy_set, "QQQ": qqq_set}
        pooled = LSTMForecaster(config, threads=args.threads).fit_pooled(both, cut)
        score("pooled spy+qqq", pooled.for_ticker("QQQ"))
        tuned = LSTMForecaster(
            config, threads=args.threads, initial_weights=spy_model.model.get_weights()
        ).fit(qqq_set, cut)
        score("spy -> fine-tuned qqq", tuned)
    rows = [f"| har | {har:.4f} | – | 1.000 |"]
    for name in MODELS:
        mean = float(np.mean(scores[name]))
        std = float(np.std(scores[name], ddof=1)) if len(scores[name]) > 1 else float("nan")
        rows.append(f"| {name} | {mean:.4f} | {std:.4f} | {mean / har:.3f} |")
    minutes = (time.perf_counter() - started) / 60
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    qqq_split = split.to_dict()
    table = "\n".join(rows)
    text = f"""# Pooling for a short history (QQQ from {SHORT_START})

Measured {stamp} by `bench/pooled.py --seeds {args.seeds}` in {minutes:.0f} minutes on this
machine ({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};
shared with other jobs, so no timings are reported).

Data: the bundled samples, S&P 500 standing in for SPY ({spy.start:%Y-%m-%d} to
{spy.end:%Y-%m-%d}) and NASDAQ Composite for QQQ, QQQ cut to start {SHORT_START}
({qqq.start:%Y-%m-%d} to {qqq.end:%Y-%m-%d}). QQQ split: train
{qqq_split['train_start']}..{qqq_split['train_end']} ({qqq_split['n_train']} origins),
validation {qqq_split['validation_start']}..{qqq_split['validation_end']}
({qqq_split['n_validation']}), test {qqq_split['test_start']}..{qqq_split['test_end']}
({qqq_split['n_test']}). Every model is cut at QQQ's test start {cut:%Y-%m-%d}: no row of
SPY or QQQ on or after it is used. Default LSTM settings (encoder, 32 units, lookback 22,
context 252, at most 60 epochs, patience 6, horizon 1, garman-klass), seeds
0..{args.seeds - 1}; nothing was chosen on the test period.

QLIKE on QQQ's test period (lower is better), mean and std over seeds:

| model | QLIKE | std | / HAR |
|---|---|---|---|
{table}

- *spy zero-shot*: fit on SPY alone, forecasting QQQ as a ticker it never saw (QQQ's
  scaler fit on its own rows before the cut).
- *pooled spy+qqq*: one network on both series (per-series scalers, one cut).
- *spy -> fine-tuned qqq*: the SPY model's weights as the start of a fit on QQQ's
  training rows (same settings; early stopping on QQQ's validation rows).
"""
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
