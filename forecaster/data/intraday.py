"""Intraday bars -> daily realized measures (pure functions; no TensorFlow).

:func:`read_bars` reads a bars file (CSV or Parquet) and :func:`prepare_bars`
checks it; :func:`daily_measures` turns the bars into one row per trading day.

Bars
----
Columns (any case, surrounding spaces ignored): a time column — ``timestamp``,
else ``datetime``, else ``date`` and ``time`` together, else ``date`` alone, else
a Parquet file's datetime index — and ``open, high, low, close``; ``volume`` is
optional and unused. Each timestamp is the **start** of its bar.

Time zone: the day a bar belongs to and the session it falls in are read in
the *exchange's local time*. Zone-aware timestamps are read in their own zone,
or converted to ``tz`` when one is given (so a file stored in UTC needs
``tz="America/New_York"``); naive timestamps need ``tz`` (the zone they were
written in) and are an error without it. Daylight-saving changes need nothing
special: the session is 09:30–16:00 on the local clock every day.

Checks, in this order; each failure is one :class:`DataError` saying what was
received, what was expected and how to fix it: missing columns; unparseable or
missing timestamps; non-numeric, missing, non-finite or non-positive prices;
duplicate timestamps; unsorted timestamps (reported, never re-sorted); bars
outside 04:00–20:00 local time on most days (a wrong time zone); bar spacing
other than 1 or 5 minutes (the most common gap between two bars of one day);
bars that do not start on that grid; and (in :func:`daily_measures`) a usual day
that does not run from the session open to the session close (a wrong zone by
an hour or two, or bar-*end* labels).

Measures (per local trading day; :func:`daily_measures`)
--------------------------------------------------------
Only bars inside the regular session (bar start >= 09:30 and bar end <= 16:00)
are used; pre- and post-market bars are counted and ignored. Prices are
sampled on a 5-minute grid anchored at 09:30: the grid points are the open of
the day's first session bar, then the close of every bar ending on the grid
(09:35, 09:40, ..., 16:00), and always the close of the day's last session bar.
With 5-minute bars every bar ends on the grid: a full day gives n = 78 returns
``r_i = ln(p_i / p_{i-1})`` whose sum is the open-to-close return. A missing bar
is not filled in: the next return spans the gap. All values are daily, in
decimal units (squared log returns), like the Oxford-Man realized library
(Heber, Lunde, Shephard & Sheppard 2009).

- ``rv5`` realized variance ``sum r_i^2`` (Andersen, Bollerslev, Diebold &
  Labys 2001, 2003), computed as ``rsv-pos + rsv-neg`` so that identity holds
  exactly in floating point.
- ``rv5-ss`` subsampled RV: with 1-minute bars, the mean of the RVs of the five
  5-minute grids offset by 0..4 minutes (each grid also starts at the session
  open and ends at the session close, so each covers the whole session; Zhang,
  Mykland & Aït-Sahalia 2005). **With 5-minute bars only one grid exists and
  ``rv5-ss`` equals ``rv5``.**
- ``bv`` bipower variation ``(pi/2) sum_{i>=2} |r_i| |r_{i-1}|``
  (Barndorff-Nielsen & Shephard 2004), **without** the small-sample factor
  ``n/(n-1)``, as in the Oxford-Man library.
- ``rsv-pos`` / ``rsv-neg`` realized semivariances ``sum r_i^2 1{r_i > 0}`` and
  ``sum r_i^2 1{r_i < 0}`` (Barndorff-Nielsen, Kinnebrock & Shephard 2010); the
  library's ``rsv`` is ``rsv-neg``.
- ``rq`` realized quarticity ``(n/3) sum r_i^4`` with n the day's number of
  returns (Bollerslev, Patton & Quaedvlieg 2016); units are variance squared.
- ``open-to-close`` ``ln(close of the last session bar / open of the first)``.
- ``overnight`` ``ln(open of today's first session bar / close of the previous
  day's last session bar)`` — the previous day *in the file*; NaN on the first.
- ``bars`` the number of session bars used; ``partial`` see below.

With 1-minute bars ``bv``, ``rsv-*`` and ``rq`` use the offset-0 grid, as ``rv5``.

Partial days (one policy)
-------------------------
The expected bar count is the most common number of session bars per day (78
for 5-minute bars, 390 for 1-minute bars on US equities). A day with fewer
bars — a half-day that closes at 13:00, or a day with missing bars — has
``partial = True``. Its measures are computed from the bars present and are
**never scaled**: a half-day's RV is the variance of the session that really
traded, and scaling a day with its first hour missing by 78/66 would assume
the lost hour was as quiet as the rest, when the opening hour is the most
volatile of the day. A partial day must never be scored as a full one:
:func:`target_measure` (what anything that uses a measure as a forecast target
or a score must call) returns the measure with every partial day set to NaN.

References
----------
Andersen, T. G., Bollerslev, T., Diebold, F. X. and Labys, P. (2001), "The
distribution of realized exchange rate volatility", JASA 96, 42–55; (2003)
"Modeling and forecasting realized volatility", Econometrica 71, 579–625.
Barndorff-Nielsen, O. E. and Shephard, N. (2004), "Power and bipower variation
with stochastic volatility and jumps", J. Financial Econometrics 2, 1–37.
Barndorff-Nielsen, O. E., Kinnebrock, S. and Shephard, N. (2010), "Measuring
downside risk — realised semivariance", in Volatility and Time Series
Econometrics (Bollerslev, Russell & Watson, eds.), OUP, 117–136.
Bollerslev, T., Patton, A. J. and Quaedvlieg, R. (2016), "Exploiting the
errors: a simple approach for improved volatility forecasting", J.
Econometrics 192, 1–18.
Zhang, L., Mykland, P. A. and Aït-Sahalia, Y. (2005), "A tale of two time
scales", JASA 100, 1394–1411.
Heber, G., Lunde, A., Shephard, N. and Sheppard, K. (2009), "Oxford-Man
Institute's realized library, version 0.3", University of Oxford.
"""

