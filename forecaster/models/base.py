"""The one forecaster contract (DESIGN.md §1, §5, §6).

Every model — the LSTM of any initial-state strategy and every baseline — is a
:class:`Forecaster`:

* it is made from a config (``type(f).from_config(f.config())`` rebuilds an
  untrained copy: :meth:`Forecaster.untrained`);
* :meth:`Forecaster.fit` estimates it on a :class:`~forecaster.data.features.Dataset`
  up to a cut date — the first origin to be forecast — seeing nothing that was
  not known at that day's close (baselines stop a day earlier);
* :meth:`Forecaster.predict` gives the variance forecast (mean daily variance
  over t+1 .. t+h, DESIGN §2) at the dataset rows asked for.

Backtests (held-out, walk-forward), ``compare``, the nightly job and the
benchmarks all loop over one list of forecasters through these three methods.
The public methods validate and then call the private hooks ``_fit`` /
``_predict`` (the arch pattern), so a subclass cannot skip the checks.

No TensorFlow here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, EvaluationError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from forecaster.data.features import Dataset

__all__ = ["Forecaster", "fit_end_before"]


def fit_end_before(dataset: Dataset, cut: pd.Timestamp) -> pd.Timestamp:
    """The last trading day strictly before ``cut`` (what a forecaster may see)."""
    index = dataset.variance.index
    position = int(index.searchsorted(cut, side="left"))
    if position == 0:
        raise ConfigError(
            f"cut {cut.date()} is on or before the first day of the data "
            f"({index[0].date()}); choose a later test start"
        )
    return index[position - 1]


class Forecaster(ABC):
    """A variance forecaster: ``from_config``, ``fit(dataset, cut)``, ``predict(dataset, rows)``.

    Attributes
    ----------
    kind : str
        Registry name of the class (``lstm``, ``har``, ``garch``, ...).
    """

    kind: ClassVar[str]
    #: The forecast is of the target measure (a session variance for range estimators
    #: and intraday measures), so VaR/ES scale it by the overnight factor. False for a
    #: model of the close-to-close return variance itself (GARCH, fit on returns).
    forecasts_target: ClassVar[bool] = True

    def __init__(self) -> None:
        self._fitted = False
        self._cut: pd.Timestamp | None = None

    # ---------------------------------------------------------------- config
    def config(self) -> dict[str, Any]:
        """JSON-safe settings that rebuild this forecaster untrained."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """A new, unfitted forecaster from :meth:`config`'s output."""
        if config:
            raise ConfigError(
                f"forecaster {cls.kind!r} takes no settings; received {sorted(config)}"
            )
        return cls()

    def untrained(self) -> Self:
        """A fresh, unfitted copy with the same config (for refits)."""
        return type(self).from_config(self.config())

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    @property
    def cut(self) -> pd.Timestamp | None:
        """The cut date of the last fit (nothing on or after it was seen)."""
        return self._cut

    # ------------------------------------------------------------------ public
    def fit(self, dataset: Dataset, cut: pd.Timestamp | str) -> Self:
        """Estimate on ``dataset`` using only what was known at the close of ``cut``.

        Parameters
        ----------
        dataset : Dataset
            Inputs, targets and the daily series (may extend past ``cut``).
        cut : Timestamp or str
            First forecast origin of the period to be forecast. Training and
            validation use origins before it whose targets were realized by its
            close; no price dated after it is used.

        Returns
        -------
        Forecaster
            ``self``, fitted.
        """
        try:
            cut = pd.Timestamp(cut)
        except (TypeError, ValueError):
            raise ConfigError(f"cut must be a date like 2016-01-04; received {cut!r}") from None
        if cut.tzinfo is not None:
            cut = cut.tz_localize(None)
        self._fitted = False
        self._fit(dataset, cut)
        self._cut = cut
        self._fitted = True
        return self

    def predict(self, dataset: Dataset, rows: np.ndarray | None = None) -> np.ndarray:
        """Variance forecasts at the origins ``dataset.origins[rows]`` (all rows if None).

        Returns
        -------
        numpy.ndarray
            float64, one per row; NaN where this forecaster has no forecast
            (e.g. a stateful LSTM's oldest rows).
        """
        if not self._fitted:
            raise ModelError(
                f"forecaster {self.kind!r} is not fitted; call fit(dataset, cut) before predict"
            )
        if rows is None:
            rows = np.arange(len(dataset))
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise EvaluationError(
                f"rows must be a 1-d array of integer row positions; received {rows!r}"
            )
        if rows.size and (rows.min() < 0 or rows.max() >= len(dataset)):
            raise EvaluationError(
                f"rows must lie in 0..{len(dataset) - 1} (the dataset's origins); "
                f"received {int(rows.min())}..{int(rows.max())}"
            )
        if rows.size == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self._predict(dataset, rows), dtype=np.float64)

    def forecast_series(self, dataset: Dataset) -> pd.Series:
        """Forecast at every origin of ``dataset`` as a Series indexed by origin."""
        return pd.Series(self.predict(dataset), index=dataset.origins)

    # ------------------------------------------------------------------- hooks
    @abstractmethod
    def _fit(self, dataset: Dataset, cut: pd.Timestamp) -> None:
        """Estimate on what was known at the close of ``cut`` (see :meth:`fit`)."""

    @abstractmethod
    def _predict(self, dataset: Dataset, rows: np.ndarray) -> np.ndarray:
        """Forecasts at the (validated) integer ``rows``."""

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({settings})"
