"""Parquet price cache: one file per (ticker, source), incremental, atomic.

``<home>/data/prices/<TICKER>.<source>.parquet`` holds validated prices plus
metadata (source, description, fetch time, fingerprint of the rows). Writes go
to a temporary file in the same folder and are renamed into place, so a crash
never leaves a truncated cache; reads check the fingerprint, so rows changed
behind the program's back are an error, not a different forecast.

Atomic writes and temporaries: :mod:`forecaster.files` (the ground layer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecaster.data.validation import COLUMNS, validate_prices
from forecaster.errors import DataError
from forecaster.files import atomic_write_bytes, remove_stale_temporaries

_META_KEY = b"forecaster"


@dataclass(frozen=True)
class CacheEntry:
    """Cached prices and where they came from."""

    prices: pd.DataFrame
    source: str
    description: str
    fetched_at: pd.Timestamp
    full_history: bool = True


@dataclass(frozen=True)
class MergeResult:
    prices: pd.DataFrame
    added: int
    revised: int


_OHLC = ["open", "high", "low", "close"]


def _content_columns(prices: pd.DataFrame) -> list[str]:
    """The columns a fingerprint covers: OHLC (when present), then every other but volume."""
    ohlc = _OHLC if all(column in prices.columns for column in _OHLC) else []
    return ohlc + sorted(c for c in prices.columns if c not in _OHLC and c != "volume")


def fingerprint(prices: pd.DataFrame) -> str:
    """Short content hash of the rows (dates and values of OHLC and any measures).

    A frame of OHLC prices alone hashes as it always has (dates, then OHLC);
    the measures of a daily frame (``rv5``, ``ret``, ...) are added by name.
    """
    digest = hashlib.sha256()
    digest.update(prices.index.strftime("%Y-%m-%d").str.cat(sep=",").encode())
    has_ohlc = all(column in prices.columns for column in _OHLC)
    if has_ohlc:
        digest.update(prices[_OHLC].to_numpy(dtype="float64").tobytes())
    for column in _content_columns(prices)[4 if has_ohlc else 0 :]:
        digest.update(column.encode())
        digest.update(prices[column].to_numpy(dtype="float64").tobytes())
    return digest.hexdigest()[:16]


def merge_prices(old: pd.DataFrame | None, new: pd.DataFrame) -> MergeResult:
    """New rows replace overlapping old ones (vendor revisions) and extend the end."""
    if old is None or old.empty:
        return MergeResult(new.copy(), added=len(new), revised=0)
    overlap = new.index.intersection(old.index)
    revised = 0
    compared = [c for c in _content_columns(new) if c in old.columns]
    if len(overlap) and compared:
        before = old.loc[overlap, compared].to_numpy(dtype="float64")
        after = new.loc[overlap, compared].to_numpy(dtype="float64")
        revised = int((abs(before - after) > 1e-9 * abs(before)).any(axis=1).sum())
    merged = pd.concat([old.drop(index=overlap), new]).sort_index()
    return MergeResult(merged, added=len(new) - len(overlap), revised=revised)


class PriceStore:
    """The price cache under ``prices_dir``."""

    def __init__(self, prices_dir: Path) -> None:
        self.prices_dir = Path(prices_dir)

    def path(self, ticker: str, source: str) -> Path:
        return self.prices_dir / f"{ticker}.{source}.parquet"

    def read(self, ticker: str, source: str) -> CacheEntry | None:
        """The cached entry, None if there is none; a corrupt file is an error naming it."""
        import pyarrow.parquet as pq

        path = self.path(ticker, source)
        if not path.exists():
            return None
        fix = f"rebuild it with {refetch_command(ticker, source)} or delete it"
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
            frame = table.to_pandas()
            # OHLC prices keep their columns (all five required); a daily frame of
            # measures keeps the ones it was written with.
            names = [c for c in frame.columns if c not in COLUMNS]
            if "open" in frame.columns:
                names = [*COLUMNS, *names]
            prices = pd.DataFrame(
                {c: pd.to_numeric(frame[c], errors="raise").astype("float64") for c in names},
                index=pd.DatetimeIndex(frame.index, name="date").as_unit("ns"),
            )
            entry = CacheEntry(
                prices=prices,
                source=str(meta["source"]),
                description=str(meta.get("description", meta["source"])),
                fetched_at=pd.Timestamp(meta["fetched_at"]),
                full_history=bool(meta.get("full_history", True)),
            )
        except Exception as exc:  # pyarrow, json and pandas raise many unrelated types
            raise DataError(
                f"price cache {str(path)!r} is unreadable ({exc.__class__.__name__}); {fix}"
            ) from None
        if prices.empty:
            raise DataError(f"price cache {str(path)!r} holds no rows; {fix}")
        recorded, found = meta.get("fingerprint"), fingerprint(prices)
        if recorded is not None and recorded != found:
            raise DataError(
                f"price cache {str(path)!r} does not match its fingerprint (recorded "
                f"{recorded}, its rows give {found}): it was changed after it was written; {fix}"
            )
        # Re-check the cached rows: a cache edited or damaged on disk must not slip through.
        try:
            validate_prices(prices, f"price cache {str(path)!r}")
        except DataError as exc:
            raise DataError(f"{exc}; or {fix}") from None
        return entry

    def write(
        self,
        ticker: str,
        source: str,
        prices: pd.DataFrame,
        description: str,
        full_history: bool = True,
    ) -> Path:
        """Atomically replace the cache file for (ticker, source)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        meta = {
            "source": source,
            "description": description,
            "fetched_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "fingerprint": fingerprint(prices),
            "full_history": full_history,
        }
        table = pa.Table.from_pandas(prices, preserve_index=True)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        path = self.path(ticker, source)
        remove_stale_temporaries(self.prices_dir)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path


def refetch_command(ticker: str, source: str) -> str:
    """The command that rebuilds the (ticker, source) cache from its source."""
    if source == "csv":
        return f"`forecast fetch --ticker {ticker} --source csv --csv PATH` (your CSV file)"
    if source == "panel":
        return f"`forecast fetch --ticker {ticker} --panel PATH` (your panel file)"
    return f"`forecast fetch --ticker {ticker} --source {source} --refresh`"