from __future__ import annotations

import math
import zoneinfo
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, DataError

#: The regular US equity session, local exchange time (bar start >= open, bar end <= close).
SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
#: Bars of a US exchange, extended hours included, lie inside this local window.
EXTENDED_WINDOW = (time(4, 0), time(20, 0))
#: Bar spacings accepted, in minutes.
SPACINGS = (1, 5)
#: Grid of the measures, in minutes.
GRID_MINUTES = 5

#: Daily measures, in the order of the daily frame's columns.
MEASURES: tuple[str, ...] = ("rv5", "rv5-ss", "bv", "rsv-pos", "rsv-neg", "rq")
RETURNS: tuple[str, ...] = ("open-to-close", "overnight")
DAILY_COLUMNS: tuple[str, ...] = (*MEASURES, *RETURNS, "partial", "bars")

_PRICES = ("open", "high", "low", "close")
_HALF_PI = math.pi / 2.0


@dataclass(frozen=True)
class Bars:
    """Checked intraday bars.

    Attributes
    ----------
    frame : pd.DataFrame
        Columns open, high, low, close (float64; volume when given), indexed by
        the bar start times, zone-aware in the exchange's zone, sorted, unique.
    spacing : int
        Minutes between bars: 1 or 5.
    tz : str
        The exchange's zone the bars are read in (e.g. ``America/New_York``).
    origin : str
        Where the bars came from, for messages (``bars file 'spy.parquet'``).
    """

    frame: pd.DataFrame
    spacing: int
    tz: str
    origin: str


@dataclass(frozen=True)
class DailyMeasures:
    """One row per local trading day and how it was made.

    Attributes
    ----------
    frame : pd.DataFrame
        Indexed by the local date (``date``), columns :data:`DAILY_COLUMNS`.
    spacing : int
        Bar spacing in minutes (1 or 5).
    expected_bars : int
        Session bars on a full day (the most common count); fewer is partial.
    tz : str
        Exchange zone of the session.
    outside_session : int
        Bars before the session open or after its close, ignored.
    """

    frame: pd.DataFrame
    spacing: int
    expected_bars: int
    tz: str
    outside_session: int
    ohlc: pd.DataFrame | None = None

    @property
    def n_partial(self) -> int:
        return int(self.frame["partial"].sum())

    def prices(self) -> pd.DataFrame:
        """The daily frame a price source gives: session OHLC, ``ret`` and every measure.

        ``open``/``close`` are the first bar's open and the last bar's close of
        the session, ``high``/``low`` the extremes of its bars (so the range
        estimators work on bars too); ``ret`` is the close-to-close log return
        (``overnight`` + ``open-to-close``, NaN on the first day), kept so a
        dropped partial day does not turn the next day's return into a two-day
        one. ``partial`` is kept for the validation's partial-day policy.
        """
        if self.ohlc is None:
            raise ValueError("these daily measures were built without session prices")
        frame = self.frame
        columns = {
            **{name: self.ohlc[name] for name in ("open", "high", "low", "close", "volume")
               if name in self.ohlc},
            "ret": frame["overnight"] + frame["open-to-close"],
            **{name: frame[name] for name in MEASURES},
            "partial": frame["partial"],
        }
        return pd.DataFrame(columns, index=frame.index)


