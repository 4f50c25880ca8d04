"""Where price history comes from: Yahoo (yfinance), a CSV file, or the sample.

Each source returns a raw frame; :mod:`forecaster.data.validation` cleans it.
yfinance is imported lazily (it is slow to import and not always needed).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from forecaster.errors import ConfigError, DataError

Source = Literal["auto", "yahoo", "csv", "sample"]
SOURCES: tuple[str, ...] = ("auto", "yahoo", "csv", "sample", "panel", "bars")


class NetworkError(DataError):
    """Yahoo could not be reached."""


class RateLimitError(DataError):
    """Yahoo refused the request for now."""


class UnknownTickerError(DataError):
    """Yahoo has no prices for the ticker."""


@dataclass(frozen=True)
class SampleSeries:
    """One real history shipped inside the ``arch`` package."""

    module: str
    description: str


SAMPLES: dict[str, SampleSeries] = {
    "sp500": SampleSeries("arch.data.sp500", "S&P 500 index (arch sample data, 1999-2018)"),
    "nasdaq": SampleSeries(
        "arch.data.nasdaq", "NASDAQ Composite index (arch sample data, 1999-2018)"
    ),
}
SAMPLE_TICKERS: dict[str, str] = {
    "SPY": "sp500",
    "^GSPC": "sp500",
    "QQQ": "nasdaq",
    "^IXIC": "nasdaq",
}


#: A ticker: ASCII letters, digits and ``. ^ = - _``, 1 to 20 characters, not starting with
#: ``.`` (e.g. SPY, ^GSPC, BRK-B, EURUSD=X). It names cache files, so nothing else is allowed.
TICKER_PATTERN = re.compile(r"[A-Z0-9^=_-][A-Z0-9.^=_-]{0,19}")
TICKER_CHARACTERS = "ASCII letters, digits and . ^ = - _ (not starting with .)"
MAX_TICKER_LENGTH = 20


def shown(text: str, limit: int = 30) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def normalize_ticker(ticker: str) -> str:
    """Upper-case, stripped ticker; anything outside :data:`TICKER_PATTERN` is an error.

    The one check of a ticker for every command: the error quotes the value
    with control characters escaped, so it stays one line.
    """
    cleaned = ticker.strip().upper() if isinstance(ticker, str) else ""
    if TICKER_PATTERN.fullmatch(cleaned) is None:
        received = shown(ticker) if isinstance(ticker, str) else repr(ticker)
        raise ConfigError(
            f"ticker {received} is not usable; expected 1 to {MAX_TICKER_LENGTH} characters "
            f"among {TICKER_CHARACTERS}, e.g. SPY, ^GSPC, BRK-B or EURUSD=X"
        )
    return cleaned


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return source


# --- sample -----------------------------------------------------------------


def sample_for(ticker: str) -> SampleSeries:
    """The sample series standing in for ``ticker``, or an error listing them."""
    key = SAMPLE_TICKERS.get(normalize_ticker(ticker))
    if key is None:
        held = ", ".join(f"{t} ({SAMPLES[k].description})" for t, k in SAMPLE_TICKERS.items())
        raise DataError(
            f"the offline sample has no data for {ticker!r}; it holds {held}; "
            "use --source yahoo, or --source csv --csv PATH for your own file"
        )
    return SAMPLES[key]


def fetch_sample(ticker: str) -> pd.DataFrame:
    """Daily OHLCV from the ``arch`` package's bundled real history."""
    series = sample_for(ticker)
    frame = _read_sample(series.module)
    return frame.drop(columns=[c for c in frame.columns if c.lower() == "adj close"])


def _read_sample(module: str) -> pd.DataFrame:
    """``arch.data.<name>.load()`` without importing ``arch`` (~3 s: statsmodels, matplotlib).

    Reads ``arch/data/<name>/<name>.csv.gz`` exactly as arch's ``load_file``
    does; when the file is not where arch 8 keeps it, calls arch's loader.
    """
    import importlib
    import importlib.util

    name = module.rsplit(".", 1)[-1]
    spec = importlib.util.find_spec("arch")  # locates the package without running it
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / "data" / name / f"{name}.csv.gz"
        if path.is_file():
            data = pd.read_csv(path)
            if "Date" in data:
                data.Date = pd.to_datetime(data.Date)
                data = data.set_index("Date")
            for column in data:
                data[column] = pd.to_numeric(data[column], errors="coerce")
            return data
    return importlib.import_module(module).load()


# --- csv --------------------------------------------------------------------


