"""The typed model record, written as a version's ``meta.json`` (DESIGN.md §7).

Every fact about a saved model appears once: the LSTM's settings
(:class:`~forecaster.models.config.LSTMConfig`: strategy and its options,
horizon, estimator, sizes, training), the network's input shapes, the fitted
scaler and validation scale, the data it saw, its split, its training history
and scores. ``format`` versions the layout; records written by release 0.1.0
(no ``format`` key; ``init``/``horizon`` repeated in several places, flat
strategy options) are read and converted on load.

No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forecaster.data.features import FeatureSpec
from forecaster.errors import ConfigError
from forecaster.models.config import OBJECTIVES, LSTMConfig

__all__ = ["FORMAT", "DataRecord", "ModelRecord"]

#: Layout version of meta.json written by this release (0.1.0 wrote none: format 1).
FORMAT = 2


@dataclass(frozen=True)
class DataRecord:
    """The prices a model was fitted on."""

    source: str
    description: str
    start: str
    end: str
    rows: int
    fingerprint: str
    n_floored: int = 0
    #: The CSV file's absolute path (source ``csv``; None otherwise and in older records).
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        payload = dataclasses.asdict(self)
        if payload["path"] is None:  # records of other sources read as before
            del payload["path"]
        return payload

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataRecord:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class ModelRecord:
    """Everything known about one saved LSTM version.

    Attributes
    ----------
    ticker, version : str
        Where it lives in the registry.
    config : LSTMConfig
        The settings that rebuild it untrained (``LSTMForecaster(config)``).
    network : dict
        Input shapes of the saved network: ``n_features``, ``context_size``, ``unroll``.
    scaler : dict
        The fitted :class:`~forecaster.data.features.FeatureScaler`.
    scale : float
        Validation scale correction multiplied into every forecast.
    data : DataRecord
        The prices it was fitted on.
    split : dict
        Train / validation / test dates and counts (:meth:`Split.to_dict`).
    training : dict
        Epochs run, best epoch, seconds, loss history.
    metrics : dict
        ``{"validation": {...}, "test": {...}}`` scores at save time.
    nightly : dict or None
        The nightly window it was trained against, for nightly challengers.
    anchor : dict or None
        For ``config.anchor == "har"``: the HAR fitted on the training rows
        (``{"kind": "har", "params": {...}}``) whose log forecast the network corrects.
    series : dict or None
        For a pooled model: ``{ticker: {"data", "split", "scaler", "anchor",
        "metrics"}}`` for every series it was trained on. The top-level
        ``scaler``, ``anchor``, ``data``, ``split`` and ``metrics`` are those of
        ``ticker`` (the registry folder the record sits in), so a pooled version
        reads like a single-ticker model of each ticker it serves.
    parent : dict or None
        For a fine-tuned model: ``{"ticker", "version"}`` of the model whose
        weights it started from.
    seen : list of dict or None
        Every series and date range this model and its ancestors saw in
        training or validation: ``{"model", "ticker", "from", "to"}`` (``to``
        is the last day of a target used). None in records written before
        pooling; :meth:`seen_ranges` derives this model's own range then.
    overnight : dict or None
        The Hansen–Lunde (2005) overnight factor of the target, estimated on the
        days before the test period (a pooled model: per series, in ``series``).
    """

    ticker: str
    version: str
    package_version: str
    created_at: str
    config: LSTMConfig
    network: dict[str, Any]
    scaler: dict[str, Any]
    scale: float
    data: DataRecord
    split: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    nightly: dict[str, Any] | None = None
    anchor: dict[str, Any] | None = None
    series: dict[str, dict[str, Any]] | None = None
    parent: dict[str, Any] | None = None
    seen: list[dict[str, Any]] | None = None
    kind: str = "lstm"
    #: The overnight factor (:func:`forecaster.data.features.overnight_scale`) estimated on
    #: the days before the test period: ``{"method", "factor", "n_days", "start", "end"}``.
    #: VaR/ES multiply the session-variance forecast by it. None in older records.
    overnight: dict[str, Any] | None = None
    format: int = FORMAT

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
            raise ConfigError(f"scale must be a number; received {self.scale!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"scale must be a finite number > 0; received {self.scale!r}")
        if (self.anchor is None) != (self.config.anchor == "none"):
            raise ConfigError(
                f"config.anchor is {self.config.anchor!r} but the record "
                f"{'has no' if self.anchor is None else 'has an'} anchor fit"
            )
        if self.kind != "lstm":
            raise ConfigError(f"kind {self.kind!r} is not a saved model kind; expected 'lstm'")

    # ----------------------------------------------------------- derived views
    @property
    def init(self) -> str:
        return self.config.init

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def estimator(self) -> str:
        return self.config.estimator

    def feature_spec(self) -> FeatureSpec:
        return self.config.feature_spec()

    @property
    def tickers(self) -> list[str]:
        """The series this model was trained on (one, unless pooled)."""
        return list(self.series) if self.series else [self.ticker]

    def for_ticker(self, ticker: str) -> ModelRecord:
        """The record as saved under ``ticker``: a pooled model's view of that series."""
        if ticker == self.ticker:
            return self
        if not self.series or ticker not in self.series:
            raise ConfigError(
                f"model {self.version} was trained on {', '.join(self.tickers)}, not {ticker}"
            )
        entry = self.series[ticker]
        return dataclasses.replace(
            self,
            ticker=ticker,
            scaler=dict(entry["scaler"]),
            anchor=entry.get("anchor"),
            data=DataRecord.from_dict(entry["data"]),
            split=dict(entry["split"]),
            metrics=dict(entry.get("metrics", {})),
            overnight=entry.get("overnight"),
        )

    def seen_ranges(self) -> list[dict[str, Any]]:
        """Series and date ranges seen in training or validation, ancestors included."""
        if self.seen is not None:
            return [dict(item) for item in self.seen]
        return [
            {
                "model": self.version,
                "ticker": self.ticker,
                "from": self.data.start,
                "to": str(self.split.get("validation_end", self.split["test_start"])),
            }
        ]

    def first_clean_start(self) -> str:
        """The earliest test start no seen range overlaps: the last day seen (see :meth:`overlaps`).

        A model fine-tuned from this one is out of sample from this date on.
        """
        return max(str(item["to"]) for item in self.seen_ranges())

    def overlaps(self, start: str | Any, end: str | Any) -> list[dict[str, Any]]:
        """The seen ranges whose days fall in the test period after ``start`` up to ``end``.

        A forecast made at the close of ``start`` uses that day's data, so a
        range ending on ``start`` does not overlap.
        """
        import pandas as pd

        first, last = pd.Timestamp(start), pd.Timestamp(end)
        return [
            item
            for item in self.seen_ranges()
            if pd.Timestamp(item["to"]) > first and pd.Timestamp(item["from"]) <= last
        ]

    def model_spec(self) -> Any:
        return self.config.model_spec(
            int(self.network["n_features"]),
            int(self.network["context_size"]),
            bool(self.network.get("unroll", True)),
        )

    # ---------------------------------------------------------------- (de)serialize
    def to_dict(self) -> dict[str, Any]:
        """The JSON layout of ``meta.json``."""
        return {
            "format": FORMAT,
            "kind": self.kind,
            "ticker": self.ticker,
            "version": self.version,
            "package_version": self.package_version,
            "created_at": self.created_at,
            "config": self.config.to_dict(),
            "network": dict(self.network),
            "objective": {"loss": self.config.loss, "description": OBJECTIVES[self.config.loss]},
            "scaler": self.scaler,
            "bias_correction": {"scale": self.scale, "estimated_on": "validation"},
            "data": self.data.to_dict(),
            "split": self.split,
            "training": self.training,
            "metrics": self.metrics,
            "nightly": self.nightly,
            "anchor": self.anchor,
            "series": self.series,
            "parent": self.parent,
            "seen": self.seen,
            **({"overnight": self.overnight} if self.overnight is not None else {}),
        }

    @classmethod
    def from_dict(cls, meta: Mapping[str, Any]) -> ModelRecord:
        """Read a ``meta.json`` payload of this or an earlier format.

        Raises
        ------
        ConfigError, KeyError, TypeError, ValueError
            The payload is incomplete or inconsistent (the registry turns these
            into an error naming the file).
        """
        layout = meta.get("format", 1)
        if layout == 1:
            return cls._from_release_0_1(meta)
        if layout != FORMAT:
            raise ConfigError(
                f"record format {layout!r} is not supported by this release (it reads formats "
                f"1 and {FORMAT}); upgrade forecaster or retrain the model"
            )
        return cls(
            ticker=str(meta["ticker"]),
            version=str(meta["version"]),
            package_version=str(meta["package_version"]),
            created_at=str(meta["created_at"]),
            config=LSTMConfig.from_dict(meta["config"], complete=True),
            network=dict(meta["network"]),
            scaler=dict(meta["scaler"]),
            scale=meta["bias_correction"]["scale"],
            data=DataRecord.from_dict(meta["data"]),
            split=dict(meta["split"]),
            training=dict(meta["training"]),
            metrics=dict(meta["metrics"]),
            nightly=meta.get("nightly"),
            anchor=meta.get("anchor"),
            series=meta.get("series"),
            parent=meta.get("parent"),
            seen=meta.get("seen"),
            kind=meta.get("kind", "lstm"),
            overnight=meta.get("overnight"),
        )

    @classmethod
    def _from_release_0_1(cls, meta: Mapping[str, Any]) -> ModelRecord:
        config = LSTMConfig.from_legacy_options(meta["options"])
        spec = meta["model_spec"]
        recorded = FeatureSpec.from_dict(meta["feature_spec"])
        if recorded != config.feature_spec():
            raise ConfigError(
                f"feature_spec {recorded} disagrees with the training options "
                f"{config.feature_spec()}"
            )
        for key, value in (("init", meta["init"]), ("horizon", meta["horizon"])):
            if getattr(config, key) != value:
                raise ConfigError(f"{key} is {value!r} but the training options say "
                                  f"{getattr(config, key)!r}")
        return cls(
            ticker=str(meta["ticker"]),
            version=str(meta["version"]),
            package_version=str(meta.get("package_version", "0.1.0")),
            created_at=str(meta.get("created_at", "")),
            config=config,
            network={
                "n_features": spec["n_features"],
                "context_size": spec["context_size"],
                "unroll": spec.get("unroll", True),
            },
            scaler=dict(meta["scaler"]),
            scale=meta["bias_correction"]["scale"],
            data=DataRecord.from_dict(meta["data"]),
            split=dict(meta["split"]),
            training=dict(meta.get("training", {})),
            metrics=dict(meta.get("metrics", {})),
            nightly=meta.get("nightly"),
            format=1,
        )
