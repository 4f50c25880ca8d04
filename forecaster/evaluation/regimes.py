"""High-volatility regime labels, with thresholds fit on training data only.

Two senses of "high volatility" (DESIGN §6):

- **ex-ante**: the trailing 22-day mean daily variance known at the forecast
  origin exceeds its training quantile — a regime a user could act on;
- **ex-post**: the realized target variance exceeds its training quantile —
  where models typically under-forecast in turbulent markets.

Thresholds are kept in daily variance; ``ex_ante_vol``/``ex_post_vol`` show them
as annualized volatility through :func:`forecaster.units.to_vol`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, EvaluationError
from forecaster.evaluation.defaults import REGIME_QUANTILE
from forecaster.units import to_vol

__all__ = ["RegimeThresholds", "fit_thresholds", "label"]

DEFAULT_QUANTILE = REGIME_QUANTILE  # 0.8


@dataclass(frozen=True)
class RegimeThresholds:
    """Regime thresholds in daily variance.

    Attributes
    ----------
    quantile : float
        Training quantile the thresholds were taken at.
    ex_ante_var : float
        Threshold on the trailing 22-day mean daily variance at the origin.
    ex_post_var : float
        Threshold on the realized target variance.
    """

    quantile: float
    ex_ante_var: float
    ex_post_var: float

    @property
    def ex_ante_vol(self) -> float:
        """Ex-ante threshold as annualized volatility (decimal)."""
        return float(to_vol(self.ex_ante_var))

    @property
    def ex_post_vol(self) -> float:
        """Ex-post threshold as annualized volatility (decimal)."""
        return float(to_vol(self.ex_post_var))

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict: the three fields plus both thresholds as annualized vol."""
        return {
            "quantile": float(self.quantile),
            "ex_ante_var": float(self.ex_ante_var),
            "ex_post_var": float(self.ex_post_var),
            "ex_ante_vol": self.ex_ante_vol,
            "ex_post_vol": self.ex_post_vol,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegimeThresholds:
        """Rebuild from :meth:`to_dict` output (the ``*_vol`` keys are ignored)."""
        missing = [key for key in ("quantile", "ex_ante_var", "ex_post_var") if key not in data]
        if missing:
            raise EvaluationError(
                f"regime thresholds are missing {missing}; expected the keys written by "
                "RegimeThresholds.to_dict (quantile, ex_ante_var, ex_post_var)"
            )
        return cls(
            quantile=float(data["quantile"]),
            ex_ante_var=float(data["ex_ante_var"]),
            ex_post_var=float(data["ex_post_var"]),
        )


def _finite_1d(values: Any, name: str) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise EvaluationError(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise EvaluationError(
            f"{name} has {int(bad.sum())} non-finite values (first at row {first}); "
            "drop the warm-up rows without a full 22-day history or a realized target first"
        )
    return array


def fit_thresholds(
    train_trailing_var: Any,
    train_target_var: Any,
    quantile: float = DEFAULT_QUANTILE,
) -> RegimeThresholds:
    """Fit regime thresholds on the training rows.

    Parameters
    ----------
    train_trailing_var : array-like
        Trailing 22-day mean daily variance at each *training* origin.
    train_target_var : array-like
        Realized target variance of each *training* origin.
    quantile : float
        Quantile in (0, 1); default 0.8. NumPy's default (linear) interpolation.

    Returns
    -------
    RegimeThresholds
    """
    if (
        isinstance(quantile, bool)
        or not isinstance(quantile, float | int)
        or not 0.0 < float(quantile) < 1.0
    ):
        raise ConfigError(
            f"regime quantile must be a number strictly between 0 and 1 (e.g. 0.8), "
            f"got {quantile!r}"
        )
    trailing = _finite_1d(train_trailing_var, "train_trailing_var")
    target = _finite_1d(train_target_var, "train_target_var")
    for name, array in (("train_trailing_var", trailing), ("train_target_var", target)):
        if array.size == 0:
            raise EvaluationError(
                f"{name} is empty; regime thresholds need training rows to be fit"
            )
    return RegimeThresholds(
        quantile=float(quantile),
        ex_ante_var=float(np.quantile(trailing, quantile)),
        ex_post_var=float(np.quantile(target, quantile)),
    )


def label(
    thresholds: RegimeThresholds,
    trailing_var: Any,
    target_var: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Flag high-volatility rows (strictly above the threshold).

    Parameters
    ----------
    thresholds : RegimeThresholds
        From :func:`fit_thresholds` on training data.
    trailing_var, target_var : array-like
        Trailing 22-day mean variance at each origin and the realized target,
        aligned row by row.

    Returns
    -------
    tuple of numpy.ndarray
        Boolean ``(high_ex_ante, high_ex_post)``.
    """
    if not isinstance(thresholds, RegimeThresholds):
        raise EvaluationError(
            f"thresholds must be a RegimeThresholds (from fit_thresholds), "
            f"got {type(thresholds).__name__}"
        )
    trailing = _finite_1d(trailing_var, "trailing_var")
    target = _finite_1d(target_var, "target_var")
    if trailing.shape != target.shape:
        raise EvaluationError(
            f"trailing_var has {trailing.size} rows but target_var has {target.size}; "
            "expected both aligned on the same forecast origins"
        )
    return trailing > thresholds.ex_ante_var, target > thresholds.ex_post_var
