"""The LSTM behind the :class:`~forecaster.models.base.Forecaster` contract.

Training objective (recorded in every model's record): the network predicts
the standardized log of the target variance and is trained on ``loss``:
``mse`` (default) — squared error of the log variance — or ``qlike`` — QLIKE of
the variance written in log units. Because exp(E[log y]) under-states E[y],
a multiplicative correction ``scale = mean(y / f)`` over the *validation* rows
(the QLIKE-optimal constant) is applied to every forecast. Early stopping also
watches the validation rows; rows on or after the cut are never used.

:func:`train` fits one on a ticker's prices and saves it as a registry
version; :func:`load_forecaster` reads a version back. TensorFlow is imported
only when a network is fitted or loaded.
"""

from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecaster import __version__, metrics
from forecaster.data.features import (
    MIN_ORIGINS,
    Dataset,
    FeatureScaler,
    Split,
    build_dataset,
    split_dataset,
)
from forecaster.data.loader import PriceData
from forecaster.errors import ConfigError, DataError, ModelError
from forecaster.models.base import Forecaster
from forecaster.models.baselines import HAR
from forecaster.models.config import OBJECTIVES, LSTMConfig
from forecaster.models.feed import SeriesRows, WindowFeed
from forecaster.models.record import DataRecord, ModelRecord
from forecaster.models.registry import ModelRegistry, ModelVersion, new_version_id
from forecaster.models.runtime import import_tensorflow

__all__ = [
    "OBJECTIVES",
    "LSTMConfig",
    "FINE_TUNE_SETTINGS",
    "LSTMForecaster",
    "PooledOutcome",
    "SeriesState",
    "TrainOutcome",
    "ENGINES",
    "check_poolable",
    "dataset_of",
    "fine_tune_config",
    "load_forecaster",
    "summarize",
    "train",
    "train_pooled",
]



def summarize(target_var: np.ndarray, forecast_var: np.ndarray) -> dict[str, float]:
    """QLIKE, MSE, MAE of vol and bias (annualized vol) of forecasts vs targets."""
    return {
        "n": int(len(target_var)),
        "qlike": metrics.qlike(target_var, forecast_var),
        "mse": metrics.mse(target_var, forecast_var),
        "mae_vol": metrics.mae_vol(target_var, forecast_var),
        "bias": metrics.bias(target_var, forecast_var),
    }


def _inputs(
    dataset: Dataset, scaler: FeatureScaler, rows: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Scaled network inputs at ``rows`` (every origin if None)."""
    sequence = dataset.sequence if rows is None else dataset.sequence[rows]
    context = dataset.context if rows is None else dataset.context[rows]
    return {
        "sequence": scaler.transform_sequence(sequence).astype(np.float32),
        "context": scaler.transform_context(context).astype(np.float32),
    }


def _take(inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in inputs.items()}


def _anchor_log(anchor: dict[str, Any], dataset: Dataset) -> np.ndarray:
    """Log of the anchor's forecast at every origin (the fitted HAR's, for ``har``)."""
    har = HAR.with_params(anchor["params"])
    har.fit_series(dataset.variance, dataset.returns, dataset.horizon, dataset.origins[-1])
    return np.log(har.predict_origins(dataset.origins))


@dataclass(frozen=True)
class SeriesState:
    """What a fitted LSTM keeps per series: its scaler, its anchor fit and its split."""

    scaler: FeatureScaler
    anchor: dict[str, Any] | None = None
    split: Split | None = None


@dataclass(frozen=True, eq=False)
class _Prepared:
    """One series made ready for training: split, scaler, anchor, scaled inputs, targets."""

    dataset: Dataset
    split: Split
    scaler: FeatureScaler
    anchor: dict[str, Any] | None
    z: np.ndarray
    target: np.ndarray

    def inputs(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Scaled network inputs at ``rows`` (made when asked: no copy of every window kept)."""
        return _inputs(self.dataset, self.scaler, rows)

    def series_rows(self, rows: np.ndarray) -> SeriesRows:
        """``rows`` of this series for a :class:`~forecaster.models.feed.WindowFeed`."""
        daily = self.scaler.transform_sequence(self.dataset.features)
        context = self.scaler.transform_context(self.dataset.context[rows])
        return SeriesRows(daily, self.dataset.positions[rows], context, self.z[rows])


