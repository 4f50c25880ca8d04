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
``forecast_risk``
    The VaR and ES of an issued forecast (:func:`forecaster.evaluation.risk.forecast_risk`),
    one row per level, written in the transaction that writes the forecast row.
    When the return distribution could not be fit, one row with a null level,
    VaR and ES and the ``reason`` instead (never NaN).

Scoring is the live track record, not a backtest: a forecast made at the
close of ``origin`` for horizon h is realized once the price cache holds the
h trading days after the origin; its ``realized_var`` is the mean daily
variance over those days (the model's estimator), null until then, and its
``realized_return`` the h-day log close-to-close return over the same days,
against which the stored VaR is judged (:meth:`TickerHistory.risk_score`).
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
from forecaster.data.volatility import VARIANCE_FLOOR, daily_variance, log_returns
from forecaster.errors import DataError, ModelError
from forecaster.jobs.record import RunRecord, stored_fields

#: 1: forecasts and runs; 2: + promotions (the write-ahead log of champion moves);
#: 3: + forecast_risk (VaR/ES of each issued forecast). An older file gets the new
#: tables when it is first opened; its rows are untouched. 4: + the promotion test in
#: ``runs`` (``dm_stat``, ``dm_pvalue``, ``decision_reason``; null in older rows).
SCHEMA_VERSION = 4
#: Columns added to ``runs`` after ``created_at`` (an older file gets them by ALTER TABLE,
#: which appends; a new file puts them in the same place, so both have one layout).
_ADDED_RUN_COLUMNS = ("dm_stat", "dm_pvalue", "decision_reason")

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


_BASE_RUN_FIELDS = [(n, h) for n, h in stored_fields() if n not in _ADDED_RUN_COLUMNS]
_ADDED_RUN_FIELDS = [(n, h) for n, h in stored_fields() if n in _ADDED_RUN_COLUMNS]
#: The ``runs`` columns: the stored fields of :class:`RunRecord`, the row's write time, then
#: the fields added later (schema 4).
RUN_COLUMNS = (
    *(name for name, _ in _BASE_RUN_FIELDS),
    "created_at",
    *(name for name, _ in _ADDED_RUN_FIELDS),
)
_RUNS_TABLE = (
    "CREATE TABLE IF NOT EXISTS runs (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    + "".join(f"    {_column_sql(name, hint)},\n" for name, hint in _BASE_RUN_FIELDS)
    + "    created_at TEXT NOT NULL"
    + "".join(f",\n    {_column_sql(name, hint)}" for name, hint in _ADDED_RUN_FIELDS)
    + "\n);\n"
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
_RISK_TABLE = """
CREATE TABLE IF NOT EXISTS forecast_risk (
    ticker TEXT NOT NULL,
    origin TEXT NOT NULL,
    horizon INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    distribution TEXT NOT NULL,
    level REAL,
    var REAL,
    es REAL,
    reason TEXT,
    fit_n INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS forecast_risk_by_forecast
    ON forecast_risk (ticker, origin, horizon, model_version);
"""
RISK_COLUMNS = (
    "ticker",
    "origin",
    "horizon",
    "model_version",
    "distribution",
    "level",
    "var",
    "es",
    "reason",
    "fit_n",
    "created_at",
)
_SCHEMA = _FORECASTS_TABLE + _RUNS_TABLE + _PROMOTIONS_TABLE + _RISK_TABLE


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
                present = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
                for name, hint in _ADDED_RUN_FIELDS:
                    if name not in present:
                        connection.execute(f"ALTER TABLE runs ADD COLUMN {_column_sql(name, hint)}")
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
    def insert_risk(
        connection: sqlite3.Connection, forecast: Mapping[str, Any], risk: Mapping[str, Any]
    ) -> None:
        """Store the VaR/ES of one forecast (``risk``: a :func:`risk.forecast_risk` payload).

        One row per level; when ``risk["levels"]`` is None, one row with null
        level, VaR and ES and ``risk["reason"]``. Call in the transaction that
        inserted the forecast row, and only if it was inserted.

        Raises
        ------
        ModelError
            A VaR or ES is not a finite negative number: nothing is stored.
        """
        key = [forecast[name] for name in ("ticker", "origin", "horizon", "model_version")]
        created = now_utc()
        fit_n = (risk.get("fit") or {}).get("n")
        rows = []
        if risk.get("levels") is None:
            reason = risk.get("reason") or "no VaR was computed"
            rows.append([*key, risk["distribution"], None, None, None, reason, fit_n, created])
        else:
            for level, values in risk["levels"].items():
                for name in ("var", "es"):
                    value = values.get(name)
                    if not (isinstance(value, (int, float)) and math.isfinite(value)):
                        raise ModelError(
                            f"{name} at level {level} of the forecast of {key[0]} by {key[3]} "
                            f"at {key[1]} is {value!r}; expected a finite number (nothing "
                            "was recorded)"
                        )
                rows.append(
                    [
                        *key,
                        risk["distribution"],
                        float(level),
                        float(values["var"]),
                        float(values["es"]),
                        None,
                        fit_n,
                        created,
                    ]
                )
        connection.executemany(
            f"INSERT INTO forecast_risk ({', '.join(RISK_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(RISK_COLUMNS))})",
            rows,
        )

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

    def risks(self, ticker: str | None = None) -> list[dict[str, Any]]:
        """Stored VaR/ES rows ordered by ticker, origin and level (null-level rows first)."""
        with self._reading() as connection:
            if connection is None:
                return []
            where, params = ("WHERE ticker = ?", (ticker,)) if ticker else ("", ())
            rows = connection.execute(
                f"SELECT * FROM forecast_risk {where} "
                "ORDER BY ticker, origin, horizon, model_version, level",
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


def realized_return(prices: pd.DataFrame, origin: str, horizon: int) -> float | None:
    """h-day log close-to-close return ``r_{t+1} + ... + r_{t+h}`` after ``origin``.

    The return a VaR of the forecast made at ``origin`` is judged against; None
    while those days are not all in ``prices`` or the origin is not a date of
    ``prices``.
    """
    from forecaster.evaluation.risk import horizon_returns

    position = prices.index.get_indexer([pd.Timestamp(origin)])[0]
    if position < 0:
        return None
    returns = log_returns(prices).to_numpy(dtype=np.float64)  # ret of a file of measures
    value = float(horizon_returns(returns, [position], horizon)[0])
    return value if math.isfinite(value) else None


#: Why a forecast has no VaR row (issued before schema 3, or recorded without one).
NOT_STORED = "no VaR was stored with this forecast (issued before the history stored VaR)"


def forecast_risk_payload(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One forecast's stored VaR/ES rows as ``{"distribution", "levels", "reason"}``.

    ``levels`` is ``{level_key: {"var", "es"}}`` or None (then ``reason`` says
    why); None when nothing was stored for the forecast.
    """
    from forecaster.evaluation.risk import level_key

    if not rows:
        return None
    levels = {
        level_key(row["level"]): {"var": row["var"], "es": row["es"]}
        for row in rows
        if row["level"] is not None
    }
    reasons = [row["reason"] for row in rows if row["level"] is None]
    return {
        "distribution": rows[0]["distribution"],
        "levels": levels or None,
        "reason": reasons[0] if reasons and not levels else None,
    }


def _tested(positions: list[int], horizons: list[int]) -> np.ndarray:
    """Rows (sorted by origin) whose h-day returns do not overlap an earlier tested one."""
    chosen: list[int] = []
    free_from = -1
    for index, (position, horizon) in enumerate(zip(positions, horizons, strict=True)):
        if position >= free_from:
            chosen.append(index)
            free_from = position + horizon
    return np.array(chosen, dtype=np.int64)


def _level_score(level: float, entries: list[tuple[dict[str, Any], float]]) -> dict[str, Any]:
    """Breaches, Kupiec and (at the Basel level) the traffic light of one level's live VaR."""
    from forecaster.evaluation import risk as risks

    realized = [(row, var) for row, var in entries if row["realized_return"] is not None]
    entry: dict[str, Any] = {
        "level": level,
        "n": len(realized),
        "n_pending": len(entries) - len(realized),
        "breaches": None,
        "breach_rate": None,
        "n_tested": 0,
        "kupiec": None,
        "traffic_light": None,
        "unavailable": {},
    }
    reasons = entry["unavailable"]
    if not realized:
        reason = "not enough data: no forecast with a stored VaR at this level is realized yet"
        for key in ("breaches", "breach_rate", "kupiec", "traffic_light"):
            reasons[key] = reason
        return entry
    returns = np.array([row["realized_return"] for row, _ in realized])
    var = np.array([value for _, value in realized])
    hits = risks.breaches(returns, var)
    entry["breaches"] = int(hits.sum())
    entry["breach_rate"] = float(hits.mean())
    # For h > 1 consecutive h-day returns overlap: the tests use non-overlapping ones.
    tested = _tested(
        [row["position"] for row, _ in realized], [row["horizon"] for row, _ in realized]
    )
    entry["n_tested"] = int(tested.size)
    try:
        entry["kupiec"] = risks.kupiec(hits[tested], level)
    except risks.Unavailable as exc:
        reasons["kupiec"] = str(exc)
    if not math.isclose(level, risks.BASEL_LEVEL):
        reasons["traffic_light"] = f"defined for the {risks.BASEL_LEVEL:g} level (99% VaR) only"
        return entry
    dates = [pd.Timestamp(realized[index][0]["origin"]) for index in tested]
    try:
        light = risks.traffic_light(hits[tested], dates)
    except risks.Unavailable as exc:
        reasons["traffic_light"] = str(exc)
    else:
        latest = light["windows"][-1]
        entry["traffic_light"] = {"window": light["window"], **latest}
    return entry


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
            "risk": self.risk_score(),
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

    def risk_score(self) -> dict[str, Any]:
        """The live backtest of the stored VaR, per level.

        Each forecast's VaR is judged against its ``realized_return`` (a breach
        is ``R <= VaR``); one forecast per origin (the latest issued) counts.
        Per level (keyed like ``"0.01"``): ``n`` realized, ``n_pending``,
        ``breaches`` and ``breach_rate`` over all of them; ``n_tested``
        non-overlapping ones (every origin for h = 1) for ``kupiec``
        (``{"stat", "p_value"}``, needs ``n_tested * level >= 2``) and, at the
        0.01 level, ``traffic_light`` (the Basel zone of the last 250 tested
        days: ``{"window", "start", "end", "breaches", "zone"}``). A statistic
        that cannot be computed is None with its reason in ``unavailable``.
        ``n_without_var`` counts forecasts stored without a VaR, ``reason``
        says why for the latest of them.
        """
        from forecaster.evaluation.risk import level_key

        latest: dict[str, dict[str, Any]] = {}
        for row in self.forecasts:
            latest[row["origin"]] = row  # ordered by creation within an origin
        by_level: dict[float, list[tuple[dict[str, Any], float]]] = {}
        distributions: list[str] = []
        without, reason = 0, None
        for origin in sorted(latest):
            row = latest[origin]
            stored = row.get("risk_rows") or []
            valued = [risk for risk in stored if risk["level"] is not None]
            if not valued:
                without += 1
                reason = stored[0]["reason"] if stored else NOT_STORED
                continue
            for risk in valued:
                by_level.setdefault(float(risk["level"]), []).append((row, float(risk["var"])))
                if risk["distribution"] not in distributions:
                    distributions.append(risk["distribution"])
        return {
            "return": "log close-to-close return over the h trading days after the origin",
            "distributions": distributions,
            "n_without_var": without,
            "reason": reason,
            "levels": {
                level_key(level): _level_score(level, by_level[level]) for level in sorted(by_level)
            },
        }

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
            "realized_return",
        )
        payload: dict[str, Any] = {
            "ticker": self.ticker,
            "forecasts": [
                {
                    **{key: row.get(key) for key in keys},
                    "risk": forecast_risk_payload(row.get("risk_rows") or []),
                }
                for row in self.forecasts
            ],
        }
        if with_score:
            payload["score"] = self.score()
        return payload


def load_history(
    db_path: str | Path,
    prices_dir: str | Path,
    ticker: str | None = None,
    as_of: str | None = None,
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
    as_of : str, optional
        ``YYYY-MM-DD``: the history as it stood at that close — forecasts with
        a later origin are left out and prices after it are not used, so
        nothing is realized that was not realized by then.
    """
    history = ForecastHistory(db_path)
    rows = history.forecasts(ticker)
    if as_of is not None:
        rows = [row for row in rows if row["origin"] <= as_of]
    stored: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for risk in history.risks(ticker):
        key = tuple(risk[name] for name in ("ticker", "origin", "horizon", "model_version"))
        stored.setdefault(key, []).append(risk)
    store = PriceStore(Path(prices_dir))
    caches: dict[tuple[str, str], pd.DataFrame | None] = {}
    by_ticker: dict[str, TickerHistory] = {}
    for row in rows:
        key = (row["ticker"], row["source"])
        if key not in caches:
            entry = store.read(*key)
            prices = entry.prices if entry is not None else None
            if prices is not None and as_of is not None:
                prices = prices.loc[: pd.Timestamp(as_of)]
            caches[key] = prices
        prices = caches[key]
        row["realized_var"] = (
            None
            if prices is None
            else realized_variance(
                prices, row["origin"], row["horizon"], row["estimator"], row["estimator_window"]
            )
        )
        row["realized_return"] = (
            None if prices is None else realized_return(prices, row["origin"], row["horizon"])
        )
        row["position"] = (
            None
            if prices is None
            else int(prices.index.get_indexer([pd.Timestamp(row["origin"])])[0])
        )
        key = tuple(row[name] for name in ("ticker", "origin", "horizon", "model_version"))
        row["risk_rows"] = stored.get(key, [])
        by_ticker.setdefault(row["ticker"], TickerHistory(row["ticker"])).forecasts.append(row)
    return list(by_ticker.values())