def read_csv(path: str | Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read a user's CSV: returns the frame and its raw Date column."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(
            f"CSV file {str(file)!r} does not exist; "
            "pass --csv PATH to a file with columns Date, Open, High, Low, Close[, Volume]"
        )
    try:
        frame = pd.read_csv(file, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"CSV file {str(file)!r} could not be parsed ({exc.__class__.__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'empty'}); "
            "expected a comma-separated file with a header row Date, Open, High, Low, Close"
        ) from None
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "date" not in columns:
        received = ", ".join(str(c) for c in frame.columns) or "no columns"
        raise DataError(
            f"CSV file {str(file)!r}: missing column Date; received [{received}]; "
            "expected Date, Open, High, Low, Close and optionally Volume (any case)"
        )
    dates = frame[columns["date"]]
    return frame.drop(columns=[columns["date"]]), dates


# --- yahoo ------------------------------------------------------------------


@contextlib.contextmanager
def _yfinance_raising(cache_dir: Path | None) -> Iterator[object]:
    """yfinance with exceptions surfaced (it logs and hides them by default)."""
    import logging

    import yfinance as yf

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(cache_dir))
    logger = logging.getLogger("yfinance")
    previous = yf.config.debug.hide_exceptions, logger.level
    yf.config.debug.hide_exceptions = False
    logger.setLevel(logging.CRITICAL)  # its warnings duplicate the errors raised below
    try:
        yield yf
    finally:
        yf.config.debug.hide_exceptions = previous[0]
        logger.setLevel(previous[1])


