"""One entry point for price history: pick the source, update the cache, validate.

``auto`` (the interactive default): a Yahoo cache fetched in the last
``CACHE_MAX_AGE`` is used as is; otherwise Yahoo is asked for what is missing.
If Yahoo cannot be reached (network or rate limit) and fallback is allowed —
interactive commands only, never the nightly job — a stale Yahoo cache is used,
else for SPY/QQQ the bundled sample, each with a one-line warning.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from forecaster.data import sources
from forecaster.data.store import PriceStore, fingerprint, merge_prices
from forecaster.data.validation import EARLIEST_DATE, parse_dates, today, validate_prices
from forecaster.errors import ConfigError, DataError
from forecaster.settings import Settings

CACHE_MAX_AGE = pd.Timedelta(hours=12)
OVERLAP_DAYS = 7


@dataclass(frozen=True)
class PriceData:
    """Validated prices and an honest account of where they came from."""

    ticker: str
    prices: pd.DataFrame
    source: str
    description: str
    from_cache: bool = False
    added: int = 0
    revised: int = 0
    removed: int = 0
    repairs: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    cache_path: Path | None = None
    #: The CSV file the prices were read from, absolute (source ``csv``; else None).
    location: Path | None = None
    #: Exogenous daily inputs for a model that reads them (:func:`forecaster.data.exog.build_exog`).
    exog: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def start(self) -> pd.Timestamp:
        return self.prices.index[0]

    @property
    def end(self) -> pd.Timestamp:
        return self.prices.index[-1]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.prices)


#: A date on the command line: ISO ``YYYY-MM-DD`` (a midnight time, as ``str()`` of a
#: ``pd.Timestamp`` gives, is tolerated for library callers).
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00:00)?")


def parse_date(value: str | date | None, option: str) -> pd.Timestamp | None:
    """A user's date option (``YYYY-MM-DD``, 1800-01-01 to today), or a ConfigError.

    Only the ISO form is accepted: ``06/01/2018`` is ambiguous and ``today``
    moves. A ``datetime.date`` or ``pd.Timestamp`` is taken as its date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, date):  # datetime and pd.Timestamp included
        parsed = pd.Timestamp(value)
        if parsed.tzinfo is not None:
            parsed = parsed.tz_localize(None)
        text = f"{parsed:%Y-%m-%d}"
    else:
        text = str(value)
        found = _ISO_DATE.fullmatch(text.strip())
        try:
            if found is None:
                raise ValueError(text)
            parsed = pd.Timestamp(date(*(int(part) for part in found.groups())))
        except ValueError:
            raise ConfigError(
                f"{option} {sources.shown(text)} is not a date; expected YYYY-MM-DD, "
                "e.g. 2018-06-01"
            ) from None
    parsed = parsed.normalize()
    latest = today()
    if not EARLIEST_DATE <= parsed <= latest:
        hint = (
            f"omit {option} to start at the beginning of the data"
            if parsed < EARLIEST_DATE
            else f"omit {option} to use the latest data"
        )
        raise ConfigError(
            f"{option} {text.strip()} is outside {EARLIEST_DATE:%Y-%m-%d} to today "
            f"({latest:%Y-%m-%d}); {hint}"
        )
    return parsed.as_unit("ns")


def _window(
    prices: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None, origin: str
) -> pd.DataFrame:
    """Rows in [start, end]; an empty selection is an error that says what the data covers."""
    selected = prices.loc[(start or prices.index[0]) : (end or prices.index[-1])]
    if selected.empty:
        wanted = f"{start:%Y-%m-%d}" if start is not None else "the beginning"
        wanted += f" to {end:%Y-%m-%d}" if end is not None else " onwards"
        raise DataError(
            f"{origin}: no rows from {wanted}; the data covers {prices.index[0]:%Y-%m-%d} to "
            f"{prices.index[-1]:%Y-%m-%d}; choose dates inside that range"
        )
    return selected


