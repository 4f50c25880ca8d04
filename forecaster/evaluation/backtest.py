"""Held-out and walk-forward backtests -> one predictions frame.

Both loop over one list of :class:`~forecaster.models.base.Forecaster` objects
(the saved LSTM and the baselines) through :func:`forecast_rows`: fit before
the cut, predict the rows after it.

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
from forecaster.errors import ConfigError, EvaluationError, ModelError
from forecaster.evaluation import risk as risks
from forecaster.evaluation.defaults import REGIME_QUANTILE
from forecaster.evaluation.regimes import RegimeThresholds, fit_thresholds, label
from forecaster.models.base import Forecaster
from forecaster.models.baselines import create_baseline, usable_baselines
from forecaster.models.lstm_forecaster import LSTMForecaster, dataset_of, load_forecaster
from forecaster.models.record import ModelRecord
from forecaster.models.registry import ModelVersion

LSTM = "lstm"
#: Default reference model of the Diebold–Mariano tests and ratios.
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
    reference: str = REFERENCE
    refit_every: int | None = None
    notes: list[str] = field(default_factory=list)
    #: With ``risk=True``: the realized h-day log return at each test origin.
    returns_h: np.ndarray | None = None
    #: With ``risk=True``: per model, the standardized training returns of each fit.
    residuals: dict[str, list[risks.ResidualBlock]] | None = None

    @property
    def models(self) -> list[str]:
        fixed = {"target_var", "trailing_var", "high_ex_ante", "high_ex_post"}
        return [c for c in self.predictions.columns if c not in fixed]


def _pretest_rows(dataset: Dataset, first_test_row: int) -> np.ndarray:
    """Labeled rows whose target is realized before the first test origin's day."""
    rows = np.flatnonzero(dataset.labeled())
    return rows[rows + dataset.horizon <= first_test_row]


def _frame(dataset: Dataset, rows: np.ndarray, thresholds: RegimeThresholds) -> pd.DataFrame:
    target = dataset.floored_target()[rows]
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
    target = dataset.floored_target()
    pretest = _pretest_rows(dataset, int(rows[0]))
    thresholds = fit_thresholds(dataset.trailing_var[pretest], target[pretest], quantile)
    return thresholds, _frame(dataset, rows, thresholds)


def forecast_rows(
    dataset: Dataset,
    rows: np.ndarray,
    forecasters: dict[str, Forecaster],
    refit_every: int | None = None,
    on_refit: Callable[[int, int, pd.Timestamp], None] | None = None,
    on_fit: Callable[[str, Forecaster, np.ndarray], None] | None = None,
) -> dict[str, np.ndarray]:
    """Each forecaster's variance forecast at the test ``rows`` (consecutive, in time order).

    Held-out (``refit_every`` None): a fitted forecaster (a saved model) is used
    as it is and an unfitted one is fit once on the data before the first row.
    Walk-forward: the rows are cut into blocks of ``refit_every``; before each
    block a fresh copy of every forecaster (rebuilt from its config) is fit on
    the data before the block. ``on_fit(name, forecaster, block)`` is called
    with the fitted forecaster that forecast each block (the risk view reads
    its in-sample forecasts there).
    """
    if refit_every is None:
        blocks = [rows]
    else:
        if isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1:
            raise EvaluationError(
                f"--refit-every must be at least 1 trading day; received {refit_every}"
            )
        blocks = [rows[i : i + refit_every] for i in range(0, len(rows), refit_every)]
    out = {name: np.full(len(rows), np.nan) for name in forecasters}
    for number, block in enumerate(blocks, start=1):
        cut = dataset.origins[int(block[0])]
        if on_refit is not None and refit_every is not None:
            on_refit(number, len(blocks), cut)
        place = slice(int(block[0] - rows[0]), int(block[-1] - rows[0]) + 1)
        for name, forecaster in forecasters.items():
            if refit_every is not None:
                model = forecaster.untrained().fit(dataset, cut)
            elif forecaster.is_fitted:
                model = forecaster
            else:
                model = forecaster.fit(dataset, cut)
            out[name][place] = model.predict(dataset, block)
            if on_fit is not None:
                on_fit(name, model, block)
    return out


