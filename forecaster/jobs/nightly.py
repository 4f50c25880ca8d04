"""Nightly retraining: retrain -> evaluate -> promote -> forecast, per ticker (DESIGN.md §8).

For each ticker :func:`run_ticker`:

1. loads prices through the cache up to ``as_of`` (never the sample as a
   fallback for a failed download);
2. returns ``unchanged`` if a completed run already saw exactly this data
   (same fingerprint): no retrain, no new forecast;
3. trains a challenger with the champion's options (its seed, horizon,
   estimator, ...) except that the held-out test period is the recent window,
   the last ``window_days`` origins whose targets are realized by ``as_of``;
   a ticker without a champion trains ``default_options`` instead;
4. scores challenger and champion on exactly the same window rows (QLIKE on
   floored targets, and bias) and keeps the champion unless the challenger's
   QLIKE is no worse;
5. records the next forecast of the (possibly new) champion, made at the
   last close, and the run in the forecast history — in one transaction that
   also moves the champion pointer, the last write of the run.

Any exception makes that ticker ``failed`` and leaves its champion as it was;
the others go on. Fan-out is sequential, a local Dask cluster (``workers``) or
an existing one (``scheduler``); TensorFlow runs only inside the tasks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.loader import load_prices, parse_date
from forecaster.data.sources import check_source, normalize_ticker
from forecaster.errors import ConfigError, DataError, ForecasterError, ModelError, RegistryError
from forecaster.jobs.history import ForecastHistory, now_utc
from forecaster.jobs.lock import nightly_lock
from forecaster.settings import Settings
from forecaster.units import to_vol

#: Trading days in the recent window on which challenger and champion are compared.
DEFAULT_WINDOW_DAYS = 63

RECORD_KEYS = (
    "ticker",
    "status",
    "decision",
    "as_of",
    "source",
    "data_end",
    "rows",
    "rows_added",
    "fingerprint",
    "previous_champion",
    "champion_version",
    "challenger_version",
    "challenger_qlike",
    "champion_qlike",
    "challenger_bias",
    "champion_bias",
    "champion_saw_window",
    "window_start",
    "window_end",
    "window_rows",
    "origin",
    "horizon",
    "variance",
    "vol",
    "error",
    "traceback",
    "seconds",
)


@dataclass(frozen=True)
class TickerTask:
    """Everything one ticker's nightly run needs (picklable, for Dask workers)."""

    ticker: str
    settings: Settings
    source: str = "auto"
    csv_path: str | None = None
    as_of: str | None = None
    window_days: int = DEFAULT_WINDOW_DAYS
    default_options: dict[str, Any] | None = None


@dataclass
class NightlyReport:
    """The outcome of one nightly run: one record per ticker, in the order asked."""

    records: list[dict[str, Any]]
    as_of: str | None
    source: str
    started_at: str
    seconds: float
    fan_out: str = "sequential"

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [record for record in self.records if record["status"] == "failed"]

    @property
    def exit_code(self) -> int:
        """1 if any ticker failed, else 0."""
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        statuses = [record["status"] for record in self.records]
        return {name: statuses.count(name) for name in ("ok", "unchanged", "failed")}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (tracebacks left out)."""
        return {
            "as_of": self.as_of,
            "source": self.source,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "fan_out": self.fan_out,
            "counts": self.counts(),
            "tickers": [
                {key: value for key, value in record.items() if key != "traceback"}
                for record in self.records
            ],
        }


# --- one ticker ---------------------------------------------------------------


def recent_window(dataset: Any, window_days: int) -> np.ndarray:
    """Row indices of the last ``window_days`` labeled origins of ``dataset``.

    Raises
    ------
    DataError
        The labeled origins before the window are too few to train and
        validate a challenger (the split that holds the window out fails).
    """
    from forecaster.data.features import MIN_ORIGINS, split_dataset

    labeled = np.flatnonzero(dataset.labeled())
    n_before = max(0, labeled.size - window_days)
    problem = DataError(
        f"{n_before} labeled origins before the {window_days}-day comparison window (data up "
        f"to {dataset.origins[-1]:%Y-%m-%d}) are too few to train and validate a challenger "
        f"(at least {MIN_ORIGINS} training origins must remain); use a longer history or a "
        "smaller --window-days"
    )
    if n_before == 0:
        raise problem
    window = labeled[-window_days:]
    try:
        split_dataset(dataset, test_start=dataset.origins[window[0]])
    except (ConfigError, DataError):
        raise problem from None
    return window


def decide(challenger_qlike: float, champion_qlike: float | None) -> str:
    """``first`` (no champion), ``promoted`` (challenger no worse) or ``kept``."""
    if champion_qlike is None:
        return "first"
    return "promoted" if challenger_qlike <= champion_qlike else "kept"


def model_forecasts(loaded: Any, prices: pd.DataFrame) -> pd.Series:
    """A loaded model's variance forecast for every origin of ``prices`` (NaN = none)."""
    dataset = loaded.dataset(prices)
    return pd.Series(np.asarray(loaded.predict(dataset), dtype=np.float64), index=dataset.origins)


