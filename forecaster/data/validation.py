"""OHLCV sanity checks: one policy for every source.

Policy, applied in this order (each failure is a :class:`DataError` naming the
first few offending dates or rows and their count):

1. Columns: ``open, high, low, close`` are required (any case, surrounding
   spaces ignored); ``volume`` is optional (NaN when absent); ``adj close`` and
   anything else is ignored.
2. Dates: every date must parse (``today`` and ``now`` are not dates) and lie
   between 1800-01-01 and today (the latest date anywhere on Earth); a
   tz-aware index is converted to its local calendar date. Dates must be
   unique and strictly increasing (a file sorted newest-first is reported,
   not re-sorted behind your back).
3. Prices: every open/high/low/close must be finite and positive.
4. Range consistency: ``high >= max(open, close)`` and ``low <= min(open,
   close)``. A violation no larger than ``REPAIR_TOLERANCE`` (relative) is a
   rounding artefact of the data vendor: it is *repaired* (high/low widened to
   include open and close) and counted in :attr:`Validated.repairs`. A larger
   violation is an error.
5. Bad prints: a high or low far outside the day's open/close *and* the
   recent ranges — a wick (``ln(min(open, close) / low)`` or
   ``ln(high / max(open, close))``) above ``BAD_PRINT_WICK`` and above
   ``BAD_PRINT_MULTIPLE`` times the median log range ``ln(high / low)`` of the
   previous ``BAD_PRINT_DAYS`` rows — is a bad print (a decimal slip or a
   broken trade, like XL's low of 5.14 against an open of 33.5 on
   2015-08-24), not trading: that high or low is set to the day's
   max/min(open, close) and counted in :attr:`Validated.repairs`. Only
   earlier rows are compared, so the repair of a day never depends on later data.
6. At least one row: an empty frame is an error. How much history a job
   needs is checked by the job (e.g. :func:`forecaster.data.features.build_dataset`).

Daily measures. A frame (a CSV or panel file) that holds columns named after
registered measures (:data:`forecaster.data.volatility.MEASURES`: ``rv5``,
``bv``, ``rk_parzen``, ... any case; and ``rq``) is a frame of precomputed
measures. Each measure must be numeric, finite and non-negative on every row
(a missing or negative value is an error naming the column, dates and count:
nothing is filled in). OHLC is then optional: with all four columns they are
kept and checked as above; without them a ``close`` (or the Oxford-Man
library's ``close_price``) is kept, finite and positive. Daily returns come
from ``ret`` (close-to-close log returns, finite on every row but the first)
when the file has it, else from the closes; a file written by ``forecast
realized --bars --daily --format csv`` gives them as ``overnight`` +
``open-to-close``, and its ``partial`` days are dropped (counted in the
repairs: never a full day).

Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.errors import DataError

REQUIRED_COLUMNS = ("open", "high", "low", "close")
PRICE_COLUMNS = REQUIRED_COLUMNS
COLUMNS = (*REQUIRED_COLUMNS, "volume")
REPAIR_TOLERANCE = 1e-3
#: A bad print's wick exceeds this log distance from the open/close body (~22%) ...
BAD_PRINT_WICK = 0.2
#: ... and this many times the median log range of the previous BAD_PRINT_DAYS rows.
BAD_PRINT_MULTIPLE = 8.0
BAD_PRINT_DAYS = 21
#: No price row is dated before this (nor after :func:`today`).
EARLIEST_DATE = pd.Timestamp("1800-01-01")
#: Words pandas parses as "this moment": never a price row's date.
RELATIVE_WORDS = ("today", "now")
_SHOW = 5


@dataclass(frozen=True)
class Validated:
    """A clean price frame plus what validation repaired."""

    prices: pd.DataFrame
    repairs: dict[str, int] = field(default_factory=dict)


def _describe(labels: list, label: str) -> str:
    shown = ", ".join(str(x) for x in labels[:_SHOW])
    more = f" and {len(labels) - _SHOW} more" if len(labels) > _SHOW else ""
    return f"{len(labels)} {label}: {shown}{more}"


def _dates(index: pd.Index) -> list[str]:
    return [pd.Timestamp(x).strftime("%Y-%m-%d") for x in index]


def measure_columns(columns: Iterable[object]) -> list[str]:
    """The measure columns (registered measures and ``rq``) among ``columns``, lower-cased."""
    from forecaster.data.volatility import AUXILIARY_MEASURES, MEASURES

    names = {str(c).strip().lower() for c in columns}
    return [name for name in (*MEASURES, *AUXILIARY_MEASURES) if name in names]


def normalize_columns(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Lower-case and strip column names; check the required ones exist."""
    renamed = frame.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in REQUIRED_COLUMNS if c not in renamed.columns]
    if missing:
        received = ", ".join(str(c) for c in frame.columns) or "no columns"
        raise DataError(
            f"{origin}: missing column(s) {', '.join(missing)}; received [{received}]; "
            "expected Date, Open, High, Low, Close and optionally Volume (any case), or "
            "daily measures (e.g. rv5, bv, rk_parzen) with ret or close"
        )
    if "volume" not in renamed.columns:
        renamed["volume"] = np.nan
    return renamed


