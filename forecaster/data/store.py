"""Parquet price cache: one file per (ticker, source), incremental, atomic.

``<home>/data/prices/<TICKER>.<source>.parquet`` holds validated prices plus
metadata (source, description, fetch time, fingerprint of the rows). Writes go
to a temporary file in the same folder and are renamed into place, so a crash
never leaves a truncated cache; reads check the fingerprint, so rows changed
behind the program's back are an error, not a different forecast.

Temporary files and folders (here and in the model registry) are named
``.tmp-<name>-<random>-<pid>@<host>``: a kill can leave one behind, and
:func:`remove_stale_temporaries` removes those whose writing process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecaster.data.validation import COLUMNS, validate_prices
from forecaster.errors import DataError

_META_KEY = b"forecaster"

#: Prefix of every temporary file or folder written on the way to an atomic rename.
TEMPORARY_PREFIX = ".tmp-"

#: When this module was imported: a temporary whose owner cannot be told is stale
#: if it is older than this (it predates the running process).
_STARTED = time.time()


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


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def owner_tag() -> str:
    """``<pid>@<host>``: which process a temporary file or folder belongs to."""
    return f"{os.getpid()}@{socket.gethostname()}"


def temporary_name(name: str, token: str) -> str:
    """The name of a temporary on the way to ``name`` (see :func:`is_stale`)."""
    return f"{TEMPORARY_PREFIX}{name}-{token}-{owner_tag()}"


def _owner(name: str) -> tuple[int, str] | None:
    """``(pid, host)`` encoded in a temporary's name, None for names of older releases."""
    rest, at, host = name.rpartition("@")
    pid = rest.rpartition("-")[2]
    if not at or not host or not pid.isdigit():
        return None
    return int(pid), host


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale(path: Path) -> bool:
    """Whether a leftover temporary at ``path`` no longer belongs to a live writer.

    A temporary made on this host is stale once its process has exited; one of
    an older release (no owner in its name) once it is older than the running
    process; one of another host (a shared folder) once it is also a day old.
    """
    name = path.name
    if not (name.startswith(TEMPORARY_PREFIX) or (name.startswith(".") and name.endswith(".tmp"))):
        return False
    owner = _owner(name)
    if owner is not None and owner[1] == socket.gethostname():
        return owner[0] != os.getpid() and not _alive(owner[0])
    try:
        modified = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if owner is None:
        return modified < _STARTED
    return modified < min(_STARTED, time.time() - 86400)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the stale temporaries directly inside ``folder``; return what was removed.

    Called before a save writes into ``folder`` and at the start of a nightly
    run, so a kill mid-save leaves nothing behind for long.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not is_stale(entry):
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, payload)


def replace_file(path: Path, payload: bytes, mode: int | None = None) -> None:
    """Write ``path`` through a temporary file beside it and a rename; the folder must exist.

    ``mode`` sets the file's permission bits (default: the usual 0666 less the umask).
    """
    handle, temporary = tempfile.mkstemp(
        prefix=f"{TEMPORARY_PREFIX}{path.name[:200]}-", suffix=f"-{owner_tag()}", dir=path.parent
    )
    try:
        os.chmod(temporary, mode if mode is not None else 0o666 & ~_umask())  # mkstemp: 0600
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
