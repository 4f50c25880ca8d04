"""Train the LSTM: seeds, threads, determinism, early stopping, stateful batching.

Inputs are already scaled: ``x = {"sequence": (N, L, F), "context": (N, C)}``
float32 and the target ``z`` (N,) is the standardized log of the target
variance. The loss is written on ``d = z - z_hat``:

* ``mse``: mean d**2;
* ``qlike``: mean exp(s d) - s d - 1 with s = ``TrainConfig.target_scale``, the
  standard deviation used to standardize the log variance; this is exactly
  QLIKE = y/f - ln(y/f) - 1 on the variances y = exp(mu + s z), f = exp(mu + s z_hat).

How rows are fed is the initial-state strategy's business
(:mod:`forecaster.models.initial_state`): shuffled mini-batches by default;
the stateful strategy takes consecutive forecast origins in time order, in
batches of L = lookback rows (slot j of batch k+1 is the origin L days after
slot j of batch k, so the carried state is an exact continuation) and trims the
oldest ``N mod L`` rows.

Importing this module does not import TensorFlow or Keras.
"""

from __future__ import annotations

import functools
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from forecaster.errors import ConfigError, DataError, ModelError
from forecaster.models.feed import WindowFeed
from forecaster.models.initial_state import derive_seed
from forecaster.models.lstm import ModelSpec, build_model

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "FitResult",
    "LossName",
    "TrainConfig",
    "configure_tensorflow",
    "fit",
    "loss_value",
    "predict_z",
]

LossName = Literal["mse", "qlike"]

# XLA compilation of the train step: off (Keras refuses it under op determinism, and
# forcing it made the first epoch ~6x slower and later epochs slower on this CPU).
JIT_COMPILE = False
# Train steps per compiled call: fewer Python round trips (identical results; about 40%
# shorter epochs at the S&P 500 sizes on 2 cores).
STEPS_PER_EXECUTION = 32
# exp() argument cap in the QLIKE loss: keeps a wild early step finite.
_QLIKE_CAP = 50.0


