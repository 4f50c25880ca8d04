"""RunRecord: one definition of a run's fields for the report, RUN_COLUMNS and the runs table.

The legacy literals below are copied from forecaster/jobs/history.py and nightly.py
as they were before RunRecord (commit 3477f2c): a history file written by that
code must still open and take new runs, and the report keeps its keys and order.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from forecaster.jobs.history import RUN_COLUMNS, ForecastHistory
from forecaster.jobs.record import RunRecord

LEGACY_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticker TEXT NOT NULL,
    as_of TEXT,
    data_end TEXT,
    fingerprint TEXT,
    status TEXT NOT NULL,
    decision TEXT,
    challenger_version TEXT,
    champion_version TEXT,
    previous_champion TEXT,
    challenger_qlike REAL,
    champion_qlike REAL,
    challenger_bias REAL,
    champion_bias REAL,
    window_start TEXT,
    window_end TEXT,
    window_rows INTEGER,
    horizon INTEGER,
    origin TEXT,
    variance REAL,
    vol REAL,
    error TEXT,
    seconds REAL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_data ON runs (ticker, fingerprint, status);
"""

LEGACY_RECORD_KEYS = (
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
    "risk",  # added at the end (report only): the issued forecast's VaR/ES
    "worker",  # added at the end (report only): the Dask worker that ran the task
    "dm_stat",  # added at the end (schema 4): the promotion test's statistic,
    "dm_pvalue",  # its one-sided p-value
    "decision_reason",  # and why the champion was kept or replaced
)


def completed_record(**changes) -> RunRecord:
    values = {
        "ticker": "SPY",
        "status": "ok",
        "decision": "promoted",
        "as_of": "2018-06-01",
        "source": "sample",
        "data_end": "2018-06-01",
        "rows": 4880,
        "rows_added": 1,
        "fingerprint": "abc123",
        "previous_champion": "20261125T021530-encoder-a1b2c3",
        "champion_version": "20261126T021530-encoder-d4e5f6",
        "challenger_version": "20261126T021530-encoder-d4e5f6",
        "challenger_qlike": 0.25,
        "champion_qlike": 0.5,
        "challenger_bias": -0.01,
        "champion_bias": 0.02,
        "champion_saw_window": False,
        "window_start": "2018-03-01",
        "window_end": "2018-05-31",
        "window_rows": 63,
        "origin": "2018-06-01",
        "horizon": 1,
        "variance": 1e-4,
        "vol": 0.15874507866387544,
        "error": None,
        "traceback": None,
        "seconds": 12.5,
    }
    return RunRecord(**{**values, **changes})


def legacy_history(path) -> None:
    """A history file as the code before RunRecord wrote it, with one run in it."""
    connection = sqlite3.connect(path)
    connection.executescript(LEGACY_SCHEMA)
    connection.execute("PRAGMA user_version = 1")
    connection.execute(
        "INSERT INTO runs (ticker, fingerprint, status, decision, window_rows, created_at) "
        "VALUES ('SPY', 'old', 'ok', 'first', 63, '2018-05-31T22:00:00+00:00')"
    )
    connection.commit()
    connection.close()


def table_info(path) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA table_info(runs)").fetchall()
    finally:
        connection.close()


def test_record_keys_and_order_are_the_reports():
    record = RunRecord(ticker="SPY", status="failed")
    assert tuple(record.to_dict()) == LEGACY_RECORD_KEYS
    assert record.to_dict() == dict.fromkeys(LEGACY_RECORD_KEYS) | {
        "ticker": "SPY",
        "status": "failed",
    }
    assert json.loads(json.dumps(completed_record().to_dict())) == completed_record().to_dict()


def test_runs_table_is_derived_with_the_legacy_columns_and_types(tmp_path):
    legacy, fresh = tmp_path / "legacy.sqlite", tmp_path / "fresh.sqlite"
    legacy_history(legacy)
    ForecastHistory(fresh).record_run(completed_record())
    before = table_info(legacy)
    assert table_info(fresh)[: len(before)] == before  # names, order, types, NOT NULL, key
    ForecastHistory(legacy).runs()  # opening it adds the schema-4 columns at the end
    assert table_info(fresh) == table_info(legacy)
    assert [row[1] for row in table_info(fresh)[len(before) :]] == [
        "dm_stat",
        "dm_pvalue",
        "decision_reason",
    ]
    assert RUN_COLUMNS == tuple(row[1] for row in table_info(legacy))[1:]  # all but id


def test_a_legacy_history_file_opens_and_takes_new_runs(tmp_path):
    path = tmp_path / "forecasts.sqlite"
    legacy_history(path)
    history = ForecastHistory(path)
    record = completed_record(fingerprint="new", traceback="not stored")

    history.record_run(record)
    old, new = history.runs("SPY")
    assert old["fingerprint"] == "old" and old["decision"] == "first"
    assert list(new) == ["id", *RUN_COLUMNS]
    stored = {key: value for key, value in record.to_dict().items() if key in RUN_COLUMNS}
    assert {key: new[key] for key in stored} == stored
    assert new["created_at"] is not None
    assert history.completed_run("SPY", "new")["id"] == new["id"]


def test_a_run_row_may_still_be_a_partial_dict(tmp_path):
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    history.record_run({"ticker": "SPY", "status": "failed", "error": "x"})
    (run,) = history.runs()
    assert (run["status"], run["error"], run["decision"]) == ("failed", "x", None)


def test_the_table_refuses_a_run_without_ticker_or_status(tmp_path):
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL constraint failed: runs.status"):
        history.record_run(completed_record(status=None))
