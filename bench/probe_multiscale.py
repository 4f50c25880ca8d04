"""Probe (not a feature): add causal 5- and 22-day mean log variance to each sequence day.

Compares QLIKE on the held-out test period (last 20%, sample data) of `encoder` and
`stateful` LSTMs with the standard 3 sequence features vs 5 (plus the two multi-scale
means), two seeds each, as a ratio to HAR. The extra features are computed here, outside
the package, by patching the feature count; the shipped model is unchanged.

    .venv/bin/python bench/probe_multiscale.py SPY 1,22
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile

import numpy as np

import forecaster.data.features as features
import forecaster.models.lstm_forecaster as lstm_forecaster
from forecaster import metrics
from forecaster.data.features import build_dataset, split_dataset
from forecaster.data.loader import load_prices
from forecaster.models.baselines import create_baseline
from forecaster.models.config import LSTMConfig
from forecaster.models.lstm_forecaster import LSTMForecaster
from forecaster.settings import Settings


def main() -> None:
    ticker = sys.argv[1]
    horizons = [int(h) for h in sys.argv[2].split(",")]
    with tempfile.TemporaryDirectory() as home:
        data = load_prices(ticker, source="sample", settings=Settings.resolve(home))
    for horizon in horizons:
        options = LSTMConfig(horizon=horizon)
        dataset = build_dataset(data.prices, options.feature_spec())
        split = split_dataset(dataset, test_fraction=0.2)
        variance = dataset.variance.clip(lower=1e-10)
        scales = np.stack(
            [np.log(variance.rolling(days).mean()).to_numpy() for days in (5, 22)], axis=1
        )
        days = dataset.positions[:, None] - np.arange(options.lookback - 1, -1, -1)[None, :]
        extra = scales[days]  # (N, lookback, 2), each ending at or before its sequence day
        assert np.isfinite(extra).all()
        wide = dataclasses.replace(
            dataset, sequence=np.concatenate([dataset.sequence, extra.astype(np.float32)], axis=2)
        )
        target = dataset.floored_target()[split.test]
        har = create_baseline("har").fit(dataset, split.test_start)
        har_qlike = metrics.qlike(target, har.predict(dataset, split.test))
        for label, candidate, count in (("base", dataset, 3), ("multiscale", wide, 5)):
            names = tuple(f"feature{i}" for i in range(count))
            lstm_forecaster.SEQUENCE_FEATURES = names
            features.SEQUENCE_FEATURES = names
            for init in ("encoder", "stateful"):
                scores = []
                for seed in (0, 1):
                    model = LSTMForecaster(options.replace(init=init, seed=seed))
                    model.fit(candidate, split.test_start)
                    scores.append(metrics.qlike(target, model.predict(candidate, split.test)))
                print(
                    f"| {ticker} | {horizon} | {label} | {init} | {np.mean(scores):.4f} ± "
                    f"{np.std(scores, ddof=1):.4f} | {np.mean(scores) / har_qlike:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