def check_poolable(config: LSTMConfig) -> None:
    """Refuse settings that cannot be pooled over several series (the stateful strategy)."""
    if config.stateful:
        raise ConfigError(
            f"the {config.init!r} strategy cannot be pooled: it feeds consecutive origins of "
            "one series in time order and its batches cannot cross series; choose another "
            "--init (e.g. encoder) or train each ticker on its own"
        )


def _parse_cut(cut: pd.Timestamp | str) -> pd.Timestamp:
    try:
        cut = pd.Timestamp(cut)
    except (TypeError, ValueError):
        raise ConfigError(f"cut must be a date like 2016-01-04; received {cut!r}") from None
    return cut.tz_localize(None) if cut.tzinfo is not None else cut


class LSTMForecaster(Forecaster):
    """An LSTM with a pluggable initial state, behind the forecaster contract.

    Parameters
    ----------
    config : LSTMConfig
        Network, features and training settings.
    threads : int, optional
        TensorFlow threads while fitting (speed only, not results).
    on_epoch : callable, optional
        ``on_epoch(epoch, train_loss, validation_loss)`` after each epoch.
    initial_weights : list of arrays, optional
        Start training from these weights (a parent model's): fine-tuning.

    Pooled models
    -------------
    :meth:`fit_pooled` trains one network on several series (each standardized
    by its own training rows, one calendar cut for all). The fitted forecaster
    then serves one series at a time: :meth:`for_ticker` gives the view that
    ``predict(dataset, rows)`` of that ticker's dataset goes through, so
    backtests and the CLI use the ordinary contract.
    """

    kind = "lstm"

    def __init__(
        self,
        config: LSTMConfig | None = None,
        *,
        threads: int | None = None,
        on_epoch: Callable[[int, float, float], None] | None = None,
        initial_weights: list[np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.settings = LSTMConfig() if config is None else config
        self.threads = threads
        self.on_epoch = on_epoch
        self.initial_weights = initial_weights
        self.ticker: str | None = None
        self.series: dict[str, SeriesState] | None = None
        self.model: Any = None
        self.model_spec: Any = None
        self.scaler: FeatureScaler | None = None
        self.scale = math.nan
        self.split: Split | None = None
        self.training: dict[str, Any] = {}
        self.anchor: dict[str, Any] | None = None
        self._last: tuple[Dataset, np.ndarray] | None = None

    def config(self) -> dict[str, Any]:
        return self.settings.to_dict()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LSTMForecaster:
        return cls(LSTMConfig.from_dict(config))

    def untrained(self) -> LSTMForecaster:
        return type(self)(self.settings, threads=self.threads, on_epoch=self.on_epoch)

    def dataset(self, prices: pd.DataFrame, exog: pd.DataFrame | None = None) -> Dataset:
        """The dataset this forecaster's settings build from ``prices`` (and its ``exog``)."""
        return build_dataset(prices, self.settings.feature_spec(), exog)

    # ------------------------------------------------------------------ hooks
    def _check_dataset(self, dataset: Dataset) -> None:
        expected = self.settings.feature_spec()
        if dataset.spec != expected:
            raise ModelError(
                f"the dataset was built with {dataset.spec} but this LSTM needs {expected}; "
                "build it with forecaster.dataset(prices)"
            )

    def _prepare(self, dataset: Dataset, cut: pd.Timestamp) -> _Prepared:
        """Split one series at ``cut``, fit its scaler (and anchor) on its training rows."""
        self._check_dataset(dataset)
        split = split_dataset(dataset, test_start=cut)
        scaler = FeatureScaler().fit(dataset, split.train)
        target = dataset.floored_target()
        anchor = None
        target_for_z = target
        if self.settings.anchor == "har":
            # HAR on the training rows only; the network learns the log correction to it.
            anchor = {"kind": "har", "params": HAR().fit(dataset, split.validation_start).params}
            offset = _anchor_log(anchor, dataset)
            residual = np.log(target[split.train]) - offset[split.train]
            scaler.target_mean = float(residual.mean())
            scaler.target_std = float(residual.std()) if residual.std() > 0 else 1.0
            target_for_z = target * np.exp(-offset)
        z_all = np.full(len(target), np.nan)
        known = ~np.isnan(target)
        z_all[known] = scaler.transform_target(target_for_z[known])
        return _Prepared(dataset, split, scaler, anchor, z_all, target)

    def _train(self, parts: Sequence[_Prepared]) -> None:
        """Fit one network on the training rows of every part; one validation scale.

        The scale correction ``mean(y / f)`` is taken over the validation rows of
        all series together (not per series): after per-series standardization
        the bias it corrects (exp E[log y] < E[y]) depends on the spread of the
        log errors, which is alike across series; a per-series estimate from a
        short validation period is noisy; and one scale also applies to a
        ticker the model never saw. With one series this is the usual fit.
        """
        import_tensorflow()
        from forecaster.models.training import fit, predict_z

        model_spec = self.settings.model_spec(
            parts[0].dataset.sequence.shape[2], parts[0].dataset.context.shape[1]
        )
        # QLIKE's scale s of the standardized log variance: one per series; pooled, their mean.
        target_std = float(np.mean([part.scaler.target_std for part in parts]))

        def stacked(rows_of: Callable[[_Prepared], np.ndarray]) -> tuple[dict, np.ndarray]:
            inputs = [part.inputs(rows_of(part)) for part in parts]
            x = {name: np.concatenate([each[name] for each in inputs]) for name in inputs[0]}
            return x, np.concatenate([part.z[rows_of(part)] for part in parts])

        if len(parts) > 1 and parts[0].dataset.features is not None:
            # Pooled: stream the training windows (memory O(days), not O(rows x lookback)).
            x_train = WindowFeed(
                [part.series_rows(part.split.train) for part in parts], model_spec.lookback
            )
            z_train = None
        else:
            x_train, z_train = stacked(lambda part: part.split.train)
        x_validation, z_validation = stacked(lambda part: part.split.validation)
        result = fit(
            model_spec,
            self.settings.train_config(self.threads, target_std),
            x_train,
            z_train,
            x_validation,
            z_validation,
            on_epoch=self.on_epoch,
            initial_weights=self.initial_weights,
        )
        ratios = []
        for part in parts:
            # Stateful models warm up on every row up to the end of validation, in order.
            upto = np.arange(part.split.validation[-1] + 1)
            raw = part.scaler.inverse_target(
                predict_z(result.model, model_spec, part.inputs(upto))
            )
            if part.anchor is not None:
                raw = raw * np.exp(_anchor_log(part.anchor, part.dataset)[upto])
            validation_raw = raw[part.split.validation]
            usable = np.isfinite(validation_raw)
            ratios.append(part.target[part.split.validation][usable] / validation_raw[usable])
        scale = float(np.mean(np.concatenate(ratios)))
        if not (math.isfinite(scale) and scale > 0):
            scale = 1.0
        self.model, self.model_spec, self.scale, self._last = result.model, model_spec, scale, None
        self.training = {
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "train_loss": [round(v, 6) for v in result.train_loss],
            "validation_loss": [round(v, 6) for v in result.val_loss],
        }
        if self.initial_weights is not None:
            self.training["fine_tuned"] = True

    def _fit(self, dataset: Dataset, cut: pd.Timestamp) -> None:
        part = self._prepare(dataset, cut)
        self._train([part])
        self.scaler, self.anchor, self.split = part.scaler, part.anchor, part.split
        self.series = None

    def fit_pooled(self, datasets: Mapping[str, Dataset], cut: pd.Timestamp | str) -> LSTMForecaster:
        """Fit one network on several series with one calendar cut (a pooled model).

        Each series is split at ``cut`` (validation: the last 15% of its origins
        before the cut) and standardized by a :class:`FeatureScaler` fit on its
        own training rows; the features never name the ticker. The training
        rows of all series are shuffled together; early stopping and the scale
        correction use the validation rows of all series. No row of any series
        on or after the cut is used: another market's later volatility is
        look-ahead too.

        Parameters
        ----------
        datasets : mapping of str to Dataset
            One dataset per ticker, built with :meth:`dataset`.
        cut : Timestamp or str
            First origin of the test period, the same date for every series.

        Returns
        -------
        LSTMForecaster
            ``self``, fitted; choose a series with :meth:`for_ticker` to predict.

        Raises
        ------
        ConfigError
            A stateful strategy (its consecutive-origin batches cannot cross
            series), no datasets, or a cut outside a series.
        """
        check_poolable(self.settings)
        if not datasets:
            raise ConfigError("fit_pooled needs at least one series; received none")
        cut = _parse_cut(cut)
        self._fitted = False
        parts: dict[str, _Prepared] = {}
        for ticker, dataset in datasets.items():
            try:
                parts[ticker] = self._prepare(dataset, cut)
            except ConfigError as exc:
                raise ConfigError(f"{ticker}: {exc}") from None
        self._train(list(parts.values()))
        self.series = {
            ticker: SeriesState(part.scaler, part.anchor, part.split)
            for ticker, part in parts.items()
        }
        self.scaler, self.anchor, self.split, self.ticker = None, None, None, None
        self._cut, self._fitted = cut, True
        return self

    @property
    def tickers(self) -> list[str]:
        """The series this model was trained on (empty for an unnamed single series)."""
        if self.series:
            return list(self.series)
        return [] if self.ticker is None else [self.ticker]

    def for_ticker(self, ticker: str, dataset: Dataset | None = None) -> LSTMForecaster:
        """This fitted model serving ``ticker`` (shares the network; nothing is refit).

        A ticker the model was trained on keeps its own scaler (and anchor). A
        ticker it never saw gets a scaler fit on ``dataset``'s labeled rows
        whose targets were realized by the close of the model's cut (and, with
        ``anchor="har"``, a HAR fit before the cut); the model's validation
        scale applies unchanged.

        Raises
        ------
        ModelError
            Not fitted, or an unseen ticker without ``dataset`` or with fewer
            than :data:`~forecaster.data.features.MIN_ORIGINS` rows before the cut.
        """
        if not self._fitted:
            raise ModelError("the LSTM is not fitted; call fit or fit_pooled before for_ticker")
        if ticker == self.ticker and self.scaler is not None:
            return self
        view = copy.copy(self)
        view._last, view.ticker = None, ticker
        if self.series and ticker in self.series:
            state = self.series[ticker]
            view.scaler, view.anchor, view.split = state.scaler, state.anchor, state.split
            return view
        if dataset is None:
            raise ModelError(
                f"the model was trained on {', '.join(self.tickers) or 'one unnamed series'}, "
                f"not {ticker}; pass {ticker}'s dataset to fit its scaler"
            )
        self._check_dataset(dataset)
        horizon = dataset.horizon
        last_day = np.minimum(dataset.positions + horizon, len(dataset.variance) - 1)
        realized = dataset.variance.index[last_day] <= self._cut
        rows = np.flatnonzero(dataset.labeled() & realized)
        if rows.size < MIN_ORIGINS:
            raise ModelError(
                f"{ticker} has {rows.size} labeled origins realized by the model's cut "
                f"{self._cut.date()}; a ticker the model was not trained on is standardized by "
                f"its own rows before that cut and needs at least {MIN_ORIGINS}; pass a longer "
                "history of it"
            )
        view.scaler, view.split = FeatureScaler().fit(dataset, rows), None
        view.anchor = None
        if self.settings.anchor == "har":
            view.anchor = {"kind": "har", "params": HAR().fit(dataset, self._cut).params}
            offset = _anchor_log(view.anchor, dataset)[rows]
            residual = np.log(dataset.floored_target()[rows]) - offset
            view.scaler.target_mean = float(residual.mean())
            view.scaler.target_std = float(residual.std()) if residual.std() > 0 else 1.0
        return view

    def _predict(self, dataset: Dataset, rows: np.ndarray) -> np.ndarray:
        if self.scaler is None:
            raise ModelError(
                f"this LSTM is pooled over {', '.join(self.tickers)}; choose the series to "
                "forecast with forecaster.for_ticker(ticker, dataset)"
            )
        if self._last is not None and self._last[0] is dataset:
            return self._last[1][rows]
        self._check_dataset(dataset)
        if not self.model_spec.stateful and rows.size < len(dataset):
            # A non-stateful network reads each row on its own: run only the rows asked
            # for (`forecast predict` asks for one), not the whole history.
            return self._forward(dataset, rows)
        # A stateful network warms its state on the history in time order, so it runs
        # over every origin; the run is kept for the next call on the same dataset.
        self._last = (dataset, self._forward(dataset, None))
        return self._last[1][rows]

    def _forward(self, dataset: Dataset, rows: np.ndarray | None) -> np.ndarray:
        """Variance forecasts of the network at ``rows`` (every origin if None)."""
        from forecaster.models.training import predict_z

        inputs = _inputs(dataset, self.scaler, rows)
        raw = self.scaler.inverse_target(predict_z(self.model, self.model_spec, inputs))
        if self.anchor is not None:
            anchor = _anchor_log(self.anchor, dataset)
            raw = raw * np.exp(anchor if rows is None else anchor[rows])
        return raw * self.scale

    # ------------------------------------------------------------- persistence
    @classmethod
    def from_record(cls, record: ModelRecord, model: Any) -> LSTMForecaster:
        """A fitted forecaster from a saved record and its Keras model."""
        forecaster = cls(record.config)
        forecaster.model = model
        forecaster.model_spec = record.model_spec()
        forecaster.scaler = FeatureScaler.from_dict(record.scaler)
        forecaster.scale = record.scale
        forecaster.training = dict(record.training)
        forecaster.anchor = record.anchor
        forecaster.ticker = record.ticker
        if record.series:
            forecaster.series = {
                ticker: SeriesState(FeatureScaler.from_dict(entry["scaler"]), entry.get("anchor"))
                for ticker, entry in record.series.items()
            }
        forecaster._cut = pd.Timestamp(record.split["test_start"])
        forecaster._fitted = True
        return forecaster


@dataclass(frozen=True)
class TrainOutcome:
    """What :func:`train` produced: the saved version and the fitted forecaster."""

    version: ModelVersion
    forecaster: LSTMForecaster
    promoted: bool

    @property
    def record(self) -> ModelRecord:
        return self.version.record


#: Settings a fine-tuned model may change from its parent's (the rest shape the network).
FINE_TUNE_SETTINGS = (
    "epochs", "patience", "seed", "learning_rate", "batch_size", "epoch_fraction"
)


def fine_tune_config(parent: ModelRecord, **changes: Any) -> LSTMConfig:
    """The parent's settings with only :data:`FINE_TUNE_SETTINGS` changed.

    Raises
    ------
    ConfigError
        A change to a setting that shapes the network or its inputs.
    """
    fixed = sorted(name for name in changes if name not in FINE_TUNE_SETTINGS)
    if fixed:
        raise ConfigError(
            f"a fine-tuned model keeps its parent's settings; cannot change {', '.join(fixed)} "
            f"(only --epochs, --patience, --seed, --batch-size and --epoch-fraction may differ "
            f"from model {parent.version}; from Python, learning_rate too); drop those options, "
            "or train without --from"
        )
    return parent.config.replace(**changes)


def dataset_of(forecaster: Any, data: PriceData) -> Dataset:
    """``forecaster.dataset`` of ``data``'s prices, with its exogenous inputs when it has any."""
    if data.exog is None:
        return forecaster.dataset(data.prices)
    return forecaster.dataset(data.prices, data.exog)


def _data_record(data: PriceData, dataset: Dataset) -> DataRecord:
    return DataRecord(
        source=data.source,
        description=data.description,
        start=f"{data.start:%Y-%m-%d}",
        end=f"{data.end:%Y-%m-%d}",
        rows=int(len(data.prices)),
        fingerprint=data.fingerprint,
        n_floored=int(dataset.n_floored),
        path=str(data.location) if data.location is not None else None,
    )


def _seen(version: str, ticker: str, dataset: Dataset, split: Split) -> dict[str, str]:
    """The days of ``ticker`` used in training or validation: first price to last target."""
    last = int(dataset.positions[split.validation[-1]]) + dataset.horizon
    return {
        "model": version,
        "ticker": ticker,
        "from": f"{dataset.variance.index[0]:%Y-%m-%d}",
        "to": f"{dataset.variance.index[last]:%Y-%m-%d}",
    }


def _scores(forecaster: LSTMForecaster, dataset: Dataset, split: Split) -> dict[str, Any]:
    forecast = forecaster.predict(dataset)
    target = dataset.floored_target()
    scored = {}
    for name, rows in (("validation", split.validation), ("test", split.test)):
        rows = rows[np.isfinite(forecast[rows])]
        scored[name] = summarize(target[rows], forecast[rows])
    return scored


def _network(forecaster: LSTMForecaster) -> dict[str, Any]:
    return {
        "n_features": forecaster.model_spec.n_features,
        "context_size": forecaster.model_spec.context_size,
        "unroll": forecaster.model_spec.unroll,
    }


def _overnight(dataset: Dataset, test_start: pd.Timestamp) -> dict[str, Any] | None:
    """The overnight factor estimated on the days before the test period, for the record."""
    from forecaster.data.features import overnight_scale

    try:
        return overnight_scale(dataset, test_start).to_dict()
    except DataError:
        return None


def train(
    data: PriceData,
    config: LSTMConfig,
    registry: ModelRegistry,
    *,
    test_start: str | pd.Timestamp | None = None,
    test_fraction: float = 0.2,
    threads: int | None = None,
    promote: bool = True,
    on_epoch: Callable[[int, float, float], None] | None = None,
    nightly: dict[str, Any] | None = None,
    parent: ModelVersion | None = None,
) -> TrainOutcome:
    """Fit an LSTM on ``data`` before the test period and save it as a new version.

    The test period starts at ``test_start`` or holds the last ``test_fraction``
    of the labeled origins. The new version becomes the ticker's champion when
    ``promote``. With ``parent`` (fine-tuning) training starts from the parent's
    weights; ``config`` must keep the parent's network settings
    (:func:`fine_tune_config`), and the record names the parent and carries
    every range it saw, so ``evaluate`` can refuse an overlapping test period.
    """
    from forecaster.models.lstm import save_model

    weights = None
    if parent is not None:
        fine_tune_config(
            parent.record,
            **{
                name: value
                for name, value in config.to_dict().items()
                if value != parent.record.config.to_dict()[name]
            },
        )
        weights = load_forecaster(parent).model.get_weights()
    forecaster = LSTMForecaster(config, threads=threads, on_epoch=on_epoch, initial_weights=weights)
    dataset = dataset_of(forecaster, data)
    start = pd.Timestamp(test_start) if test_start is not None else None
    split = split_dataset(dataset, test_start=start, test_fraction=test_fraction)
    forecaster.fit(dataset, split.test_start)
    forecaster.ticker = data.ticker
    version = new_version_id(config.init)
    seen = [_seen(version, data.ticker, dataset, split)]
    if parent is not None:
        seen += parent.record.seen_ranges()
    record = ModelRecord(
        ticker=data.ticker,
        version=version,
        package_version=__version__,
        created_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        config=config,
        network=_network(forecaster),
        scaler=forecaster.scaler.to_dict(),
        scale=forecaster.scale,
        data=_data_record(data, dataset),
        split=split.to_dict(),
        training=forecaster.training,
        anchor=forecaster.anchor,
        metrics=_scores(forecaster, dataset, split),
        nightly=nightly,
        parent=None if parent is None else {"ticker": parent.ticker, "version": parent.version},
        seen=seen,
        overnight=_overnight(dataset, split.test_start),
    )
    saved = registry.save(
        record, lambda path: save_model(forecaster.model, path), promote=promote
    )
    return TrainOutcome(saved, forecaster, promote)


@dataclass(frozen=True)
class PooledOutcome:
    """What :func:`train_pooled` produced: one saved version per ticker it serves."""

    versions: dict[str, ModelVersion]
    forecaster: LSTMForecaster
    promoted: bool

    @property
    def version(self) -> str:
        return next(iter(self.versions.values())).version

    @property
    def record(self) -> ModelRecord:
        """The record of the first ticker (the others differ only in their own view)."""
        return next(iter(self.versions.values())).record


def train_pooled(
    datas: Sequence[PriceData],
    config: LSTMConfig,
    registry: ModelRegistry,
    *,
    test_start: str | pd.Timestamp | None = None,
    test_fraction: float = 0.2,
    threads: int | None = None,
    promote: bool = True,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> PooledOutcome:
    """Fit one LSTM on several tickers with one cut and save it under each of them.

    The cut is ``test_start`` or, by default, the earliest of the tickers' own
    ``test_fraction`` test starts (every series holds out at least that share).
    The version (same id, same network) is written to ``models/<TICKER>/<id>/``
    for every ticker, with a record whose top-level fields are that ticker's
    view and whose ``series`` lists all; it becomes each ticker's champion
    when ``promote``.
    """
    from forecaster.models.lstm import save_model

    tickers = [data.ticker for data in datas]
    if len(set(tickers)) != len(tickers) or len(tickers) < 2:
        raise ConfigError(
            f"a pooled model needs at least two different tickers; received {', '.join(tickers)}"
        )
    check_poolable(config)
    forecaster = LSTMForecaster(config, threads=threads, on_epoch=on_epoch)
    datasets = {data.ticker: dataset_of(forecaster, data) for data in datas}
    if test_start is not None:
        cut = _parse_cut(test_start)
    else:
        starts = []
        for ticker, dataset in datasets.items():
            try:
                starts.append(split_dataset(dataset, test_fraction=test_fraction).test_start)
            except ConfigError as exc:
                raise ConfigError(f"{ticker}: {exc}") from None
        cut = min(starts)
    forecaster.fit_pooled(datasets, cut)
    version = new_version_id(config.init)
    series: dict[str, dict[str, Any]] = {}
    seen = []
    for data in datas:
        dataset, state = datasets[data.ticker], forecaster.series[data.ticker]
        split = split_dataset(dataset, test_start=cut)
        series[data.ticker] = {
            "data": _data_record(data, dataset).to_dict(),
            "split": split.to_dict(),
            "scaler": state.scaler.to_dict(),
            "anchor": state.anchor,
            "metrics": _scores(forecaster.for_ticker(data.ticker), dataset, split),
            "overnight": _overnight(dataset, split.test_start),
        }
        seen.append(_seen(version, data.ticker, dataset, split))
    first = series[tickers[0]]
    record = ModelRecord(
        ticker=tickers[0],
        version=version,
        package_version=__version__,
        created_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        config=config,
        network=_network(forecaster),
        scaler=first["scaler"],
        scale=forecaster.scale,
        data=DataRecord.from_dict(first["data"]),
        split=first["split"],
        training=forecaster.training,
        anchor=first["anchor"],
        metrics=first["metrics"],
        series=series,
        seen=seen,
        overnight=first["overnight"],
    )
    saved: dict[str, ModelVersion] = {}
    try:
        for ticker in tickers:
            saved[ticker] = registry.save(
                record.for_ticker(ticker),
                lambda path: save_model(forecaster.model, path),
                promote=False,
            )
    except BaseException:
        for written in saved.values():  # no ticker keeps half of a pooled version
            shutil.rmtree(written.path, ignore_errors=True)
        raise
    if promote:
        for ticker in tickers:
            registry.promote(ticker, version, reason="trained (pooled)")
    return PooledOutcome(saved, forecaster, promote)


#: How :func:`load_forecaster` runs a saved network (see its docstring).
ENGINES = ("auto", "numpy", "keras")


def load_forecaster(version: ModelVersion, engine: str = "keras") -> LSTMForecaster:
    """The fitted LSTM forecaster saved as ``version``.

    A pooled model serves the ticker whose folder ``version`` was read from;
    :meth:`LSTMForecaster.for_ticker` switches to another series.

    Parameters
    ----------
    version : ModelVersion
        A version from the registry.
    engine : {"keras", "auto", "numpy"}
        ``keras`` loads the Keras model (imports TensorFlow; needed to train
        on from its weights). ``numpy`` runs the saved weights with a NumPy
        forward pass (:mod:`forecaster.models.inference`), no TensorFlow; it
        is an error when the network has a layer that pass does not know.
        ``auto`` is ``numpy`` when it can serve the network, else ``keras``.
        The forecasts agree to float32 rounding (tests check 1e-6 relative).

    Raises
    ------
    ConfigError
        Unknown ``engine``, or ``numpy`` for a network it cannot serve.
    RegistryError
        The model file is missing or corrupt.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    record = version.record
    if engine != "keras":
        from forecaster.models.inference import UnsupportedNetwork, load_network

        try:
            network = load_network(version.model_path)
        except UnsupportedNetwork as exc:
            if engine == "numpy":
                raise ConfigError(
                    f"model {version.version} cannot run without TensorFlow ({exc}); "
                    "use --engine auto or --engine keras"
                ) from None
        else:
            return LSTMForecaster.from_record(record, network)
    import_tensorflow()
    from forecaster.models.lstm import load_model

    return LSTMForecaster.from_record(record, load_model(version.model_path))
