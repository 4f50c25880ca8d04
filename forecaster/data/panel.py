"""Long-format panel files: many tickers' daily prices in one CSV or Parquet file.

A panel has one row per (ticker, date) with the columns ``ticker`` (or
``symbol``), ``date``, ``open``, ``high``, ``low``, ``close`` and optionally
``volume`` — any case, surrounding spaces ignored. A panel of precomputed daily
measures (the Oxford-Man realized library's layout: ``symbol``, ``date``,
``rv5``, ``ret``, ...; a code's leading dot is dropped: ``.SPX`` is the
ticker ``SPX``) needs no OHLC: one column per measure, and daily
returns from ``ret`` or ``close``/``close_price`` (see
:mod:`forecaster.data.validation`). It is the ``--panel PATH``
source of every command: each ticker's rows go through the same validation
policy as any other source (:mod:`forecaster.data.validation`) when that ticker
is loaded, and are cached like any other source (``<TICKER>.panel.parquet``).

A ticker whose rows fail validation does not stop the others: the
multi-ticker commands report it by name with the reason and go on
(:func:`load_panel`). The file is read once per process (keyed by its path,
size and modification time), so loading 500 tickers reads it once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from forecaster.data.validation import measure_columns
from forecaster.errors import ConfigError, DataError, ForecasterError

__all__ = [
    "PANEL_TICKER_COLUMNS",
    "Panel",
    "PanelLoad",
    "load_panel",
    "read_panel",
    "resolve_tickers",
]

#: Column names accepted for the ticker column (first match wins).
PANEL_TICKER_COLUMNS = ("ticker", "symbol")
_REQUIRED = ("date", "open", "high", "low", "close")
_CACHE: dict[tuple[str, int, int], Panel] = {}


@dataclass(frozen=True, eq=False)
class Panel:
    """A panel file as read: the raw rows of each ticker (not yet validated).

    Attributes
    ----------
    path : Path
        The file (resolved).
    frames : dict of str to DataFrame
        Per ticker (upper case, file order of first appearance): the rows with
        columns open, high, low, close[, volume], indexed by the raw date values.
    """

    path: Path
    frames: dict[str, pd.DataFrame]

    @property
    def tickers(self) -> list[str]:
        return list(self.frames)

    def rows(self, ticker: str) -> pd.DataFrame:
        """The raw rows of ``ticker``; an error listing what the file holds if absent."""
        frame = self.frames.get(ticker)
        if frame is None:
            held = ", ".join(self.tickers[:10])
            more = f" and {len(self.tickers) - 10} more" if len(self.tickers) > 10 else ""
            raise DataError(
                f"panel {str(self.path)!r} has no rows for {ticker!r}; it holds "
                f"{len(self.tickers)} tickers ({held}{more}); choose tickers from the file"
            )
        return frame


def read_panel(path: str | Path) -> Panel:
    """Read a long-format panel file (CSV, CSV.GZ or Parquet); cached per process.

    Raises
    ------
    DataError
        The file cannot be read, lacks a required column, or holds no rows.
    """
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except OSError as exc:
        raise DataError(
            f"cannot read panel file {str(file)!r} ({exc.strerror or exc}); expected a CSV or "
            "Parquet file with columns ticker, date, open, high, low, close[, volume]"
        ) from None
    if file.is_dir():
        raise DataError(
            f"panel {str(file)!r} is a folder; expected one CSV or Parquet file with columns "
            "ticker, date, open, high, low, close[, volume]"
        )
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(file)
        else:
            table = pd.read_csv(file)
    except Exception as exc:  # pyarrow, parser and decoding errors alike
        raise DataError(
            f"cannot read panel file {str(file)!r} ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); expected a CSV or Parquet file "
            "with columns ticker, date, open, high, low, close[, volume]"
        ) from None
    table.columns = [str(name).strip().lower() for name in table.columns]
    ticker_column = next((name for name in PANEL_TICKER_COLUMNS if name in table.columns), None)
    measures = measure_columns(table.columns)
    # A panel of precomputed measures (rv5, bv, ...) needs no OHLC: its returns come
    # from ret or close/close_price, checked per ticker by validate_prices.
    required = ("date",) if measures else _REQUIRED
    missing = [name for name in required if name not in table.columns]
    if ticker_column is None:
        missing.insert(0, "ticker (or symbol)")
    if missing:
        raise DataError(
            f"panel file {str(file)!r} lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, table.columns)) or 'none'}; expected ticker, date, open, "
            "high, low, close[, volume] (any case), or ticker, date, daily measures (e.g. "
            "rv5, bv) and ret or close"
        )
    if table.empty:
        raise DataError(f"panel file {str(file)!r} holds no rows; expected daily prices")
    kept = ("open", "high", "low", "close", "volume", "close_price", "ret", *measures)
    columns = [name for name in kept if name in table]
    # The Oxford-Man library's codes start with a dot (.SPX); a ticker cannot (it names
    # files), so the dot is dropped: .SPX is the ticker SPX.
    names = table[ticker_column].astype(str).str.strip().str.upper().str.removeprefix(".")
    frames: dict[str, pd.DataFrame] = {}
    for ticker, rows in table.groupby(names, sort=False):
        frame = rows[columns].copy()
        frame.index = pd.Index(rows["date"].to_numpy(), name="date")
        frames[str(ticker)] = frame
    panel = Panel(path=file.resolve(), frames=frames)
    _CACHE.clear()  # one panel at a time is enough; don't hold stale copies
    _CACHE[key] = panel
    return panel


def resolve_tickers(panel_path: str | Path, tickers: str | Sequence[str] | None) -> list[str]:
    """The tickers a command works on with ``--panel``: ``all`` (default) means the file's.

    Raises
    ------
    ConfigError
        A ticker list naming tickers the panel does not hold (all of them listed).
    """
    from forecaster.data.sources import ticker_list

    panel = read_panel(panel_path)
    if tickers is None or (isinstance(tickers, str) and tickers.strip().lower() == "all"):
        return panel.tickers
    chosen = ticker_list(tickers, drop_prefix=".")  # .SPX of the Oxford-Man library is SPX
    absent = [ticker for ticker in chosen if ticker not in panel.frames]
    if absent:
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        raise ConfigError(
            f"--tickers names {len(absent)} ticker(s) the panel {str(panel.path)!r} does not "
            f"hold: {shown}; it holds {len(panel.tickers)} (use --tickers all for every one)"
        )
    return chosen


@dataclass
class PanelLoad:
    """The outcome of loading many tickers: the data of those that loaded, the failures."""

    #: The :class:`~forecaster.data.loader.PriceData` of each ticker that loaded.
    loaded: list[Any] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self, limit: int = 5) -> str:
        """One line naming the failed tickers and why (the first ``limit`` of them)."""
        items = list(self.failed.items())
        shown = "; ".join(f"{ticker}: {reason}" for ticker, reason in items[:limit])
        more = f"; and {len(items) - limit} more" if len(items) > limit else ""
        return f"{len(items)} ticker(s) skipped — {shown}{more}"


def load_panel(
    tickers: Sequence[str],
    load: Callable[[str], Any],
    on_ticker: Callable[[int, str, str | None], None] | None = None,
) -> PanelLoad:
    """Load each ticker with ``load``; a ticker that fails is recorded, never fatal.

    ``on_ticker(i, ticker, error)`` is called after each ticker (``error`` None
    when it loaded). Only :class:`~forecaster.errors.ForecasterError` (bad data,
    too little history) is caught: anything else is a bug and propagates.
    """
    result = PanelLoad()
    for i, ticker in enumerate(tickers, 1):
        try:
            result.loaded.append(load(ticker))
            error = None
        except ForecasterError as exc:
            error = str(exc)
            result.failed[ticker] = error
        if on_ticker is not None:
            on_ticker(i, ticker, error)
    return result

