"""Train, save, load and apply an LSTM volatility forecaster end to end.

Training objective (recorded in every model's metadata): the network predicts
the standardized log of the target variance and is trained on ``--loss``:
``mse`` (default) — squared error of the log variance — or ``qlike`` — QLIKE of
the variance written in log units. Because exp(E[log y]) under-states E[y],
a multiplicative correction ``scale = mean(y / f)`` over the *validation* rows
(the QLIKE-optimal constant) is applied to every forecast. Early stopping also
watches the validation rows; the test rows are never used for any choice.

TensorFlow is imported only inside :func:`train` and :class:`LoadedModel`.
"""

from __future__ import annotations

import dataclasses
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
    FeatureSpec,
    Split,
    build_dataset,
    split_dataset,
)
from forecaster.data.loader import PriceData
from forecaster.data.volatility import VARIANCE_FLOOR
from forecaster.errors import ConfigError, RegistryError
from forecaster.models.registry import ModelRegistry, ModelVersion, new_version_id
from forecaster.models.runtime import import_tensorflow

OBJECTIVES = {
    "mse": "MSE on the standardized log target variance; forecasts multiplied by the "
    "QLIKE-optimal scale mean(y/f) estimated on the validation rows",
    "qlike": "QLIKE on the target variance (written in standardized log units); forecasts "
    "multiplied by the QLIKE-optimal scale mean(y/f) estimated on the validation rows",
}


