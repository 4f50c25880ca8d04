"""Realized-variance estimators from daily OHLC prices (pure functions).

Every estimator returns a **daily variance of log returns** indexed like the
prices (DESIGN.md §3). Logs are natural. ``realized_vol`` is the only function
here that annualizes, and it does so through :func:`forecaster.units.to_vol`.

The range estimators (Parkinson, Garman–Klass, Rogers–Satchell) use only the
bars of day t, so their value at t depends on nothing after the close of t.
Close-to-close needs the previous close; Yang–Zhang is a window estimate over
the ``window`` days ending at t (and the close before them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecaster.errors import ConfigError, DataError
from forecaster.units import to_vol

Estimator = Literal["close-to-close", "parkinson", "garman-klass", "rogers-satchell", "yang-zhang"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
DEFAULT_ESTIMATOR: Estimator = "garman-klass"
DEFAULT_WINDOW = 22

#: Smallest daily variance an estimate may take (clip for Garman–Klass; floor
#: before taking logs elsewhere). 1e-10 daily is an annualized vol of 0.016%.
VARIANCE_FLOOR = 1e-10

_OHLC = ("open", "high", "low", "close")
_TWO_LN2_MINUS_1 = 2.0 * math.log(2.0) - 1.0
_FOUR_LN2 = 4.0 * math.log(2.0)


@dataclass(frozen=True, eq=False)
class DailyVariance:
    """A daily-variance series and how it was made.

    Attributes
    ----------
    variance : pd.Series
        Daily variance indexed like the prices; NaN where the estimator has no
        value yet (first day of close-to-close, first ``window`` days of
        Yang–Zhang).
    estimator : str
        Name of the estimator (one of :data:`ESTIMATORS`).
    window : int or None
        Window of the Yang–Zhang estimate; None for the per-day estimators.
    n_floored : int
        Number of Garman–Klass values clipped at :data:`VARIANCE_FLOOR`
        (0 for every other estimator).
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


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ConfigError(
            f"unknown volatility estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}"
        )


def _check_window(window: int, minimum: int = 2) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < minimum:
        raise ConfigError(
            f"volatility window must be an integer of at least {minimum} days, "
            f"received {window!r}; pass e.g. --window 22"
        )
    return int(window)


def log_returns(prices: pd.DataFrame) -> pd.Series:
    """Close-to-close log returns ``ln(C_t / C_{t-1})``; the first value is NaN."""
    close = _columns(prices, ("close",))["close"]
    returns = np.full(close.shape, np.nan)
    returns[1:] = np.log(close[1:] / close[:-1])
    return _series(returns, prices, "log_return")


def close_to_close(prices: pd.DataFrame) -> pd.Series:
    """Squared close-to-close log return ``r_t^2`` (not demeaned); first value NaN."""
    return log_returns(prices).pow(2).rename("variance")


def parkinson(prices: pd.DataFrame) -> pd.Series:
    """Parkinson range variance ``ln(H/L)^2 / (4 ln 2)``."""
    cols = _columns(prices, ("high", "low"))
    log_hl = np.log(cols["high"] / cols["low"])
    return _series(log_hl**2 / _FOUR_LN2, prices, "variance")


def _garman_klass_raw(prices: pd.DataFrame) -> np.ndarray:
    cols = _columns(prices)
    log_hl = np.log(cols["high"] / cols["low"])
    log_co = np.log(cols["close"] / cols["open"])
    return 0.5 * log_hl**2 - _TWO_LN2_MINUS_1 * log_co**2


def garman_klass(prices: pd.DataFrame) -> pd.Series:
    """Garman–Klass variance ``0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2``.

    Values below :data:`VARIANCE_FLOOR` (a flat bar, or bad data) are clipped
    to it; :func:`daily_variance` reports how many.
    """
    return _series(np.maximum(_garman_klass_raw(prices), VARIANCE_FLOOR), prices, "variance")


