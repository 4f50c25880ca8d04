"""The morning report tells the latest night's story (issue 20).

A back-dated run (``nightly --as-of`` an earlier night) is created last but must
not replace the latest night's decision; a report ``--as-of`` after the last
night says which night it has and that the history is stale. The history is
written directly, as in tests/jobs/test_morning.py (no model is trained).
"""

from __future__ import annotations

import pandas as pd

from forecaster.jobs.morning import build_report, latest_run, staleness
from tests.conftest import run_cli
from tests.jobs import test_morning
from tests.jobs.test_morning import _run

filled_home = test_morning.filled_home  # the fixtures, shared
filled = test_morning.filled


def _ticker(payload, name):
    return next(item for item in payload["tickers"] if item["ticker"] == name)


def test_a_back_dated_failed_run_does_not_hide_the_latest_night(filled):
    settings, prices, history, last = filled
    before = _ticker(build_report(settings), "SPY")["decision"]
    assert before["night"] == last and before["status"] == "ok"
    with history.transaction() as connection:  # created last, for a night long ago
        history.insert_run(
            connection, _run("SPY", "1800-01-01", status="failed", error="a mistaken backfill")
        )
    payload = build_report(settings)
    decision = _ticker(payload, "SPY")["decision"]
    assert decision == before  # still the latest night's promotion or keep
    assert "SPY" not in [item["ticker"] for item in payload["failures"]]


def test_the_latest_run_is_the_latest_nights_newest():
    runs = [
        {"as_of": "2018-02-09", "status": "ok", "n": 1},
        {"as_of": "2018-02-09", "status": "failed", "n": 2},  # the same night, run again
        {"as_of": "2018-01-02", "status": "failed", "n": 3},  # back-dated
    ]
    assert latest_run(runs)["n"] == 2
    assert latest_run([]) is None


def test_a_report_after_the_last_night_says_the_history_is_stale(filled, tmp_path):
    settings, prices, history, last = filled
    later = f"{pd.Timestamp(last) + pd.Timedelta(days=60):%Y-%m-%d}"
    payload = build_report(settings, later)
    assert payload["last_night"] == last
    assert payload["stale"]["last_night"] == last and payload["stale"]["weekdays"] > 30
    page = tmp_path / "page.html"
    result = run_cli("--home", str(settings.home), "report", "--as-of", later, "--html", str(page))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"warning: the forecast history is stale: its last night is {last}")
    text = page.read_text()
    assert 'id="stale"' in text and f"the last night is {last}" in text


def test_the_latest_night_is_not_stale(filled):
    settings, prices, history, last = filled
    payload = build_report(settings)
    assert payload["last_night"] == last and payload["stale"] is None


def test_a_weekend_after_a_friday_night_is_not_stale():
    assert staleness("2018-02-09", "2018-02-11") is None  # Friday -> Sunday
    assert staleness("2018-02-09", "2018-02-12")["weekdays"] == 1  # Monday passed
    assert staleness(None, "2018-02-12") is None