def _window_score(target: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    return {"qlike": metrics.qlike(target, forecast), "bias": metrics.bias(target, forecast)}


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _restore(path: Path, content: bytes | None) -> None:
    from forecaster.data.store import atomic_write_bytes

    if content is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write_bytes(path, content)


def _champion_options(champion: Any) -> Any:
    from forecaster.models.pipeline import TrainOptions

    try:
        return TrainOptions.from_dict(champion.meta["options"])
    except (KeyError, TypeError) as exc:
        raise RegistryError(
            f"champion {champion.version} of {champion.ticker} has no usable training options "
            f"in {str(champion.path / 'meta.json')!r} ({exc.__class__.__name__}: {exc}); "
            f"retrain it with `forecast train --ticker {champion.ticker}`"
        ) from None


def _saw_window(champion: Any, window_start: pd.Timestamp) -> bool | None:
    """Whether the champion's training or validation rows reach into the window."""
    try:
        return bool(pd.Timestamp(champion.meta["split"]["validation_end"]) >= window_start)
    except (KeyError, TypeError, ValueError):
        return None


def _process(
    task: TickerTask, history: ForecastHistory, record: dict[str, Any], started: float
) -> None:
    from forecaster.models.pipeline import LoadedModel, TrainOptions, floored_target, train
    from forecaster.models.registry import CHAMPION_FILE, ModelRegistry

    settings = task.settings
    ticker = task.ticker
    if task.csv_path is not None and not Path(task.csv_path).is_file():
        raise DataError(
            f"no CSV file for {ticker}: expected {task.csv_path} (--csv-dir holds one file per "
            "ticker, named <TICKER>.csv, with columns Date, Open, High, Low, Close[, Volume])"
        )
    try:
        data = load_prices(
            ticker,
            source=task.source,
            csv_path=task.csv_path,
            end=parse_date(task.as_of, "--as-of"),
            settings=settings,
            allow_fallback=False,
        )
    except DataError as exc:
        # The loader speaks of --start/--end (the interactive options); the job has --as-of
        # and --csv-dir.
        message = str(exc).replace("adjust --start/--end", "check --as-of")
        if task.source == "csv":
            message = message.replace("--csv PATH", "--csv-dir DIR")
        raise type(exc)(message) from None
    prices = data.prices
    record.update(
        source=data.source,
        data_end=f"{data.end:%Y-%m-%d}",
        rows=int(len(prices)),
        rows_added=int(data.added),
        fingerprint=data.fingerprint,
    )

    done = history.completed_run(ticker, data.fingerprint)
    if done is not None:
        keys = ("decision", "champion_version", "challenger_version", "previous_champion")
        keys += ("challenger_qlike", "champion_qlike", "challenger_bias", "champion_bias")
        keys += ("window_start", "window_end", "window_rows", "origin", "horizon")
        record.update({key: done[key] for key in (*keys, "variance", "vol")})
        record["status"] = "unchanged"
        return

    registry = ModelRegistry(settings.models_dir)
    champion_id = registry.champion_id(ticker)
    champion = registry.get(ticker, champion_id) if champion_id is not None else None
    if champion is not None:
        base = _champion_options(champion)
        trained_to = champion.meta.get("data", {}).get("end")
        if trained_to is not None and pd.Timestamp(trained_to) > data.end:
            # Its selection saw prices after this night: replaying it would look ahead.
            raise DataError(
                f"champion {champion_id} was chosen on data up to {trained_to}, after this "
                f"run's last date {data.end:%Y-%m-%d}; replay nights in date order, or use a "
                "fresh --home for a backfill"
            )
    else:
        base = TrainOptions.from_dict(task.default_options or {})
    record["previous_champion"] = champion_id

    from forecaster.data.features import build_dataset

    dataset = build_dataset(prices, base.feature_spec())
    window = recent_window(dataset, task.window_days)
    window_origins = dataset.origins[window]
    window_start, window_end = window_origins[0], window_origins[-1]
    record.update(
        window_start=f"{window_start:%Y-%m-%d}",
        window_end=f"{window_end:%Y-%m-%d}",
        horizon=int(base.horizon),
    )

    options = dataclasses.replace(base, test_start=f"{window_start:%Y-%m-%d}")
    outcome = train(
        data,
        options,
        registry,
        promote=False,
        extra_meta={
            "nightly": {
                "as_of": task.as_of,
                "window_start": f"{window_start:%Y-%m-%d}",
                "window_end": f"{window_end:%Y-%m-%d}",
                "window_days": task.window_days,
                "champion_at_training": champion_id,
            }
        },
    )
    challenger = LoadedModel(outcome.version)
    record["challenger_version"] = outcome.version.version
    challenger_forecasts = model_forecasts(challenger, prices)
    champion_loaded = LoadedModel(champion) if champion is not None else None
    champion_forecasts = (
        model_forecasts(champion_loaded, prices) if champion_loaded is not None else None
    )

    # Both models on exactly the same rows: the window origins where each has a forecast.
    target = floored_target(dataset.target[window])
    candidate = challenger_forecasts.reindex(window_origins).to_numpy()
    usable = np.isfinite(target) & np.isfinite(candidate)
    if champion_forecasts is not None:
        incumbent = champion_forecasts.reindex(window_origins).to_numpy()
        usable &= np.isfinite(incumbent)
    if usable.sum() < max(1, task.window_days // 2):
        raise ModelError(
            f"only {int(usable.sum())} of the {task.window_days} window origins "
            f"({window_start:%Y-%m-%d}..{window_end:%Y-%m-%d}) have forecasts from both models; "
            "use a larger --window-days"
        )
    challenger_score = _window_score(target[usable], candidate[usable])
    champion_score = {"qlike": None, "bias": None}
    if champion_forecasts is not None:
        champion_score = _window_score(target[usable], incumbent[usable])
    decision = decide(challenger_score["qlike"], champion_score["qlike"])
    record.update(
        window_rows=int(usable.sum()),
        challenger_qlike=challenger_score["qlike"],
        challenger_bias=challenger_score["bias"],
        champion_qlike=champion_score["qlike"],
        champion_bias=champion_score["bias"],
        champion_saw_window=_saw_window(champion, window_start) if champion else None,
        decision=decision,
    )

    # The next forecast, made at the last close by the champion after this decision.
    chosen, chosen_forecasts = (
        (outcome.version, challenger_forecasts)
        if decision != "kept"
        else (champion, champion_forecasts)
    )
    variance = float(chosen_forecasts.iloc[-1])
    origin = chosen_forecasts.index[-1]
    if not (math.isfinite(variance) and variance > 0):
        raise ModelError(
            f"model {chosen.version} gave no usable forecast at {origin:%Y-%m-%d} "
            f"(variance {variance!r}); retrain it with `forecast train --ticker {ticker}`"
        )
    meta = chosen.meta
    record.update(
        champion_version=chosen.version,
        origin=f"{origin:%Y-%m-%d}",
        horizon=int(meta["horizon"]),
        variance=variance,
        vol=float(to_vol(variance)),
    )

    if decision == "first":
        reason = (
            f"nightly: first champion (qlike {challenger_score['qlike']:.6f} on "
            f"{window_start:%Y-%m-%d}..{window_end:%Y-%m-%d})"
        )
    else:
        reason = (
            f"nightly: qlike {challenger_score['qlike']:.6f} <= {champion_score['qlike']:.6f} "
            f"on {window_start:%Y-%m-%d}..{window_end:%Y-%m-%d}"
        )
    pointer = settings.models_dir / ticker / CHAMPION_FILE
    before = _read_bytes(pointer)
    promoted = False
    try:
        with history.transaction() as connection:
            history.insert_forecast(
                connection,
                {
                    "ticker": ticker,
                    "origin": record["origin"],
                    "horizon": record["horizon"],
                    "model_version": chosen.version,
                    "init": meta.get("init"),
                    "estimator": meta["estimator"],
                    "estimator_window": int(meta.get("options", {}).get("window", 22)),
                    "source": data.source,
                    "variance": variance,
                    "vol": record["vol"],
                },
            )
            history.insert_run(
                connection,
                {
                    **record,
                    "status": "ok",
                    "seconds": round(time.perf_counter() - started, 2),
                    "created_at": now_utc(),
                },
            )
            if decision != "kept":
                registry.promote(ticker, outcome.version.version, reason=reason)
                promoted = True
    except BaseException:
        if promoted:  # the history did not commit: put the old pointer back
            _restore(pointer, before)
        raise
    record["status"] = "ok"


def _clear_session() -> None:
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


def run_ticker(task: TickerTask) -> dict[str, Any]:
    """Run the nightly protocol for one ticker; never raises for the ticker's own failures.

    Returns
    -------
    dict
        A small JSON-safe record (keys :data:`RECORD_KEYS`); ``status`` is
        ``ok``, ``unchanged`` or ``failed`` (with ``error``).
    """
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing chatter
    started = time.perf_counter()
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update(ticker=task.ticker, status="failed", as_of=task.as_of)
    history = ForecastHistory(task.settings.forecasts_db)
    try:
        _process(task, history, record, started)
    except Exception as exc:  # one ticker's failure never stops the others
        # Nothing was promoted: the champion is whatever it was before the run.
        record.update(status="failed", decision=None, champion_version=record["previous_champion"])
        if isinstance(exc, ForecasterError):
            record["error"] = str(exc)
        else:
            record["error"] = f"{exc.__class__.__name__}: {exc}"
            record["traceback"] = traceback.format_exc()
        try:
            history.record_run({**record, "seconds": round(time.perf_counter() - started, 2)})
        except Exception as secondary:  # the history itself may be what failed
            record["error"] += f" (and the failure could not be recorded: {secondary})"
    finally:
        _clear_session()
        record["seconds"] = round(time.perf_counter() - started, 2)
    return record


# --- the run ------------------------------------------------------------------


def _failed_record(task: TickerTask, error: str) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update(ticker=task.ticker, status="failed", as_of=task.as_of, error=error)
    return record


def _run_sequential(
    tasks: Sequence[TickerTask], on_record: Callable[[dict[str, Any]], None] | None
) -> list[dict[str, Any]]:
    records = []
    for task in tasks:
        record = run_ticker(task)
        if on_record is not None:
            on_record(record)
        records.append(record)
    return records


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "--workers and --scheduler need Dask distributed, which is not installed; "
            "install it with `pip install 'forecaster[distributed]'`"
        ) from None
    return distributed


def _run_dask(
    tasks: Sequence[TickerTask],
    workers: int | None,
    scheduler: str | None,
    on_record: Callable[[dict[str, Any]], None] | None,
) -> list[dict[str, Any]]:
    distributed = _import_distributed()
    records: list[dict[str, Any]] = [_failed_record(task, "not run") for task in tasks]
    with _dask_client(distributed, workers, scheduler) as client:
        futures = client.map(run_ticker, list(tasks), pure=False)
        position = {future.key: index for index, future in enumerate(futures)}
        for future in distributed.as_completed(futures):
            index = position[future.key]
            try:
                record = future.result()
            except Exception as exc:  # the worker died (e.g. out of memory) or lost contact
                error = f"Dask task failed: {exc.__class__.__name__}: {exc}"
                record = _failed_record(tasks[index], error)
            records[index] = record
            if on_record is not None:
                on_record(record)
    return records


@contextlib.contextmanager
def _dask_client(distributed: Any, workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A Client on a new LocalCluster (``workers``) or on an existing scheduler."""
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler)  # waits distributed.comm.timeouts.connect
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler!r} "
                f"({exc.__class__.__name__}: {exc}); expected the address of a running "
                "`dask scheduler`, e.g. tcp://host:8786"
            ) from None
        with client:
            yield client
        return
    # Worker processes are spawned (never forked), one thread each; TensorFlow is
    # imported only inside them, by the tasks.
    try:
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    except RuntimeError as exc:
        raise ConfigError(
            f"could not start a local Dask cluster of {workers} workers ({exc}); a script "
            'calling run_nightly with workers must do so under `if __name__ == "__main__":` '
            "(workers are spawned and re-import the main module), or run without --workers"
        ) from exc
    with cluster, distributed.Client(cluster) as client:
        yield client


def _tickers(tickers: Iterable[str]) -> list[str]:
    if isinstance(tickers, str):
        tickers = tickers.split(",")
    cleaned: list[str] = []
    for ticker in tickers:
        if ticker.strip():
            name = normalize_ticker(ticker)
            if name not in cleaned:
                cleaned.append(name)
    if not cleaned:
        raise ConfigError("no tickers given; pass e.g. --tickers SPY,QQQ or --universe FILE")
    return cleaned


def read_universe(path: str | Path) -> list[str]:
    """Tickers of a universe file: one per line (commas also split), ``#`` starts a comment."""
    file = Path(path).expanduser()
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read universe file {str(file)!r} ({exc.__class__.__name__}); expected a "
            "text file with one ticker per line"
        ) from None
    names = []
    for line in text.splitlines():
        names += [part for part in line.split("#", 1)[0].replace(",", " ").split() if part]
    if not names:
        raise ConfigError(
            f"universe file {str(file)!r} lists no tickers; expected one ticker per line "
            "(lines starting with # are comments)"
        )
    return _tickers(names)


def run_nightly(
    tickers: Iterable[str],
    *,
    settings: Settings,
    source: str = "auto",
    csv_dir: str | Path | None = None,
    as_of: str | pd.Timestamp | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    default_options: Any = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> NightlyReport:
    """Run the nightly protocol for every ticker under the nightly lock.

    Parameters
    ----------
    tickers : iterable of str
        Symbols (case-insensitive, duplicates dropped).
    settings : Settings
        The data home (price cache, registry, history and lock).
    source : {"auto", "yahoo", "csv", "sample"}
        Price source; ``auto`` never falls back to the sample here.
    csv_dir : path, optional
        With ``source="csv"``: read ``csv_dir/<TICKER>.csv``.
    as_of : date, optional
        Run as if today were this date: later prices are invisible.
    workers : int, optional
        Run the tickers on a local Dask cluster of this many worker processes.
    scheduler : str, optional
        Run the tickers on an existing Dask cluster (``tcp://host:8786``); its
        workers must see the same data home (shared filesystem).
    default_options : TrainOptions, optional
        Options of a ticker's first champion (default ``TrainOptions()``).
    window_days : int
        Labeled origins in the recent comparison window.
    on_record : callable, optional
        Called with each ticker's record as it completes.

    Notes
    -----
    With ``workers`` the Dask worker processes are spawned and re-import the
    calling script's main module: call this under ``if __name__ == "__main__":``
    (the ``forecast`` command does).

    Returns
    -------
    NightlyReport
        One record per ticker; ``exit_code`` is 1 if any failed.

    Raises
    ------
    ConfigError
        Inconsistent options.
    LockError
        Another nightly run holds the lock.
    """
    names = _tickers(tickers)
    check_source(source)
    if workers is not None and scheduler is not None:
        raise ConfigError(
            "--workers and --scheduler were both given; use --workers N for a local Dask "
            "cluster or --scheduler ADDRESS for an existing one, not both"
        )
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ConfigError(f"--workers must be at least 1, received {workers!r}")
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 2:
        raise ConfigError(
            f"--window-days must be an integer of at least 2, received {window_days!r}"
        )
    if csv_dir is not None and source != "csv":
        raise ConfigError(
            f"--csv-dir was given with --source {source}; use --source csv --csv-dir DIR"
        )
    if source == "csv" and csv_dir is None:
        raise ConfigError(
            "--source csv needs --csv-dir DIR holding one file per ticker, DIR/<TICKER>.csv"
        )
    if csv_dir is not None and not Path(csv_dir).expanduser().is_dir():
        raise ConfigError(f"--csv-dir {str(csv_dir)!r} is not a folder; expected DIR/<TICKER>.csv")
    as_of_date = parse_date(as_of if as_of is None else str(as_of), "--as-of")
    as_of_text = None if as_of_date is None else f"{as_of_date:%Y-%m-%d}"
    defaults = None
    if default_options is not None:
        defaults = (
            default_options.to_dict()
            if hasattr(default_options, "to_dict")
            else dict(default_options)
        )
    tasks = [
        TickerTask(
            ticker=name,
            settings=settings,
            source=source,
            csv_path=(
                str(Path(csv_dir).expanduser().resolve() / f"{name}.csv")
                if csv_dir is not None
                else None
            ),
            as_of=as_of_text,
            window_days=window_days,
            default_options=defaults,
        )
        for name in names
    ]
    started_at = now_utc()
    clock = time.perf_counter()
    with nightly_lock(settings.lock_path):
        if workers is None and scheduler is None:
            records = _run_sequential(tasks, on_record)
            fan_out = "sequential"
        else:
            records = _run_dask(tasks, workers, scheduler, on_record)
            fan_out = f"dask {scheduler}" if scheduler else f"dask local, {workers} workers"
    return NightlyReport(
        records=records,
        as_of=as_of_text,
        source=source,
        started_at=started_at,
        seconds=round(time.perf_counter() - clock, 2),
        fan_out=fan_out,
    )
