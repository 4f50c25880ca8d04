"""Initial-state strategies for the LSTM, registered by name (DESIGN.md §5).

A strategy decides the LSTM's initial hidden and cell state ``(h0, c0)``. It
adds its layers to the functional graph in :meth:`InitialState.initial_state`
and returns the two state tensors, or ``None`` for Keras' zero state.

Adding a strategy means writing one subclass of :class:`InitialState` and
decorating it with :func:`register`; the CLI's ``--init`` choices come from
:func:`available_strategies` and its options (``defaults``) are set with
``--init-option NAME=VALUE``.

A strategy also owns how its network is fed: the base class trains on shuffled
mini-batches and predicts row by row; :class:`StatefulState` overrides those
hooks (consecutive origins in time order, state carried across batches, warm-up
at inference), so the trainer has no strategy-specific branches.

Importing this module does not import TensorFlow or Keras: Keras is imported
inside the methods that build layers, and the custom layer classes are created
(and registered for ``.keras`` loading) on first use by :func:`ensure_registered`.
"""

from __future__ import annotations

import functools
import math
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, ClassVar

from forecaster.errors import ConfigError, ModelError

__all__ = [
    "LSTM_LAYER",
    "STRATEGIES",
    "InitialState",
    "available_strategies",
    "create_strategy",
    "derive_seed",
    "ensure_registered",
    "lstm_layers",
    "parse_option",
    "predict_rows",
    "register",
]

STRATEGIES: dict[str, type[InitialState]] = {}

#: Name of the LSTM layer in every model (stateful strategies reset its state).
LSTM_LAYER = "lstm"
# Rows per call when predicting with a non-stateful model.
_PREDICT_CHUNK = 8192

_SEED_MODULUS = 2**31 - 1


def derive_seed(seed: int, *path: int) -> int:
    """Return a reproducible sub-seed of ``seed`` for the component ``path``.

    Every initializer of a model gets its own seed this way, so no Keras
    default seed (drawn from Python's global ``random``) is ever used.
    """
    import numpy as np

    state = np.random.SeedSequence(seed, spawn_key=path).generate_state(1)[0]
    return int(state) % _SEED_MODULUS


