"""Value-at-Risk and Expected Shortfall from variance forecasts, and their backtests.

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

Backtests
---------
A breach is ``R <= VaR``. For one level: the breach count and rate; Kupiec's
proportion-of-failures LR test; Christoffersen's independence and
conditional-coverage LR tests (chi-squared p-values); the Basel traffic light
for 99% VaR over 250-day windows (green <= 4, yellow 5–9, red >= 10 breaches);
the McNeil–Frey (2000) bootstrap test of the exceedance residuals
``(R - ES) / sigma`` on breach days (H0: mean zero; H1: mean below zero, i.e.
ES not deep enough; one-sided, centred i.i.d. bootstrap of the t statistic);
the tick (quantile) loss of VaR and the FZ0 joint loss of (VaR, ES) of Patton,
Ziegel and Chen (2019).

For h > 1 the h-day returns of consecutive origins overlap, so the tests that
assume independent breaches (Kupiec, Christoffersen, traffic light, ES test)
use every h-th origin (non-overlapping returns); counts, rates and losses use
every origin.

A statistic that needs more data than there is raises :class:`NotEnoughData`;
the reports show it as ``null`` with the message, never as NaN.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, EvaluationError
from forecaster.evaluation.defaults import DISTRIBUTIONS

if TYPE_CHECKING:
    from forecaster.data.features import Dataset
    from forecaster.models.base import Forecaster

__all__ = [
    "DEFAULT_DISTRIBUTION",
    "DEFAULT_LEVELS",
    "DISTRIBUTIONS",
    "FitStore",
    "LEVEL_RANGE",
    "MAX_LEVEL",
    "MIN_LEVEL",
    "NotEnoughData",
    "ResidualBlock",
    "ReturnDistribution",
    "RiskResult",
    "Unavailable",
    "basel_zone",
    "breaches",
    "check_distribution",
    "christoffersen",
    "evaluate",
    "fit_distribution",
    "forecast_risk",
    "fz0_losses",
    "horizon_returns",
    "in_sample_residuals",
    "kupiec",
    "level_key",
    "mcneil_frey",
    "parse_levels",
    "standardize",
    "tick_losses",
    "traffic_light",
    "value_at_risk",
]

#: Return distributions of ``--dist``.
DEFAULT_DISTRIBUTION = "t"
#: VaR/ES levels of ``--var-levels`` (tail probabilities).
DEFAULT_LEVELS: tuple[float, ...] = (0.01, 0.05)
#: The valid levels: MIN_LEVEL <= level < MAX_LEVEL (99.99% VaR down to just above the median).
#: Below MIN_LEVEL a t quantile runs off to -inf and no backtest has data to judge it.
MIN_LEVEL = 0.0001
MAX_LEVEL = 0.5
LEVEL_RANGE = f"[{MIN_LEVEL:g}, {MAX_LEVEL:g})"
#: Basel: 99% VaR assessed over 250 trading days.
BASEL_LEVEL = 0.01
BASEL_WINDOW = 250
#: Highest breach count of the green and of the yellow zone (Basel, 250 days at 99%).
BASEL_GREEN_MAX = 4
BASEL_YELLOW_MAX = 9
ZONES: tuple[str, ...] = ("green", "yellow", "red")
#: Fewest standardized training returns a t or fhs fit accepts.
MIN_FIT_RESIDUALS = 100
#: Fewest standardized training returns at or below an fhs quantile.
MIN_TAIL_RESIDUALS = 5
#: Coverage tests need at least this many expected breaches (n * alpha).
MIN_EXPECTED_BREACHES = 2.0
#: The ES test needs at least this many breaches.
MIN_EXCEEDANCES = 5
#: Bootstrap draws and seed of the McNeil–Frey test (reproducible p-values).
ES_DRAWS = 9999
ES_SEED = 0
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


# ------------------------------------------------------------------ backtests
def breaches(returns_h: Any, var: Any) -> np.ndarray:
    """Breach indicator ``R <= VaR``."""
    return _vector(returns_h, "returns_h") <= _vector(var, "var")


def _hits(hits: Any) -> np.ndarray:
    array = np.asarray(hits)
    if array.ndim != 1 or array.dtype != bool:
        raise EvaluationError("hits must be a one-dimensional boolean breach indicator")
    return array


def _loglik(failures: float, successes: float, p: float) -> float:
    """``failures * ln p + successes * ln(1 - p)`` with 0 ln 0 = 0."""
    from scipy import special

    return float(special.xlogy(failures, p) + special.xlog1py(successes, -p))


def _chi2_sf(stat: float, dof: int) -> float:
    from scipy import stats

    return float(stats.chi2.sf(stat, dof))


def _coverage_data(hits: np.ndarray, alpha: float) -> None:
    expected = hits.size * alpha
    if expected < MIN_EXPECTED_BREACHES:
        raise NotEnoughData(
            f"not enough data: coverage tests at level {alpha:g} need at least "
            f"{math.ceil(MIN_EXPECTED_BREACHES / alpha)} test days ({MIN_EXPECTED_BREACHES:g} "
            f"expected breaches), got {hits.size}"
        )


def kupiec(hits: Any, alpha: float) -> dict[str, float]:
    """Kupiec (1995) proportion-of-failures test.

    ``LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]`` ~ chi2(1).
    """
    hits, alpha = _hits(hits), _check_alpha(alpha)
    _coverage_data(hits, alpha)
    n, x = hits.size, int(hits.sum())
    stat = -2.0 * (_loglik(x, n - x, alpha) - _loglik(x, n - x, x / n))
    stat = max(stat, 0.0)
    return {"stat": stat, "p_value": _chi2_sf(stat, 1)}


def christoffersen(hits: Any, alpha: float) -> dict[str, Any]:
    """Christoffersen (1998) independence and conditional-coverage LR tests.

    From the transition counts ``n_ij`` (breach state i followed by j):
    ``LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)]
    + 2 ln[(1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11]`` ~ chi2(1), and
    ``LR_cc = LR_pof + LR_ind`` ~ chi2(2) with the Kupiec ``LR_pof``.
    """
    hits, alpha = _hits(hits), _check_alpha(alpha)
    _coverage_data(hits, alpha)
    before, after = hits[:-1], hits[1:]
    n00 = int(np.sum(~before & ~after))
    n01 = int(np.sum(~before & after))
    n10 = int(np.sum(before & ~after))
    n11 = int(np.sum(before & after))
    pi = (n01 + n11) / max(n00 + n01 + n10 + n11, 1)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    restricted = _loglik(n01 + n11, n00 + n10, pi)
    unrestricted = _loglik(n01, n00, pi01) + _loglik(n11, n10, pi11)
    independence = max(-2.0 * (restricted - unrestricted), 0.0)
    conditional = kupiec(hits, alpha)["stat"] + independence
    return {
        "independence": {
            "stat": independence,
            "p_value": _chi2_sf(independence, 1),
        },
        "conditional_coverage": {
            "stat": conditional,
            "p_value": _chi2_sf(conditional, 2),
        },
        "transitions": {"n00": n00, "n01": n01, "n10": n10, "n11": n11},
    }


def basel_zone(count: int) -> str:
    """Basel traffic-light zone of a 250-day breach count of 99% VaR."""
    if count <= BASEL_GREEN_MAX:
        return "green"
    return "yellow" if count <= BASEL_YELLOW_MAX else "red"


def _shares(counts: np.ndarray) -> dict[str, float]:
    zones = [basel_zone(int(c)) for c in counts]
    return {zone: zones.count(zone) / len(zones) for zone in ZONES}


def traffic_light(hits: Any, dates: Any = None) -> dict[str, Any]:
    """Basel traffic light of 99% VaR over 250-observation windows.

    ``windows``: consecutive, non-overlapping windows anchored at the last
    observation (the oldest ``unused`` observations that do not fill a window
    are left out), each with its breach count and zone; ``shares``: the share
    of those windows per zone; ``rolling_shares``: the share per zone of every
    250-observation window ending on each day (the daily assessment);
    ``latest``: the zone of the most recent window.
    """
    hits = _hits(hits)
    n = hits.size
    if n < BASEL_WINDOW:
        raise NotEnoughData(
            f"not enough data: the Basel traffic light needs {BASEL_WINDOW} test days, got {n}"
        )
    labels = [f"{pd.Timestamp(d):%Y-%m-%d}" for d in dates] if dates is not None else list(range(n))
    cumulative = np.concatenate([[0], np.cumsum(hits)])
    rolling = cumulative[BASEL_WINDOW:] - cumulative[:-BASEL_WINDOW]
    unused = n % BASEL_WINDOW
    windows = []
    for start in range(unused, n, BASEL_WINDOW):
        count = int(cumulative[start + BASEL_WINDOW] - cumulative[start])
        windows.append(
            {
                "start": labels[start],
                "end": labels[start + BASEL_WINDOW - 1],
                "breaches": count,
                "zone": basel_zone(count),
            }
        )
    return {
        "window": BASEL_WINDOW,
        "windows": windows,
        "shares": _shares(np.array([w["breaches"] for w in windows])),
        "rolling_shares": _shares(rolling),
        "n_rolling": int(rolling.size),
        "unused": int(unused),
        "latest": windows[-1]["zone"],
    }


def mcneil_frey(
    returns_h: Any,
    var: Any,
    es: Any,
    sigma: Any,
    draws: int = ES_DRAWS,
    seed: int = ES_SEED,
) -> dict[str, float]:
    """McNeil–Frey (2000) bootstrap test of Expected Shortfall.

    On breach days the exceedance residuals ``e = (R - ES) / sigma`` have mean
    zero if ES is right. ``stat = mean(e) / (sd(e) / sqrt(m))`` (``ddof=1``);
    the p-value is one-sided (H1: mean < 0, ES not deep enough):
    ``(1 + #{t_b <= stat}) / (draws + 1)`` over ``draws`` t statistics of
    resamples (with replacement) of the centred residuals ``e - mean(e)``,
    drawn with ``numpy.random.default_rng(seed)``.
    """
    returns_h = _vector(returns_h, "returns_h")
    var, es, sigma = (_vector(a, n) for a, n in ((var, "var"), (es, "es"), (sigma, "sigma")))
    hit = returns_h <= var
    residuals = (returns_h[hit] - es[hit]) / sigma[hit]
    m = residuals.size
    if m < MIN_EXCEEDANCES:
        raise NotEnoughData(
            f"not enough data: the ES test needs at least {MIN_EXCEEDANCES} breaches, got {m}"
        )
    spread = float(np.std(residuals, ddof=1))
    if not spread > 0:
        raise NotEnoughData("not enough data: the exceedance residuals have no spread")
    mean = float(residuals.mean())
    stat = mean / (spread / math.sqrt(m))
    centred = residuals - mean
    sample = centred[np.random.default_rng(seed).integers(0, m, size=(draws, m))]
    sample_spread = sample.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = sample.mean(axis=1) / (sample_spread / math.sqrt(m))
    boot = np.where(sample_spread > 0, boot, 0.0)
    p_value = (1 + int(np.sum(boot <= stat))) / (draws + 1)
    return {"stat": stat, "p_value": float(p_value), "n_exceedances": m, "mean_residual": mean}


def tick_losses(returns_h: Any, var: Any, alpha: float) -> np.ndarray:
    """Quantile (tick) loss ``(alpha - 1{R <= VaR}) (R - VaR)`` per row."""
    returns_h, var = _vector(returns_h, "returns_h"), _vector(var, "var")
    return (_check_alpha(alpha) - (returns_h <= var)) * (returns_h - var)


def fz0_losses(returns_h: Any, var: Any, es: Any, alpha: float) -> np.ndarray:
    """FZ0 loss of (VaR, ES) (Patton, Ziegel & Chen 2019), ES < 0.

    ``L = -1{R <= v} (v - R) / (alpha e) + v / e + ln(-e) - 1``.
    """
    returns_h, var, es = (_vector(a, n) for a, n in ((returns_h, "r"), (var, "var"), (es, "es")))
    alpha = _check_alpha(alpha)
    if not (es < 0).all():
        raise Unavailable("the FZ0 loss is defined for a negative ES only, and an ES here is not")
    hit = (returns_h <= var).astype(np.float64)
    return -hit * (var - returns_h) / (alpha * es) + var / es + np.log(-es) - 1.0


# ------------------------------------------------------------- the risk view
ES_TEST = f"mcneil-frey: one-sided bootstrap of exceedance residuals, {ES_DRAWS} draws"


@dataclass(frozen=True, eq=False)
class RiskResult:
    """The ``risk`` block of a report and the per-origin VaR/ES frame behind it.

    ``frame`` is indexed like the backtest's predictions: ``return_h`` (the
    realized h-day log return), then ``<model>_var_<level>`` and
    ``<model>_es_<level>`` for every model and level.
    """

    summary: dict[str, Any]
    frame: pd.DataFrame


def _attempt(entry: dict[str, Any], reasons: dict[str, str], key: str, compute: Any) -> Any:
    """``entry[key] = compute()``, or None with the reason when it is unavailable."""
    try:
        entry[key] = compute()
    except Unavailable as exc:
        entry[key] = None
        reasons[key] = str(exc)
    return entry[key]


def _model_forecasts(
    forecast: np.ndarray,
    blocks: list[ResidualBlock],
    horizon: int,
    distribution: str,
    levels: tuple[float, ...],
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], np.ndarray, list, dict[float, str]]:
    """VaR, ES and return sigma of one model, each block with its own fitted distribution."""
    n = forecast.size
    var = {alpha: np.full(n, np.nan) for alpha in levels}
    es = {alpha: np.full(n, np.nan) for alpha in levels}
    sigma = np.full(n, np.nan)
    fits, missing = [], {}
    ordered = sorted(blocks, key=lambda block: block.start)
    for number, block in enumerate(ordered):
        end = ordered[number + 1].start if number + 1 < len(ordered) else n
        place = slice(block.start, end)
        fit: dict[str, Any] = {
            "cut": f"{block.cut:%Y-%m-%d}",
            "n": int(block.residuals.size),
            "overnight": block.factor,
        }
        if not math.isfinite(block.factor):
            reason = "too few days before the cut to estimate the overnight factor"
            fits.append({**fit, "overnight": None, "params": None, "reason": reason})
            for alpha in levels:
                missing.setdefault(alpha, reason)
            continue
        scaled = forecast[place] * block.factor
        try:
            fitted = fit_distribution(distribution, block.residuals)
        except Unavailable as exc:
            fits.append({**fit, "params": None, "reason": str(exc)})
            for alpha in levels:
                missing.setdefault(alpha, str(exc))
            continue
        fits.append({**fit, "params": dict(fitted.params), "reason": None})
        sigma[place] = np.sqrt(horizon * scaled) * fitted.std()
        for alpha in levels:
            try:
                var[alpha][place], es[alpha][place] = value_at_risk(
                    scaled, horizon, fitted, alpha
                )
            except Unavailable as exc:
                missing.setdefault(alpha, str(exc))
    return var, es, sigma, fits, missing


def _regime(hits: np.ndarray, high: np.ndarray, high_ex_post: np.ndarray) -> dict[str, Any]:
    """Breaches on high ex-ante days vs the rest (and, for reference, on high ex-post days)."""

    def rate(mask: np.ndarray) -> float | None:
        return float(hits[mask].mean()) if mask.any() else None

    return {
        "n_high": int(high.sum()),
        "breaches_high": int(hits[high].sum()),
        "breach_rate_high": rate(high),
        "n_low": int((~high).sum()),
        "breaches_low": int(hits[~high].sum()),
        "breach_rate_low": rate(~high),
        "n_high_ex_post": int(high_ex_post.sum()),
        "breaches_high_ex_post": int(hits[high_ex_post].sum()),
        "breach_rate_high_ex_post": rate(high_ex_post),
    }


LEVEL_KEYS = (
    "expected_rate",
    "n",
    "breaches",
    "breach_rate",
    "kupiec",
    "christoffersen_independence",
    "christoffersen_conditional",
    "traffic_light",
    "es_test",
    "regime",
    "tick_loss",
    "fz0",
    "dm_fz0",
    "unavailable",
)


def _empty_level(alpha: float, n: int, reason: str) -> dict[str, Any]:
    entry: dict[str, Any] = {key: None for key in LEVEL_KEYS}
    entry.update(expected_rate=alpha, n=n)
    entry["unavailable"] = {
        key: reason for key in LEVEL_KEYS if key not in ("expected_rate", "n", "unavailable")
    }
    return entry


def _backtest_level(
    returns_h: np.ndarray,
    var: np.ndarray,
    es: np.ndarray,
    sigma: np.ndarray,
    high: np.ndarray,
    high_ex_post: np.ndarray,
    dates: pd.DatetimeIndex,
    alpha: float,
    horizon: int,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """One model's backtest at one level (usable rows only); also its FZ0 losses."""
    n = returns_h.size
    entry: dict[str, Any] = {"expected_rate": alpha, "n": n}
    reasons: dict[str, str] = {}
    hits = breaches(returns_h, var)
    entry["breaches"] = int(hits.sum())
    entry["breach_rate"] = float(hits.mean())
    tested = np.arange(0, n, horizon)  # non-overlapping h-day returns
    _attempt(entry, reasons, "kupiec", lambda: kupiec(hits[tested], alpha))
    try:
        tests = christoffersen(hits[tested], alpha)
        entry["christoffersen_independence"] = tests["independence"]
        entry["christoffersen_conditional"] = tests["conditional_coverage"]
    except Unavailable as exc:
        for key in ("christoffersen_independence", "christoffersen_conditional"):
            entry[key], reasons[key] = None, str(exc)
    if math.isclose(alpha, BASEL_LEVEL):
        _attempt(
            entry, reasons, "traffic_light", lambda: traffic_light(hits[tested], dates[tested])
        )
    else:
        entry["traffic_light"] = None
        reasons["traffic_light"] = f"defined for the {BASEL_LEVEL:g} level (99% VaR) only"
    _attempt(
        entry,
        reasons,
        "es_test",
        lambda: mcneil_frey(returns_h[tested], var[tested], es[tested], sigma[tested]),
    )
    entry["regime"] = _regime(hits, high, high_ex_post)
    entry["tick_loss"] = float(tick_losses(returns_h, var, alpha).mean())
    losses = _attempt(entry, reasons, "fz0", lambda: fz0_losses(returns_h, var, es, alpha))
    entry["fz0"] = float(losses.mean()) if losses is not None else None
    entry["dm_fz0"] = None
    entry["unavailable"] = reasons
    return {key: entry.get(key) for key in LEVEL_KEYS}, losses


def evaluate(
    predictions: pd.DataFrame,
    models: list[str],
    returns_h: Any,
    blocks: dict[str, list[ResidualBlock]],
    horizon: int,
    distribution: str = DEFAULT_DISTRIBUTION,
    levels: Iterable[float] | str = DEFAULT_LEVELS,
    reference: str = "har",
) -> RiskResult:
    """VaR/ES of every model over a backtest's test period, and their backtests.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The backtest's predictions frame (``high_ex_ante`` and one variance
        column per model, indexed by origin).
    models : list of str
        Model columns of ``predictions``.
    returns_h : array-like
        Realized h-day log return at each origin of ``predictions``.
    blocks : dict
        Per model, the :class:`ResidualBlock` s its distributions are fit on.
    horizon : int
        Forecast horizon h.
    distribution, levels, reference
        ``--dist``, ``--var-levels`` and the Diebold–Mariano reference model.

    Returns
    -------
    RiskResult
        Rows where any model lacks a forecast are left out of every statistic
        (as in the point-forecast summary), so all models face the same days.
    """
    distribution = check_distribution(distribution)
    levels = parse_levels(levels)
    returns_h = _vector(returns_h, "returns_h")
    if returns_h.size != len(predictions):
        raise EvaluationError(
            f"returns_h has {returns_h.size} rows but the predictions frame has {len(predictions)}"
        )
    frame = pd.DataFrame({"return_h": returns_h}, index=predictions.index)
    usable = np.isfinite(returns_h) & predictions[models].notna().all(axis=1).to_numpy()
    if not usable.any():
        raise EvaluationError("no test origin has a realized return and every model's forecast")
    dates = predictions.index[usable]
    high = predictions["high_ex_ante"].to_numpy(dtype=bool)[usable]
    high_ex_post = predictions["high_ex_post"].to_numpy(dtype=bool)[usable]
    realized = returns_h[usable]
    results: dict[str, dict[str, Any]] = {}
    fits: dict[str, list] = {}
    losses: dict[str, dict[float, np.ndarray | None]] = {}
    for name in models:
        forecast = predictions[name].to_numpy(dtype=np.float64)
        var, es, sigma, fits[name], missing = _model_forecasts(
            forecast, blocks.get(name, []), horizon, distribution, levels
        )
        results[name], losses[name] = {}, {}
        for alpha in levels:
            key = level_key(alpha)
            frame[f"{name}_var_{key}"] = var[alpha]
            frame[f"{name}_es_{key}"] = es[alpha]
            lacking = ~np.isfinite(var[alpha][usable]) | ~np.isfinite(es[alpha][usable])
            if alpha in missing or lacking.any():
                reason = missing.get(alpha, f"{name} has no {distribution} fit for some test days")
                results[name][key] = _empty_level(alpha, int(usable.sum()), reason)
                losses[name][alpha] = None
                continue
            results[name][key], losses[name][alpha] = _backtest_level(
                realized,
                var[alpha][usable],
                es[alpha][usable],
                sigma[usable],
                high,
                high_ex_post,
                dates,
                alpha,
                horizon,
            )
    _diebold_mariano(results, losses, levels, reference, horizon)
    summary = {
        "distribution": distribution,
        "levels": list(levels),
        "horizon": horizon,
        "return": f"log close-to-close return over the {horizon} trading day(s) after the origin",
        "n": int(usable.sum()),
        "test_step": horizon,
        "n_tested": int(np.arange(0, usable.sum(), horizon).size),
        "reference": reference,
        "es_test": ES_TEST,
        "fits": fits,
        "models": results,
        "notes": [],
    }
    return RiskResult(summary, frame)


def _diebold_mariano(
    results: dict[str, dict[str, Any]],
    losses: dict[str, dict[float, np.ndarray | None]],
    levels: tuple[float, ...],
    reference: str,
    horizon: int,
) -> None:
    from forecaster import metrics

    for name in results:
        for alpha in levels:
            entry = results[name][level_key(alpha)]
            if name == reference:
                entry["unavailable"]["dm_fz0"] = "this is the reference model"
                continue
            if reference not in losses:
                entry["unavailable"]["dm_fz0"] = f"the reference model {reference!r} is not scored"
                continue
            mine, theirs = losses[name][alpha], losses[reference][alpha]
            if mine is None or theirs is None:
                which = name if mine is None else reference
                entry["unavailable"]["dm_fz0"] = f"no FZ0 loss for {which} at this level"
                continue
            try:
                entry["dm_fz0"] = metrics.diebold_mariano(mine, theirs, horizon)
            except EvaluationError as exc:
                entry["unavailable"]["dm_fz0"] = f"not enough data: {exc}"


class FitStore(Protocol):
    """Where :func:`forecast_risk` keeps fits (:class:`~forecaster.evaluation.risk_cache.FitCache`).

    ``read`` gives ``{"n", "params", "levels": {level key: {"quantile",
    "shortfall"}}}`` of a validated fit for this model, ticker and data, or None.
    """

    def read(self, distribution: str) -> dict[str, Any] | None: ...

    def write(
        self, distribution: str, n: int, params: dict[str, float], levels: dict[str, Any]
    ) -> None: ...


def forecast_risk(
    forecaster: Forecaster,
    dataset: Dataset,
    variance: float,
    test_start: pd.Timestamp | str,
    distribution: str = DEFAULT_DISTRIBUTION,
    levels: Iterable[float] | str = DEFAULT_LEVELS,
    cache: FitStore | None = None,
) -> dict[str, Any]:
    """VaR and ES of the next h-day log return from one variance forecast.

    ``t`` and ``fhs`` are fit on the forecaster's standardized returns at the
    origins before ``test_start`` (a saved model's training and validation
    rows). When they are too few, ``levels`` is None and ``reason`` says why.
    With ``cache`` (a :class:`FitStore` such as
    :class:`~forecaster.evaluation.risk_cache.FitCache`), a fit
    cached for this model, ticker and price history is used (no forward pass
    over the training rows, no scipy import), and a fit computed here is
    stored; the result is the same either way.

    The forecast is first multiplied by the overnight factor estimated on the
    days before ``test_start`` (:func:`overnight_factor`; 1 for GARCH-type models).

    Returns
    -------
    dict
        ``distribution``, ``horizon``, ``levels`` ({level: {``var``, ``es``}}
        or None), ``fit`` ({``n``, ``params``}), ``overnight`` ({``method``,
        ``factor``}) and ``reason``.
    """
    distribution = check_distribution(distribution)
    levels = parse_levels(levels)
    horizon = dataset.horizon
    start = pd.Timestamp(test_start)
    factor = overnight_factor(forecaster, dataset, start)
    overnight = {"method": "hansen-lunde-2005", "factor": factor if math.isfinite(factor) else None}
    if not math.isfinite(factor):
        return {
            "distribution": distribution,
            "horizon": horizon,
            "levels": None,
            "fit": {"n": 0, "params": None, "before": f"{start:%Y-%m-%d}"},
            "overnight": overnight,
            "reason": "too few days before the test period to estimate the overnight factor",
        }
    variance = factor * float(variance)  # the close-to-close variance (module docstring)
    sigma = np.sqrt(horizon * _vector(np.array([variance]), "forecast_var"))  # as value_at_risk
    cached = cache.read(distribution) if cache is not None and distribution != "normal" else None
    if cached is not None and all(level_key(alpha) in cached["levels"] for alpha in levels):
        factors = [cached["levels"][level_key(alpha)] for alpha in levels]
        return {
            "distribution": distribution,
            "horizon": horizon,
            "levels": {
                level_key(alpha): {
                    "var": float((sigma * factor["quantile"])[0]),
                    "es": float((sigma * factor["shortfall"])[0]),
                }
                for alpha, factor in zip(levels, factors, strict=True)
            },
            "fit": {
                "n": cached["n"],
                "params": dict(cached["params"]),
                "before": f"{start:%Y-%m-%d}",
            },
            "overnight": overnight,
            "reason": None,
        }
    residuals = np.empty(0)
    if distribution != "normal":
        first_test_row = int(dataset.origins.searchsorted(start, side="left"))
        residuals = in_sample_residuals(forecaster, dataset, first_test_row, factor)
    payload: dict[str, Any] = {
        "distribution": distribution,
        "horizon": horizon,
        "levels": None,
        "fit": {"n": int(residuals.size), "params": None, "before": f"{start:%Y-%m-%d}"},
        "overnight": overnight,
        "reason": None,
    }
    try:
        fitted = fit_distribution(distribution, residuals)
        values, factors = {}, {}
        for alpha in levels:
            key = level_key(alpha)
            factors[key] = {
                "quantile": fitted.quantile(alpha),
                "shortfall": fitted.shortfall(alpha),
            }
            var, es = value_at_risk(np.array([variance]), horizon, fitted, alpha)
            values[key] = {"var": float(var[0]), "es": float(es[0])}
    except Unavailable as exc:
        payload["reason"] = str(exc)
        return payload
    payload["levels"] = values
    payload["fit"]["params"] = dict(fitted.params)
    if cache is not None and distribution != "normal":
        known = cached["levels"] if cached is not None else {}  # same key: the same fit
        cache.write(distribution, payload["fit"]["n"], dict(fitted.params), {**known, **factors})
    return payload
