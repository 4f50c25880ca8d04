"""Realized-variance estimators from daily OHLC prices (pure functions).

Every estimator returns a **daily variance of log returns** indexed like the
prices (DESIGN.md §3). Logs are natural. ``realized_vol`` is the only function
here that annualizes, and it does so through :func:`forecaster.units.to_vol`.

The range estimators (Parkinson, Garman–Klass, Rogers–Satchell) use only the
bars of day t, so their value at t depends on nothing after the close of t.
Close-to-close needs the previous close; Yang–Zhang is a window estimate over
the ``window`` days ending at t (and the close before them).

Each estimator is one :class:`VarianceEstimator` record in :data:`ESTIMATORS`,
added by the :func:`register_estimator` decorator (measures computed from
OHLC) or by :func:`register_measure` (a daily measure the source provides as a
column of the daily frame: computed from intraday bars, or read from a file of
precomputed measures such as the Oxford-Man realized library); :func:`daily_variance`,
:func:`realized_vol` and :func:`forecaster.data.features.build_dataset` read
everything they need from that record, so a new estimator is one decorated
function::

    @register_estimator("scaled-close-to-close", warm_up=1)
    def scaled_close_to_close(prices: pd.DataFrame) -> pd.Series:
        return 1.1 * close_to_close(prices)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecaster.errors import ConfigError, DataError
from forecaster.units import to_vol

DEFAULT_ESTIMATOR = "garman-klass"
DEFAULT_WINDOW = 22

#: Smallest daily variance an estimate may take (clip for Garman–Klass; floor
#: before taking logs elsewhere). 1e-10 daily is an annualized vol of 0.016%.
VARIANCE_FLOOR = 1e-10

_OHLC = ("open", "high", "low", "close")
_TWO_LN2_MINUS_1 = 2.0 * math.log(2.0) - 1.0
_FOUR_LN2 = 4.0 * math.log(2.0)


@dataclass(frozen=True)
class VarianceEstimator:
    """One registered daily-variance estimator.

    Attributes
    ----------
    name : str
        Name users pass (``--estimator``) and models record in their metadata.
    function : callable
        ``function(prices)`` returns the daily variance as a Series indexed like
        the prices; ``function(prices, window)`` when :attr:`uses_window`.
    uses_window : bool
        The value at t is already an estimate over the ``window`` days ending at
        t (Yang–Zhang): the window is validated (at least 2) and passed to
        ``function``, and :func:`realized_vol` takes the value as it is instead
        of averaging it over the window.
    warm_up : int
        Leading rows the per-day ingredients leave undefined: 1 when day t needs
        the close of day t-1 (close-to-close, Yang–Zhang's overnight return),
        0 for the range estimators. See :meth:`undefined_rows`.
    floored : bool
        Values below :data:`VARIANCE_FLOOR` are clipped to it and counted in
        :attr:`DailyVariance.n_floored` (Garman–Klass, which can be zero or
        negative).
    """

    name: str
    function: Callable[..., pd.Series]
    uses_window: bool = False
    warm_up: int = 0
    floored: bool = False
    #: ``"ohlc"``: computed from the daily prices; ``"measure"``: read from the column
    #: :attr:`name` of the daily frame (a measure from bars or from a file).
    kind: str = "ohlc"
    #: Price columns an ``"ohlc"`` estimator reads (close-to-close also takes ``ret``).
    needs: tuple[str, ...] = _OHLC

    def undefined_rows(self, window: int) -> int:
        """Leading NaN rows of the daily-variance series for ``window``.

        ``warm_up``, plus the ``window - 1`` days before a full window for a
        windowed estimator (Yang–Zhang: its first value is at position ``window``).
        """
        return self.warm_up + (window - 1 if self.uses_window else 0)


#: The estimator registry, name -> record, in registration order (the order
#: users see in error messages and ``--estimator`` choices).
ESTIMATORS: dict[str, VarianceEstimator] = {}

_Function = TypeVar("_Function", bound=Callable[..., pd.Series])


def register_estimator(
    name: str,
    *,
    uses_window: bool = False,
    warm_up: int = 0,
    floored: bool = False,
    needs: tuple[str, ...] = _OHLC,
) -> Callable[[_Function], _Function]:
    """Decorator: register a daily-variance function in :data:`ESTIMATORS` as ``name``.

    The function is returned unchanged. See :class:`VarianceEstimator` for the
    meaning of the keyword arguments.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"an estimator name must be a non-empty string, received {name!r}")
    if isinstance(warm_up, bool) or not isinstance(warm_up, int) or warm_up < 0:
        raise TypeError(f"warm_up must be an integer >= 0, received {warm_up!r}")

    def decorator(function: _Function) -> _Function:
        if name in ESTIMATORS and ESTIMATORS[name].function is not function:
            raise TypeError(f"a volatility estimator named {name!r} is already registered")
        ESTIMATORS[name] = VarianceEstimator(
            name, function, uses_window, warm_up, floored, "ohlc", tuple(needs)
        )
        return function

    return decorator


