"""Nightly retraining: retrain -> evaluate -> promote -> forecast, per ticker (DESIGN.md §8).

This module is the run as a whole: the fan-out (in-process, a local Dask
cluster or an existing scheduler), the universal-model step and
:func:`run_nightly`. What happens to one ticker is
:mod:`forecaster.jobs.protocol` (its names used to live here and are
re-exported).

Shared-nothing with one writer. The **driver** (the process that runs
:func:`run_nightly`, under the nightly lock) alone reads and writes the data
home; the **task** (:func:`run_challenge`, on a Dask worker or in the driver's
own process) gets everything it needs as values and returns everything it made
as values. The per-ticker steps (load, challenge, decide, forecast, commit) and
what travels between driver and task are documented in
:mod:`forecaster.jobs.protocol`.

Any exception makes that ticker ``failed`` (recorded by the driver) and leaves
its champion as it was; the others go on. Fan-out is sequential (the task runs
in the driver's process), a local Dask cluster (``workers``) or an existing one
(``scheduler``, ``tcp://`` or ``tls://``): one code path, :func:`_drive`, with
only the place the task runs changing. At most about two tasks per worker
thread are in flight, so the driver holds a bounded number of price series.
A task whose worker is lost (process killed, out of memory) is re-run on
another worker by the Dask scheduler, up to its
``distributed.scheduler.allowed-failures`` (set to :data:`ALLOWED_FAILURES`,
one retry, for a local cluster; Dask's default is 3); past that the ticker
fails with a clear reason. A lost task wrote nothing: workers never touch the
data home. TensorFlow runs only inside the tasks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from forecaster.data.loader import parse_date
from forecaster.data.sources import check_source, ticker_list
from forecaster.errors import ConfigError, DataError
from forecaster.evaluation.risk import (
    DEFAULT_DISTRIBUTION,
    DEFAULT_LEVELS,
    check_distribution,
    parse_levels,
)
from forecaster.jobs.history import ForecastHistory, now_utc
from forecaster.jobs.lock import nightly_lock
from forecaster.jobs.record import RunRecord
from forecaster.jobs.recovery import reconcile
from forecaster.jobs.retention import check_keep, prune_after_run
from forecaster.settings import Settings

if TYPE_CHECKING:
    pass

from forecaster.jobs.protocol import (  # the per-ticker protocol (re-exported)
    DEFAULT_MIN_SCORED,
    DEFAULT_PROMOTION_LEVEL,
    DEFAULT_WINDOW_DAYS,
    Challenge,
    PromotionRule,
    TickerJob,
    TickerResult,
    TickerTask,
    UniversalTask,
    _fail,
    _record_failure,
    _worker_address,
    challenge_step,
    commit_step,
    decide,
    issue_step,
    lost_task,
    prepare_job,
    run_challenge,
    task_prices,
)

#: The job's API, and the per-ticker protocol's names that callers imported from here.
__all__ = [
    "DEFAULT_MIN_SCORED",
    "DEFAULT_PROMOTION_LEVEL",
    "DEFAULT_WINDOW_DAYS",
    "Challenge",
    "NightlyReport",
    "PromotionRule",
    "TickerTask",
    "UniversalTask",
    "challenge_step",
    "check_scheduler",
    "decide",
    "issue_step",
    "parse_scheduler",
    "read_universe",
    "run_challenge",
    "run_nightly",
    "tls_security",
]

#: Re-runs of a task whose worker was lost, on a local cluster (Dask's
#: ``distributed.scheduler.allowed-failures``; an existing scheduler has its own).
ALLOWED_FAILURES = 1
#: Seconds to wait for a first worker on an existing scheduler.
WORKER_WAIT_SECONDS = 60
#: Default seconds for connecting to an existing scheduler and getting its Dask handshake
#: (``--scheduler-timeout``); Dask's own connect does not bound the handshake.
SCHEDULER_TIMEOUT_SECONDS = 10.0
#: Port of a scheduler address given without one (Dask's default).
DEFAULT_SCHEDULER_PORT = 8786

@dataclass
class NightlyReport:
    """The outcome of one nightly run: one record per ticker, in the order asked.

    Each record is a ticker's :class:`RunRecord` in its dict form
    (:meth:`RunRecord.to_dict`), as the CLI and JSON output read it.
    """

    records: list[dict[str, Any]]
    as_of: str | None
    source: str
    started_at: str
    seconds: float
    fan_out: str = "sequential"
    recovered: list[str] = dataclasses.field(default_factory=list)
    #: Retention at the end of the run (:func:`forecaster.jobs.retention.prune_after_run`).
    pruned: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: A ``--universal`` night's universe step (:func:`_universe_step`), else None.
    universe: dict[str, Any] | None = None

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
            "recovered": list(self.recovered),
            "pruned": list(self.pruned),
            "universe": self.universe,
            "tickers": [
                {key: value for key, value in record.items() if key != "traceback"}
                for record in self.records
            ],
        }




def _trains(job: TickerJob) -> bool:
    """Whether the task builds Keras models (every task but a --universal serving night)."""
    universal = job.task.universal
    return not (universal is not None and not universal.refit and job.champion is not None)


def _run_challenge_isolated(job: TickerJob) -> TickerResult:
    """:func:`run_challenge` in a fresh process on this worker; the record names this worker."""
    from forecaster.jobs.isolated import run_isolated

    result = run_isolated("challenge", job)
    return dataclasses.replace(
        result, record=dataclasses.replace(result.record, worker=_worker_address())
    )


class _InProcess:
    """Runs each task in this process when its result is asked for (sequential)."""

    def __init__(self) -> None:
        self._queue: deque[tuple[int, TickerJob]] = deque()

    def has_room(self) -> bool:
        return not self._queue

    def submit(self, index: int, job: TickerJob) -> None:
        self._queue.append((index, job))

    def run_one(self, function: Callable[[Any], Any], argument: Any) -> Any:
        return function(argument)

    def results(self) -> Iterator[tuple[int, Callable[[], TickerResult]]]:
        while self._queue:
            index, job = self._queue.popleft()
            yield index, functools.partial(run_challenge, job)


class _OnDask:
    """Runs tasks on a Dask cluster, about two per worker thread in flight."""

    def __init__(self, client: Any, distributed: Any, isolate: bool = True) -> None:
        self._client = client
        self._isolate = isolate
        self._done = distributed.as_completed()
        self._index: dict[str, int] = {}
        self._room = max(2, 2 * sum(client.nthreads().values()))

    def has_room(self) -> bool:
        return len(self._index) < self._room

    def submit(self, index: int, job: TickerJob) -> None:
        key = f"nightly-{job.task.ticker}-{secrets.token_hex(4)}"
        function = _run_challenge_isolated if self._isolate and _trains(job) else run_challenge
        future = self._client.submit(function, job, key=key, pure=False)
        self._index[future.key] = index
        self._done.add(future)

    def run_one(self, function: Callable[[Any], Any], argument: Any) -> Any:
        """One task on the cluster (the universal refit), waited for."""
        key = f"nightly-universe-{secrets.token_hex(4)}"
        if self._isolate:
            from forecaster.jobs.isolated import run_isolated

            future = self._client.submit(run_isolated, "universe", argument, key=key, pure=False)
        else:
            future = self._client.submit(function, argument, key=key, pure=False)
        try:
            return future.result()
        finally:
            future.release()

    def results(self) -> Iterator[tuple[int, Callable[[], TickerResult]]]:
        for future in self._done:
            yield self._index.pop(future.key), future.result
            future.release()


def _drive(
    tasks: Sequence[TickerTask],
    settings: Settings,
    runner: _InProcess | _OnDask,
    on_record: Callable[[dict[str, Any]], None] | None,
) -> list[dict[str, Any]]:
    """Prepare, run and commit every task; the one loop behind every fan-out."""
    from forecaster.models.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    history = ForecastHistory(settings.forecasts_db)
    records: list[dict[str, Any]] = [{} for _ in tasks]
    submitted: dict[int, tuple[TickerJob, float]] = {}
    upcoming = iter(range(len(tasks)))

    def finish(index: int, record: RunRecord) -> None:
        records[index] = record.to_dict()
        if on_record is not None:
            on_record(records[index])

    def refill() -> None:
        while runner.has_room():
            index = next(upcoming, None)
            if index is None:
                return
            task, started = tasks[index], time.perf_counter()
            record = RunRecord(ticker=task.ticker, status="failed", as_of=task.as_of)
            try:
                job = prepare_job(task, settings, registry, history, record)
            except Exception as exc:
                _fail(record, exc)
                _record_failure(history, record, round(time.perf_counter() - started, 2))
                finish(index, record)
                continue
            if job is None:  # unchanged
                record.seconds = round(time.perf_counter() - started, 2)
                finish(index, record)
                continue
            submitted[index] = (job, time.perf_counter() - started)
            runner.submit(index, job)

    refill()
    for index, outcome in runner.results():
        job, preparing = submitted.pop(index)
        try:
            result = outcome()
        except Exception as exc:  # the worker died (e.g. out of memory) or lost contact
            result = lost_task(job, exc)
        committing = time.perf_counter()
        spent = preparing + result.seconds

        def seconds(spent: float = spent, committing: float = committing) -> float:
            return round(spent + time.perf_counter() - committing, 2)

        finish(
            index,
            commit_step(job.task, result, registry, history, seconds, settings.risk_cache_dir),
        )
        refill()
    return records


def _universe_step(
    tasks: list[TickerTask],
    settings: Settings,
    runner: _InProcess | _OnDask,
    every: int,
    config: dict[str, Any],
    fine_tune: dict[str, Any] | None,
) -> tuple[list[TickerTask], dict[str, Any]]:
    """Driver: refit the universal model if due (one task), then give each task its part.

    The refit's files are stored under every ticker it was fit on, then the
    pointer moves (both by this process only). A failed refit keeps the previous
    universal model, if any: tonight the champions issue, and the summary says why.
    """
    from forecaster.jobs import universe
    from forecaster.models.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    pointer = universe.read_pointer(settings)
    names = [task.ticker for task in tasks]
    datas, night_end = [], None
    for task in tasks:  # the prices as tonight's tasks will see them (through the cache)
        try:
            data = task_prices(task, settings)
        except (DataError, ConfigError):
            continue  # that ticker fails in its own task, with its own error
        datas.append(data)
        night_end = max(night_end or data.end, data.end)
    night = f"{night_end:%Y-%m-%d}" if night_end is not None else (tasks[0].as_of or "")
    reason = universe.refit_reason(pointer, names, night, every, registry)
    summary: dict[str, Any] = {
        "refit": reason is not None,
        "reason": reason,
        "version": pointer.version if pointer else None,
        "fitted_on": pointer.data_end if pointer else None,
        "seconds": None,
        "error": None,
    }
    note = None
    if reason is not None:
        result = None
        if len(datas) < 2:
            error = (
                f"{len(datas)} of the {len(names)} tickers have prices; a universal model needs "
                "at least two"
            )
        else:
            job = universe.UniverseJob(tuple(datas), config, tasks[0].window_days, tasks[0].as_of)
            try:
                result = runner.run_one(universe.fit_universe, job)
                error = result.error
            except Exception as exc:  # the worker was lost
                error = f"the refit task could not run ({type(exc).__name__}: {exc})"
        summary["seconds"] = result.seconds if result is not None else None
        if error is None and result is not None:
            stored: list[str] = []
            try:
                for ticker, files in result.files.items():
                    registry.add_files(ticker, result.version, files)
                    stored.append(ticker)
            except Exception as exc:
                for ticker in stored:  # no ticker keeps a universal version without a pointer
                    with contextlib.suppress(Exception):
                        registry.delete(ticker, result.version)
                error = f"the refit's files could not be stored ({exc})"
            else:
                pointer = universe.UniversePointer(
                    version=result.version,
                    as_of=tasks[0].as_of,
                    data_end=night,
                    cut=result.cut,
                    tickers=tuple(names),
                    fitted=tuple(result.files),
                    created_at=now_utc(),
                )
                universe.write_pointer(settings, pointer)
                summary.update(version=result.version, fitted_on=night, cut=result.cut)
        if error is not None:
            summary["error"] = error
            note = f"the universal refit failed ({error}); the champion issues"
    refit = reason is not None and summary["error"] is None
    next_refit = None
    if pointer is not None:
        next_refit = max(0, every - universe.weekdays_between(pointer.data_end, night))
    summary["next_refit"] = next_refit
    parts = [
        dataclasses.replace(
            task,
            universal=UniversalTask(
                version=pointer.version if pointer is not None else None,
                refit=refit,
                fine_tune=fine_tune if refit else None,
                next_refit=next_refit,
                note=note,
            ),
        )
        for task in tasks
    ]
    return parts, summary


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "--workers and --scheduler need Dask distributed, which is not installed; "
            "install it with `pip install 'forecaster[distributed]'`"
        ) from None
    return distributed


#: Environment variables read when the TLS options are not given.
TLS_ENV = {"ca": "FORECAST_TLS_CA", "cert": "FORECAST_TLS_CERT", "key": "FORECAST_TLS_KEY"}


def tls_security(
    scheduler: str | None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> Any:
    """Dask ``Security`` for a ``tls://`` scheduler (None for ``tcp://`` or a local cluster).

    Each path comes from its argument, else ``$FORECAST_TLS_CA``,
    ``$FORECAST_TLS_CERT``, ``$FORECAST_TLS_KEY``. All three are needed for
    ``tls://`` (Dask's TLS is mutual: the client shows its own certificate) and
    none may be given for another address.

    Raises
    ------
    ConfigError
        A missing or unreadable file, or certificates without ``tls://``.
    """
    import os

    given = {"ca": tls_ca, "cert": tls_cert, "key": tls_key}
    paths = {name: value or os.environ.get(TLS_ENV[name]) or None for name, value in given.items()}
    wants_tls = scheduler is not None and scheduler.startswith("tls://")
    if not wants_tls:
        named = [f"--tls-{name}" for name, value in paths.items() if value]
        if named:
            where = f"--scheduler {scheduler}" if scheduler else "a local cluster"
            raise ConfigError(
                f"{', '.join(named)} (or $FORECAST_TLS_*) given with {where}; certificates "
                "are used only with a tls:// scheduler: use --scheduler tls://host:8786, or "
                "drop the TLS options"
            )
        return None
    missing = [f"--tls-{name} (${TLS_ENV[name]})" for name, value in paths.items() if not value]
    if missing:
        raise ConfigError(
            f"--scheduler {scheduler} needs {', '.join(missing)}: the CA certificate that "
            "signed the scheduler's, and this client's certificate and private key (PEM files)"
        )
    for name, value in paths.items():
        path = Path(value).expanduser()
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ConfigError(f"--tls-{name} {value!r} is not a readable file; expected a PEM file")
        paths[name] = str(path)
    distributed = _import_distributed()
    return distributed.Security(
        tls_ca_file=paths["ca"],
        tls_client_cert=paths["cert"],
        tls_client_key=paths["key"],
        require_encryption=True,
    )


def parse_scheduler(address: str) -> tuple[str, str, int]:
    """``(protocol, host, port)`` of ``tcp://host:port`` or ``tls://host:port`` (``[::1]`` too).

    Raises
    ------
    ConfigError
        Another protocol, no host, or a port that is not a number in 1-65535.
    """
    protocol, separator, rest = address.partition("://")
    if not separator or protocol not in ("tcp", "tls") or not rest or "/" in rest:
        raise ConfigError(
            f"--scheduler {address!r} is not a scheduler address; expected tcp://HOST:PORT "
            "or tls://HOST:PORT, e.g. tcp://10.0.0.5:8786"
        )
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else None if not tail else tail
    else:
        host, _, port_text = rest.rpartition(":") if ":" in rest else (rest, "", None)
    if port_text is None:
        port = DEFAULT_SCHEDULER_PORT
    elif not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(
            f"--scheduler {address!r} has an invalid port {port_text!r}; expected a number "
            f"from 1 to 65535 (Dask's default is {DEFAULT_SCHEDULER_PORT})"
        )
    else:
        port = int(port_text)
    if not host:
        raise ConfigError(
            f"--scheduler {address!r} names no host; expected e.g. {protocol}://10.0.0.5:8786"
        )
    return protocol, host, port


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT_SECONDS) -> None:
    """Connect to the scheduler at ``address`` and wait for its Dask handshake, within ``timeout``.

    A Dask scheduler writes its handshake (a message holding ``pickle-protocol``)
    as soon as a connection is accepted, so a listener that says nothing (a
    plain HTTP server, a hung process) is caught here, where Dask's own
    ``Client`` would wait forever. Over ``tls://`` only the TCP connection is
    checked (the handshake is encrypted); the Client's ``timeout`` bounds the rest.

    Raises
    ------
    ConfigError
        The address is invalid, the connection is refused or times out, or no
        Dask handshake arrives in time; the message names which.
    """
    import socket

    protocol, host, port = parse_scheduler(address)
    deadline = time.monotonic() + timeout
    how = f"(--scheduler-timeout {timeout:g} s)"
    fix = "check the address, and that `dask scheduler` runs there and is reachable"
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r}: connection refused (nothing "
            f"listens on {host} port {port}); {fix}"
        ) from None
    except TimeoutError:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r}: no connection within "
            f"{timeout:g} s {how}; {fix}, or raise --scheduler-timeout"
        ) from None
    except OSError as error:  # name resolution, unreachable network, ...
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r}: {error.strerror or error}; {fix}"
        ) from None
    with connection:
        if protocol == "tls":
            return
        received = b""
        try:
            while b"pickle-protocol" not in received and len(received) < 65536:
                connection.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = connection.recv(4096)
                if not chunk:
                    break
                received += chunk
        except OSError:  # includes the timeout
            pass
    if b"pickle-protocol" in received:
        return
    said = "closed the connection" if not received else "answered with something else"
    if not received and time.monotonic() >= deadline:
        said = f"accepted the connection but sent nothing within {timeout:g} s {how}"
    raise ConfigError(
        f"{address!r} is not a Dask scheduler: it {said}, no Dask handshake; {fix} "
        "(the scheduler's port, e.g. 8786, not its dashboard's)"
    )


@contextlib.contextmanager
def _dask_client(
    distributed: Any,
    workers: int | None,
    scheduler: str | None,
    security: Any = None,
    timeout: float = SCHEDULER_TIMEOUT_SECONDS,
    local_directory: Path | None = None,
) -> Iterator[Any]:
    """A Client on a new LocalCluster (``workers``) or on an existing scheduler.

    A local cluster keeps its scratch space (``dask-scratch-space``) in
    ``local_directory`` (under the data home), not in the system temp folder.
    """
    if scheduler is not None:
        check_scheduler(scheduler, timeout)
        try:
            client = distributed.Client(scheduler, security=security, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler!r} "
                f"({exc.__class__.__name__}: {exc}); expected the address of a running "
                "`dask scheduler`, e.g. tcp://host:8786 (tls:// with --tls-ca/--tls-cert/"
                "--tls-key)"
            ) from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            except TimeoutError:
                raise ConfigError(
                    f"no Dask worker joined the scheduler at {scheduler!r} within "
                    f"{WORKER_WAIT_SECONDS} s; start some with `dask worker {scheduler}`"
                ) from None
            yield client
        return
    # Worker processes are spawned (never forked), one thread each; TensorFlow is
    # imported only inside them, by the tasks.
    import dask

    try:
        with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
            extra = {} if local_directory is None else {"local_directory": str(local_directory)}
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                **extra,
            )
    except RuntimeError as exc:
        raise ConfigError(
            f"could not start a local Dask cluster of {workers} workers ({exc}); a script "
            'calling run_nightly with workers must do so under `if __name__ == "__main__":` '
            "(workers are spawned and re-import the main module), or run without --workers"
        ) from exc
    with cluster, distributed.Client(cluster) as client:
        yield client


def read_universe(path: str | Path) -> list[str]:
    """Tickers of a universe file (see :func:`forecaster.data.sources.read_ticker_file`)."""
    from forecaster.data.sources import read_ticker_file

    return read_ticker_file(path)


def run_nightly(
    tickers: str | Iterable[str],
    *,
    settings: Settings,
    source: str = "auto",
    csv_dir: str | Path | None = None,
    panel_path: str | Path | None = None,
    as_of: str | pd.Timestamp | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    default_options: Any = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    promotion_level: float = DEFAULT_PROMOTION_LEVEL,
    min_scored: int = DEFAULT_MIN_SCORED,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    distribution: str = DEFAULT_DISTRIBUTION,
    levels: Iterable[float] | str = DEFAULT_LEVELS,
    keep: int | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    scheduler_timeout: float = SCHEDULER_TIMEOUT_SECONDS,
    universal: bool = False,
    universe_refit: int | None = None,
    universal_options: Any = None,
    fine_tune: Any = True,
    on_universe: Callable[[dict[str, Any]], None] | None = None,
    isolate: bool = True,
) -> NightlyReport:
    """Run the nightly protocol for every ticker under the nightly lock.

    Parameters
    ----------
    tickers : str or iterable of str
        ``"SPY,QQQ"`` or a list of symbols, read by
        :func:`forecaster.data.sources.ticker_list` like every ``--tickers``
        (case-insensitive, duplicates dropped in order).
    settings : Settings
        The data home (price cache, registry, history and lock).
    source : {"auto", "yahoo", "csv", "sample"}
        Price source; ``auto`` never falls back to the sample here.
    csv_dir : path, optional
        With ``source="csv"``: read ``csv_dir/<TICKER>.csv``.
    panel_path : path, optional
        A long-format file of many tickers (:mod:`forecaster.data.panel`): the
        price source of every ticker (``source`` must be ``auto`` or ``panel``).
    as_of : date, optional
        Run as if today were this date: later prices are invisible.
    workers : int, optional
        Run the tickers on a local Dask cluster of this many worker processes.
    scheduler : str, optional
        Run the tickers on an existing Dask cluster (``tcp://host:8786`` or
        ``tls://host:8786``). Its workers need this package but no data home:
        they get prices and champions from this process and send models back.
    default_options : LSTMConfig or dict, optional
        Settings of a ticker's first champion (default ``LSTMConfig()``).
    window_days : int
        Labeled origins in the recent comparison window.
    promotion_level, min_scored : float, int
        The :class:`PromotionRule`: a challenger replaces the champion when a
        one-sided Diebold–Mariano test rejects equal accuracy at
        ``promotion_level`` on at least ``min_scored`` scored window origins.
    on_record : callable, optional
        Called with each ticker's record as it completes.
    distribution : {"normal", "t", "fhs"}
        Return distribution of the VaR/ES stored with each issued forecast.
    levels : iterable of float or str
        VaR levels (tail probabilities), e.g. ``(0.01, 0.05)`` or ``"0.01,0.05"``.
    keep : int, optional
        At the end of the run, still under the lock, prune the registry of every
        ticker that did not fail, keeping this many unprotected versions
        (:mod:`forecaster.jobs.retention`); None (default) prunes nothing.
    tls_ca, tls_cert, tls_key : path, optional
        PEM files for a ``tls://`` scheduler (see :func:`tls_security`).
    scheduler_timeout : float
        Seconds to connect to ``scheduler`` and get its Dask handshake
        (:func:`check_scheduler`; default :data:`SCHEDULER_TIMEOUT_SECONDS`).
    universal : bool
        Serve the book from one universal model (:mod:`forecaster.jobs.universe`):
        refit (one task) when due, then each ticker's challenger is its view of
        it or its fine-tune; on other nights the champions only issue.
    universe_refit : int, optional
        Weekdays between refits (default :data:`~forecaster.jobs.universe.DEFAULT_UNIVERSE_REFIT`).
    universal_options : LSTMConfig or dict, optional
        Settings of the universal model (default ``LSTMConfig`` with
        :data:`~forecaster.jobs.universe.UNIVERSAL_DEFAULTS`).
    fine_tune : bool or dict
        On a refit night, also fine-tune each ticker from the new model
        (``True``: :data:`~forecaster.jobs.universe.FINE_TUNE_DEFAULTS`; a dict:
        those training settings; ``False``: never).
    on_universe : callable, optional
        Called with the universe step's summary (refit or not, version, seconds).
    isolate : bool
        On Dask, run each task that trains in a fresh process on its worker
        (:mod:`forecaster.jobs.isolated`), so long-lived workers do not grow
        with every model TensorFlow builds; False runs it in the worker.

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
    names = ticker_list(tickers)
    check_source(source)
    distribution = check_distribution(distribution)
    levels = parse_levels(levels)
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
    promotion = PromotionRule(promotion_level, min_scored)
    universe_config: dict[str, Any] = {}
    tune: dict[str, Any] | None = None
    every = universe_refit
    if universal:
        from forecaster.jobs import universe as universes
        from forecaster.models.config import LSTMConfig

        every = universes.DEFAULT_UNIVERSE_REFIT if every is None else every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"--universe-refit must be at least 1 weekday, received {every!r}")
        options = (
            universal_options.to_dict()
            if hasattr(universal_options, "to_dict")
            else {**universes.UNIVERSAL_DEFAULTS, **dict(universal_options or {})}
        )
        config = LSTMConfig.from_dict(options)  # invalid settings fail before the lock
        if config.market or config.exog:
            raise ConfigError(
                "the nightly universal model reads only each ticker's own prices; drop "
                "market/exog from its options"
            )
        universe_config = config.to_dict()
        if fine_tune is True:
            tune = dict(universes.FINE_TUNE_DEFAULTS)
        elif fine_tune:
            tune = dict(fine_tune)
    elif universe_refit is not None:
        raise ConfigError("--universe-refit needs --universal")
    if min_scored > window_days:
        raise ConfigError(
            f"--min-scored {min_scored} is more than --window-days {window_days}: no challenger "
            "could ever be promoted; lower --min-scored or widen --window-days"
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
    if panel_path is not None:
        if source not in ("auto", "panel") or csv_dir is not None:
            raise ConfigError(f"--panel holds the prices; drop --source {source} and --csv-dir")
        source = "panel"
        panel_path = str(Path(panel_path).expanduser().resolve())
    if keep is not None:
        check_keep(keep)
    security = tls_security(scheduler, tls_ca, tls_cert, tls_key)
    if scheduler is not None:
        parse_scheduler(scheduler)  # an invalid address fails before the lock is taken
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
            source=source,
            csv_path=(
                str(Path(csv_dir).expanduser().resolve() / f"{name}.csv")
                if csv_dir is not None
                else None
            ),
            panel_path=panel_path,
            as_of=as_of_text,
            window_days=window_days,
            default_options=defaults,
            distribution=distribution,
            levels=levels,
            promotion=promotion,
        )
        for name in names
    ]
    started_at = now_utc()
    clock = time.perf_counter()
    with nightly_lock(settings.lock_path):
        # First undo what a killed run left half done (and its leftovers).
        recovered = reconcile(settings)
        summary = None

        def run(runner: _InProcess | _OnDask) -> list[dict[str, Any]]:
            nonlocal summary
            todo = tasks
            if universal:
                todo, summary = _universe_step(
                    tasks, settings, runner, every, universe_config, tune
                )
                if on_universe is not None:
                    on_universe(summary)
            return _drive(todo, settings, runner, on_record)

        if workers is None and scheduler is None:
            records = run(_InProcess())
            fan_out = "sequential"
        else:
            distributed = _import_distributed()
            with _dask_client(
                distributed, workers, scheduler, security, scheduler_timeout, settings.dask_dir
            ) as client:
                records = run(_OnDask(client, distributed, isolate))
            fan_out = f"dask {scheduler}" if scheduler else f"dask local, {workers} workers"
        pruned = prune_after_run(settings, records, keep)
    return NightlyReport(
        records=records,
        as_of=as_of_text,
        source=source,
        started_at=started_at,
        seconds=round(time.perf_counter() - clock, 2),
        fan_out=fan_out,
        recovered=recovered,
        pruned=pruned,
        universe=summary,
    )
