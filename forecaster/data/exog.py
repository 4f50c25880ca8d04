"""Exogenous daily inputs: a market series' realized variance and files such as VIX.

A model may read, next to a series' own daily features, the log realized
variance of a *market* series (``--market TICKER``) and the log of exogenous
daily series (``--exog NAME=PATH``: a ``date,value`` CSV or a CBOE history
file with a ``close`` column, e.g. ``VIX_History.csv``). They enter the input
sequence as extra per-day features (:func:`forecaster.data.features.build_dataset`).

No look-ahead: a series' day d receives the exogenous value dated on or
before d (:func:`align`), the value known at d's close. A value may be
carried forward over at most :data:`MAX_STALE_DAYS` calendar days (weekends,
holidays, a market closed while the other trades); a longer gap after the
exogenous series has started is an error that names it. Days before the
exogenous series starts are not usable origins (the dataset starts later).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data.validation import parse_dates
from forecaster.data.volatility import VARIANCE_FLOOR
from forecaster.errors import ConfigError, DataError

__all__ = [
    "MARKET",
    "MAX_STALE_DAYS",
    "align",
    "exog_names",
    "market_input",
    "parse_exog_option",
    "read_exog_file",
]

#: Name of the market input among a spec's exogenous inputs.
MARKET = "market"
#: Longest carry-forward of an exogenous value, in calendar days.
MAX_STALE_DAYS = 7
_NAME_CHARACTERS = "letters, digits and _"


def exog_names(market: str | None, exog: dict[str, str] | None) -> tuple[str, ...]:
    """The exogenous feature names in input order: ``market`` first, then ``exog``'s keys."""
    return ((MARKET,) if market else ()) + tuple(exog or {})


def parse_exog_option(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("VIX=path.csv", ...)`` as ``{"VIX": "path.csv"}``; malformed pairs are errors."""
    parsed: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        name = name.strip()
        if not sep or not name or not path.strip():
            raise ConfigError(
                f"--exog {value!r} is not NAME=PATH; pass e.g. --exog VIX=VIX_History.csv"
            )
        if not name.replace("_", "").isalnum() or name.lower() == MARKET:
            raise ConfigError(
                f"--exog name {name!r} must be made of {_NAME_CHARACTERS} and not "
                f"{MARKET!r} (use --market for that); pass e.g. --exog VIX=VIX_History.csv"
            )
        if name in parsed:
            raise ConfigError(f"--exog names {name!r} twice; pass each series once")
        parsed[name] = path.strip()
    return parsed


def read_exog_file(path: str | Path, name: str) -> pd.Series:
    """A positive daily series from a ``date,value`` CSV or a CBOE history (its ``close``).

    Returns
    -------
    pandas.Series
        Values indexed by date (sorted, unique), named ``name``.

    Raises
    ------
    DataError
        Unreadable file, no date or value column, unparseable dates, duplicated
        dates, or a non-finite or non-positive value (each named).
    """
    file = Path(path).expanduser()
    origin = f"--exog {name}={file}"
    try:
        table = pd.read_csv(file)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{origin}: cannot read the file ({exc.__class__.__name__}); expected a CSV with "
            "columns date,value (or a CBOE history with date and close)"
        ) from None
    table.columns = [str(column).strip().lower() for column in table.columns]
    value_column = next((c for c in ("value", "close", "adj close") if c in table.columns), None)
    if "date" not in table.columns or value_column is None:
        if len(table.columns) == 2 and "date" in table.columns:
            value_column = next(c for c in table.columns if c != "date")
        else:
            raise DataError(
                f"{origin}: has columns {', '.join(table.columns)}; expected date and value "
                "(or a CBOE history with date and close)"
            )
    dates = parse_dates(table["date"], origin)
    values = pd.to_numeric(table[value_column], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        first = dates[np.flatnonzero(bad)[0]]
        raise DataError(
            f"{origin}: {int(bad.sum())} missing, non-finite or non-positive value(s), first on "
            f"{first:%Y-%m-%d}; expected positive values (an index level or a volatility)"
        )
    series = pd.Series(values, index=dates, name=name)
    if series.index.duplicated().any():
        first = series.index[series.index.duplicated()][0]
        raise DataError(f"{origin}: date {first:%Y-%m-%d} appears twice; expected one row a day")
    if series.empty:
        raise DataError(f"{origin}: holds no rows; expected daily values")
    return series.sort_index()


def market_input(variance: pd.Series) -> pd.Series:
    """The market input: a market series' daily variance (floored) as a positive series."""
    return variance.dropna().clip(lower=VARIANCE_FLOOR)


def build_exog(
    market_prices: pd.DataFrame | None,
    estimator: str,
    window: int,
    files: dict[str, str] | None = None,
) -> pd.DataFrame | None:
    """The raw exogenous inputs of a config: the market's daily variance and each file.

    Returns None when there are none. Columns follow :func:`exog_names`; each
    column holds its own dates' values (NaN elsewhere): :func:`align` places
    them on a series' dates.
    """
    from forecaster.data.volatility import daily_variance

    columns: dict[str, pd.Series] = {}
    if market_prices is not None:
        columns[MARKET] = market_input(daily_variance(market_prices, estimator, window).variance)
    for name, path in (files or {}).items():
        columns[name] = read_exog_file(path, name)
    if not columns:
        return None
    return pd.DataFrame(columns)


def align(
    series: pd.Series, dates: pd.DatetimeIndex, name: str, max_stale_days: int = MAX_STALE_DAYS
) -> np.ndarray:
    """Log of ``series`` at each of ``dates``: the latest value dated on or before the date.

    Dates before the series' first value get NaN (not usable yet); a date whose
    latest value is older than ``max_stale_days`` calendar days, once the series
    has started, is an error naming the date.
    """
    values = series.dropna()
    if values.empty:
        raise DataError(f"exogenous input {name!r} has no values; expected a daily series")
    index = values.index
    position = index.searchsorted(dates, side="right") - 1  # latest date <= d
    out = np.full(len(dates), np.nan)
    known = position >= 0
    taken = values.to_numpy(dtype=float)[position[known]]
    out[known] = np.log(np.maximum(taken, np.finfo(float).tiny))
    age = np.full(len(dates), 0.0)
    age[known] = (dates[known] - index[position[known]]).days
    stale = known & (age > max_stale_days)
    if stale.any():
        first = int(np.flatnonzero(stale)[0])
        raise DataError(
            f"exogenous input {name!r} has no value within {max_stale_days} days before "
            f"{dates[first]:%Y-%m-%d} (its latest is {index[position[first]]:%Y-%m-%d}; "
            f"{int(stale.sum())} such day(s)); extend or repair that series, or cut the prices "
            "at its end with --end"
        )
    return out