def get_estimator(name: str) -> VarianceEstimator:
    """The registered estimator ``name``, or a ConfigError listing the valid names.

    A measure's name matches case-insensitively (``RV5`` is ``rv5``).
    """
    if isinstance(name, str) and name not in ESTIMATORS and name.strip().lower() in MEASURES:
        name = name.strip().lower()
    if not isinstance(name, str) or name not in ESTIMATORS:
        raise ConfigError(
            f"unknown volatility estimator {name!r}; expected one of {', '.join(ESTIMATORS)}"
        )
    return ESTIMATORS[name]


@dataclass(frozen=True, eq=False)
class DailyVariance:
    """A daily-variance series and how it was made.

    Attributes
    ----------
    variance : pd.Series
        Daily variance indexed like the prices; NaN where the estimator has no
        value yet (first day of close-to-close, first ``window`` days of
        Yang–Zhang; :meth:`VarianceEstimator.undefined_rows`).
    estimator : str
        Name of the estimator (a key of :data:`ESTIMATORS`).
    window : int or None
        Window of a windowed estimate (Yang–Zhang); None for the per-day estimators.
    n_floored : int
        Number of values clipped at :data:`VARIANCE_FLOOR` (Garman–Klass; 0 for
        every estimator registered without ``floored``).
    """

    variance: pd.Series
    estimator: str
    window: int | None
    n_floored: int


def _columns(prices: pd.DataFrame, names: tuple[str, ...] = _OHLC) -> dict[str, np.ndarray]:
    """Float64 arrays of the named price columns, or a DataError naming what is missing."""
    if not isinstance(prices, pd.DataFrame):
        raise DataError(
            f"prices must be a pandas DataFrame, received {type(prices).__name__}; "
            "pass the validated price frame (columns open, high, low, close, volume)"
        )
    missing = [name for name in names if name not in prices.columns]
    if missing:
        raise DataError(
            f"price frame is missing column(s) {missing}; received columns "
            f"{list(prices.columns)}, expected lowercase {list(names)}; "
            "load prices through forecaster.data so they are validated and renamed"
        )
    return {name: prices[name].to_numpy(dtype=np.float64) for name in names}


def _series(values: np.ndarray, prices: pd.DataFrame, name: str) -> pd.Series:
    return pd.Series(values, index=prices.index, name=name, dtype=np.float64)


def _check_window(window: int, minimum: int = 2) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < minimum:
        raise ConfigError(
            f"volatility window must be an integer of at least {minimum} days, "
            f"received {window!r}; pass e.g. --window 22"
        )
    return int(window)


def log_returns(prices: pd.DataFrame) -> pd.Series:
    """Close-to-close log returns ``ln(C_t / C_{t-1})``; the first value is NaN.

    A daily frame with a ``ret`` column (a file of measures) gives that column,
    the close-to-close log returns as the file states them.
    """
    if isinstance(prices, pd.DataFrame) and RETURN_COLUMN in prices:
        returns = prices[RETURN_COLUMN].to_numpy(dtype=np.float64)
        return _series(returns, prices, "log_return")
    close = _columns(prices, ("close",))["close"]
    returns = np.full(close.shape, np.nan)
    returns[1:] = np.log(close[1:] / close[:-1])
    return _series(returns, prices, "log_return")