@dataclass(frozen=True)
class TrainOptions:
    """Every choice behind a trained model (recorded in its metadata)."""

    init: str = "encoder"
    horizon: int = 1
    estimator: str = "garman-klass"
    window: int = 22
    lookback: int = 22
    context: int = 252
    units: int = 32
    encoder_units: int = 16
    state_stddev: float = 0.1
    epochs: int = 60
    patience: int = 6
    batch_size: int = 64
    learning_rate: float = 1e-3
    loss: str = "mse"
    seed: int = 0
    threads: int | None = None
    test_start: str | None = None
    test_fraction: float = 0.2

    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec(
            lookback=self.lookback,
            context=self.context,
            horizon=self.horizon,
            estimator=self.estimator,
            window=self.window,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class TrainOutcome:
    """What :func:`train` produced."""

    version: ModelVersion
    promoted: bool
    epochs_run: int
    best_epoch: int
    seconds: float

    @property
    def meta(self) -> dict[str, Any]:
        return self.version.meta


def floored_target(target: np.ndarray) -> np.ndarray:
    """Targets floored at the variance floor (a zero close-to-close day breaks QLIKE)."""
    return np.where(np.isnan(target), np.nan, np.maximum(target, VARIANCE_FLOOR))


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


@dataclass
class FittedForecaster:
    """A freshly fitted network with everything needed to forecast from it."""

    model: Any
    model_spec: Any
    feature_spec: FeatureSpec
    scaler: FeatureScaler
    scale: float
    split: Split
    epochs_run: int
    best_epoch: int
    seconds: float
    train_loss: list[float]
    validation_loss: list[float]

    def predict(self, dataset: Dataset) -> np.ndarray:
        """Variance forecast for every origin of ``dataset`` (NaN for stateful warm-up rows)."""
        from forecaster.models.training import predict_z

        z_hat = predict_z(self.model, self.model_spec, _inputs(dataset, self.scaler))
        return self.scaler.inverse_target(z_hat) * self.scale


def fit_forecaster(
    dataset: Dataset,
    split: Split,
    options: TrainOptions,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> FittedForecaster:
    """Fit scaler, network and bias correction on the split's train/validation rows only."""
    import_tensorflow()
    from forecaster.models.lstm import ModelSpec
    from forecaster.models.training import TrainConfig, fit, predict_z

    scaler = FeatureScaler().fit(dataset, split.train)
    inputs = _inputs(dataset, scaler)
    target = floored_target(dataset.target)
    z_all = np.full(len(target), np.nan)
    known = ~np.isnan(target)
    z_all[known] = scaler.transform_target(target[known])
    model_spec = ModelSpec(
        lookback=options.lookback,
        n_features=len(SEQUENCE_FEATURES),
        context_size=dataset.context.shape[1],
        units=options.units,
        init=options.init,
        state_stddev=options.state_stddev,
        encoder_units=options.encoder_units,
        seed=options.seed,
    )
    config = TrainConfig(
        epochs=options.epochs,
        patience=options.patience,
        batch_size=options.batch_size,
        loss=options.loss,
        learning_rate=options.learning_rate,
        seed=options.seed,
        threads=options.threads,
        target_scale=float(scaler.target_std),
    )
    result = fit(
        model_spec,
        config,
        _take(inputs, split.train),
        z_all[split.train],
        _take(inputs, split.validation),
        z_all[split.validation],
        on_epoch=on_epoch,
    )
    # Warm-up for stateful models: run every row up to the end of validation in order.
    upto = np.arange(split.validation[-1] + 1)
    raw = scaler.inverse_target(predict_z(result.model, model_spec, _take(inputs, upto)))
    validation_raw = raw[split.validation]
    usable = np.isfinite(validation_raw)
    scale = float(np.mean(target[split.validation][usable] / validation_raw[usable]))
    if not (math.isfinite(scale) and scale > 0):
        scale = 1.0
    return FittedForecaster(
        model=result.model,
        model_spec=model_spec,
        feature_spec=dataset.spec,
        scaler=scaler,
        scale=scale,
        split=split,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        seconds=result.seconds,
        train_loss=list(result.train_loss),
        validation_loss=list(result.val_loss),
    )


def train(
    data: PriceData,
    options: TrainOptions,
    registry: ModelRegistry,
    *,
    promote: bool = True,
    on_epoch: Callable[[int, float, float], None] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> TrainOutcome:
    """Fit an LSTM on ``data`` with ``options`` and save it as a new version.

    The new version becomes the ticker's champion when ``promote``.
    """
    from forecaster.models.lstm import save_model

    spec = options.feature_spec()
    dataset = build_dataset(data.prices, spec)
    test_start = pd.Timestamp(options.test_start) if options.test_start else None
    split = split_dataset(dataset, test_start=test_start, test_fraction=options.test_fraction)
    fitted = fit_forecaster(dataset, split, options, on_epoch=on_epoch)
    forecast = fitted.predict(dataset)
    target = floored_target(dataset.target)

    scored = {}
    for name, rows in (("validation", split.validation), ("test", split.test)):
        rows = rows[np.isfinite(forecast[rows])]
        scored[name] = summarize(target[rows], forecast[rows])

    version_id = new_version_id(options.init)
    meta = {
        "package_version": __version__,
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "init": options.init,
        "horizon": options.horizon,
        "estimator": options.estimator,
        "options": options.to_dict(),
        "feature_spec": spec.to_dict(),
        "model_spec": fitted.model_spec.to_dict(),
        "objective": {"loss": options.loss, "description": OBJECTIVES[options.loss]},
        "scaler": fitted.scaler.to_dict(),
        "bias_correction": {"scale": fitted.scale, "estimated_on": "validation"},
        "data": {
            "source": data.source,
            "description": data.description,
            "start": f"{data.start:%Y-%m-%d}",
            "end": f"{data.end:%Y-%m-%d}",
            "rows": int(len(data.prices)),
            "fingerprint": data.fingerprint,
            "n_floored": int(dataset.n_floored),
        },
        "split": split.to_dict(),
        "training": {
            "epochs_run": fitted.epochs_run,
            "best_epoch": fitted.best_epoch,
            "seconds": round(fitted.seconds, 2),
            "train_loss": [round(v, 6) for v in fitted.train_loss],
            "validation_loss": [round(v, 6) for v in fitted.validation_loss],
        },
        "metrics": scored,
        **(extra_meta or {}),
    }
    saved = registry.save(
        data.ticker,
        version_id,
        lambda path: save_model(fitted.model, path),
        meta,
        promote=promote,
    )
    return TrainOutcome(saved, promote, fitted.epochs_run, fitted.best_epoch, fitted.seconds)


class LoadedModel:
    """A saved version, ready to forecast from fresh prices."""

    def __init__(self, version: ModelVersion) -> None:
        import_tensorflow()
        from forecaster.models.lstm import ModelSpec, load_model

        self.version = version
        meta = version.meta
        try:
            self.feature_spec = FeatureSpec.from_dict(meta["feature_spec"])
            self.model_spec = ModelSpec.from_dict(meta["model_spec"])
            self.scaler = FeatureScaler.from_dict(meta["scaler"])
            self.scale = float(meta["bias_correction"]["scale"])
            self.horizon = int(meta["horizon"])
            self.init = str(meta["init"])
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise RegistryError(
                f"model metadata {str(version.path / 'meta.json')!r} is incomplete or corrupt "
                f"({exc.__class__.__name__}: {exc}); retrain with `forecast train --ticker {version.ticker}`"
            ) from None
        self.model = load_model(version.model_path)

    @property
    def meta(self) -> dict[str, Any]:
        return self.version.meta

    def dataset(self, prices: pd.DataFrame) -> Dataset:
        return build_dataset(prices, self.feature_spec)

    @staticmethod
    def dataset_for(meta: dict[str, Any], prices: pd.DataFrame) -> Dataset:
        """The dataset a saved model's metadata describes, without loading the network."""
        return build_dataset(prices, FeatureSpec.from_dict(meta["feature_spec"]))

    def predict(self, dataset: Dataset) -> np.ndarray:
        """Variance forecast for every origin of ``dataset`` (NaN for stateful warm-up rows)."""
        from forecaster.models.training import predict_z

        z_hat = predict_z(self.model, self.model_spec, _inputs(dataset, self.scaler))
        return self.scaler.inverse_target(z_hat) * self.scale


def split_from_meta(dataset: Dataset, meta: dict[str, Any]) -> Split:
    """The recorded split re-applied to ``dataset`` (same test start)."""
    recorded = meta["split"]
    return split_dataset(dataset, test_start=pd.Timestamp(recorded["test_start"]))
