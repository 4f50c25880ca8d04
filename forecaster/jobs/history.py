"""Forecast history: every issued forecast and every nightly run, in SQLite.

``<home>/data/forecasts.sqlite`` holds two tables:

``forecasts``
    One row per issued forecast, unique on (ticker, origin, horizon,
    model_version), so re-issuing the same forecast is a no-op. Each row
    keeps the estimator (and its window) of the model that issued it and the
    price source, so it is later scored against the same kind of realized
    variance the model was trained to forecast.
``runs``
    One row per nightly run of a ticker that completed (``ok``) or failed.
    A completed run for a (ticker, data fingerprint) makes the next run on the
    same data a no-op.
``promotions``
    The write-ahead log of champion moves: a row is committed *before* the
    nightly job moves a champion pointer and deleted in the transaction that
    commits the run. A row that is still there at the next start is a run that
    was killed in between (:mod:`forecaster.jobs.recovery` rolls it back).

Scoring is the live track record, not a backtest: a forecast made at the
close of ``origin`` for horizon h is realized once the price cache holds the
h trading days after the origin; its ``realized_var`` is the mean daily
variance over those days (the model's estimator), null until then.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.store import PriceStore
from forecaster.data.volatility import VARIANCE_FLOOR, daily_variance
from forecaster.errors import DataError, ModelError
from forecaster.jobs.record import RunRecord, stored_fields

#: 1: forecasts and runs; 2: + promotions (the write-ahead log of champion moves).
SCHEMA_VERSION = 2

_FORECASTS_TABLE = """
CREATE TABLE IF NOT EXISTS forecasts (
    ticker TEXT NOT NULL,
    origin TEXT NOT NULL,
    horizon INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    init TEXT,
    estimator TEXT NOT NULL,
    estimator_window INTEGER NOT NULL,
    source TEXT NOT NULL,
    variance REAL NOT NULL,
    vol REAL NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (ticker, origin, horizon, model_version)
);
"""

FORECAST_COLUMNS = (
    "ticker",
    "origin",
    "horizon",
    "model_version",
    "init",
    "estimator",
    "estimator_window",
    "source",
    "variance",
    "vol",
    "created_at",
)

_SQL_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL"}


def _column_sql(name: str, hint: Any) -> str:
    """``name TYPE``, with ``NOT NULL`` unless the field's type admits None."""
    nullable = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        nullable = len(members) < len(typing.get_args(hint))
        (hint,) = members
    if typing.get_origin(hint) is typing.Literal:
        (hint,) = {type(value) for value in typing.get_args(hint)}
    return f"{name} {_SQL_TYPES[hint]}" + ("" if nullable else " NOT NULL")