@dataclass(frozen=True)
class TrainConfig:
    """Training options.

    Parameters
    ----------
    epochs : int
        Maximum number of epochs.
    patience : int
        Epochs without a validation improvement before stopping; the best
        weights are restored.
    batch_size : int
        Mini-batch size (stateful models always use ``lookback``).
    loss : {"mse", "qlike"}
        Training loss on the standardized log variance (see module docstring).
    learning_rate : float
        Adam learning rate.
    seed : int
        Seed for TensorFlow, Keras and the epoch shuffles.
    threads : int or None
        TensorFlow intra/inter-op threads; None keeps TensorFlow's default.
    verbose : bool
        Print one line per epoch (losses) to stderr.
    target_scale : float
        Standard deviation s of the log variance behind the standardization
        (only used by ``qlike``).
    epoch_fraction : float
        Share of the training rows one epoch draws (a fresh random subset each
        epoch, without replacement). Below 1, early stopping checks validation
        more often: for long horizons, whose overlapping targets make a full
        epoch of a large panel many near-duplicate steps. Not for stateful models.
    """

    epochs: int = 60
    patience: int = 6
    batch_size: int = 64
    loss: LossName = "mse"
    learning_rate: float = 1e-3
    seed: int = 0
    threads: int | None = None
    verbose: bool = False
    target_scale: float = 1.0
    epoch_fraction: float = 1.0

    def __post_init__(self) -> None:
        for name, minimum in (("epochs", 1), ("patience", 0), ("batch_size", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(
                    f"TrainConfig.{name} must be an integer >= {minimum}; received {value!r}"
                )
        if self.seed > 2**32 - 1:  # NumPy's legacy seeding (Keras) takes 32 bits
            raise ConfigError(f"TrainConfig.seed must be at most 2**32 - 1; received {self.seed!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ConfigError(
                f"TrainConfig.threads must be None or an integer >= 1; received {self.threads!r}"
            )
        if self.loss not in get_args(LossName):
            raise ConfigError(
                f"unknown loss {self.loss!r}; expected one of {', '.join(get_args(LossName))}"
            )
        for name in ("learning_rate", "target_scale"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(
                    f"TrainConfig.{name} must be a finite number > 0; received {value!r}"
                )
        fraction = self.epoch_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
            0 < fraction <= 1
        ):
            raise ConfigError(
                f"epoch_fraction must be a number in (0, 1]; received {fraction!r}"
            )


@dataclass
class FitResult:
    """Outcome of :func:`fit`: the model holds the best epoch's weights."""

    model: keras.Model
    epochs_run: int
    best_epoch: int
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def configure_tensorflow(threads: int | None, seed: int) -> None:
    """Set TensorFlow threads, all seeds and op determinism.

    Thread counts can only change before TensorFlow runs its first op; asking
    again for the counts already in force is a no-op, asking for different ones
    afterwards keeps the old ones and warns (threads affect speed, not results).

    Parameters
    ----------
    threads : int or None
        Intra- and inter-op threads; None keeps TensorFlow's default.
    seed : int
        Passed to ``keras.utils.set_random_seed`` (Python, NumPy, TensorFlow).
    """
    import keras
    import tensorflow as tf

    if threads is not None:
        threading = tf.config.threading
        current = (
            threading.get_intra_op_parallelism_threads(),
            threading.get_inter_op_parallelism_threads(),
        )
        if current != (threads, threads):
            try:
                threading.set_intra_op_parallelism_threads(threads)
                threading.set_inter_op_parallelism_threads(threads)
            except RuntimeError:
                warnings.warn(
                    f"TensorFlow is already running with intra/inter-op threads {current} "
                    f"(0 = automatic); cannot switch to {threads} in this process. "
                    "Set threads before any model is built or loaded.",
                    RuntimeWarning,
                    stacklevel=2,
                )
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def loss_value(
    z: np.ndarray, z_hat: np.ndarray, loss: LossName, target_scale: float = 1.0
) -> float:
    """Mean training loss of ``z_hat`` against ``z`` in NumPy (float64).

    Same definition as the Keras loss used by :func:`fit`.
    """
    d = np.asarray(z, dtype=np.float64).ravel() - np.asarray(z_hat, dtype=np.float64).ravel()
    if loss == "mse":
        return float(np.mean(d**2))
    if loss == "qlike":
        scaled = np.minimum(target_scale * d, _QLIKE_CAP)
        return float(np.mean(np.exp(scaled) - scaled - 1.0))
    raise ConfigError(f"unknown loss {loss!r}; expected one of {', '.join(get_args(LossName))}")


@functools.cache
def _loss_classes() -> Any:
    import keras

    @keras.saving.register_keras_serializable(package="forecaster")
    class QLikeLogLoss(keras.losses.Loss):
        """QLIKE of variances written on standardized log variance: exp(s d) - s d - 1."""

        def __init__(
            self, target_scale: float = 1.0, name: str = "qlike_log", **kwargs: Any
        ) -> None:
            super().__init__(name=name, **kwargs)
            self.target_scale = float(target_scale)

        def call(self, y_true: Any, y_pred: Any) -> Any:
            ops = keras.ops
            scaled = self.target_scale * (ops.cast(y_true, y_pred.dtype) - y_pred)
            scaled = ops.minimum(scaled, _QLIKE_CAP)
            return ops.mean(ops.exp(scaled) - scaled - 1.0, axis=-1)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "target_scale": self.target_scale}

    return QLikeLogLoss


def _make_loss(config: TrainConfig) -> Any:
    import keras

    if config.loss == "mse":
        return keras.losses.MeanSquaredError()
    return _loss_classes()(target_scale=config.target_scale)


def _check_inputs(
    spec: ModelSpec, x: Mapping[str, np.ndarray], z: np.ndarray | None, label: str
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Validate shapes against ``spec`` and return float32 contiguous copies."""
    if not isinstance(x, Mapping) or not {"sequence", "context"} <= set(x):
        keys = sorted(x) if isinstance(x, Mapping) else type(x).__name__
        raise ModelError(
            f"{label} inputs must be a dict with keys 'sequence' and 'context'; received {keys}"
        )
    sequence = np.ascontiguousarray(x["sequence"], dtype=np.float32)
    context = np.ascontiguousarray(x["context"], dtype=np.float32)
    expected_sequence = (spec.lookback, spec.n_features)
    if sequence.ndim != 3 or sequence.shape[1:] != expected_sequence:
        raise ModelError(
            f"{label} 'sequence' must have shape (N, {spec.lookback}, {spec.n_features}) "
            f"to match the model spec; received {sequence.shape}"
        )
    if context.ndim != 2 or context.shape[1] != spec.context_size:
        raise ModelError(
            f"{label} 'context' must have shape (N, {spec.context_size}) to match the model "
            f"spec; received {context.shape}"
        )
    rows = sequence.shape[0]
    if context.shape[0] != rows:
        raise ModelError(
            f"{label} 'sequence' has {rows} rows but 'context' has {context.shape[0]}; "
            "they must describe the same forecast origins"
        )
    if rows == 0:
        raise DataError(f"{label} inputs have no rows; expected at least one forecast origin")
    arrays = {"sequence": sequence, "context": context}
    if z is not None:
        z = np.ascontiguousarray(z, dtype=np.float32).reshape(-1)
        if z.shape[0] != rows:
            raise ModelError(f"{label} target has {z.shape[0]} values for {rows} input rows")
        arrays["target"] = z
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            bad = int(np.sum(~np.isfinite(array)))
            raise DataError(
                f"{label} {name!r} contains {bad} non-finite value(s); "
                "drop or fill those rows before training"
            )
    return {"sequence": sequence, "context": context}, z


def _check_feed(spec: ModelSpec, feed: WindowFeed) -> None:
    """A feed's shapes match ``spec``; its values are finite; the strategy can use one."""
    if spec.stateful:
        raise ModelError(
            "a stateful model trains on consecutive origins of one series, not on a pooled feed"
        )
    if feed.lookback != spec.lookback or feed.n_features != spec.n_features:
        raise ModelError(
            f"training feed windows are ({feed.lookback}, {feed.n_features}) but the model spec "
            f"needs ({spec.lookback}, {spec.n_features})"
        )
    if feed.context_size != spec.context_size:
        raise ModelError(
            f"training feed context has {feed.context_size} columns, the spec {spec.context_size}"
        )
    if len(feed) == 0:
        raise DataError("training inputs have no rows; expected at least one forecast origin")
    feed.check_finite("training")


def _feed_batches(feed: WindowFeed, order: np.ndarray, batch_size: int, members: int) -> Any:
    """A Keras ``PyDataset`` over ``feed``'s rows in ``order``, ``batch_size`` at a time."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)

        def __len__(self) -> int:
            return math.ceil(len(order) / batch_size)

        def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
            rows = order[index * batch_size : (index + 1) * batch_size]
            target = np.repeat(feed.target[rows].reshape(-1, 1), members, axis=1)
            return feed.take(rows), target

    return Batches()


def _take(x: dict[str, np.ndarray], index: Any) -> dict[str, np.ndarray]:
    return {key: value[index] for key, value in x.items()}


def fit(
    spec: ModelSpec,
    config: TrainConfig,
    x_train: Mapping[str, np.ndarray],
    z_train: np.ndarray,
    x_val: Mapping[str, np.ndarray],
    z_val: np.ndarray,
    on_epoch: Callable[[int, float, float], None] | None = None,
    initial_weights: list[np.ndarray] | None = None,
) -> FitResult:
    """Build and train a model with early stopping on the validation loss.

    Parameters
    ----------
    spec : ModelSpec
        The network to build.
    config : TrainConfig
        Training options.
    x_train, z_train : dict of arrays, array
        Training inputs ``{"sequence": (N, L, F), "context": (N, C)}`` and
        targets (N,). For a stateful spec: consecutive origins in time order.
    x_val, z_val : dict of arrays, array
        Validation rows; for a stateful spec they must continue the training rows.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, train_loss, val_loss)`` after each epoch
        (epochs count from 1).
    initial_weights : list of arrays, optional
        Start from these weights (``model.get_weights()`` of a network with the
        same spec) instead of a fresh initialization: fine-tuning.

    Returns
    -------
    FitResult
        The model carries the weights of the best validation epoch.

    Raises
    ------
    ModelError
        Shapes do not match ``spec``, too few rows for a stateful model, or the
        loss became non-finite.
    DataError
        Empty or non-finite inputs.
    """
    start = time.perf_counter()
    feed = x_train if isinstance(x_train, WindowFeed) else None
    if feed is not None:
        _check_feed(spec, feed)
        z_train = feed.target
    else:
        x_train, z_train = _check_inputs(spec, x_train, z_train, "training")
    x_val, z_val = _check_inputs(spec, x_val, z_val, "validation")
    lookback = spec.lookback
    strategy = spec.strategy()
    if feed is None:
        keep = strategy.training_rows(x_train["sequence"].shape[0], lookback)
        x_train, z_train = _take(x_train, keep), z_train[keep]
    batch_size = strategy.batch_size(config.batch_size, lookback)

    configure_tensorflow(config.threads, config.seed)
    import keras

    model = build_model(spec)
    if initial_weights is not None:
        try:
            model.set_weights(initial_weights)
        except ValueError as exc:
            raise ModelError(
                f"the starting weights do not fit a network of this spec ({exc}); fine-tune "
                "with the parent model's own settings"
            ) from None
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=_make_loss(config),
        jit_compile=JIT_COMPILE,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    rng = np.random.default_rng(derive_seed(config.seed, 7))
    rows = len(feed) if feed is not None else x_train["sequence"].shape[0]
    # every ensemble member learns the same target (one output column each)
    target_train = None if feed is not None else np.repeat(z_train.reshape(-1, 1), spec.members, axis=1)

    best_loss, best_epoch, best_weights, waited = math.inf, 0, None, 0
    train_losses: list[float] = []
    val_losses: list[float] = []
    for epoch in range(1, config.epochs + 1):
        order = strategy.epoch_order(model, rng, rows)
        if config.epoch_fraction < 1 and not spec.stateful:
            order = order[: max(1, int(round(config.epoch_fraction * rows)))]
        if feed is not None:  # batches cut from the feed as Keras asks for them
            batches = _feed_batches(feed, order, batch_size, spec.members)
            # shuffle=False: the order is ours (seeded); Keras would reshuffle the batches
            history = model.fit(batches, epochs=1, shuffle=False, verbose=0)
        else:
            history = model.fit(
                _take(x_train, order),
                target_train[order],
                batch_size=batch_size,
                epochs=1,
                shuffle=False,
                verbose=0,
            )
        train_loss = float(history.history["loss"][-1])
        z_hat = strategy.predict_validation(model, lookback, x_train, x_val)
        val_loss = loss_value(z_val, z_hat, config.loss, config.target_scale)
        train_losses.append(train_loss)
        val_losses.append(val_loss)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise ModelError(
                f"training diverged at epoch {epoch} (train loss {train_loss}, validation loss "
                f"{val_loss}); lower the learning rate (now {config.learning_rate}) or use "
                "loss 'mse'"
            )
        if config.verbose:
            print(
                f"epoch {epoch}/{config.epochs}: {config.loss} train {train_loss:.5f} "
                f"validation {val_loss:.5f}",
                file=sys.stderr,
                flush=True,
            )
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best_weights = [variable.value.numpy() for variable in model.weights]
        else:
            waited += 1
            if waited >= config.patience:
                break
    model.set_weights(best_weights)
    strategy.end_training(model)
    return FitResult(
        model=model,
        epochs_run=len(train_losses),
        best_epoch=best_epoch,
        train_loss=train_losses,
        val_loss=val_losses,
        seconds=time.perf_counter() - start,
    )


def predict_z(model: keras.Model, spec: ModelSpec, x: Mapping[str, np.ndarray]) -> np.ndarray:
    """Predict the standardized log variance z_hat for each row of ``x``.

    The spec's strategy feeds the rows (a stateful one needs consecutive
    origins in time order, warms its state on them and gives NaN to the oldest
    ``N mod lookback`` rows; the newest row is always predicted).

    Returns
    -------
    numpy.ndarray
        float64 (N,).

    Raises
    ------
    ModelError
        Shapes do not match ``spec``, the model's statefulness differs from the
        spec's, or a stateful spec gets fewer than ``lookback`` rows.
    """
    from forecaster.models.initial_state import lstm_layers

    x, _ = _check_inputs(spec, x, None, "prediction")
    if getattr(model, "engine", None) == "numpy":  # a NumpyNetwork (models/inference.py)
        stateful = bool(model.stateful)
    else:
        stateful = bool(lstm_layers(model)[0].stateful)
    if stateful != spec.stateful:
        raise ModelError(
            f"model {model.name!r} is {'' if stateful else 'not '}stateful but the spec "
            f"says init={spec.init!r}; use the spec saved with this model"
        )
    return np.asarray(spec.strategy().predict(model, spec.lookback, x), dtype=np.float64)