def normalize_yahoo_frame(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Flat OHLCV from either yfinance shape.

    ``yf.download`` gives MultiIndex columns (Price, Ticker); ``Ticker.history``
    gives flat columns with a tz-aware index plus Dividends/Stock Splits.
    """
    if isinstance(frame.columns, pd.MultiIndex):
        levels = [list(map(str, frame.columns.get_level_values(i))) for i in range(2)]
        ticker_level = 1 if ticker in levels[1] else 0
        if ticker in levels[ticker_level]:
            frame = frame.xs(ticker, axis=1, level=ticker_level)
        else:
            frame = frame.droplevel(1, axis=1)
    keep = [
        c for c in frame.columns if str(c).lower() in ("open", "high", "low", "close", "volume")
    ]
    flat = frame[keep]
    # yfinance reports a failed ticker as rows of NaN; treat those as no data.
    return flat.dropna(how="all", subset=[c for c in keep if str(c).lower() != "volume"])


#: Attempts at a Yahoo request that fails on the network (a dropped connection, a DNS or
#: TLS hiccup) before it is a :class:`NetworkError`. An unknown ticker is never retried,
#: nor a rate limit: Yahoo's lasts minutes, longer than a bounded wait here.
YAHOO_ATTEMPTS = 3
#: Seconds waited before the second and the third attempt (3 s in all, at most).
YAHOO_BACKOFF_SECONDS = (1.0, 2.0)


def _pause(seconds: float) -> None:
    """Wait between two Yahoo attempts (the tests replace it, so they never sleep)."""
    time.sleep(seconds)


def _backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return YAHOO_BACKOFF_SECONDS[min(attempt, len(YAHOO_BACKOFF_SECONDS)) - 1]


def fetch_yahoo(
    ticker: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    cache_dir: Path | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Auto-adjusted daily OHLCV from Yahoo; failures become distinct DataErrors.

    ``end`` is inclusive (yfinance's is exclusive). A network failure is tried
    again, up to :data:`YAHOO_ATTEMPTS` attempts in all, after the waits of
    :data:`YAHOO_BACKOFF_SECONDS`; ``on_retry`` gets a one-line note for each
    retry (``note: SPY: ...``). An unknown ticker and a rate limit fail at once.

    Raises
    ------
    UnknownTickerError
        Yahoo has no prices for ``ticker`` (in the range).
    RateLimitError
        Yahoo refused the request for now.
    NetworkError
        Yahoo could not be reached on any attempt.
    """
    from yfinance.exceptions import YFRateLimitError, YFTickerMissingError

    kwargs: dict[str, object] = {"interval": "1d", "auto_adjust": True, "actions": False}
    if start is not None or end is not None:
        kwargs["start"] = (start or pd.Timestamp("1900-01-01")).strftime("%Y-%m-%d")
        if end is not None:
            kwargs["end"] = (end + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    else:
        kwargs["period"] = "max"
    with _yfinance_raising(cache_dir) as yf:
        for attempt in range(1, YAHOO_ATTEMPTS + 1):
            try:
                raw = yf.Ticker(ticker).history(**kwargs)
                break
            except YFRateLimitError:
                raise RateLimitError(
                    f"Yahoo rate-limited the request for {ticker}; wait a few minutes and "
                    "retry, or use --source csv --csv PATH / --source sample"
                ) from None
            except YFTickerMissingError as exc:
                raise UnknownTickerError(
                    f"Yahoo has no price data for {ticker!r} ({exc}); check the symbol "
                    "(e.g. SPY, ^GSPC, BRK-B) or use --source csv --csv PATH"
                ) from None
            except OSError as exc:
                failure = (
                    f"{exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}"
                )
                if attempt == YAHOO_ATTEMPTS:
                    waited = sum(_backoff(n) for n in range(1, YAHOO_ATTEMPTS))
                    raise NetworkError(
                        f"could not reach Yahoo for {ticker} ({failure}; {YAHOO_ATTEMPTS} "
                        f"attempts over {waited:g} s); check the network, or use --source "
                        "sample (SPY/QQQ) or --source csv --csv PATH"
                    ) from None
                if on_retry is not None:
                    on_retry(
                        f"note: {ticker}: Yahoo unreachable on attempt {attempt} of "
                        f"{YAHOO_ATTEMPTS} ({failure}); tried again after {_backoff(attempt):g} s"
                    )
                _pause(_backoff(attempt))
    flat = normalize_yahoo_frame(raw, ticker)
    if flat.empty:
        span = "" if start is None else f" from {start:%Y-%m-%d}"
        raise UnknownTickerError(
            f"Yahoo returned no price data for {ticker!r}{span}; check the symbol "
            "(e.g. SPY, ^GSPC, BRK-B) and the date range, or use --source csv --csv PATH"
        )
    return flat


# --- lists of tickers (pooled models) --------------------------------------------


def ticker_list(
    names: str | Iterable[str], origin: str = "--tickers", drop_prefix: str = ""
) -> list[str]:
    """Normalized, de-duplicated tickers from ``"SPY,QQQ"`` or a list of names.

    The one reader of a ticker list: every ``--tickers``, a universe file, the
    nightly job. Blank items are skipped, each name goes through
    :func:`normalize_ticker` and the first spelling of a ticker keeps its place
    (``"spy,SPY, qqq"`` is ``["SPY", "QQQ"]``).

    Parameters
    ----------
    names
        Comma-separated text, or the names one by one.
    origin
        Where the list came from, named in the errors (``--tickers``, a file).
    drop_prefix
        Removed from the front of each name first (``"."``: the Oxford-Man
        library's ``.SPX``).

    Raises
    ------
    ConfigError
        ``all`` (only a --panel has every ticker), no ticker, or one that
        :func:`normalize_ticker` refuses; the message names ``origin``.
    """
    if isinstance(names, str) and names.strip().lower() == "all":
        raise ConfigError(
            f"{origin} all means every ticker of a --panel file; pass --panel PATH, or name "
            "the tickers (e.g. SPY,QQQ)"
        )
    parts = names.split(",") if isinstance(names, str) else list(names)
    tickers: list[str] = []
    for part in parts:
        if isinstance(part, str):
            part = part.strip().removeprefix(drop_prefix) if drop_prefix else part.strip()
            if not part:
                continue
        try:
            ticker = normalize_ticker(part)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        if ticker not in tickers:
            tickers.append(ticker)
    if not tickers:
        shown_names = names if isinstance(names, str) else parts
        raise ConfigError(
            f"{origin} names no ticker; expected symbols such as SPY,QQQ (received "
            f"{shown_names!r})"
        )
    return tickers


def read_ticker_file(path: str | Path) -> list[str]:
    """Tickers of a universe file: one per line (commas also split), ``#`` starts a comment.

    Raises
    ------
    ConfigError
        The file cannot be read, lists no ticker, or lists an unusable one.
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read universe file {str(file)!r} ({exc.__class__.__name__}); expected a "
            "text file with one ticker per line (# starts a comment)"
        ) from None
    names = []
    for line in text.splitlines():  # commas and spaces also separate tickers
        names += line.split("#", 1)[0].replace(",", " ").split()
    if not names:
        raise ConfigError(
            f"universe file {str(file)!r} lists no tickers; expected one ticker per line "
            "(lines starting with # are comments)"
        )
    return ticker_list(names, f"universe file {str(file)!r}")