def _rogers_satchell_raw(cols: dict[str, np.ndarray]) -> np.ndarray:
    high, low, open_, close = cols["high"], cols["low"], cols["open"], cols["close"]
    return np.log(high / close) * np.log(high / open_) + np.log(low / close) * np.log(low / open_)


def rogers_satchell(prices: pd.DataFrame) -> pd.Series:
    """Rogers–Satchell variance ``ln(H/C) ln(H/O) + ln(L/C) ln(L/O)`` (drift-free)."""
    return _series(_rogers_satchell_raw(_columns(prices)), prices, "variance")


def yang_zhang_k(window: int) -> float:
    """Yang–Zhang weight ``k = 0.34 / (1.34 + (n+1)/(n-1))`` for a window of n days."""
    n = _check_window(window)
    return 0.34 / (1.34 + (n + 1) / (n - 1))


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


def daily_variance(
    prices: pd.DataFrame,
    estimator: Estimator = DEFAULT_ESTIMATOR,
    window: int = DEFAULT_WINDOW,
) -> DailyVariance:
    """Daily variance series from the chosen estimator.

    Parameters
    ----------
    prices : pd.DataFrame
        Validated prices (columns open, high, low, close; positive, sorted).
    estimator : {"close-to-close", "parkinson", "garman-klass", "rogers-satchell", "yang-zhang"}
        Estimator name (DESIGN.md §3).
    window : int
        Window in days; used by ``yang-zhang`` only (at least 2).

    Returns
    -------
    DailyVariance
        The series, the estimator name, the window (None unless yang-zhang)
        and the number of Garman–Klass values clipped at the floor.
    """
    _check_estimator(estimator)
    if estimator == "yang-zhang":
        n = _check_window(window)
        return DailyVariance(yang_zhang(prices, n), estimator, n, 0)
    if estimator == "garman-klass":
        raw = _garman_klass_raw(prices)
        n_floored = int(np.count_nonzero(raw < VARIANCE_FLOOR))
        variance = _series(np.maximum(raw, VARIANCE_FLOOR), prices, "variance")
        return DailyVariance(variance, estimator, None, n_floored)
    function = {
        "close-to-close": close_to_close,
        "parkinson": parkinson,
        "rogers-satchell": rogers_satchell,
    }[estimator]
    return DailyVariance(function(prices), estimator, None, 0)


def realized_vol(
    prices: pd.DataFrame,
    estimator: Estimator = DEFAULT_ESTIMATOR,
    window: int = DEFAULT_WINDOW,
) -> pd.Series:
    """Annualized realized volatility over the ``window`` days ending at each t.

    ``vol_t = to_vol(mean of the daily variances over the window days ending
    at t)``; for ``yang-zhang`` the window estimate itself,
    ``vol_t = to_vol(sigma2_YZ_t)``. Rows without a full window are omitted.

    Returns
    -------
    pd.Series
        Named ``"vol"``, decimal (0.18 = 18%), indexed by the window end dates.
    """
    _check_estimator(estimator)
    n = _check_window(window, minimum=2 if estimator == "yang-zhang" else 1)
    daily = daily_variance(prices, estimator, n).variance
    if estimator == "yang-zhang":
        sigma2 = daily
    else:
        values = daily.to_numpy()
        means = np.full(values.shape, np.nan)
        if values.shape[0] >= n:
            means[n - 1 :] = sliding_window_view(values, n).mean(axis=1)
        sigma2 = pd.Series(means, index=daily.index)
    sigma2 = sigma2.dropna()
    if sigma2.empty:
        needed = n + 1 if estimator in ("yang-zhang", "close-to-close") else n
        raise DataError(
            f"realized volatility with estimator {estimator!r} and window {n} needs at "
            f"least {needed} rows of prices, received {len(prices)}; "
            "fetch a longer history or use a shorter window"
        )
    return pd.Series(to_vol(sigma2.to_numpy()), index=sigma2.index, name="vol")
