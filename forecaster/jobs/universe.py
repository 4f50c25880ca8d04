"""The universal model of a nightly universe: one pooled LSTM refit on a schedule.

``forecast nightly --universal`` serves every ticker of a book from one network
trained on all of them (:func:`forecaster.models.lstm_forecaster.train_pooled`).
This module holds what the driver needs for it, apart from the per-ticker steps
(which live with the others in :mod:`forecaster.jobs.protocol`):

- the **pointer** ``models/universal.json`` (:class:`UniversePointer`): the
  current universal version, the night it was fit and the tickers it covers,
  written atomically by the driver only;
- the **refit rule** (:func:`refit_reason`): refit when there is no universal
  version, when a ticker of tonight's book is not covered by it (the book
  changed), when one of its copies is missing from the registry, or when
  ``--universe-refit`` weekdays have passed since its fit;
- the **refit task** (:func:`fit_universe`): one task, on a Dask worker or in
  the driver's process, that fits the model on every ticker's prices up to the
  night, with the recent comparison window held out as its test period, in a
  scratch registry, and returns the version's files for every ticker as bytes.

Like every nightly task, the refit reads and writes nothing of the data home.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, DataError

if TYPE_CHECKING:
    from forecaster.data.loader import PriceData
    from forecaster.models.registry import ModelRegistry
    from forecaster.settings import Settings

#: Weekdays between refits of the universal model (``--universe-refit``): about a month.
DEFAULT_UNIVERSE_REFIT = 20
#: Training settings of the universal model unless given (``bench/universe.md``: 100 real
#: stocks fit in under 5 minutes with these on 2 cores).
UNIVERSAL_DEFAULTS: dict[str, Any] = {"batch_size": 256, "epochs": 20, "patience": 4}
#: Training settings of the per-ticker fine-tune from the universal model on a refit night.
FINE_TUNE_DEFAULTS: dict[str, Any] = {"epochs": 5, "patience": 2}
POINTER_FILE = "universal.json"


@dataclass(frozen=True)
class UniversePointer:
    """The current universal model (``models/universal.json``)."""

    version: str
    as_of: str | None  # the night it was fit (None: the latest data then)
    data_end: str  # the last date of the prices it was fit on
    cut: str  # its test period (the comparison window then) starts here
    tickers: tuple[str, ...]  # the book it was fit for
    fitted: tuple[str, ...]  # those whose prices it was fit on (the others failed to load)
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        payload = dataclasses.asdict(self)
        payload["tickers"], payload["fitted"] = list(self.tickers), list(self.fitted)
        return payload


def pointer_path(settings: Settings) -> Path:
    return settings.models_dir / POINTER_FILE


def read_pointer(settings: Settings) -> UniversePointer | None:
    """The pointer, or None if there is none.

    Raises
    ------
    DataError
        The file exists but is not a pointer (it names how to start over).
    """
    path = pointer_path(settings)
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
        return UniversePointer(
            version=str(payload["version"]),
            as_of=payload.get("as_of"),
            data_end=str(payload["data_end"]),
            cut=str(payload["cut"]),
            tickers=tuple(str(t) for t in payload["tickers"]),
            fitted=tuple(str(t) for t in payload["fitted"]),
            created_at=str(payload["created_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"universal model pointer {path} is corrupt ({exc}); delete it and the next "
            "`forecast nightly --universal` refits the universal model"
        ) from None


def write_pointer(settings: Settings, pointer: UniversePointer) -> None:
    """Replace the pointer atomically (driver only, under the nightly lock)."""
    from forecaster.files import atomic_write_bytes

    payload = json.dumps(pointer.to_dict(), indent=1) + "\n"
    atomic_write_bytes(pointer_path(settings), payload.encode())


def weekdays_between(start: str, end: str) -> int:
    """Weekdays after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
    first = pd.Timestamp(start).date() + pd.Timedelta(days=1)
    last = pd.Timestamp(end).date() + pd.Timedelta(days=1)
    return max(0, int(np.busday_count(first, last)))