def today() -> pd.Timestamp:
    """The latest calendar date anywhere on Earth now (UTC+14), at midnight.

    A row dated after it is in the future at every exchange, whatever the
    local time zone of the machine or of the data.
    """
    latest = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=14)
    return latest.tz_localize(None).normalize()


def parse_dates(values: pd.Index | pd.Series, origin: str) -> pd.DatetimeIndex:
    """Parse dates; unparseable ones, and dates before 1800 or after today, are errors naming them.

    The words ``today`` and ``now`` (which pandas would turn into this
    moment) are not dates.
    """
    if isinstance(values, pd.DatetimeIndex):
        index = values
    else:
        raw = pd.Series(values)
        relative = raw.map(lambda x: isinstance(x, str) and x.strip().lower() in RELATIVE_WORDS)
        parsed = pd.to_datetime(raw.mask(relative), errors="coerce", format="mixed")
        bad = parsed.isna()
        if bad.any():
            rows = [f"row {i + 1} ({raw.iloc[i]!r})" for i in np.flatnonzero(bad.to_numpy())]
            words = "; 'today' and 'now' are not dates" if relative.any() else ""
            raise DataError(
                f"{origin}: {_describe(rows, 'unparseable date(s)')}; "
                f"expected ISO dates such as 2018-06-01{words}; fix or remove those rows"
            )
        index = pd.DatetimeIndex(parsed)
    if index.tz is not None:
        index = index.tz_localize(None)
    index = index.normalize()
    latest = today()
    for wrong, label in (
        (index < EARLIEST_DATE, f"date(s) before {EARLIEST_DATE:%Y-%m-%d}"),
        (index > latest, f"date(s) after today ({latest:%Y-%m-%d})"),
    ):
        if wrong.any():
            raise DataError(
                f"{origin}: {_describe(_dates(index[wrong]), label)}; expected the dates of "
                "past trading days; fix or remove those rows"
            )
    return pd.DatetimeIndex(index.as_unit("ns"), name="date", freq=None)


def _repair_bad_prints(prices: pd.DataFrame, top: pd.Series, bottom: pd.Series) -> dict[str, int]:
    """Clip bad-print wicks in place (policy 5 of the module docstring); the repair counts."""
    log_range = np.log(prices["high"] / prices["low"])
    recent = log_range.rolling(BAD_PRINT_DAYS, min_periods=5).median().shift(1)
    limit = np.maximum(BAD_PRINT_WICK, BAD_PRINT_MULTIPLE * recent.fillna(np.inf))
    low_wick = np.log(bottom / prices["low"])
    high_wick = np.log(prices["high"] / top)
    bad_low = (low_wick > limit).to_numpy()
    bad_high = (high_wick > limit).to_numpy()
    repairs = {}
    if bad_low.any():
        prices.loc[bad_low, "low"] = bottom[bad_low]
        repairs["bad-print low set to min(open, close)"] = int(bad_low.sum())
    if bad_high.any():
        prices.loc[bad_high, "high"] = top[bad_high]
        repairs["bad-print high set to max(open, close)"] = int(bad_high.sum())
    return repairs


