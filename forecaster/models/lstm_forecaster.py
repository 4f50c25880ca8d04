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

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecaster import __version__, metrics
from forecaster.data.features import (
    SEQUENCE_FEATURES,
    Dataset,
    FeatureScaler,
    Split,
    build_dataset,
    split_dataset,
)
from forecaster.data.loader import PriceData
from forecaster.errors import ModelError
from forecaster.models.base import Forecaster
from forecaster.models.baselines import HAR
from forecaster.models.config import OBJECTIVES, LSTMConfig
from forecaster.models.record import DataRecord, ModelRecord
from forecaster.models.registry import ModelRegistry, ModelVersion, new_version_id
from forecaster.models.runtime import import_tensorflow

__all__ = [
    "OBJECTIVES",
    "LSTMConfig",
    "LSTMForecaster",
    "TrainOutcome",
    "load_forecaster",
    "summarize",
    "train",
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


def _inputs(dataset: Dataset, scaler: FeatureScaler) -> dict[str, np.ndarray]:
    return {
        "sequence": scaler.transform_sequence(dataset.sequence).astype(np.float32),
        "context": scaler.transform_context(dataset.context).astype(np.float32),
    }


def _take(inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in inputs.items()}


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
    """

    kind = "lstm"

    def __init__(
        self,
        config: LSTMConfig | None = None,
        *,
        threads: int | None = None,
        on_epoch: Callable[[int, float, float], None] | None = None,
    ) -> None:
        super().__init__()
        self.settings = LSTMConfig() if config is None else config
        self.threads = threads
        self.on_epoch = on_epoch
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

    def dataset(self, prices: pd.DataFrame) -> Dataset:
        """The dataset this forecaster's settings build from ``prices``."""
        return build_dataset(prices, self.settings.feature_spec())

    # ------------------------------------------------------------------ hooks
    def _check_dataset(self, dataset: Dataset) -> None:
        expected = self.settings.feature_spec()
        if dataset.spec != expected:
            raise ModelError(
                f"the dataset was built with {dataset.spec} but this LSTM needs {expected}; "
                "build it with forecaster.dataset(prices)"
            )

    def _fit(self, dataset: Dataset, cut: pd.Timestamp) -> None:
        import_tensorflow()
        from forecaster.models.training import fit, predict_z

        self._check_dataset(dataset)
        split = split_dataset(dataset, test_start=cut)
        scaler = FeatureScaler().fit(dataset, split.train)
        inputs = _inputs(dataset, scaler)
        target = dataset.floored_target()
        self.anchor = None
        if self.settings.anchor == "har":
            # HAR on the training rows only; the network learns the log correction to it.
            self.anchor = {"kind": "har", "params": HAR().fit(dataset, split.validation_start).params}
            offset = self._anchor_log(dataset)
            residual = np.log(target[split.train]) - offset[split.train]
            scaler.target_mean = float(residual.mean())
            scaler.target_std = float(residual.std()) if residual.std() > 0 else 1.0
            target_for_z = target * np.exp(-offset)
        else:
            target_for_z = target
        z_all = np.full(len(target), np.nan)
        known = ~np.isnan(target)
        z_all[known] = scaler.transform_target(target_for_z[known])
        model_spec = self.settings.model_spec(len(SEQUENCE_FEATURES), dataset.context.shape[1])
        result = fit(
            model_spec,
            self.settings.train_config(self.threads, float(scaler.target_std)),
            _take(inputs, split.train),
            z_all[split.train],
            _take(inputs, split.validation),
            z_all[split.validation],
            on_epoch=self.on_epoch,
        )
        # Stateful models warm up on every row up to the end of validation, in order.
        upto = np.arange(split.validation[-1] + 1)
        raw = scaler.inverse_target(predict_z(result.model, model_spec, _take(inputs, upto)))
        if self.anchor is not None:
            raw = raw * np.exp(offset[upto])
        validation_raw = raw[split.validation]
        usable = np.isfinite(validation_raw)
        scale = float(np.mean(target[split.validation][usable] / validation_raw[usable]))
        if not (math.isfinite(scale) and scale > 0):
            scale = 1.0
        self.model, self.model_spec, self.scaler = result.model, model_spec, scaler
        self.scale, self.split, self._last = scale, split, None
        self.training = {
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "train_loss": [round(v, 6) for v in result.train_loss],
            "validation_loss": [round(v, 6) for v in result.val_loss],
        }

    def _predict(self, dataset: Dataset, rows: np.ndarray) -> np.ndarray:
        # The network runs over every origin in time order (a stateful model warms up
        # on the history), then the rows asked for are taken; the last run is cached.
        if self._last is None or self._last[0] is not dataset:
            from forecaster.models.training import predict_z

            self._check_dataset(dataset)
            z_hat = predict_z(self.model, self.model_spec, _inputs(dataset, self.scaler))
            raw = self.scaler.inverse_target(z_hat)
            if self.anchor is not None:
                raw = raw * np.exp(self._anchor_log(dataset))
            self._last = (dataset, raw * self.scale)
        return self._last[1][rows]

    def _anchor_log(self, dataset: Dataset) -> np.ndarray:
        """Log of the anchor's forecast at every origin (the fitted HAR's, for ``har``)."""
        har = HAR.with_params(self.anchor["params"])
        har.fit_series(dataset.variance, dataset.returns, dataset.horizon, dataset.origins[-1])
        return np.log(har.predict_origins(dataset.origins))

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
) -> TrainOutcome:
    """Fit an LSTM on ``data`` before the test period and save it as a new version.

    The test period starts at ``test_start`` or holds the last ``test_fraction``
    of the labeled origins. The new version becomes the ticker's champion when
    ``promote``.
    """
    from forecaster.models.lstm import save_model

    forecaster = LSTMForecaster(config, threads=threads, on_epoch=on_epoch)
    dataset = forecaster.dataset(data.prices)
    start = pd.Timestamp(test_start) if test_start is not None else None
    split = split_dataset(dataset, test_start=start, test_fraction=test_fraction)
    forecaster.fit(dataset, split.test_start)
    forecast = forecaster.predict(dataset)
    target = dataset.floored_target()
    scored = {}
    for name, rows in (("validation", split.validation), ("test", split.test)):
        rows = rows[np.isfinite(forecast[rows])]
        scored[name] = summarize(target[rows], forecast[rows])

    record = ModelRecord(
        ticker=data.ticker,
        version=new_version_id(config.init),
        package_version=__version__,
        created_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        config=config,
        network={
            "n_features": forecaster.model_spec.n_features,
            "context_size": forecaster.model_spec.context_size,
            "unroll": forecaster.model_spec.unroll,
        },
        scaler=forecaster.scaler.to_dict(),
        scale=forecaster.scale,
        data=DataRecord(
            source=data.source,
            description=data.description,
            start=f"{data.start:%Y-%m-%d}",
            end=f"{data.end:%Y-%m-%d}",
            rows=int(len(data.prices)),
            fingerprint=data.fingerprint,
            n_floored=int(dataset.n_floored),
        ),
        split=split.to_dict(),
        training=forecaster.training,
        anchor=forecaster.anchor,
        metrics=scored,
        nightly=nightly,
    )
    saved = registry.save(
        record, lambda path: save_model(forecaster.model, path), promote=promote
    )
    return TrainOutcome(saved, forecaster, promote)


def load_forecaster(version: ModelVersion) -> LSTMForecaster:
    """The fitted LSTM forecaster saved as ``version`` (imports TensorFlow)."""
    import_tensorflow()
    from forecaster.models.lstm import load_model

    record = version.record
    return LSTMForecaster.from_record(record, load_model(version.model_path))
