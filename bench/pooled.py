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


def short_history(seeds: int, threads: int | None = None) -> dict:
    """Run the experiment; QLIKE per model and seed, HAR's, and the split facts."""
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
    for seed in range(seeds):
        config = base.replace(seed=seed)

        def score(name: str, forecaster: LSTMForecaster, seed: int = seed) -> None:
            value = metrics.qlike(target, forecaster.predict(qqq_set, test))
            scores[name].append(value)
            print(f"short history, seed {seed} {name}: QLIKE {value:.4f}", flush=True)

        score("qqq-only", LSTMForecaster(config, threads=threads).fit(qqq_set, cut))
        spy_model = LSTMForecaster(config, threads=threads).fit_pooled({"SPY": spy_set}, cut)
        score("spy zero-shot", spy_model.for_ticker("QQQ", qqq_set))
        both = {"SPY": spy_set, "QQQ": qqq_set}
        pooled = LSTMForecaster(config, threads=threads).fit_pooled(both, cut)
        score("pooled spy+qqq", pooled.for_ticker("QQQ"))
        tuned = LSTMForecaster(
            config, threads=threads, initial_weights=spy_model.model.get_weights()
        ).fit(qqq_set, cut)
        score("spy -> fine-tuned qqq", tuned)
    return {
        "har": har,
        "scores": scores,
        "seeds": seeds,
        "config": base,
        "cut": f"{cut:%Y-%m-%d}",
        "split": split.to_dict(),
        "spy": (f"{spy.start:%Y-%m-%d}", f"{spy.end:%Y-%m-%d}"),
        "qqq": (f"{qqq.start:%Y-%m-%d}", f"{qqq.end:%Y-%m-%d}"),
    }


def render_table(result: dict) -> str:
    """The Markdown table: QLIKE mean, std over seeds and ratio to HAR per model."""
    har = result["har"]
    rows = ["| model | QLIKE | std | / HAR |", "|---|---|---|---|", f"| har | {har:.4f} | – | 1.000 |"]
    for name in MODELS:
        values = result["scores"][name]
        mean = float(np.mean(values))
        std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        rows.append(f"| {name} | {mean:.4f} | {std:.4f} | {mean / har:.3f} |")
    return "\n".join(rows)


def describe(result: dict) -> str:
    """The data/split paragraph of the experiment."""
    s, c = result["split"], result["config"]
    return f"""Data: the bundled samples, S&P 500 standing in for SPY ({result['spy'][0]} to
{result['spy'][1]}) and NASDAQ Composite for QQQ, QQQ cut to start {SHORT_START}
({result['qqq'][0]} to {result['qqq'][1]}). QQQ split: train
{s['train_start']}..{s['train_end']} ({s['n_train']} origins),
validation {s['validation_start']}..{s['validation_end']}
({s['n_validation']}), test {s['test_start']}..{s['test_end']}
({s['n_test']}). Every model is cut at QQQ's test start {result['cut']}: no row of
SPY or QQQ on or after it is used. Default LSTM settings ({c.init}, {c.units} units, lookback
{c.lookback}, context {c.context}, {c.ensemble}-member ensemble, at most {c.epochs} epochs,
patience {c.patience}, horizon 1, {c.estimator}), seeds 0..{result['seeds'] - 1}; nothing was
chosen on the test period."""


MODEL_NOTES = """- *spy zero-shot*: fit on SPY alone, forecasting QQQ as a ticker it never saw (QQQ's
  scaler fit on its own rows before the cut).
- *pooled spy+qqq*: one network on both series (per-series scalers, one cut).
- *spy -> fine-tuned qqq*: the SPY model's weights as the start of a fit on QQQ's
  training rows (same settings; early stopping on QQQ's validation rows)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default=str(HERE / "pooled.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    result = short_history(args.seeds, args.threads)
    minutes = (time.perf_counter() - started) / 60
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Pooling for a short history (QQQ from {SHORT_START})

Measured {stamp} by `bench/pooled.py --seeds {args.seeds}` in {minutes:.0f} minutes on this
machine ({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};
shared with other jobs, so no timings are reported).

{describe(result)}

QLIKE on QQQ's test period (lower is better), mean and std over seeds:

{render_table(result)}

{MODEL_NOTES}
"""
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
