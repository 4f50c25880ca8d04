"""Serving a saved model: one forecast for a ticker, with its VaR/ES and their fit cache.

``forecast predict`` (:mod:`forecaster.cli.predict`) and the nightly job
(:mod:`forecaster.jobs.nightly`) both issue forecasts from saved versions; this
module is the one place that

- turns a version's forecaster and a ticker's prices into the forecast at the
  last origin (:func:`serve`: the ticker's own standardization for a pooled or
  universal model, the last origin's variance),
- refuses a forecast that is not one (:func:`usable_variance`: one wording of
  the error wherever it is raised),
- and computes its VaR/ES (:func:`serve_risk`), through the fit cache
  (:func:`fit_cache`) when a cache folder is given: ``predict`` reads and
  writes the home's risk cache; a nightly task, which must not write the home,
  fits in memory or into a scratch folder the driver stores.

Loading the version (engine choice, the process-wide cache of networks) stays
with the callers: predict keeps networks across a batch, the nightly job has
the forecaster it just trained or scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster.errors import ModelError

if TYPE_CHECKING:
    import pandas as pd

    from forecaster.data.features import Dataset
    from forecaster.data.loader import PriceData
    from forecaster.evaluation.risk_cache import FitCache
    from forecaster.models.base import Forecaster
    from forecaster.models.registry import ModelVersion


@dataclass(frozen=True)
class Served:
    """A forecast issued from a saved version.

    Attributes
    ----------
    ticker : str
        The ticker served (for a universal model, any ticker it forecasts).
    origin : pd.Timestamp
        The last close the forecast is made at.
    variance : float
        The forecast daily variance (finite, > 0).
    forecaster, dataset
        The ticker's view of the model and the dataset it forecast from (the
        VaR/ES fit needs both).
    """

    ticker: str
    origin: pd.Timestamp
    variance: float
    forecaster: Forecaster
    dataset: Dataset

    @property
    def engine(self) -> str:
        """``numpy`` or ``keras``: what ran the network (part of the fit cache's key)."""
        return engine_of(self.forecaster)


def engine_of(forecaster: Any) -> str:
    """The engine a forecaster runs on (``keras`` for models that do not say)."""
    return getattr(getattr(forecaster, "model", None), "engine", "keras")


def usable_variance(version: str, origin: pd.Timestamp, variance: float, ticker: str) -> float:
    """``variance`` as a float when it is a forecast (finite, > 0); else one ModelError.

    Never print or store a forecast that is not one.
    """
    value = float(variance)
    if not (math.isfinite(value) and value > 0):
        raise ModelError(
            f"model {version} gave no usable forecast at {origin:%Y-%m-%d} (daily variance "
            f"{value!r}); check the prices up to that date, or retrain with "
            f"`forecast train --ticker {ticker}`"
        )
    return value


def serve(version: ModelVersion, forecaster: Forecaster, data: PriceData, ticker: str) -> Served:
    """The forecast of ``version`` (loaded as ``forecaster``) for ``ticker`` at its last origin.

    A model saved under other tickers (pooled, universal) standardizes
    ``ticker`` by its own rows before the model's cut
    (:meth:`Forecaster.for_ticker`).
    """
    from forecaster.models.lstm_forecaster import dataset_of

    dataset = dataset_of(forecaster, data)
    view = forecaster.for_ticker(ticker, dataset)
    origin = dataset.origins[-1]
    variance = usable_variance(
        version.version, origin, float(view.predict(dataset, [len(dataset) - 1])[0]), ticker
    )
    return Served(ticker, origin, variance, view, dataset)


def fit_cache(
    folder: Path, version: ModelVersion, ticker: str, forecaster: Forecaster, data: PriceData,
    dataset: Dataset,
) -> FitCache:
    """The VaR/ES fit cache of ``version`` run by ``forecaster``'s engine for ``ticker``.

    The key is what ``forecast predict`` uses, so a fit the nightly job warms
    (into a scratch copy of ``folder``) is the one predict reads.
    """
    from forecaster.evaluation.risk_cache import FitCache

    return FitCache.for_prices(
        folder,
        version.version,
        ticker,
        engine_of(forecaster),
        data.prices,
        dataset,
        version.record.split["test_start"],
    )


def serve_risk(
    version: ModelVersion,
    forecaster: Forecaster,
    dataset: Dataset,
    variance: float,
    distribution: str,
    levels: Any,
    cache: FitCache | None = None,
) -> dict[str, Any]:
    """VaR and ES of a forecast of ``version`` (:func:`risk.forecast_risk`).

    ``t`` and ``fhs`` are fit on the model's standardized returns before its
    test period; with ``cache`` the fit is read from (or written to) it.
    """
    from forecaster.evaluation.risk import forecast_risk

    return forecast_risk(
        forecaster,
        dataset,
        variance,
        version.record.split["test_start"],
        distribution,
        levels,
        cache=cache,
    )