def validate_prices(frame: pd.DataFrame, origin: str) -> Validated:
    """Apply the module's policy and return clean ``open, high, low, close, volume``.

    Parameters
    ----------
    frame
        Raw prices indexed by date (a CSV file's dates are parsed with
        :func:`parse_dates` first).
    origin
        What the data is (``"SPY from yahoo"``, a file name), used in messages.
    """
    if measure_columns(frame.columns):
        return _validate_measures(frame, origin)
    table = normalize_columns(frame, origin)
    index = parse_dates(table.index, origin)
    prices = pd.DataFrame(
        {c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float) for c in COLUMNS},
        index=index,
    )
    return _validate_ohlc(prices, origin)


def _check_dates(prices: pd.DataFrame, origin: str) -> None:
    duplicated = prices.index.duplicated(keep=False)
    if duplicated.any():
        raise DataError(
            f"{origin}: {_describe(sorted(set(_dates(prices.index[duplicated]))), 'duplicated date(s)')}"
            "; expected one row per trading day; remove the repeated rows"
        )
    steps = np.diff(prices.index.asi8)
    if (steps <= 0).any():
        where = np.flatnonzero(steps <= 0) + 1
        raise DataError(
            f"{origin}: dates are not in increasing order, "
            f"{_describe(_dates(prices.index[where]), 'out-of-order date(s)')}"
            "; expected oldest first; sort the data by date"
        )


def _validate_ohlc(prices: pd.DataFrame, origin: str) -> Validated:
    _check_dates(prices, origin)
    values = prices[list(PRICE_COLUMNS)].to_numpy()
    bad_rows = ~(np.isfinite(values) & (values > 0)).all(axis=1)
    if bad_rows.any():
        raise DataError(
            f"{origin}: {_describe(_dates(prices.index[bad_rows]), 'date(s) with missing, non-finite or non-positive prices')}"
            "; expected finite prices > 0 in open/high/low/close; fix or remove those rows"
        )

    top = prices[["open", "close"]].max(axis=1)
    bottom = prices[["open", "close"]].min(axis=1)
    high_gap = (top - prices["high"]) / top
    low_gap = (prices["low"] - bottom) / bottom
    broken = (high_gap > REPAIR_TOLERANCE) | (low_gap > REPAIR_TOLERANCE)
    if broken.any():
        raise DataError(
            f"{origin}: {_describe(_dates(prices.index[broken.to_numpy()]), 'date(s) where high < max(open, close) or low > min(open, close)')}"
            f" by more than {REPAIR_TOLERANCE:.1%}; expected a consistent OHLC range; fix those rows"
        )
    repairs: dict[str, int] = {}
    fix_high = (high_gap > 0).to_numpy()
    fix_low = (low_gap > 0).to_numpy()
    if fix_high.any():
        prices.loc[fix_high, "high"] = top[fix_high]
        repairs["high raised to max(open, close)"] = int(fix_high.sum())
    if fix_low.any():
        prices.loc[fix_low, "low"] = bottom[fix_low]
        repairs["low lowered to min(open, close)"] = int(fix_low.sum())
    repairs.update(_repair_bad_prints(prices, top, bottom))
    _check_not_empty(prices, origin)
    return Validated(prices=prices, repairs=repairs)


def _check_not_empty(prices: pd.DataFrame, origin: str) -> None:
    if prices.empty:
        raise DataError(
            f"{origin}: no rows of prices; expected at least one row of Date, Open, High, "
            "Low, Close; fetch a history (check the ticker and --start/--end)"
        )


def _numeric(table: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)