def _test_rows(dataset: Dataset, record: ModelRecord) -> np.ndarray:
    split = split_dataset(dataset, test_start=pd.Timestamp(record.split["test_start"]))
    end = pd.Timestamp(record.split["test_end"])
    return split.test[dataset.origins[split.test] <= end]


def _run(
    version: ModelVersion,
    data: PriceData,
    lstm: LSTMForecaster,
    baselines: list[str],
    quantile: float,
    reference: str,
    refit_every: int | None = None,
    on_refit: Callable[[int, int, pd.Timestamp], None] | None = None,
    risk: bool = False,
    panel_fits: dict[str, Callable[[], Forecaster]] | None = None,
    rows: np.ndarray | None = None,
) -> Backtest:
    record = version.record
    dataset = dataset_of(lstm, data)
    rows = _test_rows(dataset, record) if rows is None else rows
    thresholds, frame = test_period(dataset, rows, quantile)
    forecasters: dict[str, Forecaster] = {LSTM: lstm}
    kept, notes = usable_baselines(
        baselines, dataset.exog is not None, set(panel_fits or {}),
        has_quarticity=dataset.quarticity is not None,
    )
    for name in kept:
        forecasters[name] = panel_fits[name]() if panel_fits and name in panel_fits else (
            create_baseline(name)
        )
    residuals: dict[str, list[risks.ResidualBlock]] = {name: [] for name in forecasters}

    def collect(name: str, model: Forecaster, block: np.ndarray) -> None:
        first = int(block[0])
        factor = risks.overnight_factor(model, dataset, dataset.origins[first])
        residuals[name].append(
            risks.ResidualBlock(
                start=first - int(rows[0]),
                cut=dataset.origins[first],
                residuals=risks.in_sample_residuals(model, dataset, first, factor)
                if np.isfinite(factor) else np.empty(0),
                factor=factor,
            )
        )

    forecasts = forecast_rows(
        dataset, rows, forecasters, refit_every, on_refit, collect if risk else None
    )
    for name, values in forecasts.items():
        frame[name] = values
    if reference not in forecasters:
        notes.append(
            f"the reference model {reference!r} is not among the models scored, so there is "
            "no Diebold–Mariano test; add it to --baselines or pick another --reference"
        )
    return Backtest(
        ticker=data.ticker,
        model_version=version.version,
        init=record.init,
        horizon=record.horizon,
        estimator=record.estimator,
        mode="held-out" if refit_every is None else "walk-forward",
        predictions=frame,
        thresholds=thresholds,
        data_source=data.source,
        reference=reference,
        refit_every=refit_every,
        notes=notes,
        returns_h=(
            risks.horizon_returns(dataset.returns, dataset.positions[rows], dataset.horizon)
            if risk
            else None
        ),
        residuals=residuals if risk else None,
    )


def held_out(
    version: ModelVersion,
    data: PriceData,
    baselines: list[str],
    quantile: float = REGIME_QUANTILE,
    reference: str = REFERENCE,
    risk: bool = False,
    panel_fits: dict[str, Callable[[], Forecaster]] | None = None,
    forecaster: LSTMForecaster | None = None,
) -> Backtest:
    """Score the saved model and the baselines on the model's recorded test period.

    ``risk=True`` also keeps what :func:`risk_summary` needs: the realized
    h-day returns and each model's standardized training returns.
    ``panel_fits`` maps a baseline name to a factory of its panel-fitted copy
    (``har-pooled`` fit on every series of a panel), used instead of a
    per-series fit. ``forecaster`` is the version's loaded network, when the
    caller already has it (a universal model scored on many tickers).
    """
    check_out_of_sample(version.record)
    lstm = load_forecaster(version) if forecaster is None else forecaster
    backtest = _run(
        version, data, lstm, baselines, quantile, reference, risk=risk, panel_fits=panel_fits
    )
    record = version.record
    if data.fingerprint != record.data.fingerprint:
        backtest.notes.append(
            f"prices differ from those the model was trained on (data now ends {data.end:%Y-%m-%d}, "
            f"model's ended {record.data.end}); the test period is the recorded one"
        )
    if record.nightly:
        backtest.notes.append(
            f"this model's test period ({record.nightly.get('window_start')} .. "
            f"{record.nightly.get('window_end')}) is the nightly comparison window on which it "
            "was promoted, so this score is optimistic (selected on those days); "
            "use --walk-forward for an out-of-sample record"
        )
    return backtest