#: The ``runs`` columns: the stored fields of :class:`RunRecord`, then the row's write time.
RUN_COLUMNS = (*(name for name, _ in stored_fields()), "created_at")
_RUNS_TABLE = (
    "CREATE TABLE IF NOT EXISTS runs (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    + "".join(f"    {_column_sql(name, hint)},\n" for name, hint in stored_fields())
    + "    created_at TEXT NOT NULL\n);\n"
    "CREATE INDEX IF NOT EXISTS runs_by_data ON runs (ticker, fingerprint, status);\n"
)
_PROMOTIONS_TABLE = """
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticker TEXT NOT NULL,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    previous_pointer BLOB,
    run TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""
_SCHEMA = _FORECASTS_TABLE + _RUNS_TABLE + _PROMOTIONS_TABLE


def now_utc() -> str:
    """The current UTC time as ISO text (seconds)."""
    return pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")


class ForecastHistory:
    """The SQLite forecast history at ``path`` (created on first write)."""

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            connection.row_factory = sqlite3.Row
            if connection.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                connection.executescript(_SCHEMA)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise DataError(
                f"forecast history {str(self.path)!r} cannot be opened ({exc}); "
                "move the file aside to start a new history"
            ) from None
        return connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, else rolled back."""
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        connection = self._connect()
        try:
            yield connection
        finally:
            connection.close()

    # --- writing ----------------------------------------------------------

    @staticmethod
    def insert_forecast(connection: sqlite3.Connection, row: dict[str, Any]) -> bool:
        """Insert one forecast (ignored if already there); True when a row was added.

        Raises
        ------
        ModelError
            The variance or vol is not a finite positive number: never stored.
        """
        for name in ("variance", "vol"):
            value = row.get(name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ModelError(
                    f"forecast of {row.get('ticker')} by {row.get('model_version')} at "
                    f"{row.get('origin')} has {name} {value!r}; expected a finite number > 0 "
                    "(nothing was recorded)"
                )
        values = [row.get(name) for name in FORECAST_COLUMNS]
        if values[FORECAST_COLUMNS.index("created_at")] is None:
            values[FORECAST_COLUMNS.index("created_at")] = now_utc()
        cursor = connection.execute(
            f"INSERT OR IGNORE INTO forecasts ({', '.join(FORECAST_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(FORECAST_COLUMNS))})",
            values,
        )
        return cursor.rowcount == 1

    @staticmethod
    def insert_run(connection: sqlite3.Connection, row: RunRecord | Mapping[str, Any]) -> None:
        """Append one run record (columns :data:`RUN_COLUMNS`; missing ones are null)."""
        if isinstance(row, RunRecord):
            row = row.to_dict()
        values = [row.get(name) for name in RUN_COLUMNS]
        if values[RUN_COLUMNS.index("created_at")] is None:
            values[RUN_COLUMNS.index("created_at")] = now_utc()
        connection.execute(
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
            values,
        )

    def begin_promotion(
        self,
        ticker: str,
        version: str,
        reason: str,
        previous_pointer: bytes | None,
        run: RunRecord,
    ) -> int:
        """Commit the intent to point ``ticker``'s champion at ``version``; return its id.

        ``previous_pointer`` is the pointer file as it was (None: no champion) and
        ``run`` the run that decided the move. Call before moving the pointer;
        :meth:`finish_promotion` deletes the row in the run's own transaction.
        """
        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO promotions (ticker, version, reason, previous_pointer, run, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (ticker, version, reason, previous_pointer, json.dumps(run.to_dict()), now_utc()),
            )
            return int(cursor.lastrowid)

    @staticmethod
    def finish_promotion(connection: sqlite3.Connection, intent: int) -> None:
        """Delete a promotion intent inside the transaction that commits its run."""
        connection.execute("DELETE FROM promotions WHERE id = ?", (intent,))

    def drop_promotion(self, intent: int) -> None:
        """Delete a promotion intent in its own transaction (the move was undone)."""
        with self.transaction() as connection:
            self.finish_promotion(connection, intent)

    def pending_promotions(self) -> list[dict[str, Any]]:
        """Promotion intents whose run never committed, oldest first."""
        with self._reading() as connection:
            if connection is None:
                return []
            rows = connection.execute("SELECT * FROM promotions ORDER BY id").fetchall()
        return [dict(row) for row in rows]

    def record_forecast(self, row: dict[str, Any]) -> bool:
        """Insert one forecast in its own transaction; True when a row was added."""
        with self.transaction() as connection:
            return self.insert_forecast(connection, row)

    def record_run(self, row: RunRecord | Mapping[str, Any]) -> None:
        """Append one run record in its own transaction."""
        with self.transaction() as connection:
            self.insert_run(connection, row)

    # --- reading ----------------------------------------------------------

    def completed_run(self, ticker: str, fingerprint: str) -> dict[str, Any] | None:
        """The latest completed run of ``ticker`` on data with ``fingerprint``, if any."""
        with self._reading() as connection:
            if connection is None:
                return None
            row = connection.execute(
                "SELECT * FROM runs WHERE ticker = ? AND fingerprint = ? AND status = 'ok' "
                "ORDER BY id DESC LIMIT 1",
                (ticker, fingerprint),
            ).fetchone()
        return dict(row) if row is not None else None

    def runs(self, ticker: str | None = None) -> list[dict[str, Any]]:
        """Run records, oldest first (all tickers when ``ticker`` is None)."""
        with self._reading() as connection:
            if connection is None:
                return []
            where, params = ("WHERE ticker = ?", (ticker,)) if ticker else ("", ())
            rows = connection.execute(f"SELECT * FROM runs {where} ORDER BY id", params)
            return [dict(row) for row in rows.fetchall()]

    def forecasts(self, ticker: str | None = None) -> list[dict[str, Any]]:
        """Issued forecasts ordered by ticker, origin, horizon and creation."""
        with self._reading() as connection:
            if connection is None:
                return []
            where, params = ("WHERE ticker = ?", (ticker,)) if ticker else ("", ())
            rows = connection.execute(
                f"SELECT * FROM forecasts {where} "
                "ORDER BY ticker, origin, horizon, created_at, model_version",
                params,
            )
            return [dict(row) for row in rows.fetchall()]


# --- scoring -----------------------------------------------------------------


def realized_variance(
    prices: pd.DataFrame, origin: str, horizon: int, estimator: str, window: int
) -> float | None:
    """Mean daily variance over the ``horizon`` trading days after ``origin``.

    Same definition as the training target (DESIGN.md §2) with the issuing
    model's estimator; None while those days are not all in ``prices`` or the
    origin is not a date of ``prices``.
    """
    variance = daily_variance(prices, estimator, window).variance
    position = variance.index.get_indexer([pd.Timestamp(origin)])[0]
    if position < 0 or position + horizon >= len(variance):
        return None
    value = float(variance.iloc[position + 1 : position + 1 + horizon].mean())
    return value if math.isfinite(value) else None


@dataclass
class TickerHistory:
    """One ticker's issued forecasts with what has since been realized."""

    ticker: str
    forecasts: list[dict[str, Any]] = field(default_factory=list)

    def realized(self) -> list[dict[str, Any]]:
        return [row for row in self.forecasts if row["realized_var"] is not None]

    def score(self) -> dict[str, Any]:
        """Metrics over the realized forecasts (targets floored like training targets).

        ``n`` realized rows, ``qlike``, ``mse`` (daily variance), ``mae_vol`` and
        ``bias`` (annualized vol, forecast minus realized); metric values are
        None when nothing has been realized yet.
        """
        rows = self.realized()
        result: dict[str, Any] = {
            "n": len(rows),
            "n_pending": len(self.forecasts) - len(rows),
            "qlike": None,
            "mse": None,
            "mae_vol": None,
            "bias": None,
        }
        if not rows:
            return result
        target = np.maximum(np.array([row["realized_var"] for row in rows]), VARIANCE_FLOOR)
        forecast = np.array([row["variance"] for row in rows])
        result.update(
            qlike=metrics.qlike(target, forecast),
            mse=metrics.mse(target, forecast),
            mae_vol=metrics.mae_vol(target, forecast),
            bias=metrics.bias(target, forecast),
        )
        return result

    def to_dict(self, with_score: bool = False) -> dict[str, Any]:
        """JSON-safe ``{"ticker", "forecasts": [...], "score": {...}}`` (score optional)."""
        keys = (
            "origin",
            "horizon",
            "model_version",
            "init",
            "estimator",
            "variance",
            "vol",
            "created_at",
            "realized_var",
        )
        payload: dict[str, Any] = {
            "ticker": self.ticker,
            "forecasts": [{key: row[key] for key in keys} for row in self.forecasts],
        }
        if with_score:
            payload["score"] = self.score()
        return payload


def load_history(
    db_path: str | Path, prices_dir: str | Path, ticker: str | None = None
) -> list[TickerHistory]:
    """Issued forecasts per ticker with ``realized_var`` from the price cache.

    Parameters
    ----------
    db_path : path
        The forecast history (``Settings.forecasts_db``).
    prices_dir : path
        The price cache (``Settings.prices_dir``); never fetched from a vendor.
    ticker : str, optional
        Only this ticker (an empty list when it has no forecasts).
    """
    history = ForecastHistory(db_path)
    rows = history.forecasts(ticker)
    store = PriceStore(Path(prices_dir))
    caches: dict[tuple[str, str], pd.DataFrame | None] = {}
    by_ticker: dict[str, TickerHistory] = {}
    for row in rows:
        key = (row["ticker"], row["source"])
        if key not in caches:
            entry = store.read(*key)
            caches[key] = entry.prices if entry is not None else None
        prices = caches[key]
        row["realized_var"] = (
            None
            if prices is None
            else realized_variance(
                prices, row["origin"], row["horizon"], row["estimator"], row["estimator_window"]
            )
        )
        by_ticker.setdefault(row["ticker"], TickerHistory(row["ticker"])).forecasts.append(row)
    return list(by_ticker.values())