def _fetch_and_merge(
    store: PriceStore,
    ticker: str,
    source: str,
    description: str,
    fetch: Callable[[pd.Timestamp | None, pd.Timestamp | None], pd.DataFrame],
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    refresh: bool,
    origin: str,
    check: Callable[[pd.DataFrame], object] | None = None,
) -> PriceData:
    try:
        entry = store.read(ticker, source)
    except DataError:
        if not refresh:
            raise
        entry = None  # a damaged cache is what --refresh (and a CSV re-read) replaces
    # Only the missing days are fetched when the cache already holds the history asked
    # for: everything (a full-history cache) or everything from --start on.
    incremental = (
        entry is not None
        and not refresh
        and (entry.full_history if start is None else start >= entry.prices.index[0])
    )
    since = entry.prices.index[-1] - pd.Timedelta(days=OVERLAP_DAYS) if incremental else start
    if incremental and end is not None and end <= entry.prices.index[-1]:
        raw = entry.prices.iloc[0:0]  # the cache already covers the requested range
    else:
        try:
            raw = fetch(since, end)
        except sources.UnknownTickerError:
            if not incremental:
                raise
            raw = entry.prices.iloc[0:0]  # the vendor has nothing new since the cache's end
    if not len(raw) and not incremental:
        span = f" from {since:%Y-%m-%d}" if since is not None else ""
        span += f" to {end:%Y-%m-%d}" if end is not None else ""
        raise DataError(
            f"{origin}: no price rows{span}; expected at least one row of Date, Open, High, "
            "Low, Close; check the data or adjust --start/--end (the cache was left as it was)"
        )
    if len(raw):
        validated = validate_prices(raw, origin)
        new, repairs = validated.prices, validated.repairs
        if check is not None:
            check(new)  # e.g. the estimator asked for is a measure the file lacks: nothing cached
    else:
        new, repairs = entry.prices.iloc[0:0], {}
    merged = merge_prices(entry.prices if incremental else None, new)
    added, removed = merged.added, 0
    if not incremental and entry is not None:
        added = int((~merged.prices.index.isin(entry.prices.index)).sum())
        removed = int((~entry.prices.index.isin(merged.prices.index)).sum())
    full_history = entry.full_history if incremental else since is None
    if not incremental or merged.added or merged.revised:
        try:
            path = store.write(
                ticker, source, merged.prices, description, full_history=full_history
            )
        except OSError as exc:
            raise DataError(
                f"cannot write the price cache {str(store.path(ticker, source))!r} "
                f"({exc.strerror or exc}); the data home (--home or $FORECAST_HOME) must be a "
                "writable folder"
            ) from None
    else:
        path = store.path(ticker, source)
    return PriceData(
        ticker=ticker,
        prices=_window(merged.prices, start, end, origin),
        source=source,
        description=description,
        added=added,
        revised=merged.revised,
        removed=removed,
        repairs=repairs,
        cache_path=path,
    )


