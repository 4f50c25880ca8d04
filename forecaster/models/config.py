"""Settings of the LSTM forecaster, recorded once in every model record.

No TensorFlow here: a config is validated (strategy options included) without
building anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forecaster.data.features import FeatureSpec
from forecaster.errors import ConfigError
from forecaster.models.initial_state import STRATEGIES, create_strategy

__all__ = ["ANCHORS", "OBJECTIVES", "LSTMConfig"]

_FEATURE_SETTINGS = ("lookback", "context", "horizon", "estimator", "window")
#: Settings added after record format 2 was introduced, with the value older records imply.
_ADDED_LATER: dict[str, Any] = {
    "ensemble": 1,
    "anchor": "none",
    "market": None,
    "exog": {},
    "epoch_fraction": 1.0,
}
#: What the network's forecast may be anchored to.
ANCHORS = ("none", "har")
_TRAINING_SETTINGS = (
    "epochs", "patience", "batch_size", "loss", "learning_rate", "seed", "epoch_fraction"
)

#: Training objectives by ``loss`` name, as recorded with every model.
OBJECTIVES = {
    "mse": "MSE on the standardized log target variance; forecasts multiplied by the "
    "QLIKE-optimal scale mean(y/f) estimated on the validation rows",
    "qlike": "QLIKE on the target variance (written in standardized log units); forecasts "
    "multiplied by the QLIKE-optimal scale mean(y/f) estimated on the validation rows",
}


@dataclass(frozen=True)
class LSTMConfig:
    """Every choice behind an LSTM forecaster (recorded once in its model record).

    Parameters
    ----------
    init : str
        Initial-state strategy (see :mod:`forecaster.models.initial_state`).
    init_options : dict
        That strategy's options; missing ones take the strategy's defaults.
    horizon, estimator, window, lookback, context
        How inputs and target are built (:class:`~forecaster.data.features.FeatureSpec`).
    units : int
        LSTM units.
    epochs, patience, batch_size, learning_rate, loss, seed, epoch_fraction
        Training (see :class:`~forecaster.models.training.TrainConfig`).
    anchor : {"none", "har"}
        ``har``: the network learns a correction to the log-HAR forecast (HAR
        fit on the training rows), so it starts from the benchmark.
    ensemble : int
        Members of a seed ensemble: parallel copies of the network (member 0
        seeded with ``seed``, the others with seeds derived from it), trained
        together; their log-variance forecasts are averaged before the
        validation scale correction.
    market : str or None
        Ticker of a market series whose daily variance (same estimator) is an
        extra input of every series (:mod:`forecaster.data.exog`).
    exog : dict of str to str
        Exogenous daily series by name (e.g. ``{"VIX": "VIX_History.csv"}``):
        their logs are extra inputs; the path is where predict finds them
        again (``--exog NAME=PATH`` overrides it).
    """

    init: str = "encoder"
    init_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    horizon: int = 1
    estimator: str = "garman-klass"
    window: int = 22
    lookback: int = 22
    context: int = 252
    units: int = 32
    epochs: int = 60
    patience: int = 6
    batch_size: int = 64
    learning_rate: float = 1e-3
    loss: str = "mse"
    seed: int = 0
    epoch_fraction: float = 1.0
    ensemble: int = 3
    anchor: str = "none"
    market: str | None = None
    exog: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.init_options, Mapping):
            raise ConfigError(
                f"init_options must map option names to values; received {self.init_options!r}"
            )
        # The strategy validates its own options and fills in its defaults.
        strategy = create_strategy(self.init, 1, 0, **self.init_options)
        object.__setattr__(self, "init_options", strategy.config())
        if not isinstance(self.exog, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.exog.items()
        ):
            raise ConfigError(f"exog must map names to file paths; received {self.exog!r}")
        object.__setattr__(self, "exog", dict(self.exog))
        if self.market is not None and (not isinstance(self.market, str) or not self.market):
            raise ConfigError(f"market must be a ticker or None; received {self.market!r}")
        self.feature_spec()
        if self.anchor not in ANCHORS:
            raise ConfigError(
                f"unknown anchor {self.anchor!r}; expected one of {', '.join(ANCHORS)}"
            )
        for name in ("units", "ensemble"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1; received {value!r}")
        self.train_config()

    @property
    def stateful(self) -> bool:
        return STRATEGIES[self.init].stateful

    def feature_spec(self) -> FeatureSpec:
        """How inputs and target are built from prices."""
        from forecaster.data.exog import exog_names

        return FeatureSpec(
            **{name: getattr(self, name) for name in _FEATURE_SETTINGS},
            exog=exog_names(self.market, self.exog),
        )

    def model_spec(self, n_features: int, context_size: int, unroll: bool = True) -> Any:
        from forecaster.models.lstm import ModelSpec

        return ModelSpec(
            lookback=self.lookback,
            n_features=n_features,
            context_size=context_size,
            units=self.units,
            init=self.init,
            init_options=dict(self.init_options),
            seed=self.seed,
            unroll=unroll,
            members=self.ensemble,
        )

    def train_config(self, threads: int | None = None, target_scale: float = 1.0) -> Any:
        """The :class:`~forecaster.models.training.TrainConfig` of these settings."""
        from forecaster.models.training import TrainConfig

        settings = {name: getattr(self, name) for name in _TRAINING_SETTINGS}
        return TrainConfig(**settings, threads=threads, target_scale=target_scale)

    def replace(self, **changes: Any) -> LSTMConfig:
        """A copy with ``changes``; a new ``init`` drops the old strategy's options."""
        if "init" in changes and changes["init"] != self.init and "init_options" not in changes:
            changes["init_options"] = {}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "init_options": dict(self.init_options),
            "exog": dict(self.exog),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], complete: bool = False) -> LSTMConfig:
        """Inverse of :meth:`to_dict`; unknown keys (and, if ``complete``, missing ones) raise."""
        fields = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(
                f"unknown LSTM setting(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted(fields))}"
            )
        if complete:  # a saved record: settings it lacks were added later; it used their old value
            data = {**_ADDED_LATER, **data}
        missing = [name for name in fields if name not in data]
        if complete and missing:
            raise ConfigError(f"the LSTM settings lack {', '.join(missing)}")
        return cls(**data)

    @classmethod
    def from_legacy_options(cls, options: Mapping[str, Any]) -> LSTMConfig:
        """The config of a release-0.1.0 ``options`` dict (flat strategy options)."""
        options = dict(options)
        init = options.get("init", cls.init)
        flat = {key: options.pop(key) for key in ("encoder_units", "state_stddev") if key in options}
        for key in ("threads", "test_start", "test_fraction"):  # run settings, not the model's
            options.pop(key, None)
        accepted = STRATEGIES[init].defaults if init in STRATEGIES else {}
        options["init_options"] = {key: value for key, value in flat.items() if key in accepted}
        return cls.from_dict({**_ADDED_LATER, **options})