def _validate_measures(frame: pd.DataFrame, origin: str) -> Validated:
    """A frame of daily measures: the policy of the module docstring ("Daily measures")."""
    table = frame.rename(columns=lambda c: str(c).strip().lower())
    if table.columns.duplicated().any():
        twice = sorted(set(table.columns[table.columns.duplicated()]))
        raise DataError(
            f"{origin}: column(s) {', '.join(twice)} appear more than once (names are read "
            "in any case); expected one column per measure; rename or drop the copies"
        )
    if "close" not in table.columns and "close_price" in table.columns:
        table = table.rename(columns={"close_price": "close"})
    index = parse_dates(table.index, origin)
    measures = measure_columns(table.columns)
    has_ohlc = all(c in table.columns for c in REQUIRED_COLUMNS)
    columns: dict[str, np.ndarray] = {}
    if has_ohlc:
        columns.update({c: _numeric(table, c) for c in COLUMNS if c in table.columns})
        columns.setdefault("volume", np.full(len(table), np.nan))
    elif "close" in table.columns:
        columns["close"] = _numeric(table, "close")
    if "ret" in table.columns:
        columns["ret"] = _numeric(table, "ret")
    elif not columns and {"overnight", "open-to-close"} <= set(table.columns):
        # Daily measures from intraday bars (forecast realized --bars --daily --format csv):
        # the close-to-close return is the overnight return plus the session's.
        columns["ret"] = _numeric(table, "overnight") + _numeric(table, "open-to-close")
    if not columns:
        received = ", ".join(str(c) for c in frame.columns)
        raise DataError(
            f"{origin}: the file holds the measure(s) {', '.join(measures)} but no daily "
            f"returns; received [{received}]; expected a column ret (close-to-close log "
            "returns) or close (or close_price), or open, high, low, close; add one of them"
        )
    columns.update({name: _numeric(table, name) for name in measures})
    prices = pd.DataFrame(columns, index=index)
    _check_dates(prices, origin)
    repairs: dict[str, int] = {}
    if "partial" in table.columns:
        # One policy for partial days (forecaster.data.intraday): never a full day. They
        # are dropped; the next day's return is still its own close-to-close return.
        flags = table["partial"].astype(str).str.strip().str.lower()
        unknown = ~flags.isin(["true", "false", "1", "0", "1.0", "0.0"])
        if unknown.any():
            raise DataError(
                f"{origin}: column partial holds {flags[unknown].iloc[0]!r}; expected true or "
                "false on every row (the flag forecast realized --bars writes)"
            )
        partial = flags.isin(["true", "1", "1.0"]).to_numpy()
        if partial.any():
            prices = prices.loc[~partial]
            repairs["partial day(s) dropped (never trained on or scored as full days)"] = int(
                partial.sum()
            )
    if has_ohlc:
        validated = _validate_ohlc(prices, origin)
        prices, repairs = validated.prices, {**repairs, **validated.repairs}
    else:
        if "close" in prices:
            bad = ~(np.isfinite(prices["close"].to_numpy()) & (prices["close"].to_numpy() > 0))
            if bad.any():
                raise DataError(
                    f"{origin}: {_describe(_dates(prices.index[bad]), 'date(s) with a missing, non-finite or non-positive close')}"
                    "; expected finite closes > 0; fix or remove those rows"
                )
    if "ret" in prices:
        returns = prices["ret"].to_numpy()
        bad = ~np.isfinite(returns)
        if bad.size:
            bad[0] = bad[0] and not np.isnan(returns[0])  # no return before the first day
        if bad.any():
            raise DataError(
                f"{origin}: {_describe(_dates(prices.index[bad]), 'date(s) with a missing or non-finite ret')}"
                "; expected a close-to-close log return on every row (the first may be "
                "empty); fix or remove those rows"
            )
    for name in measures:
        values = prices[name].to_numpy()
        missing = ~np.isfinite(values)
        if missing.any():
            raise DataError(
                f"{origin}: measure {name} is missing or not a finite number on "
                f"{_describe(_dates(prices.index[missing]), 'date(s)')}; expected a daily "
                "variance >= 0 on every row; fill or remove those rows (nothing is filled in)"
            )
        negative = values < 0
        if negative.any():
            raise DataError(
                f"{origin}: measure {name} is negative on "
                f"{_describe(_dates(prices.index[negative]), 'date(s)')}; expected a daily "
                "variance >= 0 (decimal units, squared log returns); fix those rows"
            )
    _check_not_empty(prices, origin)
    return Validated(prices=prices, repairs=repairs)
