"""Return distributions for VaR and ES: from a variance forecast to the law of the return.

From a variance forecast to a return distribution
-------------------------------------------------
A forecast ``f`` made at the close of day t is the mean daily variance over
t+1 .. t+h (DESIGN §2), so the h-day variance is ``h * f``. The return it is
judged against is the **h-day log close-to-close return** over the same days,
``R = r_{t+1} + ... + r_{t+h}``. Each model's VaR and ES at level ``alpha`` are

    VaR = sqrt(h f) * q_alpha,      ES = sqrt(h f) * e_alpha,

both return quantities (negative for a loss), where ``q_alpha`` and
``e_alpha = E[z | z <= q_alpha]`` belong to the distribution of the
standardized return ``z = R / sqrt(h f)``:

- ``normal``: z ~ N(0, 1); nothing is fit, the forecast is taken at face value;
- ``t``: z ~ s * t_nu (location 0), ``nu`` and ``s`` fit by maximum likelihood;
- ``fhs`` (filtered historical simulation): the empirical quantile (NumPy's
  default linear interpolation) and the mean of the standardized returns at or
  below it.

The overnight gap
-----------------
A forecast of a session measure (Garman–Klass, rv5, ...: every model of the
target; not GARCH/GJR, which model the close-to-close returns themselves)
leaves out the overnight return, so it is first multiplied by the Hansen &
Lunde (2005) factor ``c = sum r_d^2 / sum v_d`` over the days before the test
period (:func:`forecaster.data.features.overnight_scale`; 1 for the
close-to-close target): ``f`` above is ``c`` times the model's forecast. ``c``
is stated in every fit (``overnight``) and in the model record. ``t`` and
``fhs`` rescale on their own, so their VaR is unchanged by ``c``; ``normal``
takes it at face value.

``t`` and ``fhs`` are fit on the standardized returns of the training period
only — every origin before the test period (or the walk-forward block) whose
h-day return was realized by then — standardized by **that model's own**
in-sample forecasts (:func:`in_sample_residuals`). The fitted scale ``s`` (and
the empirical quantiles) absorb a forecast that is systematically too small,
such as a Garman–Klass target that leaves out the overnight gap.

A statistic that needs more data than there is raises :class:`NotEnoughData`;
the reports show it as ``null`` with the message, never as NaN.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, EvaluationError
from forecaster.evaluation.defaults import DISTRIBUTIONS

if TYPE_CHECKING:
    from forecaster.data.features import Dataset
    from forecaster.models.base import Forecaster

DEFAULT_DISTRIBUTION = "t"
#: VaR/ES levels of ``--var-levels`` (tail probabilities).
DEFAULT_LEVELS: tuple[float, ...] = (0.01, 0.05)
#: The valid levels: MIN_LEVEL <= level < MAX_LEVEL (99.99% VaR down to just above the median).
#: Below MIN_LEVEL a t quantile runs off to -inf and no backtest has data to judge it.
MIN_LEVEL = 0.0001
MAX_LEVEL = 0.5
LEVEL_RANGE = f"[{MIN_LEVEL:g}, {MAX_LEVEL:g})"
#: Fewest standardized training returns a t or fhs fit accepts.
MIN_FIT_RESIDUALS = 100
#: Fewest standardized training returns at or below an fhs quantile.
MIN_TAIL_RESIDUALS = 5
#: Bounds of the t degrees of freedom (above 2: finite variance).
T_DOF_BOUNDS = (2.05, 500.0)
#: N(0, 1) from the standard library (same quantile to ~1e-15 as scipy's, without its import).
_STANDARD_NORMAL = statistics.NormalDist()


class Unavailable(EvaluationError):
    """A statistic cannot be computed here; reports show null and this message."""


class NotEnoughData(Unavailable):
    """A statistic needs more observations than the data holds (reported as null + reason)."""


# ---------------------------------------------------------------- arguments
def parse_levels(levels: str | Iterable[float]) -> tuple[float, ...]:
    """VaR levels (tail probabilities) from ``"0.01,0.05"`` or numbers, sorted and unique.

    Raises
    ------
    ConfigError
        If a level is not a number in [:data:`MIN_LEVEL`, :data:`MAX_LEVEL`), or none is given.
    """
    items = levels.split(",") if isinstance(levels, str) else list(levels)
    parsed = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        try:
            if isinstance(text, bool):
                raise ValueError
            value = float(text)
        except (TypeError, ValueError):
            raise ConfigError(
                f"--var-levels must be numbers in {LEVEL_RANGE} separated by commas, "
                f"received {item!r}; pass e.g. --var-levels 0.01,0.05"
            ) from None
        if not MIN_LEVEL <= value < MAX_LEVEL:
            raise ConfigError(
                f"VaR level {text} is outside {LEVEL_RANGE}; a level is the tail probability "
                f"(0.01 for 99% VaR, {MIN_LEVEL:g} for 99.99%); pass e.g. --var-levels 0.01,0.05"
            )
        parsed.append(value)
    if not parsed or (isinstance(levels, str) and not levels.strip()):
        raise ConfigError("--var-levels is empty; pass e.g. --var-levels 0.01,0.05")
    return tuple(sorted(set(parsed)))


def check_distribution(name: str) -> str:
    """``name`` if it is one of :data:`DISTRIBUTIONS`, else a ConfigError listing them."""
    if name not in DISTRIBUTIONS:
        raise ConfigError(
            f"unknown return distribution {name!r}; expected one of {', '.join(DISTRIBUTIONS)} "
            "(e.g. --dist t)"
        )
    return name


def level_key(alpha: float) -> str:
    """The JSON/CSV key of a level: ``0.01`` -> ``"0.01"``."""
    return f"{alpha:g}"


def _check_alpha(alpha: float) -> float:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, int | float)
        or not MIN_LEVEL <= alpha < MAX_LEVEL
    ):
        raise ConfigError(f"VaR level must be a number in {LEVEL_RANGE}, received {alpha!r}")
    return float(alpha)


def _finite(value: float, what: str, distribution: str, alpha: float) -> float:
    """``value``, or :class:`Unavailable` if it is NaN or infinite (never printed or stored)."""
    if not math.isfinite(value):
        raise Unavailable(
            f"the {distribution} {what} at level {alpha:g} is not a finite number ({value}); "
            f"no VaR/ES is given for it"
        )
    return value


def _vector(values: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 1:
        raise EvaluationError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


# ------------------------------------------------------ returns and residuals
def horizon_returns(returns: pd.Series | np.ndarray, positions: Any, horizon: int) -> np.ndarray:
    """h-day log returns ``r_{p+1} + ... + r_{p+h}`` at each price position ``p``.

    NaN where the h days are not all in the series (not realized yet).
    """
    values = returns.to_numpy(dtype=np.float64) if isinstance(returns, pd.Series) else returns
    values = _vector(values, "returns")
    positions = _vector(positions, "positions", np.int64)
    cumulative = np.concatenate([[0.0], np.cumsum(np.nan_to_num(values))])
    out = np.full(positions.shape, np.nan)
    realized = positions + horizon <= values.size - 1
    end, start = positions[realized] + horizon, positions[realized]
    out[realized] = cumulative[end + 1] - cumulative[start + 1]
    return out


def standardize(returns_h: Any, forecast_var: Any, horizon: int) -> np.ndarray:
    """``R / sqrt(h f)`` over the rows where both are known and ``f > 0``."""
    returns_h = _vector(returns_h, "returns_h")
    forecast = _vector(forecast_var, "forecast_var")
    if returns_h.shape != forecast.shape:
        raise EvaluationError(
            f"returns_h has {returns_h.size} rows but forecast_var has {forecast.size}"
        )
    keep = np.isfinite(returns_h) & np.isfinite(forecast) & (forecast > 0)
    return returns_h[keep] / np.sqrt(horizon * forecast[keep])


def pretest_rows(dataset: Dataset, first_test_row: int) -> np.ndarray:
    """Labeled rows whose h-day return is realized by the close of ``first_test_row``."""
    rows = np.flatnonzero(dataset.labeled())
    return rows[rows + dataset.horizon <= first_test_row]


def overnight_factor(forecaster: Forecaster, dataset: Dataset, cut: pd.Timestamp) -> float:
    """The factor VaR/ES multiply ``forecaster``'s forecasts by (see the module docstring).

    1 for a model of the close-to-close return variance (``forecasts_target``
    False); else the Hansen–Lunde factor of the days before ``cut``, or NaN when
    there are too few of them.
    """
    from forecaster.data.features import overnight_scale
    from forecaster.errors import DataError

    if not getattr(forecaster, "forecasts_target", True):
        return 1.0
    try:
        return overnight_scale(dataset, cut).factor
    except DataError:
        return math.nan


def in_sample_residuals(
    forecaster: Forecaster, dataset: Dataset, first_test_row: int, factor: float = 1.0
) -> np.ndarray:
    """Standardized training returns ``R / sqrt(h c f)`` of a fitted forecaster.

    ``f`` is the forecaster's own forecast (``forecaster.predict``) at every
    origin before ``first_test_row`` whose return was realized by then, ``c``
    the overnight ``factor``; rows without a forecast (NaN, or before a
    baseline's first usable origin) are skipped.
    """
    from forecaster.models.baselines import Baseline

    rows = pretest_rows(dataset, first_test_row)
    if isinstance(forecaster, Baseline) and rows.size:
        rows = rows[dataset.origins[rows] >= forecaster.earliest_origin]
    if rows.size == 0:
        return np.empty(0)
    forecast = factor * forecaster.predict(dataset, rows)
    returns_h = horizon_returns(dataset.returns, dataset.positions[rows], dataset.horizon)
    return standardize(returns_h, forecast, dataset.horizon)


@dataclass(frozen=True, eq=False)
class ResidualBlock:
    """Standardized training returns behind the forecasts of one block of test rows.

    ``start`` is the first test row (0-based, within the test period) whose
    VaR uses a distribution fit on ``residuals``; a held-out backtest has one
    block, a walk-forward backtest one per refit. ``factor`` is the overnight
    factor the block's forecasts are multiplied by (estimated before ``cut``;
    the residuals are standardized with it).
    """

    start: int
    cut: pd.Timestamp
    residuals: np.ndarray
    factor: float = 1.0


# -------------------------------------------------------------- distributions
@dataclass(frozen=True, eq=False)
class ReturnDistribution:
    """Distribution of the standardized h-day return ``z = R / sqrt(h f)``.

    Attributes
    ----------
    name : str
        ``normal``, ``t`` or ``fhs``.
    params : dict
        ``{}`` (normal), ``{"dof", "scale"}`` (t), ``{"std"}`` (fhs).
    n : int
        Standardized returns it was fit on (0 for normal).
    residuals : numpy.ndarray
        The sorted standardized returns (fhs only).
    """

    name: str
    params: dict[str, float] = field(default_factory=dict)
    n: int = 0
    residuals: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def quantile(self, alpha: float) -> float:
        """``q_alpha`` of z (negative); :class:`Unavailable` if it is not finite."""
        return _finite(self._quantile(alpha), "quantile", self.name, alpha)

    def shortfall(self, alpha: float) -> float:
        """``E[z | z <= q_alpha]`` (more negative than the quantile); finite or Unavailable."""
        return _finite(self._shortfall(alpha), "shortfall", self.name, alpha)

    def _quantile(self, alpha: float) -> float:
        alpha = _check_alpha(alpha)
        if self.name == "normal":
            return float(_STANDARD_NORMAL.inv_cdf(alpha))
        if self.name == "t":
            # scipy.stats is imported where it is used: ~0.8 s that a cached fit avoids
            from scipy import stats

            return float(self.params["scale"] * stats.t.ppf(alpha, self.params["dof"]))
        self._check_tail(alpha)
        return float(np.quantile(self.residuals, alpha))

    def _shortfall(self, alpha: float) -> float:
        alpha = _check_alpha(alpha)
        if self.name == "normal":
            return float(-_STANDARD_NORMAL.pdf(_STANDARD_NORMAL.inv_cdf(alpha)) / alpha)
        if self.name == "t":
            from scipy import stats

            dof, scale = self.params["dof"], self.params["scale"]
            q = stats.t.ppf(alpha, dof)
            return float(-scale * (dof + q**2) / (dof - 1) * stats.t.pdf(q, dof) / alpha)
        q = self.quantile(alpha)
        return float(self.residuals[self.residuals <= q].mean())

    def std(self) -> float:
        """Standard deviation of z (scales the ES test's residuals)."""
        if self.name == "normal":
            return 1.0
        if self.name == "t":
            dof = self.params["dof"]
            return float(self.params["scale"] * math.sqrt(dof / (dof - 2)))
        return float(self.params["std"])

    def _check_tail(self, alpha: float) -> None:
        in_tail = alpha * self.n
        if in_tail < MIN_TAIL_RESIDUALS:
            raise NotEnoughData(
                f"not enough data: fhs at level {alpha:g} needs at least "
                f"{math.ceil(MIN_TAIL_RESIDUALS / alpha)} standardized training returns "
                f"({MIN_TAIL_RESIDUALS} in the tail), got {self.n}"
            )


def _fit_t(residuals: np.ndarray) -> dict[str, float]:
    """Maximum-likelihood ``dof`` and ``scale`` of z ~ scale * t_dof (location 0)."""
    from scipy import optimize, stats

    spread = float(np.std(residuals))
    log_spread = math.log(spread)

    def negative_loglik(params: np.ndarray) -> float:
        dof, log_scale = params
        return float(-stats.t.logpdf(residuals, dof, scale=math.exp(log_scale)).sum())

    start = np.array([6.0, log_spread + 0.5 * math.log(4.0 / 6.0)])
    result = optimize.minimize(
        negative_loglik,
        start,
        method="L-BFGS-B",
        bounds=[T_DOF_BOUNDS, (log_spread - 5.0, log_spread + 5.0)],
    )
    dof, log_scale = result.x
    return {"dof": float(dof), "scale": float(math.exp(log_scale))}


def fit_distribution(name: str, residuals: Any = None) -> ReturnDistribution:
    """Fit ``name`` on standardized training returns (ignored for ``normal``).

    Raises
    ------
    NotEnoughData
        Fewer than :data:`MIN_FIT_RESIDUALS` finite residuals for ``t``/``fhs``.
    """
    check_distribution(name)
    if name == "normal":
        return ReturnDistribution("normal")
    values = np.empty(0) if residuals is None else _vector(residuals, "residuals")
    values = np.sort(values[np.isfinite(values)])
    if values.size < MIN_FIT_RESIDUALS:
        raise NotEnoughData(
            f"not enough data: the {name} distribution needs at least {MIN_FIT_RESIDUALS} "
            f"standardized training returns (before the test period), got {values.size}"
        )
    if name == "t":
        return ReturnDistribution("t", _fit_t(values), int(values.size))
    return ReturnDistribution("fhs", {"std": float(np.std(values))}, int(values.size), values)


def value_at_risk(
    forecast_var: Any, horizon: int, distribution: ReturnDistribution, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES of the h-day log return (both negative), one per forecast."""
    sigma = np.sqrt(horizon * _vector(forecast_var, "forecast_var"))
    return sigma * distribution.quantile(alpha), sigma * distribution.shortfall(alpha)