def register(cls: type[InitialState]) -> type[InitialState]:
    """Class decorator: add a strategy to :data:`STRATEGIES` under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} must define a non-empty class attribute `name`")
    if name in STRATEGIES and STRATEGIES[name] is not cls:
        raise TypeError(f"an initial-state strategy named {name!r} is already registered")
    STRATEGIES[name] = cls
    return cls


def available_strategies() -> list[str]:
    """Names of the registered strategies, in registration order."""
    return list(STRATEGIES)


def create_strategy(name: str, units: int, seed: int, **options: Any) -> InitialState:
    """Instantiate the strategy registered as ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`available_strategies`.
    units : int
        Number of LSTM units (size of h0 and c0).
    seed : int
        Seed for every initializer and random draw the strategy makes.
    **options
        Strategy options (see each class's ``defaults``).

    Raises
    ------
    ConfigError
        Unknown name, unknown option or invalid option value.
    """
    if name not in STRATEGIES:
        raise ConfigError(
            f"unknown initial-state strategy {name!r}; expected one of "
            f"{', '.join(available_strategies())} (pass one of them to --init)"
        )
    return STRATEGIES[name](units, seed, **options)


def parse_option(strategy: str, text: str) -> tuple[str, Any]:
    """Parse ``NAME=VALUE`` for a strategy's option, typed like the option's default.

    Raises
    ------
    ConfigError
        Unknown strategy or option, no ``=``, or a value of the wrong type.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown initial-state strategy {strategy!r}; expected one of "
            f"{', '.join(available_strategies())} (pass one of them to --init)"
        )
    defaults = STRATEGIES[strategy].defaults
    accepted = ", ".join(f"{key}={value!r}" for key, value in defaults.items()) or "none"
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise ConfigError(
            f"--init-option expects NAME=VALUE; received {text!r} (options of {strategy!r}: "
            f"{accepted})"
        )
    if name not in defaults:
        raise ConfigError(
            f"initial-state strategy {strategy!r} has no option {name!r}; it accepts: {accepted}"
        )
    kind = type(defaults[name])
    raw = raw.strip()
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            value: Any = raw.lower() in ("true", "1", "yes")
        else:
            value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"--init-option {name}={raw!r}: expected a {kind.__name__} value for option "
            f"{name!r} of {strategy!r} (default {defaults[name]!r})"
        ) from None
    return name, value


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; received {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be an integer <= {maximum}; received {value!r}")
    return value


def _check_positive_float(name: str, value: Any, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a positive number; received {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0; received {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}; received {value!r}")
    return float(value)


class InitialState(ABC):
    """Base class of initial-state strategies.

    Subclasses set ``name`` (the registry key), ``defaults`` (accepted options
    and their default values) and implement :meth:`_build`; they may override
    :meth:`_validate_options`. ``stateful = True`` asks the model builder for a
    stateful LSTM with a fixed batch size.

    Parameters
    ----------
    units : int
        Number of LSTM units (>= 1).
    seed : int
        Seed (>= 0) for the strategy's initializers and random draws.
    **options
        Values for the keys of ``defaults``; anything else is a ConfigError.
    """

    name: ClassVar[str]
    stateful: ClassVar[bool] = False
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, units: int, seed: int, **options: Any) -> None:
        self.units = _check_int("units", units, 1)
        self.seed = _check_int("seed", seed, 0)
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise ConfigError(
                f"initial-state strategy {self.name!r} got unknown option(s) "
                f"{', '.join(unknown)}; it accepts: {valid}"
            )
        self.options: dict[str, Any] = self._validate_options({**self.defaults, **options})

    def _validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise ``options``; raise ConfigError on a bad value."""
        return options

    def initial_state(self, sequence_input: Any, context_input: Any) -> list[Any] | None:
        """Build the state layers on the model's inputs.

        Parameters
        ----------
        sequence_input, context_input : KerasTensor
            The model's ``sequence`` (B, L, F) and ``context`` (B, C) inputs.

        Returns
        -------
        list of KerasTensor or None
            ``[h0, c0]``, each (B, units), or None for the zero state.
        """
        return self._build(sequence_input, context_input)

    @abstractmethod
    def _build(self, sequence_input: Any, context_input: Any) -> list[Any] | None:
        """Strategy-specific graph construction (see :meth:`initial_state`)."""

    def config(self) -> dict[str, Any]:
        """JSON-safe options of this strategy, for the model's metadata."""
        return dict(self.options)

    # --- how the network is fed (plain: shuffled mini-batches) ---------------

    def batch_size(self, requested: int, lookback: int) -> int:
        """Fixed batch size of the Keras input, or None for any batch."""
        return requested

    def input_batch(self, lookback: int) -> int | None:
        """Batch dimension of the model's inputs (None = any)."""
        return None

    def training_rows(self, rows: int, lookback: int) -> slice:
        """The rows of the training set to fit on."""
        return slice(0, rows)

    def epoch_order(self, model: Any, rng: Any, rows: int) -> Any:
        """Row order of one epoch (called at the start of each epoch)."""
        return rng.permutation(rows)

    def predict_validation(
        self, model: Any, lookback: int, x_train: dict[str, Any], x_val: dict[str, Any]
    ) -> Any:
        """z_hat of the validation rows after an epoch."""
        return predict_rows(model, x_val)

    def predict(self, model: Any, lookback: int, x: dict[str, Any]) -> Any:
        """z_hat (float64) for each row of ``x``; NaN where the strategy cannot forecast."""
        return predict_rows(model, x)

    def end_training(self, model: Any) -> None:
        """Called once the best weights are restored (plain models keep no state)."""
        return None

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"{type(self).__name__}(units={self.units}, seed={self.seed}, {options})"


@register
class ZerosState(InitialState):
    """h0 = c0 = 0, Keras' default."""

    name = "zeros"

    def _build(self, sequence_input: Any, context_input: Any) -> None:
        return None


@register
class RandomState(InitialState):
    """Truncated-normal (h0, c0), drawn per sequence while training; zeros at inference."""

    name = "random"
    defaults = {"state_stddev": 0.1}

    def _validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options["state_stddev"] = _check_positive_float(
            "state_stddev", options["state_stddev"], maximum=10.0
        )
        return options

    def _build(self, sequence_input: Any, context_input: Any) -> list[Any]:
        layer = _layer_classes().RandomInitialState(
            units=self.units,
            stddev=self.options["state_stddev"],
            seed=derive_seed(self.seed, 1),
            name="random_state",
        )
        initial_h, initial_c = layer(sequence_input)
        return [initial_h, initial_c]


@register
class LearnedState(InitialState):
    """Trainable vectors h0, c0 (initialised at zero), broadcast over the batch."""

    name = "learned"

    def _build(self, sequence_input: Any, context_input: Any) -> list[Any]:
        layer = _layer_classes().LearnedInitialState(units=self.units, name="learned_state")
        initial_h, initial_c = layer(sequence_input)
        return [initial_h, initial_c]


@register
class EncoderState(InitialState):
    """A small network reads the context: z = tanh(W z_in + b), h0 = tanh(W_h z + b_h), c0 = W_c z + b_c."""

    name = "encoder"
    defaults = {"encoder_units": 16}

    def _validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        _check_int("encoder_units", options["encoder_units"], 1, maximum=1024)
        return options

    def _build(self, sequence_input: Any, context_input: Any) -> list[Any]:
        import keras

        def glorot(index: int) -> Any:
            return keras.initializers.GlorotUniform(seed=derive_seed(self.seed, 2, index))

        encoded = keras.layers.Dense(
            self.options["encoder_units"],
            activation="tanh",
            kernel_initializer=glorot(0),
            name="encoder_hidden",
        )(context_input)
        initial_h = keras.layers.Dense(
            self.units, activation="tanh", kernel_initializer=glorot(1), name="encoder_h0"
        )(encoded)
        initial_c = keras.layers.Dense(
            self.units, activation=None, kernel_initializer=glorot(2), name="encoder_c0"
        )(encoded)
        return [initial_h, initial_c]


@register
class StatefulState(InitialState):
    """Keras stateful LSTM: state carried across consecutive batches in time order.

    The model is built with a fixed batch size equal to the lookback; training
    and prediction feed consecutive forecast origins in time order (see
    :mod:`forecaster.models.training`).
    """

    name = "stateful"
    stateful = True

    def _build(self, sequence_input: Any, context_input: Any) -> None:
        return None

    def batch_size(self, requested: int, lookback: int) -> int:
        return lookback

    def input_batch(self, lookback: int) -> int:
        return lookback

    def training_rows(self, rows: int, lookback: int) -> slice:
        if rows < lookback:
            raise ModelError(
                f"a stateful model needs at least lookback={lookback} training rows "
                f"(one batch of consecutive origins); received {rows}"
            )
        return slice(rows % lookback, rows)  # drop the oldest rows

    def epoch_order(self, model: Any, rng: Any, rows: int) -> Any:
        reset_states(model)
        return slice(None)

    def predict_validation(
        self, model: Any, lookback: int, x_train: dict[str, Any], x_val: dict[str, Any]
    ) -> Any:
        import numpy as np

        rows = x_train["sequence"].shape[0]
        joined = {key: np.concatenate([x_train[key], x_val[key]]) for key in x_train}
        z_hat = _predict_stateful(model, lookback, _pad_to_multiple(joined, lookback))
        return z_hat[rows : rows + x_val["sequence"].shape[0]]

    def predict(self, model: Any, lookback: int, x: dict[str, Any]) -> Any:
        """Reset, run the rows in time order (the history warms up the state), reset.

        The oldest ``N mod lookback`` rows, which cannot fill a batch, get NaN;
        the newest row is always predicted.
        """
        import numpy as np

        rows = x["sequence"].shape[0]
        if rows < lookback:
            raise ModelError(
                f"a stateful model predicts from at least lookback={lookback} consecutive "
                f"origins (the history warms up the state); received {rows} rows"
            )
        trimmed = rows % lookback
        z_hat = np.full(rows, np.nan)
        try:
            z_hat[trimmed:] = _predict_stateful(
                model, lookback, {key: value[trimmed:] for key, value in x.items()}
            )
        finally:
            reset_states(model)
        return z_hat

    def end_training(self, model: Any) -> None:
        reset_states(model)


# --- feeding a model -------------------------------------------------------------


def lstm_layers(model: Any) -> list[Any]:
    """The LSTM layer of every ensemble member (members are nested models)."""
    found: list[Any] = []

    def walk(layer: Any) -> None:
        if layer.name == LSTM_LAYER and hasattr(layer, "reset_state"):
            found.append(layer)
        for inner in getattr(layer, "layers", []):
            walk(inner)

    for layer in model.layers:
        walk(layer)
    if not found:
        raise ModelError(
            f"model {model.name!r} has no layer named {LSTM_LAYER!r}; "
            "it was not built by forecaster.models.lstm.build_model"
        )
    return found


def _is_numpy(model: Any) -> bool:
    """Whether ``model`` is a :class:`~forecaster.models.inference.NumpyNetwork`, not Keras."""
    return getattr(model, "engine", None) == "numpy"


def reset_states(model: Any) -> None:
    """Reset the carried state of every (stateful) LSTM layer of ``model``."""
    if _is_numpy(model):
        model.reset_states()
        return
    for layer in lstm_layers(model):
        layer.reset_state()


def _member_mean(z_hat: Any, rows: int) -> Any:
    """z_hat (rows, members) averaged over the members: the ensemble in log variance."""
    import numpy as np

    return np.asarray(z_hat).reshape(rows, -1).mean(axis=1)


def predict_rows(model: Any, x: dict[str, Any]) -> Any:
    """z_hat (float64) of a non-stateful model for every row, in chunks."""
    import numpy as np

    rows = x["sequence"].shape[0]
    parts = [
        np.asarray(
            model.predict_on_batch(
                {key: value[start : start + _PREDICT_CHUNK] for key, value in x.items()}
            )
        )
        for start in range(0, rows, _PREDICT_CHUNK)
    ]
    return _member_mean(np.concatenate(parts), rows).astype(np.float64)


_STATEFUL_FORWARD: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _stateful_forward(model: Any) -> Any:
    """A compiled function running a stateful model over K batches in one call.

    Takes ``sequence`` (K, B, L, F) and ``context`` (K, B, C) and returns
    z_hat (K, B, 1); batch k + 1 starts from the state batch k left. Cached per
    model, traced once (K is dynamic).
    """
    forward = _STATEFUL_FORWARD.get(model)
    if forward is None:
        import tensorflow as tf

        model_ref = weakref.ref(model)  # a strong reference would keep the cache entry alive

        sequence_spec, context_spec = (
            tf.TensorSpec((None, *model.get_layer(name).output.shape), tf.float32)
            for name in ("sequence", "context")
        )

        @tf.function(input_signature=[sequence_spec, context_spec])
        def forward(sequence: Any, context: Any) -> Any:
            count = tf.shape(sequence)[0]
            outputs = tf.TensorArray(tf.float32, size=count)
            for index in tf.range(count):
                batch = {"sequence": sequence[index], "context": context[index]}
                outputs = outputs.write(index, model_ref()(batch, training=False))
            return outputs.stack()

        _STATEFUL_FORWARD[model] = forward
    return forward


def _predict_stateful(model: Any, lookback: int, x: dict[str, Any]) -> Any:
    """Reset, then run rows (a multiple of ``lookback``, in time order) batch by batch.

    The state after the last batch is left in place; callers reset.
    """
    import numpy as np

    rows = x["sequence"].shape[0]
    batches = rows // lookback
    reset_states(model)
    if _is_numpy(model):  # the NumPy engine carries the state itself, batch after batch
        return _member_mean(
            np.concatenate(
                [
                    model.predict_on_batch(
                        {key: value[start : start + lookback] for key, value in x.items()}
                    )
                    for start in range(0, rows, lookback)
                ]
            ),
            rows,
        )
    z_hat = _stateful_forward(model)(
        x["sequence"].reshape(batches, lookback, *x["sequence"].shape[1:]),
        x["context"].reshape(batches, lookback, -1),
    )
    return _member_mean(z_hat.numpy(), rows)


def _pad_to_multiple(x: dict[str, Any], multiple: int) -> dict[str, Any]:
    """Append copies of the last row so the row count is a multiple of ``multiple``."""
    import numpy as np

    rows = x["sequence"].shape[0]
    extra = -rows % multiple
    if extra == 0:
        return x
    index = np.concatenate([np.arange(rows), np.full(extra, rows - 1)])
    return {key: value[index] for key, value in x.items()}


def ensure_registered() -> None:
    """Create and register the custom Keras layers (imports Keras).

    Call before loading a ``.keras`` file that may contain them;
    :func:`forecaster.models.lstm.load_model` does.
    """
    _layer_classes()


@functools.cache
def _layer_classes() -> SimpleNamespace:
    """Define the custom layers once, registered under the package "forecaster"."""
    import keras

    @keras.saving.register_keras_serializable(package="forecaster")
    class RandomInitialState(keras.layers.Layer):
        """Emit [h0, c0] ~ truncated normal(0, stddev) per row while training, zeros otherwise.

        Call it on the sequence input; only its batch size is used.
        """

        def __init__(self, units: int, stddev: float, seed: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = int(units)
            self.stddev = float(stddev)
            self.seed = int(seed)
            self.seed_generator = keras.random.SeedGenerator(self.seed)

        def call(self, sequence: Any, training: bool = False) -> list[Any]:
            batch = keras.ops.shape(sequence)[0]
            shape = (batch, self.units)
            if training:
                return [
                    keras.random.truncated_normal(
                        shape,
                        stddev=self.stddev,
                        dtype=self.compute_dtype,
                        seed=self.seed_generator,
                    )
                    for _ in range(2)
                ]
            return [keras.ops.zeros(shape, dtype=self.compute_dtype) for _ in range(2)]

        def compute_output_shape(self, sequence_shape: tuple) -> list[tuple]:
            return [(sequence_shape[0], self.units), (sequence_shape[0], self.units)]

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "units": self.units,
                "stddev": self.stddev,
                "seed": self.seed,
            }

    @keras.saving.register_keras_serializable(package="forecaster")
    class LearnedInitialState(keras.layers.Layer):
        """Two trainable (1, units) vectors h0, c0 broadcast to the batch of its input."""

        def __init__(self, units: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = int(units)

        def build(self, sequence_shape: tuple) -> None:
            self.initial_h = self.add_weight(
                shape=(1, self.units), initializer="zeros", trainable=True, name="h0"
            )
            self.initial_c = self.add_weight(
                shape=(1, self.units), initializer="zeros", trainable=True, name="c0"
            )

        def call(self, sequence: Any) -> list[Any]:
            shape = (keras.ops.shape(sequence)[0], self.units)
            return [
                keras.ops.broadcast_to(self.initial_h, shape),
                keras.ops.broadcast_to(self.initial_c, shape),
            ]

        def compute_output_shape(self, sequence_shape: tuple) -> list[tuple]:
            return [(sequence_shape[0], self.units), (sequence_shape[0], self.units)]

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "units": self.units}

    return SimpleNamespace(
        RandomInitialState=RandomInitialState, LearnedInitialState=LearnedInitialState
    )