def load_prices(
    ticker: str,
    *,
    source: str = "auto",
    csv_path: str | Path | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    settings: Settings | None = None,
    allow_fallback: bool = True,
    refresh: bool = False,
    panel_path: str | Path | None = None,
    estimator: str | None = None,
    bars_path: str | Path | None = None,
    tz: str | None = None,
) -> PriceData:
    """Validated prices for ``ticker`` from ``source``, through the cache.

    Parameters
    ----------
    ticker
        Symbol (case-insensitive).
    source
        ``auto``, ``yahoo``, ``csv`` (needs ``csv_path``), ``sample``, ``panel``
        (needs ``panel_path``; ``auto`` with a ``panel_path`` means ``panel``) or
        ``bars`` (needs ``bars_path``; ``auto`` with a ``bars_path`` means ``bars``).
    bars_path, tz
        An intraday bars file and the exchange's zone (:func:`forecaster.data.intraday.read_bars`):
        one row per session day with the session's OHLC, ``ret`` and every
        measure (``rv5``, ``bv``, ...); partial days are dropped by the
        validation (counted in the repairs).
    start, end
        Inclusive date range; ``end`` also hides everything after it
        (``--as-of`` replays).
    allow_fallback
        In ``auto`` mode, use a stale cache or the sample when Yahoo is
        unreachable. The nightly job passes False.
    refresh
        Ignore the cache and fetch everything again.
    estimator
        When given, the daily frame must support this estimator (an OHLC
        estimator needs OHLC prices, a measure such as ``rv5`` a column of that
        name): checked before a file's rows are cached, so a measure the file
        lacks is one error and nothing is written.
    """
    ticker = sources.normalize_ticker(ticker)
    sources.check_source(source)
    settings = settings or Settings.resolve()
    store = PriceStore(settings.prices_dir)
    if start is not None and end is not None and start > end:
        raise ConfigError(f"--start {start:%Y-%m-%d} is after --end {end:%Y-%m-%d}; swap them")
    if csv_path is not None and source not in ("csv", "auto"):
        raise ConfigError(f"--csv was given with --source {source}; use --source csv with --csv")
    if panel_path is not None and source not in ("panel", "auto"):
        raise ConfigError(
            f"--panel was given with --source {source}; drop --source (or pass --source panel)"
        )
    if panel_path is not None and csv_path is not None:
        raise ConfigError("--panel and --csv both name the prices; pass one of them")
    if bars_path is not None:
        other = "--csv" if csv_path is not None else "--panel" if panel_path is not None else None
        if other is not None:
            raise ConfigError(f"--bars and {other} both name the prices; pass one of them")
        if source not in ("bars", "auto"):
            raise ConfigError(
                f"--bars was given with --source {source}; drop --source (or pass --source bars)"
            )
    elif tz is not None:
        raise ConfigError(
            "--tz is the time zone of --bars timestamps and was given without --bars; "
            "drop --tz, or add --bars PATH"
        )
    check = None
    if estimator is not None:
        from forecaster.data.volatility import check_estimator, get_estimator

        get_estimator(estimator)  # an unknown name is an error before anything is read

        def check(frame: pd.DataFrame) -> None:
            check_estimator(frame, estimator)

    if source == "panel" or (source == "auto" and panel_path is not None):
        data = _load_panel(store, ticker, panel_path, start, end, check)
    elif source == "bars" or (source == "auto" and bars_path is not None):
        data = _load_bars(store, ticker, bars_path, tz, start, end, check)
    elif source == "csv" or (source == "auto" and csv_path is not None):
        data = _load_csv(store, ticker, csv_path, start, end, check)
    elif source == "sample":
        data = _load_sample(store, ticker, start, end, refresh)
    elif source == "yahoo":
        data = _load_yahoo(store, ticker, start, end, refresh, settings)
    else:
        data = _load_auto(store, ticker, start, end, refresh, settings, allow_fallback)
    if check is not None:
        check(data.prices)
    return data


def _load_csv(store, ticker, csv_path, start, end, check=None) -> PriceData:
    if csv_path is None:
        raise ConfigError(
            "--source csv needs --csv PATH (a file with Date, Open, High, Low, Close)"
        )
    path = Path(csv_path).expanduser()

    def fetch(_since, until):
        frame, dates = sources.read_csv(path)
        frame.index = parse_dates(dates, f"CSV file {str(path)!r}")
        return frame if until is None else frame.loc[:until]

    # The file is the truth: re-read it whole and replace the cache.
    data = _fetch_and_merge(
        store, ticker, "csv", f"CSV file {path}", fetch, start, end, True,
        f"CSV file {str(path)!r}", check,
    )
    return dataclasses.replace(data, location=path.resolve())


def _load_bars(store, ticker, bars_path, tz, start, end, check=None) -> PriceData:
    from forecaster.data.intraday import daily_measures, read_bars

    if bars_path is None:
        raise ConfigError(
            "--source bars needs --bars PATH (a file of 1- or 5-minute bars: timestamp, open, "
            "high, low, close)"
        )
    path = Path(bars_path).expanduser()
    origin = f"bars file {str(path)!r}"

    def fetch(_since, until):
        frame = daily_measures(read_bars(path, tz=tz)).prices()
        return frame if until is None else frame.loc[:until]

    # Like a CSV file, the bars are the truth: re-read and replace the ticker's cache.
    data = _fetch_and_merge(
        store, ticker, "bars", f"bars file {path}", fetch, start, end, True, origin, check
    )
    return dataclasses.replace(data, location=path.resolve())


