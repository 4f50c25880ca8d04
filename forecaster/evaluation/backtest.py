"""Held-out and walk-forward backtests -> one predictions frame.

The predictions frame has one row per forecast origin of the test period:
``target_var`` (realized mean daily variance over t+1..t+h), ``trailing_var``
(22-day mean known at t), the regime flags ``high_ex_ante`` / ``high_ex_post``,
then one column per model with its forecast variance (``lstm`` first).

No look-ahead: regime thresholds and baseline parameters are fit on rows whose
targets were realized before the test period starts (walk-forward: before each
refit date for the models; thresholds stay those of the first refit date), the
LSTM of the held-out backtest never saw the test period, and every walk-forward
block is forecast by models fit only on earlier data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.features import Dataset, split_dataset
from forecaster.data.loader import PriceData
from forecaster.errors import EvaluationError
from forecaster.evaluation.regimes import RegimeThresholds, fit_thresholds, label
from forecaster.models.baselines import create_baseline
from forecaster.models.pipeline import (
    LoadedModel,
    TrainOptions,
    fit_forecaster,
    floored_target,
    split_from_meta,
)
from forecaster.models.registry import ModelVersion

LSTM = "lstm"
REFERENCE = "har"
MCS_SIZE = 0.1


@dataclass
class Backtest:
    """Forecasts of every model over one test period, with regime labels."""

    ticker: str
    model_version: str
    init: str
    horizon: int
    estimator: str
    mode: str
    predictions: pd.DataFrame
    thresholds: RegimeThresholds
    data_source: str
    refit_every: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        fixed = {"target_var", "trailing_var", "high_ex_ante", "high_ex_post"}
        return [c for c in self.predictions.columns if c not in fixed]


def _pretest_rows(dataset: Dataset, first_test_row: int) -> np.ndarray:
    """Labeled rows whose target is realized before the first test origin's day."""
    rows = np.flatnonzero(dataset.labeled())
    return rows[rows + dataset.horizon <= first_test_row]


def _day_before(dataset: Dataset, row: int) -> pd.Timestamp:
    return dataset.variance.index[int(dataset.positions[row]) - 1]


def _frame(dataset: Dataset, rows: np.ndarray, thresholds: RegimeThresholds) -> pd.DataFrame:
    target = floored_target(dataset.target)[rows]
    trailing = dataset.trailing_var[rows]
    ex_ante, ex_post = label(thresholds, trailing, target)
    return pd.DataFrame(
        {
            "target_var": target,
            "trailing_var": trailing,
            "high_ex_ante": ex_ante,
            "high_ex_post": ex_post,
        },
        index=pd.DatetimeIndex(dataset.origins[rows], name="date"),
    )


def test_period(
    dataset: Dataset, rows: np.ndarray, quantile: float
) -> tuple[RegimeThresholds, pd.DataFrame]:
    """Regime thresholds fit on the pre-test rows, and the labeled frame of the test ``rows``."""
    target = floored_target(dataset.target)
    pretest = _pretest_rows(dataset, int(rows[0]))
    thresholds = fit_thresholds(dataset.trailing_var[pretest], target[pretest], quantile)
    return thresholds, _frame(dataset, rows, thresholds)


def _backtest(
    version: ModelVersion, data: PriceData, mode: str, frame: pd.DataFrame, **extra: Any
) -> Backtest:
    meta = version.meta
    return Backtest(
        ticker=version.ticker,
        model_version=version.version,
        init=meta["init"],
        horizon=int(meta["horizon"]),
        estimator=meta["estimator"],
        mode=mode,
        predictions=frame,
        data_source=data.source,
        **extra,
    )


def _baseline_forecasts(
    dataset: Dataset, names: list[str], fit_end: pd.Timestamp, origins: pd.DatetimeIndex
) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        model = create_baseline(name).fit(
            dataset.variance, dataset.returns, dataset.horizon, fit_end
        )
        out[name] = model.predict(origins)
    return out


def _test_rows(dataset: Dataset, meta: dict[str, Any]) -> np.ndarray:
    split = split_from_meta(dataset, meta)
    end = pd.Timestamp(meta["split"]["test_end"])
    return split.test[dataset.origins[split.test] <= end]


def held_out(
    version: ModelVersion, data: PriceData, baselines: list[str], quantile: float = 0.8
) -> Backtest:
    """Score the saved model and the baselines on the model's recorded test period."""
    loaded = LoadedModel(version)
    meta = version.meta
    dataset = loaded.dataset(data.prices)
    rows = _test_rows(dataset, meta)
    thresholds, frame = test_period(dataset, rows, quantile)
    frame[LSTM] = loaded.predict(dataset)[rows]
    fit_end = _day_before(dataset, int(rows[0]))
    for name, values in _baseline_forecasts(dataset, baselines, fit_end, frame.index).items():
        frame[name] = values
    notes = []
    if meta.get("data", {}).get("fingerprint") and data.fingerprint != meta["data"]["fingerprint"]:
        notes.append(
            f"prices differ from those the model was trained on (data now ends {data.end:%Y-%m-%d}, "
            f"model's ended {meta['data']['end']}); the test period is the recorded one"
        )
    if meta.get("nightly"):
        notes.append(
            f"this model's test period ({meta['nightly'].get('window_start')} .. "
            f"{meta['nightly'].get('window_end')}) is the nightly comparison window on which it "
            "was promoted, so this score is optimistic (selected on those days); "
            "use --walk-forward for an out-of-sample record"
        )
    return _backtest(version, data, "held-out", frame, thresholds=thresholds, notes=notes)