# --- reading ------------------------------------------------------------------


def read_bars(path: str | Path, tz: str | None = None) -> Bars:
    """Read and check a bars file (CSV, optionally gzipped, or Parquet).

    Parameters
    ----------
    path
        The file. Parquet is recognised by its content, not its name.
    tz
        The exchange's time zone (IANA name, e.g. ``America/New_York``): naive
        timestamps are read in it, zone-aware ones converted to it. Required
        when the timestamps are naive.

    Returns
    -------
    Bars
    """
    path = Path(path).expanduser()
    origin = f"bars file {str(path)!r}"
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(
            f"{origin} {what}; expected a CSV or Parquet file of intraday bars "
            "(timestamp, open, high, low, close); check the path"
        )
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic == b"PAR1":
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, compression="gzip" if magic[:2] == b"\x1f\x8b" else "infer")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{origin} cannot be read ({reason}); expected a CSV or Parquet file of intraday "
            "bars with columns timestamp, open, high, low, close"
        ) from None
    return prepare_bars(raw, tz=tz, origin=origin)


def _zone(tz: str) -> str:
    """``tz`` if it names an IANA time zone, else a ConfigError."""
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"--tz {tz!r} is not a time zone; expected an IANA zone name such as "
            "America/New_York, Europe/London or UTC"
        ) from None
    return tz


def _time_column(frame: pd.DataFrame, names: dict[str, str], origin: str) -> pd.Series:
    """The bars' start times as one Series (strings or datetimes), from whichever columns exist."""
    for name in ("timestamp", "datetime"):
        if name in names:
            return frame[names[name]]
    if "date" in names and "time" in names:
        return frame[names["date"]].astype(str) + " " + frame[names["time"]].astype(str)
    if "date" in names:
        return frame[names["date"]]
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame.index.to_series(index=frame.index)
    raise DataError(
        f"{origin} has no time column; received columns {list(frame.columns)}, expected "
        "timestamp (or datetime, or date and time); name the bar start time column timestamp"
    )


def _parse_times(values: pd.Series, tz: str | None, origin: str) -> pd.DatetimeIndex:
    """Bar start times, zone-aware in the exchange's zone (see the module docstring)."""
    mixed = False
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        parsed = pd.DatetimeIndex(values)
    else:
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601", errors="coerce"))
        except ValueError:  # offsets that differ from row to row (a DST change): read as UTC
            parsed = pd.DatetimeIndex(
                pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
            )
            mixed = True
    bad = np.flatnonzero(np.asarray(parsed.isna()))
    if bad.size:
        first = bad[0]
        raise DataError(
            f"{origin}: {bad.size} timestamps are missing or not date-times (first: row "
            f"{first + 1}, {str(values.iloc[first])!r}); expected ISO date-times such as "
            "2018-01-02 09:30:00 or 2018-01-02T09:30:00-05:00; fix or remove those rows"
        )
    if parsed.tz is None:
        if tz is None:
            raise DataError(
                f"{origin}: timestamps have no time zone (first: {parsed[0]}); expected "
                "zone-aware timestamps, or the zone they were written in; pass --tz ZONE, "
                "e.g. --tz America/New_York"
            )
        try:
            parsed = parsed.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except ValueError as exc:
            raise DataError(
                f"{origin}: a timestamp does not exist or is ambiguous in {tz} "
                f"({str(exc).splitlines()[0]}); expected local times of {tz}; "
                "check --tz, or store zone-aware timestamps"
            ) from None
    elif tz is not None:
        parsed = parsed.tz_convert(tz)
    elif mixed:
        raise DataError(
            f"{origin}: timestamps carry different UTC offsets (e.g. a daylight-saving "
            "change); expected one zone to read them in; pass --tz ZONE, the exchange's "
            "zone, e.g. --tz America/New_York"
        )
    return parsed.as_unit("ns")


