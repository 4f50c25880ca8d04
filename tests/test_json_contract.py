"""The JSON contract: one shape per command, whatever the ticker count, checked by its schema.

Most commands' payloads are also checked where their numbers are tested
(``tests.contract.checked``); here: the schemas themselves, ``train`` and
``fetch --format json``, and the README's examples.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from forecaster.cli.schemas import SCHEMAS, schema_id, validate
from tests.conftest import make_prices, write_csv
from tests.contract import checked

README = Path(__file__).resolve().parent.parent / "README.md"
TINY = ["--units", "4", "--lookback", "10", "--context", "42", "--epochs", "2", "--patience", "1"]
TINY += ["--ensemble", "1"]


def test_the_validator_rejects_the_old_shapes():
    """The schemas can fail: yesterday's one-ticker object and bare list are refused."""
    one_ticker = {"ticker": "SPY", "model_version": "v", "horizon": 1}
    assert validate(one_ticker, SCHEMAS["evaluate"])  # no schema/results keys
    assert validate([one_ticker], SCHEMAS["predict"]) == ["$: expected object, got list"]
    history = {"schema": schema_id("history"), "tickers": [{"ticker": "SPY", "forecasts": []}]}
    assert validate(history, SCHEMAS["history"]) == ["$.tickers[0]: missing key 'score'"]
    history["tickers"][0]["score"] = None
    assert validate(history, SCHEMAS["history"]) == []
    history["schema"] = "forecaster.history/0"
    assert validate(history, SCHEMAS["history"])
    bad_row = {"schema": schema_id("predict"), "forecasts": [{"ticker": "SPY"}], "failed": []}
    assert any("missing key 'vol'" in error for error in validate(bad_row, SCHEMAS["predict"]))


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "prices.csv"
    write_csv(path, make_prices(420, seed=3))
    return str(path)


def test_fetch_json_is_one_record_in_a_list(run, csv_file, home):
    args = ("fetch", "--ticker", "TEST", "--source", "csv", "--csv", csv_file, "--format", "json")
    result = run(*args)
    assert result.exit_code == 0, result.output
    payload = checked(result.stdout, "fetch")
    (record,) = payload["tickers"]
    assert payload["skipped"] == []
    assert record["ticker"] == "TEST" and record["rows"] == 420 and record["source"] == "csv"
    assert record["from_cache"] is False and record["added"] == 420
    assert Path(record["cache"]).resolve() == (home / "data" / "prices" / "TEST.csv.parquet")
    again = checked(run(*args).stdout, "fetch")["tickers"][0]
    assert again["from_cache"] is False and again["added"] == 0  # a CSV is re-read, nothing new


def test_train_json_has_version_split_metrics_and_timings(run, csv_file, home):
    result = run(
        "train", "--ticker", "TEST", "--source", "csv", "--csv", csv_file, *TINY,
        "--format", "json",
    )
    assert result.exit_code == 0, result.output
    payload = checked(result.stdout, "train")
    version = payload["version"]
    assert payload["tickers"] == ["TEST"] and payload["champion"] is True
    meta = json.loads((home / "models" / "TEST" / version / "meta.json").read_text())
    (series,) = payload["series"]
    assert series["split"] == meta["split"]
    assert series["validation"] == meta["metrics"]["validation"]
    listed = home / "models.json"
    assert run("models", "list", "--format", "json", "-o", str(listed)).stdout == ""
    assert [row["version"] for row in json.loads(listed.read_text())] == [version]
    table = home / "forecast.txt"
    forecast = run("predict", "--ticker", "TEST", "--source", "csv", "--csv", csv_file,
                   "-o", str(table))
    assert forecast.exit_code == 0, forecast.output
    text = table.read_text()
    assert text.startswith("TEST as of ") and text.endswith("\n") and text.count("\n") == 3
    timings = payload["timings"]
    assert 0 <= timings["load_seconds"] <= timings["total_seconds"]
    assert timings["fit_seconds"] >= payload["training"]["seconds"] > 0
def _readme_examples() -> dict[str, str]:
    """The JSON after each ``$ forecast COMMAND ... --format json`` in the README's section."""
    text = README.read_text()
    section = text.split("## Machine-readable output", 1)[1].split("\n## ", 1)[0]
    found = {}
    for command, body in re.findall(
        r"```console\n\$ forecast (\w+) [^\n]*--format json[^\n]*\n(.*?)```", section, re.S
    ):
        found[command] = body
    return found


def test_the_readme_has_a_valid_example_for_every_command():
    examples = _readme_examples()
    assert set(examples) == set(SCHEMAS)
    for command, body in examples.items():
        checked(body, command)