def refit_reason(
    pointer: UniversePointer | None,
    tickers: list[str],
    night_end: str,
    every: int,
    registry: ModelRegistry,
) -> str | None:
    """Why the universal model must be refit tonight, or None to keep it."""
    if pointer is None:
        return "no universal model yet"
    missing = [t for t in tickers if t not in pointer.tickers]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return f"the book has tickers the universal model was not fit on ({shown})"
    lost = [
        t for t in tickers if t in pointer.fitted and pointer.version not in registry.version_ids(t)
    ]
    if lost:
        return f"the universal version {pointer.version} is missing for {', '.join(lost[:5])}"
    days = weekdays_between(pointer.data_end, night_end)
    if days >= every:
        return f"{days} weekdays since the last fit (--universe-refit {every})"
    return None


@dataclass(frozen=True)
class UniverseJob:
    """All the refit task gets: the tickers' prices, the settings and the comparison window."""

    datas: tuple[PriceData, ...]
    config: dict[str, Any]
    window_days: int
    as_of: str | None


@dataclass(frozen=True)
class UniverseResult:
    """What the refit task returns: the version's files per ticker, or the error."""

    version: str | None
    cut: str | None
    files: dict[str, dict[str, bytes]]
    seconds: float
    error: str | None = None
    traceback: str | None = None
    training: dict[str, Any] | None = None


def common_cut(datasets: dict[str, Any], window_days: int) -> pd.Timestamp:
    """The earliest start of the tickers' comparison windows: the universal test period.

    Every ticker's window (its last ``window_days`` labeled origins) then lies
    in the model's test period, never in its training or validation rows.
    """
    starts = []
    for ticker, dataset in datasets.items():
        labeled = np.flatnonzero(dataset.labeled())
        if labeled.size <= window_days:
            raise DataError(
                f"{ticker} has {labeled.size} labeled origins, too few for a "
                f"{window_days}-day comparison window; drop it from the book or use a "
                "smaller --window-days"
            )
        starts.append(dataset.origins[labeled[-window_days]])
    return min(starts)


def fit_universe(job: UniverseJob) -> UniverseResult:
    """The refit task: fit the universal model and return its files for every ticker.

    Never raises: a failure comes back as ``error`` (the driver then keeps the
    previous universal model, if any, and says so).
    """
    import logging

    from forecaster.models.config import LSTMConfig
    from forecaster.models.lstm_forecaster import LSTMForecaster, dataset_of, train_pooled
    from forecaster.models.registry import ModelRegistry

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        config = LSTMConfig.from_dict(job.config)
        if config.market or config.exog:
            raise ConfigError(
                "the nightly universal model reads only each ticker's own prices; drop market "
                "and exog from its options (train such a model with `forecast train --panel`)"
            )
        shaper = LSTMForecaster(config)
        cut = common_cut({d.ticker: dataset_of(shaper, d) for d in job.datas}, job.window_days)
        with tempfile.TemporaryDirectory(prefix="forecaster-universe-") as scratch:
            registry = ModelRegistry(Path(scratch) / "models")
            outcome = train_pooled(list(job.datas), config, registry, test_start=cut, promote=False)
            files = {
                ticker: registry.version_files(ticker, outcome.version)
                for ticker in outcome.versions
            }
            training = dict(outcome.forecaster.training)
        return UniverseResult(
            outcome.version,
            f"{cut:%Y-%m-%d}",
            files,
            round(time.perf_counter() - started, 2),
            training=training,
        )
    except Exception as exc:
        return UniverseResult(
            None,
            None,
            {},
            round(time.perf_counter() - started, 2),
            error=f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc),
            traceback=None if isinstance(exc, ConfigError | DataError) else traceback.format_exc(),
        )
    finally:
        import sys

        if "keras" in sys.modules:
            sys.modules["keras"].backend.clear_session()