@register_estimator("close-to-close", warm_up=1, needs=("close",))
def close_to_close(prices: pd.DataFrame) -> pd.Series:
    """Squared close-to-close log return ``r_t^2`` (not demeaned); first value NaN."""
    return log_returns(prices).pow(2).rename("variance")


@register_estimator("parkinson", needs=("high", "low"))
def parkinson(prices: pd.DataFrame) -> pd.Series:
    """Parkinson range variance ``ln(H/L)^2 / (4 ln 2)``."""
    cols = _columns(prices, ("high", "low"))
    log_hl = np.log(cols["high"] / cols["low"])
    return _series(log_hl**2 / _FOUR_LN2, prices, "variance")


@register_estimator("garman-klass", floored=True)
def _garman_klass_raw(prices: pd.DataFrame) -> pd.Series:
    """Garman–Klass variance before the floor (zero for a flat bar, negative on bad data)."""
    cols = _columns(prices)
    log_hl = np.log(cols["high"] / cols["low"])
    log_co = np.log(cols["close"] / cols["open"])
    return _series(0.5 * log_hl**2 - _TWO_LN2_MINUS_1 * log_co**2, prices, "variance")


def garman_klass(prices: pd.DataFrame) -> pd.Series:
    """Garman–Klass variance ``0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2``.

    Values below :data:`VARIANCE_FLOOR` (a flat bar, or bad data) are clipped
    to it; :func:`daily_variance` reports how many.
    """
    return _floored(_garman_klass_raw(prices))[0]


def _floored(variance: pd.Series) -> tuple[pd.Series, int]:
    """``variance`` clipped at :data:`VARIANCE_FLOOR` and the number of values clipped."""
    values = variance.to_numpy(dtype=np.float64)
    n_floored = int(np.count_nonzero(values < VARIANCE_FLOOR))
    clipped = pd.Series(
        np.maximum(values, VARIANCE_FLOOR), index=variance.index, name=variance.name
    )
    return clipped, n_floored


def _rogers_satchell_raw(cols: dict[str, np.ndarray]) -> np.ndarray:
    high, low, open_, close = cols["high"], cols["low"], cols["open"], cols["close"]
    return np.log(high / close) * np.log(high / open_) + np.log(low / close) * np.log(low / open_)


@register_estimator("rogers-satchell")
def rogers_satchell(prices: pd.DataFrame) -> pd.Series:
    """Rogers–Satchell variance ``ln(H/C) ln(H/O) + ln(L/C) ln(L/O)`` (drift-free)."""
    return _series(_rogers_satchell_raw(_columns(prices)), prices, "variance")


def yang_zhang_k(window: int) -> float:
    """Yang–Zhang weight ``k = 0.34 / (1.34 + (n+1)/(n-1))`` for a window of n days."""
    n = _check_window(window)
    return 0.34 / (1.34 + (n + 1) / (n - 1))


@register_estimator("yang-zhang", uses_window=True, warm_up=1)
def yang_zhang(prices: pd.DataFrame, window: int = DEFAULT_WINDOW) -> pd.Series:
    """Yang–Zhang daily variance over the ``window`` days ending at each t.

    ``sigma2 = V_O + k V_C + (1 - k) V_RS`` with V_O the sample variance
    (ddof=1) of overnight returns ``ln(O_t / C_{t-1})``, V_C that of
    open-to-close returns ``ln(C_t / O_t)``, V_RS the mean Rogers–Satchell
    variance and k from :func:`yang_zhang_k`. NaN until the window is full;
    the first day of a window needs the close before it, so the first value
    is at position ``window``.
    """
    n = _check_window(window)
    k = yang_zhang_k(n)
    cols = _columns(prices)
    size = cols["close"].shape[0]
    out = np.full(size, np.nan)
    if size <= n:
        return _series(out, prices, "variance")
    overnight = np.log(cols["open"][1:] / cols["close"][:-1])  # day t at position t-1
    open_close = np.log(cols["close"][1:] / cols["open"][1:])
    rs = _rogers_satchell_raw(cols)[1:]
    v_o = sliding_window_view(overnight, n).var(axis=1, ddof=1)
    v_c = sliding_window_view(open_close, n).var(axis=1, ddof=1)
    v_rs = sliding_window_view(rs, n).mean(axis=1)
    out[n:] = v_o + k * v_c + (1.0 - k) * v_rs
    return _series(out, prices, "variance")


