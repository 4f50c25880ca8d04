"""Build, save and load the LSTM volatility model (DESIGN.md §5).

The model maps scaled inputs ``sequence`` (B, L, F) and ``context`` (B, C) to
``z_hat`` (B, 1): the standardized log of the target variance, a linear
output. The initial state of the LSTM comes from the strategy named by
``ModelSpec.init`` (see :mod:`forecaster.models.initial_state`).

Importing this module does not import TensorFlow or Keras.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster.errors import ConfigError, RegistryError
from forecaster.models.initial_state import (
    LSTM_LAYER,
    STRATEGIES,
    InitialState,
    available_strategies,
    create_strategy,
    derive_seed,
    ensure_registered,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "LSTM_LAYER",
    "OUTPUT_LAYER",
    "ModelSpec",
    "available_strategies",
    "build_model",
    "ensure_registered",
    "load_model",
    "save_model",
]

OUTPUT_LAYER = "z_hat"

# Sub-seed paths: one per initializer, so each draws from its own stream.
_SEED_LSTM_KERNEL = (0, 0)
_SEED_LSTM_RECURRENT = (0, 1)
_SEED_HEAD = (0, 2)
_SEED_STRATEGY = (1,)
# Strategy options that specs saved by release 0.1.0 kept as flat fields.
_LEGACY_OPTION_FIELDS = ("state_stddev", "encoder_units")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network (recorded in model metadata).

    Parameters
    ----------
    lookback : int
        Sequence length L (trading days).
    n_features : int
        Features per time step F.
    context_size : int
        Length C of the context vector.
    units : int
        LSTM units.
    init : str
        Initial-state strategy, one of :func:`available_strategies`.
    init_options : dict
        The strategy's options (see its ``defaults``); validated by the strategy,
        missing ones take its defaults.
    seed : int
        Root seed of every initializer in the network.
    unroll : bool
        Unroll the LSTM loop (faster for short sequences).
    members : int
        Ensemble members: parallel copies of the network with derived seeds,
        trained together, whose outputs are averaged (in log variance).
    """

    lookback: int
    n_features: int
    context_size: int
    units: int = 32
    init: str = "encoder"
    init_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0
    unroll: bool = True
    members: int = 1

    def __post_init__(self) -> None:
        for name, minimum in (
            ("lookback", 1),
            ("n_features", 1),
            ("context_size", 1),
            ("units", 1),
            ("seed", 0),
            ("members", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(
                    f"ModelSpec.{name} must be an integer >= {minimum}; received {value!r}"
                )
        if not isinstance(self.unroll, bool):
            raise ConfigError(f"ModelSpec.unroll must be true or false; received {self.unroll!r}")
        # Validates the name and the strategy's options (no TensorFlow needed); stores
        # the complete options, defaults filled in.
        object.__setattr__(self, "init_options", self.strategy().config())

    @property
    def stateful(self) -> bool:
        """Whether the strategy needs a stateful LSTM with a fixed batch size."""
        return STRATEGIES[self.init].stateful

    def strategy(self) -> InitialState:
        """The initial-state strategy object this spec describes."""
        if not isinstance(self.init_options, Mapping):
            raise ConfigError(
                f"ModelSpec.init_options must be a mapping of option names to values; "
                f"received {self.init_options!r}"
            )
        return create_strategy(
            self.init, self.units, derive_seed(self.seed, *_SEED_STRATEGY), **self.init_options
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all fields."""
        return {**dataclasses.asdict(self), "init_options": dict(self.init_options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ConfigError.

        A spec saved before strategies owned their options (flat ``state_stddev``
        and ``encoder_units`` fields) is read too: the strategy's own option is kept.
        """
        data = dict(data)
        legacy = {key: data.pop(key) for key in _LEGACY_OPTION_FIELDS if key in data}
        if legacy and "init_options" not in data:
            accepted = STRATEGIES[data["init"]].defaults if data.get("init") in STRATEGIES else {}
            data["init_options"] = {key: value for key, value in legacy.items() if key in accepted}
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(
                f"unknown ModelSpec field(s) {', '.join(unknown)}; expected: {', '.join(fields)}"
            )
        required = [
            name
            for name, field in fields.items()
            if field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
            and name not in data
        ]
        if required:
            raise ConfigError(f"ModelSpec is missing required field(s) {', '.join(required)}")
        return cls(**data)


def member_seed(seed: int, member: int) -> int:
    """Root seed of ensemble member ``member`` (member 0 keeps ``seed``: K = 1 is the plain model)."""
    return seed if member == 0 else derive_seed(seed, 100 + member)


def _network(spec: ModelSpec, seed: int, sequence: Any, context: Any) -> Any:
    """One member's graph on the given inputs: initial state, LSTM, linear head."""
    import keras

    strategy = create_strategy(
        spec.init, spec.units, derive_seed(seed, *_SEED_STRATEGY), **spec.init_options
    )
    state = strategy.initial_state(sequence, context)
    lstm = keras.layers.LSTM(
        spec.units,
        kernel_initializer=keras.initializers.GlorotUniform(
            seed=derive_seed(seed, *_SEED_LSTM_KERNEL)
        ),
        recurrent_initializer=keras.initializers.Orthogonal(
            seed=derive_seed(seed, *_SEED_LSTM_RECURRENT)
        ),
        stateful=strategy.stateful,
        unroll=spec.unroll,
        name=LSTM_LAYER,
    )
    hidden = lstm(sequence) if state is None else lstm(sequence, initial_state=state)
    return keras.layers.Dense(
        1,
        kernel_initializer=keras.initializers.GlorotUniform(seed=derive_seed(seed, *_SEED_HEAD)),
        name=OUTPUT_LAYER,
    )(hidden)


def build_model(spec: ModelSpec) -> keras.Model:
    """Build the (uncompiled) Keras model described by ``spec``.

    Inputs are a dict ``{"sequence": (B, L, F), "context": (B, C)}``; the output
    is ``z_hat`` (B, members), linear, one column per ensemble member. Each
    member is a nested model (``member_0``, ...) with its own seeds; a single
    member is built flat (the layout of release 0.1.0). For a stateful strategy
    the batch size is fixed to ``B = spec.lookback``. Every initializer gets an
    explicit seed derived from ``spec.seed``.
    """
    import keras

    ensure_registered()
    batch = spec.strategy().input_batch(spec.lookback)

    def inputs() -> tuple[Any, Any]:
        sequence = keras.Input(
            batch_shape=(batch, spec.lookback, spec.n_features), name="sequence", dtype="float32"
        )
        context = keras.Input(
            batch_shape=(batch, spec.context_size), name="context", dtype="float32"
        )
        return sequence, context

    sequence, context = inputs()
    feeds = {"sequence": sequence, "context": context}
    name = f"forecaster_lstm_{spec.init}"
    if spec.members == 1:
        return keras.Model(
            inputs=feeds, outputs=_network(spec, spec.seed, sequence, context), name=name
        )
    outputs = []
    for member in range(spec.members):
        member_sequence, member_context = inputs()
        member_model = keras.Model(
            inputs={"sequence": member_sequence, "context": member_context},
            outputs=_network(spec, member_seed(spec.seed, member), member_sequence, member_context),
            name=f"member_{member}",
        )
        outputs.append(member_model(feeds))
    z_hat = keras.layers.Concatenate(name="members")(outputs)
    return keras.Model(inputs=feeds, outputs=z_hat, name=name)


def _check_keras_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".keras":
        raise ConfigError(f"model file must end in .keras (Keras 3 format); received {str(path)!r}")
    return path


def save_model(model: keras.Model, path: str | Path) -> None:
    """Save ``model`` to ``path`` in the ``.keras`` format.

    Raises
    ------
    ConfigError
        ``path`` does not end in ``.keras``.
    RegistryError
        The file cannot be written.
    """
    path = _check_keras_path(path)
    try:
        model.save(path, overwrite=True)
    except OSError as exc:
        raise RegistryError(
            f"cannot write model file {path}: {exc}; check that the folder exists and is writable"
        ) from exc


def load_model(path: str | Path) -> keras.Model:
    """Load a model written by :func:`save_model` (uncompiled, ready to predict).

    Works in a fresh process: the custom layers are registered first.

    Raises
    ------
    RegistryError
        The file is missing, unreadable or corrupt; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(
            f"model file {path} does not exist; train a model first or check the registry path"
        )
    _check_keras_path(path)
    import keras

    ensure_registered()
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # a corrupt file can fail in many ways (zip, JSON, h5, config)
        raise RegistryError(
            f"cannot load model file {path}: {type(exc).__name__}: {exc}. The file is corrupt "
            "or was written by an incompatible version; retrain the model or restore the file"
        ) from exc