def walk_forward(
    version: ModelVersion,
    data: PriceData,
    baselines: list[str],
    quantile: float = 0.8,
    refit_every: int = 63,
    on_refit: Callable[[int, int, pd.Timestamp], None] | None = None,
) -> Backtest:
    """Expanding-window backtest over the model's test period, refitting every K days.

    The LSTM is retrained with the saved model's options (not its weights) on
    data before each refit date; baselines are refit on the same data.
    """
    if refit_every < 1:
        raise EvaluationError(
            f"--refit-every must be at least 1 trading day; received {refit_every}"
        )
    meta = version.meta
    options = TrainOptions.from_dict(meta["options"])
    dataset = LoadedModel.dataset_for(meta, data.prices)
    rows = _test_rows(dataset, meta)
    thresholds, frame = test_period(dataset, rows, quantile)
    columns: dict[str, np.ndarray] = {LSTM: np.full(len(rows), np.nan)}
    columns.update({name: np.full(len(rows), np.nan) for name in baselines})
    blocks = [rows[i : i + refit_every] for i in range(0, len(rows), refit_every)]
    for number, block in enumerate(blocks, start=1):
        start_row = int(block[0])
        start_date = dataset.origins[start_row]
        if on_refit is not None:
            on_refit(number, len(blocks), start_date)
        split = split_dataset(dataset, test_start=start_date)
        fitted = fit_forecaster(dataset, split, options)
        place = slice(int(block[0] - rows[0]), int(block[-1] - rows[0]) + 1)
        columns[LSTM][place] = fitted.predict(dataset)[block]
        origins = dataset.origins[block]
        for name, values in _baseline_forecasts(
            dataset, baselines, _day_before(dataset, start_row), origins
        ).items():
            columns[name][place] = values
    for name, values in columns.items():
        frame[name] = values
    return _backtest(
        version, data, "walk-forward", frame, thresholds=thresholds, refit_every=refit_every
    )


def summarize(backtest: Backtest) -> dict[str, Any]:
    """The stable JSON shape of ``forecast evaluate`` for one ticker."""
    frame = backtest.predictions
    usable = frame[backtest.models].notna().all(axis=1).to_numpy()
    if not usable.any():
        raise EvaluationError(
            f"{backtest.ticker}: no test origin has a forecast from every model; "
            "use a longer history or an earlier --test-start"
        )
    frame = frame[usable]
    target = frame["target_var"].to_numpy()
    ex_ante = frame["high_ex_ante"].to_numpy(dtype=bool)
    ex_post = frame["high_ex_post"].to_numpy(dtype=bool)
    lags = max(backtest.horizon, 1)
    scores = {
        name: metrics.score(target, frame[name].to_numpy(), ex_ante, ex_post, lags)
        for name in backtest.models
    }
    dm = {}
    if REFERENCE in backtest.models:
        reference = metrics.qlike_losses(target, frame[REFERENCE].to_numpy())
        for name in backtest.models:
            if name != REFERENCE:
                losses = metrics.qlike_losses(target, frame[name].to_numpy())
                dm[name] = metrics.diebold_mariano(losses, reference, backtest.horizon)
    mcs = None
    if len(backtest.models) > 1:
        losses = pd.DataFrame(
            {name: metrics.qlike_losses(target, frame[name].to_numpy()) for name in backtest.models}
        )
        included = metrics.model_confidence_set(
            losses, size=MCS_SIZE, block_size=max(backtest.horizon, int(np.sqrt(len(frame))))
        )
        mcs = {"size": MCS_SIZE, "loss": "qlike", "included": included}
    thresholds = backtest.thresholds
    return {
        "ticker": backtest.ticker,
        "model_version": backtest.model_version,
        "init": backtest.init,
        "horizon": backtest.horizon,
        "estimator": backtest.estimator,
        "test_start": f"{frame.index[0]:%Y-%m-%d}",
        "test_end": f"{frame.index[-1]:%Y-%m-%d}",
        "n": int(len(frame)),
        "mode": backtest.mode,
        "refit_every": backtest.refit_every,
        "data_source": backtest.data_source,
        "regime": {
            "quantile": thresholds.quantile,
            "threshold_ex_ante_vol": float(thresholds.ex_ante_vol),
            "threshold_ex_post_vol": float(thresholds.ex_post_vol),
            "n_high_ex_ante": int(ex_ante.sum()),
            "n_high_ex_post": int(ex_post.sum()),
        },
        "models": scores,
        "diebold_mariano": dm,
        "model_confidence_set": mcs,
        "notes": list(backtest.notes),
    }


def predictions_csv(backtest: Backtest) -> str:
    """``date,target_var,high_ex_ante,high_ex_post,<models>`` with 0/1 flags."""
    frame = backtest.predictions
    out = pd.DataFrame(index=frame.index.strftime("%Y-%m-%d"))
    out.index.name = "date"
    out["target_var"] = frame["target_var"].to_numpy()
    out["high_ex_ante"] = frame["high_ex_ante"].astype(int).to_numpy()
    out["high_ex_post"] = frame["high_ex_post"].astype(int).to_numpy()
    for name in backtest.models:
        out[name] = frame[name].to_numpy()
    return out.to_csv(float_format="%.17g", lineterminator="\n")