#: Names of the OHLC estimators shipped with the package, in registration order.
BUILTIN_ESTIMATORS: tuple[str, ...] = tuple(ESTIMATORS)

# --- measures the source provides ---------------------------------------------

#: Column of a daily frame holding close-to-close log returns ``ln(C_t / C_{t-1})``
#: (a file of measures without closes, such as the Oxford-Man library's ``ret``).
RETURN_COLUMN = "ret"

#: Daily measures a source can provide, name -> what it is. A file's column whose
#: name (any case) is one of these is read as that measure; each one registered
#: below is a target a model can be trained on (``--estimator rv5``).
MEASURES: dict[str, str] = {}

#: Columns read with the measures that are not variances and so not targets:
#: realized quarticity (variance squared; HARQ's regressor).
AUXILIARY_MEASURES: tuple[str, ...] = ("rq",)


def _measure_column(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    def read(prices: pd.DataFrame) -> pd.Series:
        values = _columns(prices, (name,))[name]
        return _series(values, prices, "variance")

    read.__name__ = f"measure_{name.replace('-', '_')}"
    read.__doc__ = f"The daily measure ``{name}`` the source provides (column ``{name}``)."
    return read


def register_measure(name: str, description: str) -> VarianceEstimator:
    """Register the daily measure ``name`` as an estimator (``--estimator NAME``).

    The measure is not computed here: the daily frame carries it as a column of
    that name (from intraday bars, :mod:`forecaster.data.intraday`, or read from a
    file, :mod:`forecaster.data.validation`). Its values are daily variances in
    decimal units (squared log returns), like the OHLC estimators'.
    """
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise TypeError(f"a measure name must be a lower-case string, received {name!r}")
    if name in ESTIMATORS and ESTIMATORS[name].kind != "measure":
        raise TypeError(f"a volatility estimator named {name!r} is already registered")
    record = VarianceEstimator(name, _measure_column(name), kind="measure", needs=(name,))
    ESTIMATORS[name] = record
    MEASURES[name] = description
    return record


# From intraday bars (forecaster.data.intraday.daily_measures).
register_measure("rv5", "realized variance, 5-minute returns")
register_measure("rv5-ss", "subsampled 5-minute realized variance (bars)")
register_measure("bv", "bipower variation")
register_measure("rsv-pos", "upside realized semivariance")
register_measure("rsv-neg", "downside realized semivariance")
# The Oxford-Man realized library's other names (Heber, Lunde, Shephard & Sheppard 2009).
register_measure("rv5_ss", "subsampled 5-minute realized variance (library)")
register_measure("rv10", "realized variance, 10-minute returns")
register_measure("rv10_ss", "subsampled 10-minute realized variance")
register_measure("bv_ss", "subsampled bipower variation")
register_measure("rsv", "downside realized semivariance (library)")
register_measure("rsv_ss", "subsampled downside realized semivariance")
register_measure("medrv", "median realized variance")
register_measure("rk_parzen", "realized kernel, Parzen weights")
register_measure("rk_th2", "realized kernel, Tukey-Hanning(2) weights")
register_measure("rk_twoscale", "two-scale realized variance")

#: Names of the measures shipped with the package, in registration order.
BUILTIN_MEASURES: tuple[str, ...] = tuple(MEASURES)


def available_estimators(prices: pd.DataFrame) -> list[str]:
    """The estimators a daily frame supports: the OHLC ones its columns allow, its measures."""
    columns = set(prices.columns)
    if RETURN_COLUMN in columns:
        columns.add("close")  # close-to-close from the file's returns
    return [
        name
        for name, record in ESTIMATORS.items()
        if all(column in columns for column in record.needs)
    ]


def frame_measures(prices: pd.DataFrame) -> list[str]:
    """The measures (targets) a daily frame carries, in registry order."""
    return [name for name in MEASURES if name in prices.columns]


def check_estimator(prices: pd.DataFrame, estimator: str) -> VarianceEstimator:
    """The estimator ``estimator`` if the daily frame supports it, else a DataError.

    The error says what the source provides and how to choose among it.
    """
    chosen = get_estimator(estimator)
    if not isinstance(prices, pd.DataFrame):
        _columns(prices)  # the usual "must be a DataFrame" error
    available = available_estimators(prices)
    if chosen.name in available:
        return chosen
    measures = frame_measures(prices)
    has_ohlc = all(column in prices.columns for column in _OHLC)
    what = (
        ("daily OHLC prices" if has_ohlc else "no OHLC prices")
        + (f" and the measure(s) {', '.join(measures)}" if measures else " and no realized measures")
    )
    if chosen.kind == "measure":
        fix = (
            f"the source holds no column {chosen.name!r}; add it to the file (one column per "
            f"measure, any case) or pass --estimator "
            f"{(measures or available or ['NAME'])[0]}"
        )
    else:
        fix = (
            f"estimator {chosen.name!r} needs the price column(s) {', '.join(chosen.needs)}; "
            f"pass --estimator {measures[0] if measures else 'NAME'} (a measure the source "
            "provides) or a source with daily open, high, low, close"
        )
    raise DataError(
        f"the source provides {what}, so --estimator {chosen.name} cannot be used (expected one "
        f"of {', '.join(available) or 'none'}); {fix}"
    )


def daily_variance(
    prices: pd.DataFrame,
    estimator: str = DEFAULT_ESTIMATOR,
    window: int = DEFAULT_WINDOW,
) -> DailyVariance:
    """Daily variance series from the chosen estimator.

    Parameters
    ----------
    prices : pd.DataFrame
        Validated prices (columns open, high, low, close; positive, sorted).
    estimator : str
        A name in :data:`ESTIMATORS` (DESIGN.md §3): close-to-close, parkinson,
        garman-klass, rogers-satchell, yang-zhang, or one registered with
        :func:`register_estimator`.
    window : int
        Window in days; used by windowed estimators (yang-zhang) only (at least 2).

    Returns
    -------
    DailyVariance
        The series, the estimator name, the window (None unless the estimator
        uses it) and the number of values clipped at the floor (Garman–Klass).
    """
    chosen = check_estimator(prices, estimator)
    if chosen.uses_window:
        n = _check_window(window)
        variance = chosen.function(prices, n)
    else:
        n = None
        variance = chosen.function(prices)
    n_floored = 0
    if chosen.floored:
        variance, n_floored = _floored(variance)
    return DailyVariance(variance, chosen.name, n, n_floored)


def realized_vol(
    prices: pd.DataFrame,
    estimator: str = DEFAULT_ESTIMATOR,
    window: int = DEFAULT_WINDOW,
) -> pd.Series:
    """Annualized realized volatility over the ``window`` days ending at each t.

    ``vol_t = to_vol(mean of the daily variances over the window days ending
    at t)``; for a windowed estimator (``yang-zhang``) the window estimate
    itself, ``vol_t = to_vol(sigma2_YZ_t)``. Rows without a full window are
    omitted.

    Returns
    -------
    pd.Series
        Named ``"vol"``, decimal (0.18 = 18%), indexed by the window end dates.
    """
    chosen = get_estimator(estimator)
    n = _check_window(window, minimum=2 if chosen.uses_window else 1)
    daily = daily_variance(prices, estimator, n).variance
    if chosen.uses_window:
        sigma2 = daily
    else:
        values = daily.to_numpy()
        means = np.full(values.shape, np.nan)
        if values.shape[0] >= n:
            means[n - 1 :] = sliding_window_view(values, n).mean(axis=1)
        sigma2 = pd.Series(means, index=daily.index)
    sigma2 = sigma2.dropna()
    if sigma2.empty:
        needed = chosen.warm_up + n
        raise DataError(
            f"realized volatility with estimator {estimator!r} and window {n} needs at "
            f"least {needed} rows of prices, received {len(prices)}; "
            "fetch a longer history or use a shorter window"
        )
    return pd.Series(to_vol(sigma2.to_numpy()), index=sigma2.index, name="vol")