def _prices(frame: pd.DataFrame, names: dict[str, str], index: pd.DatetimeIndex, origin: str):
    columns = {}
    for name in _PRICES:
        raw = frame[names[name]]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            first = bad[0]
            raise DataError(
                f"{origin}: {bad.size} bars have a missing, non-numeric or infinite {name} "
                f"(first: {index[first]}, {name} = {str(raw.iloc[first])!r}); expected finite "
                "positive prices; fix or remove those bars"
            )
        columns[name] = values
    for name in _PRICES:
        bad = np.flatnonzero(columns[name] <= 0)
        if bad.size:
            first = bad[0]
            raise DataError(
                f"{origin}: {bad.size} bars have {name} <= 0 (first: {index[first]}, "
                f"{name} = {columns[name][first]:g}); expected positive prices; fix or "
                "remove those bars"
            )
    if "volume" in names:
        columns["volume"] = pd.to_numeric(frame[names["volume"]], errors="coerce").to_numpy(
            dtype=np.float64
        )
    return columns


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _clock(minute: int) -> str:
    """A minute of the day as HH:MM."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _minute_of_day(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.hour, dtype=np.int64) * 60 + np.asarray(index.minute, dtype=np.int64)


def _local_dates(index: pd.DatetimeIndex) -> np.ndarray:
    """The local calendar date of each bar, as int64 nanoseconds of its midnight."""
    return index.tz_localize(None).normalize().asi8


def prepare_bars(frame: pd.DataFrame, tz: str | None = None, origin: str = "bars") -> Bars:
    """Check a raw bars frame and return :class:`Bars` (see the module docstring).

    Parameters
    ----------
    frame
        Raw bars: a time column (timestamp, datetime, date+time) and open, high,
        low, close in any case.
    tz
        The exchange's zone: naive timestamps are read in it, aware ones
        converted to it; required for naive timestamps.
    origin
        Names the data in error messages.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"{origin}: bars must be a pandas DataFrame, received {type(frame).__name__}"
        )
    if tz is not None:
        tz = _zone(tz)
    names: dict[str, str] = {}
    for column in frame.columns:
        key = str(column).strip().lower()
        if key in names:
            raise DataError(
                f"{origin} has two columns named {key!r} (ignoring case: {names[key]!r} and "
                f"{column!r}); expected one of each; rename or drop one"
            )
        names[key] = column
    missing = [name for name in _PRICES if name not in names]
    if missing:
        raise DataError(
            f"{origin} is missing column(s) {', '.join(missing)}; received columns "
            f"{list(frame.columns)}, expected timestamp, open, high, low, close[, volume] "
            "(any case); rename the columns"
        )
    times = _time_column(frame, names, origin)
    if len(frame) == 0:
        raise DataError(f"{origin} has no rows; expected intraday bars; check the file")
    index = _parse_times(times, tz, origin)
    columns = _prices(frame, names, index, origin)
    _check_order(index, origin)
    zone = str(index.tz)
    _check_window(index, zone, origin)
    spacing = _spacing(index, origin)
    minutes = _minute_of_day(index)
    off_grid = np.flatnonzero((minutes % spacing != 0) | (np.asarray(index.second) != 0))
    if off_grid.size:
        raise DataError(
            f"{origin}: {off_grid.size} bars do not start on the {spacing}-minute grid "
            f"(first: {index[off_grid[0]]}); expected bar start times at whole multiples of "
            f"{spacing} minutes (09:30, 09:{30 + spacing:02d}, ...); shift the timestamps to "
            "the bar starts"
        )
    bars = pd.DataFrame(columns, index=pd.DatetimeIndex(index, name="timestamp"))
    return Bars(bars, spacing, zone, origin)


def _check_order(index: pd.DatetimeIndex, origin: str) -> None:
    duplicated = np.asarray(index.duplicated())
    if duplicated.any():
        first = index[np.flatnonzero(duplicated)[0]]
        raise DataError(
            f"{origin}: {int(duplicated.sum())} duplicate timestamps (first: {first}); "
            "expected one bar per start time; remove the duplicate bars"
        )
    stamps = index.asi8
    backwards = np.flatnonzero(np.diff(stamps) < 0)
    if backwards.size:
        row = backwards[0] + 1
        raise DataError(
            f"{origin}: timestamps are not in increasing order ({backwards.size} times; "
            f"first: row {row + 1}, {index[row]} after {index[row - 1]}); expected bars sorted "
            "by start time; sort the file by timestamp"
        )


