"""Which initial state should I use? Train each strategy with several seeds on one split.

Every (strategy, seed) is an :class:`~forecaster.models.lstm_forecaster.LSTMForecaster`
fit on the data before the same cut and scored on the same held-out test rows;
the result is mean ± std over seeds of QLIKE, MSE and the three biases, with a
reference baseline (HAR by default, fit on the same pre-test data). Nothing is
saved to the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.features import build_dataset, split_dataset
from forecaster.data.loader import PriceData
from forecaster.errors import ConfigError
from forecaster.evaluation.backtest import (
    REFERENCE,
    forecast_rows,
    regime_summary,
    test_period,
)
from forecaster.evaluation.defaults import REGIME_QUANTILE
from forecaster.evaluation.report import _clean, _fmt
from forecaster.models.baselines import create_baseline, usable_baselines
from forecaster.models.config import LSTMConfig
from forecaster.models.lstm_forecaster import LSTMForecaster
from forecaster.tables import markdown_table, text_table

METRICS = ("qlike", "mse", "bias", "bias_high_ex_ante", "bias_high_ex_post")


def compare(
    data: PriceData,
    inits: list[str],
    seeds: int,
    config: LSTMConfig,
    *,
    test_start: str | pd.Timestamp | None = None,
    test_fraction: float = 0.2,
    quantile: float = REGIME_QUANTILE,
    reference: str = REFERENCE,
    baselines: list[str] | None = None,
    threads: int | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    init_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Scores of every strategy over ``seeds`` seeds (0..seeds-1) and of the baselines.

    ``init_options`` maps a strategy to its options (``{"encoder": {"encoder_units": 8}}``);
    a strategy not in it runs with its defaults.

    ``baselines`` (default: the reference alone) are fit on the same pre-test
    data and scored on the same rows; the reference is always among them.
    """
    dataset = build_dataset(data.prices, config.feature_spec())
    start = pd.Timestamp(test_start) if test_start else None
    split = split_dataset(dataset, test_start=start, test_fraction=test_fraction)
    rows = split.test
    thresholds, frame = test_period(dataset, rows, quantile)
    target = frame["target_var"].to_numpy()
    ex_ante = frame["high_ex_ante"].to_numpy(dtype=bool)
    ex_post = frame["high_ex_post"].to_numpy(dtype=bool)
    lags = max(config.horizon, 1)

    def scored(forecast: np.ndarray) -> dict[str, float]:
        full = metrics.score(target, forecast, ex_ante, ex_post, lags)
        return {key: full[key] for key in METRICS}

    names = list(dict.fromkeys([reference, *(baselines or [])]))
    names, notes = usable_baselines(
        names, dataset.exog is not None, has_quarticity=dataset.quarticity is not None
    )
    if reference not in names:
        raise ConfigError(f"--reference {reference}: {notes[0]}; choose another --reference")
    fitted = forecast_rows(dataset, rows, {name: create_baseline(name) for name in names})
    results: dict[str, Any] = {}
    for init in inits:
        runs = []
        for seed in range(seeds):
            if on_progress is not None:
                on_progress(init, seed)
            options = dict((init_options or {}).get(init, {}))
            lstm = LSTMForecaster(
                config.replace(init=init, seed=seed, init_options=options), threads=threads
            )
            runs.append(scored(forecast_rows(dataset, rows, {init: lstm})[init]))
        results[init] = {
            key: {
                "mean": float(np.mean([r[key] for r in runs])),
                "std": float(np.std([r[key] for r in runs], ddof=1)) if seeds > 1 else 0.0,
            }
            for key in METRICS
        }
    return _clean(
        {
            "ticker": data.ticker,
            "horizon": config.horizon,
            "estimator": config.estimator,
            "test_start": f"{dataset.origins[rows[0]]:%Y-%m-%d}",
            "test_end": f"{dataset.origins[rows[-1]]:%Y-%m-%d}",
            "n": int(len(rows)),
            "seeds": seeds,
            "data_source": data.source,
            "regime": regime_summary(thresholds, ex_ante, ex_post),
            "inits": results,
            "reference": reference,
            reference: scored(fitted[reference]),
            "baselines": {name: scored(fitted[name]) for name in names},
            **({"notes": notes} if notes else {}),
        }
    )


FORMATS = {
    "qlike": "{:.4f}",
    "mse": "{:.3e}",
    "bias": "{:+.2%}",
    "bias_high_ex_ante": "{:+.2%}",
    "bias_high_ex_post": "{:+.2%}",
}
HEADERS = {
    "qlike": "QLIKE",
    "mse": "MSE",
    "bias": "bias",
    "bias_high_ex_ante": "bias high ex-ante",
    "bias_high_ex_post": "bias high ex-post",
}


def _rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for init, scores in result["inits"].items():
        cells = [init]
        for key in METRICS:
            mean, std = scores[key]["mean"], scores[key]["std"]
            cells.append(f"{_fmt(FORMATS[key], mean)} ± {_fmt(FORMATS[key].replace('+', ''), std)}")
        rows.append(cells)
    reference = result.get("reference", REFERENCE)
    baselines = result.get("baselines") or {reference: result[reference]}
    for name, scores in baselines.items():
        label = f"{name} (reference)" if name == reference else name
        rows.append([label, *[_fmt(FORMATS[k], scores[k]) for k in METRICS]])
    return rows


def _title(result: dict[str, Any]) -> str:
    return (
        f"{result['ticker']}: initial-state strategies, mean ± std over {result['seeds']} seed(s); "
        f"horizon {result['horizon']}, {result['estimator']}, test {result['test_start']} .. "
        f"{result['test_end']} (n = {result['n']})"
    )


def render_compare_table(result: dict[str, Any]) -> str:
    headers = ["strategy", *[HEADERS[k] for k in METRICS]]
    return "\n".join([_title(result), "", *text_table(headers, _rows(result))]) + "\n"


def render_compare_markdown(result: dict[str, Any]) -> str:
    headers = ["strategy", *[HEADERS[k] for k in METRICS]]
    lines = [f"### {_title(result)}", "", *markdown_table(headers, _rows(result))]
    return "\n".join(lines) + "\n"