def _load_panel(store, ticker, panel_path, start, end, check=None) -> PriceData:
    from forecaster.data.panel import read_panel

    if panel_path is None:
        raise ConfigError(
            "--source panel needs --panel PATH (a long-format file with ticker, date, open, "
            "high, low, close)"
        )
    panel = read_panel(panel_path)
    origin = f"{ticker} in panel {str(panel.path)!r}"

    def fetch(_since, until):
        rows = panel.rows(ticker)
        frame = rows.copy()
        frame.index = parse_dates(rows.index.to_series(), origin)
        return frame if until is None else frame.loc[:until]

    # Like a CSV file, the panel is the truth: re-read and replace the ticker's cache.
    data = _fetch_and_merge(
        store, ticker, "panel", f"panel file {panel.path}", fetch, start, end, True, origin, check
    )
    return dataclasses.replace(data, location=panel.path)


def load_cached(
    ticker: str, source: str, *, settings: Settings | None = None
) -> PriceData | None:
    """The cached prices of ``ticker`` from ``source`` as they are (no fetch); None if none.

    A damaged cache is an error naming the file (:meth:`PriceStore.read`).
    """
    settings = settings or Settings.resolve()
    store = PriceStore(settings.prices_dir)
    entry = store.read(sources.normalize_ticker(ticker), source)
    if entry is None:
        return None
    return PriceData(
        ticker=sources.normalize_ticker(ticker),
        prices=entry.prices,
        source=source,
        description=entry.description,
        from_cache=True,
        cache_path=store.path(sources.normalize_ticker(ticker), source),
    )


def _load_sample(store, ticker, start, end, refresh) -> PriceData:
    series = sources.sample_for(ticker)

    def fetch(since, until):
        frame = sources.fetch_sample(ticker)
        return frame.loc[since:until]

    description = f"{series.description} standing in for {ticker}"
    return _fetch_and_merge(
        store, ticker, "sample", description, fetch, start, end, refresh, f"sample for {ticker}"
    )


def _load_yahoo(store, ticker, start, end, refresh, settings) -> PriceData:
    notes: list[str] = []  # one per network retry that preceded the success

    def fetch(since, until):
        return sources.fetch_yahoo(
            ticker, since, until, cache_dir=settings.yfinance_cache_dir, on_retry=notes.append
        )

    data = _fetch_and_merge(
        store,
        ticker,
        "yahoo",
        f"Yahoo Finance daily prices for {ticker} (auto-adjusted)",
        fetch,
        start,
        end,
        refresh,
        f"{ticker} from Yahoo",
    )
    return dataclasses.replace(data, warnings=data.warnings + tuple(notes)) if notes else data


def _load_auto(store, ticker, start, end, refresh, settings, allow_fallback) -> PriceData:
    entry = None if refresh else store.read(ticker, "yahoo")
    if entry is not None:
        fresh = pd.Timestamp.now(tz="UTC") - entry.fetched_at < CACHE_MAX_AGE
        covers = end is not None and entry.prices.index[-1] >= end
        starts = start is None or start >= entry.prices.index[0]
        if (fresh or covers) and starts:
            return PriceData(
                ticker=ticker,
                prices=_window(entry.prices, start, end, f"cached {ticker} from Yahoo"),
                source="yahoo",
                description=entry.description,
                from_cache=True,
                cache_path=store.path(ticker, "yahoo"),
            )
    try:
        return _load_yahoo(store, ticker, start, end, refresh, settings)
    except (sources.NetworkError, sources.RateLimitError) as exc:
        if not allow_fallback:
            raise
        if entry is not None:
            warning = (
                f"warning: Yahoo unavailable ({exc.__class__.__name__}); using cached Yahoo "
                f"prices for {ticker} up to {entry.prices.index[-1]:%Y-%m-%d}, "
                f"fetched {entry.fetched_at:%Y-%m-%d %H:%M} UTC"
            )
            return PriceData(
                ticker=ticker,
                prices=_window(entry.prices, start, end, f"cached {ticker} from Yahoo"),
                source="yahoo",
                description=entry.description,
                from_cache=True,
                warnings=(warning,),
                cache_path=store.path(ticker, "yahoo"),
            )
        if ticker not in sources.SAMPLE_TICKERS:
            raise
        data = _load_sample(store, ticker, start, end, refresh)
        warning = (
            f"warning: Yahoo unreachable; using offline sample data instead: "
            f"{data.description}, {data.start:%Y-%m-%d} to {data.end:%Y-%m-%d}"
        )
        return PriceData(**{**data.__dict__, "warnings": (warning,)})