def _check_window(index: pd.DatetimeIndex, zone: str, origin: str) -> None:
    """Most days' bars inside 04:00–20:00 local time, else the zone is wrong."""
    minutes = _minute_of_day(index)
    low, high = (t.hour * 60 + t.minute for t in EXTENDED_WINDOW)
    outside = (minutes < low) | (minutes >= high)
    if not outside.any():
        return
    days = _local_dates(index)
    day_codes, uniques = pd.factorize(days)
    bad_days = np.bincount(day_codes, weights=outside.astype(np.float64)) > 0
    if bad_days.sum() * 2 > uniques.size:
        first = index[np.flatnonzero(outside)[0]]
        starts = np.flatnonzero(np.r_[True, day_codes[1:] != day_codes[:-1]])
        ends = np.r_[starts[1:] - 1, day_codes.size - 1]
        usual_first = _clock(int(np.bincount(minutes[starts]).argmax()))
        usual_last = _clock(int(np.bincount(minutes[ends]).argmax()))
        raise DataError(
            f"{origin}: on {int(bad_days.sum())} of {uniques.size} days bars fall outside "
            f"04:00-20:00 {zone} (first: {first}; the usual day's bars start {usual_first} "
            f"to {usual_last} {zone}); a US exchange's bars, extended hours "
            "included, lie inside that window, so the time zone looks wrong; pass --tz with "
            "the exchange's zone (naive timestamps are read in it, aware ones converted to it)"
        )


def _spacing(index: pd.DatetimeIndex, origin: str) -> int:
    """Minutes between bars: the most common gap between two bars of one day."""
    days = _local_dates(index)
    same_day = days[1:] == days[:-1]
    gaps = np.diff(index.asi8)[same_day]
    if gaps.size == 0:
        raise DataError(
            f"{origin}: no day has two bars ({len(index)} bars on {len(index)} days); "
            "expected 1- or 5-minute intraday bars; for daily prices use --csv"
        )
    values, counts = np.unique(gaps, return_counts=True)
    seconds = values[np.argmax(counts)] / 1e9
    minutes = seconds / 60
    if minutes not in SPACINGS:
        raise DataError(
            f"{origin}: bars are {_duration(seconds)} apart (the most common gap between two "
            "bars of one day); expected 1-minute or 5-minute bars; resample the bars to 1 or "
            "5 minutes"
        )
    return int(minutes)


# --- measures -----------------------------------------------------------------