def zero_shot(
    version: ModelVersion,
    data: PriceData,
    baselines: list[str],
    quantile: float = REGIME_QUANTILE,
    reference: str = REFERENCE,
    risk: bool = False,
    panel_fits: dict[str, Callable[[], Forecaster]] | None = None,
    forecaster: LSTMForecaster | None = None,
) -> Backtest:
    """Score a (pooled or universal) model on any ticker's days after the model's cut.

    A ticker the model was trained on keeps its own scaler; any other is
    standardized by its own rows realized before the cut (zero-shot). The test
    period is every origin of ``data`` from the model's test start to the
    data's end; it is refused when the model or an ancestor saw any series on
    those days.
    """
    record = version.record
    base = load_forecaster(version) if forecaster is None else forecaster
    dataset = dataset_of(base, data)
    cut = pd.Timestamp(record.split["test_start"])
    try:
        rows = split_dataset(dataset, test_start=cut).test
    except ConfigError as exc:
        raise EvaluationError(f"{data.ticker}: {exc}") from None
    if rows.size == 0:
        raise EvaluationError(
            f"{data.ticker} has no labeled origin on or after the model's test start "
            f"{cut:%Y-%m-%d} (its prices end {data.end:%Y-%m-%d}); score it on later prices"
        )
    _check_period(record, data.ticker, f"{cut:%Y-%m-%d}", f"{dataset.origins[rows[-1]]:%Y-%m-%d}")
    try:
        view = base.for_ticker(data.ticker, dataset)
    except ModelError as exc:
        raise EvaluationError(str(exc)) from None
    backtest = _run(
        version, data, view, baselines, quantile, reference, risk=risk,
        panel_fits=panel_fits, rows=rows,
    )
    if data.ticker not in base.tickers:
        backtest.notes.append(
            f"{data.ticker} was not among the model's training series: zero-shot, standardized "
            f"by its own rows realized before {cut:%Y-%m-%d}"
        )
    return backtest


def _check_period(record: ModelRecord, ticker: str, start: str, end: str) -> None:
    overlapping = record.overlaps(start, end)
    if not overlapping:
        return
    saw = "; ".join(
        f"{'it' if item['model'] == record.version else 'model ' + item['model']} saw "
        f"{item['ticker']} {item['from']}..{item['to']}"
        for item in overlapping
    )
    after = max(item["to"] for item in overlapping)
    raise EvaluationError(
        f"{ticker}: model {record.version} cannot be scored on {start}..{end}: it overlaps days "
        f"used in training or validation ({saw}), so the scores would not be out of sample; "
        f"score a model whose test start is after {after}"
    )


def check_out_of_sample(record: ModelRecord) -> None:
    """Refuse a test period on days the model or its ancestors saw (any series).

    A pooled model, or one fine-tuned from it, may have seen another series'
    data during this series' test period: that is look-ahead too.
    """
    start, end = record.split["test_start"], record.split["test_end"]
    overlapping = record.overlaps(start, end)
    if not overlapping:
        return
    saw = "; ".join(
        f"{'it' if item['model'] == record.version else 'model ' + item['model']} saw "
        f"{item['ticker']} {item['from']}..{item['to']}"
        for item in overlapping
    )
    first = max(str(item["to"]) for item in overlapping)  # a range ending on the start is clean
    raise EvaluationError(
        f"{record.ticker} model {record.version} cannot be scored on its test period "
        f"{start}..{end}: it overlaps days used in training or validation ({saw}), so the "
        f"scores would not be out of sample; retrain with --test-start {first} or later"
    )


