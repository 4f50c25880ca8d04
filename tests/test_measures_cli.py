"""The CLI on files of precomputed measures: one error line, and the whole chain works."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LIBRARY = SHARED / "realized_library.parquet"
needs_shared = pytest.mark.skipif(not LIBRARY.exists(), reason="../shared/data not present")
CLI_TINY = ["--units", "4", "--lookback", "10", "--context", "42", "--epochs", "2",
            "--ensemble", "1", "--patience", "1", "--threads", "1"]


def excerpt(tmp_path: Path, symbols=(".SPX", ".FTSE", ".N225"), rows: int = 420) -> Path:
    table = pd.read_parquet(LIBRARY)
    table = table[table["symbol"].isin(symbols)].groupby("symbol").tail(rows)
    path = tmp_path / "library.parquet"
    table.to_parquet(path)
    return path


@needs_shared
def test_a_measure_the_panel_lacks_is_one_error_line_and_nothing_cached(run, home, tmp_path):
    path = excerpt(tmp_path)
    result = run("realized", "--panel", str(path), "--ticker", "SPX", "--estimator", "bv")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the source provides no OHLC prices")
    assert "--estimator rv5" in lines[0]
    assert not (home / "data" / "prices").exists() or not list((home / "data" / "prices").iterdir())
    # The default estimator (garman-klass) needs OHLC: the same error, naming what to pass.
    result = run("train", "--panel", str(path), "--ticker", "SPX", *CLI_TINY)
    assert result.exit_code == 1 and "pass --estimator rv5" in result.stderr


@needs_shared
def test_realized_reads_a_measure_in_any_case(run, tmp_path):
    path = excerpt(tmp_path)
    result = run("realized", "--panel", str(path), "--ticker", "SPX", "--estimator", "RV5",
                 "--daily", "--format", "csv", "--last", "2")
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(path)
    expected = table[table["symbol"] == ".SPX"].tail(2)
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "date,rv5" and len(lines) == 3
    for line, row in zip(lines[1:], expected.itertuples(), strict=True):
        day, value = line.split(",")
        assert day == str(row.date) and float(value) == pytest.approx(row.rv5, rel=1e-10)


@pytest.mark.slow
@needs_shared
def test_pooled_training_over_indices_then_evaluate_and_predict(run, tmp_path):
    path = excerpt(tmp_path)
    result = run("train", "--panel", str(path), "--tickers", "all", "--estimator", "rv5",
                 "--test-start", "2020-06-01", *CLI_TINY)
    assert result.exit_code == 0, result.output
    assert "champion of FTSE, N225, SPX" in result.stdout
    result = run("evaluate", "--panel", str(path), "--ticker", "SPX", "--baselines",
                 "har,garch,gbm", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    text = json.dumps(report)
    assert '"rv5"' in text and '"har"' in text and '"garch"' in text
    result = run("predict", "--panel", str(path), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(row["ticker"] for row in rows) == ["FTSE", "N225", "SPX"]
    result = run("nightly", "--panel", str(path), "--tickers", "SPX", "--keep", "all")
    assert result.exit_code == 0, result.output
    result = run("history", "--ticker", "SPX", "--score")
    assert result.exit_code == 0, result.output


BARS = SHARED / "intraday" / "spy_5min_2018_2020.parquet"


@pytest.mark.slow
@pytest.mark.skipif(not BARS.exists(), reason="../shared/data not present")
def test_bar_measures_train_and_evaluate_with_harq(run, tmp_path):
    """bars -> daily measures CSV -> train on rv5 -> evaluate: harq joins the table."""
    daily = tmp_path / "spy_daily.csv"
    result = run("realized", "--bars", str(BARS), "--format", "csv", "-o", str(daily))
    assert result.exit_code == 0, result.output
    source = ("--ticker", "SPYB", "--source", "csv", "--csv", str(daily))
    result = run("train", *source, "--estimator", "rv5", "--test-start", "2020-06-01", *CLI_TINY)
    assert result.exit_code == 0, result.output
    assert "note: SPYB: 63 partial day(s) dropped" in result.stderr
    result = run("evaluate", *source, "--baselines", "har,harq", "--format", "json")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert '"harq"' in text and "harq left out" not in result.stderr
    # The same model on a source without quarticity: harq is left out with the note.
    frame = pd.read_csv(daily).drop(columns=["rq"])
    frame.to_csv(tmp_path / "no_rq.csv", index=False)
    result = run("evaluate", "--ticker", "SPYB", "--source", "csv", "--csv",
                 str(tmp_path / "no_rq.csv"), "--baselines", "har,harq")
    assert result.exit_code == 0, result.output
    assert "harq left out: it needs the realized quarticity rq" in result.output