def _grid_returns(
    open_first: np.ndarray,
    close: np.ndarray,
    day: np.ndarray,
    selected: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log returns between the grid points of each day.

    The points of a day are the open of its first bar (``open_first[day]``)
    followed by the closes of its ``selected`` bars. Returns the returns, their
    day codes, and whether each is the first of its day. A return is the log
    of a price ratio (not a difference of logs, which loses digits on small moves).
    """
    rows = np.flatnonzero(selected)
    codes = day[rows]
    points = close[rows]
    starts = np.ones(rows.size, dtype=bool)
    starts[1:] = codes[1:] != codes[:-1]
    previous = np.empty_like(points)
    previous[1:] = points[:-1]
    previous[starts] = open_first[codes[starts]]
    return np.log(points / previous), codes, starts


def daily_measures(bars: Bars) -> DailyMeasures:
    """Daily realized measures of :class:`Bars`: one row per local trading day.

    See the module docstring for the session, the grid, every definition (with
    its reference) and the partial-day policy.

    Returns
    -------
    DailyMeasures
        ``frame`` indexed by the local date, columns :data:`DAILY_COLUMNS`.
    """
    frame, step = bars.frame, bars.spacing
    minutes = _minute_of_day(frame.index)
    open_minute = SESSION_OPEN.hour * 60 + SESSION_OPEN.minute
    close_minute = SESSION_CLOSE.hour * 60 + SESSION_CLOSE.minute
    inside = (minutes >= open_minute) & (minutes + step <= close_minute)
    if not inside.any():
        raise DataError(
            f"{bars.origin}: no bar lies in the session {SESSION_OPEN:%H:%M}-"
            f"{SESSION_CLOSE:%H:%M} {bars.tz}; expected regular-session bars; check --tz"
        )
    session = frame.loc[inside]
    minutes = minutes[inside]
    day, dates = pd.factorize(_local_dates(session.index))
    n_days = dates.size
    first = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    last = np.r_[first[1:] - 1, day.size - 1]
    _check_session(minutes[first], minutes[last] + step, step, bars)
    counts = np.bincount(day, minlength=n_days)
    expected = int(np.bincount(counts).argmax())

    close = session["close"].to_numpy()
    open_first = session["open"].to_numpy()[first]
    minutes_to_end = minutes + step - open_minute  # bar end, minutes after the open
    is_last = np.zeros(day.size, dtype=bool)
    is_last[last] = True

    def grid(offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        selected = ((minutes_to_end - offset) % GRID_MINUTES == 0) | is_last
        return _grid_returns(open_first, close, day, selected)

    returns, codes, starts = grid(0)
    squares = returns * returns
    rsv_pos = np.bincount(codes, weights=np.where(returns > 0, squares, 0.0), minlength=n_days)
    rsv_neg = np.bincount(codes, weights=np.where(returns < 0, squares, 0.0), minlength=n_days)
    rv5 = rsv_pos + rsv_neg
    pairs = ~starts[1:]
    products = np.abs(returns[1:]) * np.abs(returns[:-1])
    bv = _HALF_PI * np.bincount(codes[1:][pairs], weights=products[pairs], minlength=n_days)
    n_returns = np.bincount(codes, minlength=n_days)
    rq = n_returns / 3.0 * np.bincount(codes, weights=squares * squares, minlength=n_days)
    if step == GRID_MINUTES:
        rv5_ss = rv5.copy()
    else:
        grids = [np.bincount(c, weights=r * r, minlength=n_days) for r, c, _ in map(grid, range(5))]
        rv5_ss = np.mean(grids, axis=0)
    open_to_close = np.log(close[last] / open_first)
    overnight = np.full(n_days, np.nan)
    overnight[1:] = np.log(open_first[1:] / close[last][:-1])

    index = pd.DatetimeIndex(dates.astype("datetime64[ns]"), name="date")
    daily = pd.DataFrame(
        {
            "rv5": rv5,
            "rv5-ss": rv5_ss,
            "bv": bv,
            "rsv-pos": rsv_pos,
            "rsv-neg": rsv_neg,
            "rq": rq,
            "open-to-close": open_to_close,
            "overnight": overnight,
            "partial": counts < expected,
            "bars": counts,
        },
        index=index,
    )
    ohlc = pd.DataFrame(
        {
            "open": open_first,
            "high": np.maximum.reduceat(session["high"].to_numpy(), first),
            "low": np.minimum.reduceat(session["low"].to_numpy(), first),
            "close": close[last],
            **(
                {"volume": np.add.reduceat(session["volume"].to_numpy(), first)}
                if "volume" in session
                else {}
            ),
        },
        index=index,
    )
    return DailyMeasures(daily, step, expected, bars.tz, int((~inside).sum()), ohlc)


def _check_session(first_start: np.ndarray, last_end: np.ndarray, step: int, bars: Bars) -> None:
    """The usual day must run from the session open to its close (else: wrong zone or labels)."""
    usual_first = int(np.bincount(first_start).argmax())
    usual_end = int(np.bincount(last_end).argmax())
    open_minute = SESSION_OPEN.hour * 60 + SESSION_OPEN.minute
    close_minute = SESSION_CLOSE.hour * 60 + SESSION_CLOSE.minute
    if usual_first == open_minute and usual_end == close_minute:
        return
    hint = (
        "the timestamps look like bar ends: shift them back one bar to the bar starts"
        if usual_first == open_minute + step
        else "if the timestamps are in another zone, pass --tz with the exchange's zone "
        "(naive timestamps are read in it, aware ones converted to it)"
    )
    # Shown: the usual day's span over all its bars (not only those inside the session).
    minutes = _minute_of_day(bars.frame.index)
    day = pd.factorize(_local_dates(bars.frame.index))[0]
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:] - 1, day.size - 1]
    shown_first = _clock(int(np.bincount(minutes[starts]).argmax()))
    shown_end = _clock(int(np.bincount(minutes[ends] + step).argmax()))
    raise DataError(
        f"{bars.origin}: the usual day's bars run {shown_first}-{shown_end} "
        f"{bars.tz}; expected the session {SESSION_OPEN:%H:%M}-{SESSION_CLOSE:%H:%M} "
        f"{bars.tz} on most days; {hint}"
    )


def target_measure(daily: DailyMeasures | pd.DataFrame, measure: str = "rv5") -> pd.Series:
    """``measure`` per day with every partial day NaN: the only series to score or train on.

    Parameters
    ----------
    daily
        :func:`daily_measures`' result or its frame.
    measure
        One of :data:`MEASURES`.
    """
    frame = daily.frame if isinstance(daily, DailyMeasures) else daily
    if measure not in MEASURES:
        raise ConfigError(f"unknown measure {measure!r}; expected one of {', '.join(MEASURES)}")
    return frame[measure].where(~frame["partial"].astype(bool)).rename(measure)