def walk_forward(
    version: ModelVersion,
    data: PriceData,
    baselines: list[str],
    quantile: float = REGIME_QUANTILE,
    refit_every: int = 63,
    on_refit: Callable[[int, int, pd.Timestamp], None] | None = None,
    reference: str = REFERENCE,
    risk: bool = False,
) -> Backtest:
    """Expanding-window backtest over the model's test period, refitting every K days.

    The LSTM is retrained from the saved model's config (not its weights) on
    data before each refit date; baselines are refit on the same data. With
    ``risk=True`` each refit's return distribution is fit on the standardized
    returns before its block.
    """
    if isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1:
        raise EvaluationError(
            f"--refit-every must be at least 1 trading day; received {refit_every}"
        )
    lstm = LSTMForecaster(version.record.config)
    backtest = _run(
        version, data, lstm, baselines, quantile, reference, refit_every, on_refit, risk
    )
    if version.record.series or version.record.parent:
        backtest.notes.append(
            "walk-forward refits the LSTM on this ticker alone from its settings: not pooled "
            "and not from the parent's weights"
        )
    return backtest


def regime_summary(
    thresholds: RegimeThresholds, ex_ante: np.ndarray, ex_post: np.ndarray
) -> dict[str, Any]:
    """The regime block of the JSON reports: thresholds and high-regime day counts."""
    return {
        "quantile": thresholds.quantile,
        "threshold_ex_ante_vol": float(thresholds.ex_ante_vol),
        "threshold_ex_post_vol": float(thresholds.ex_post_vol),
        "n_high_ex_ante": int(ex_ante.sum()),
        "n_high_ex_post": int(ex_post.sum()),
    }


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
    if backtest.reference in backtest.models:
        reference = metrics.qlike_losses(target, frame[backtest.reference].to_numpy())
        for name in backtest.models:
            if name != backtest.reference:
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
        "reference": backtest.reference,
        "regime": regime_summary(thresholds, ex_ante, ex_post),
        "models": scores,
        "diebold_mariano": dm,
        "model_confidence_set": mcs,
        "notes": list(backtest.notes),
    }


def risk_summary(
    backtest: Backtest,
    distribution: str = risks.DEFAULT_DISTRIBUTION,
    levels: Any = risks.DEFAULT_LEVELS,
) -> risks.RiskResult:
    """VaR/ES of every model of ``backtest`` and their coverage backtests (the ``risk`` block).

    The backtest must have been run with ``risk=True``. Any distribution and
    levels can be asked of the same backtest: the forecasts are reused.
    """
    if backtest.returns_h is None or backtest.residuals is None:
        raise EvaluationError(
            "this backtest kept no returns for the risk view; run held_out/walk_forward "
            "with risk=True"
        )
    result = risks.evaluate(
        backtest.predictions,
        backtest.models,
        backtest.returns_h,
        backtest.residuals,
        backtest.horizon,
        distribution,
        levels,
        backtest.reference,
    )
    notes = result.summary["notes"]
    if result.summary["distribution"] == "normal" and backtest.estimator != "close-to-close":
        notes.append(
            f"the normal VaR takes each forecast of {backtest.estimator} variance at face value; "
            "that target leaves out the overnight gap, so the band is too narrow for "
            "close-to-close returns (models of close-to-close variance, such as GARCH, are "
            "not affected); --dist t or fhs rescale on training data"
        )
    if backtest.mode == "walk-forward":
        notes.append(
            "each refit's return distribution is fit on the standardized returns before its block"
        )
    return result


def predictions_csv(backtest: Backtest, risk: risks.RiskResult | None = None) -> str:
    """``date,target_var,high_ex_ante,high_ex_post,<models>`` with 0/1 flags.

    With ``risk`` (from :func:`risk_summary`): then ``return_h`` and
    ``<model>_var_<level>``, ``<model>_es_<level>`` columns.
    """
    frame = backtest.predictions
    out = pd.DataFrame(index=frame.index.strftime("%Y-%m-%d"))
    out.index.name = "date"
    out["target_var"] = frame["target_var"].to_numpy()
    out["high_ex_ante"] = frame["high_ex_ante"].astype(int).to_numpy()
    out["high_ex_post"] = frame["high_ex_post"].astype(int).to_numpy()
    for name in backtest.models:
        out[name] = frame[name].to_numpy()
    if risk is not None:
        for column in risk.frame.columns:
            out[column] = risk.frame[column].to_numpy()
    return out.to_csv(float_format="%.17g", lineterminator="\n")
