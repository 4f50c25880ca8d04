"""``forecast predict`` for many tickers (--tickers, --all) and without TensorFlow."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from forecaster.data.loader import PriceData
from forecaster.models.lstm_forecaster import train
from forecaster.models.registry import ModelRegistry
from tests.conftest import TINY, make_prices, run_cli, write_csv
from tests.contract import checked

pytestmark = pytest.mark.usefixtures("tf_configured")
SEEDS = {"AAA": 21, "BBB": 22}


@pytest.fixture(scope="module")
def tf_configured():
    from forecaster.models.training import configure_tensorflow

    configure_tensorflow(threads=1, seed=0)


@pytest.fixture(scope="module")
def batch_home(tmp_path_factory):
    """A home with tiny champions for AAA (zeros) and BBB (stateful) and their CSVs."""
    home = tmp_path_factory.mktemp("home")
    prices_dir = home / "prices"
    prices_dir.mkdir()
    registry = ModelRegistry(home / "models")
    for (ticker, seed), init in zip(SEEDS.items(), ("zeros", "stateful"), strict=True):
        prices = make_prices(420, seed)
        write_csv(prices_dir / f"{ticker}.csv", prices)
        data = PriceData(ticker=ticker, prices=prices, source="csv", description="test")
        train(data, TINY.replace(init=init), registry, threads=1)
    return home


def forecast(home, *args: str):
    return run_cli("--home", str(home), "predict", *args)


def one(home, ticker: str, *extra: str) -> dict:
    path = str(home / "prices" / f"{ticker}.csv")
    result = forecast(
        home, "--ticker", ticker, "--source", "csv", "--csv", path, "--format", "json", *extra
    )
    assert result.exit_code == 0, result.output
    (row,) = checked(result.stdout, "predict")["forecasts"]
    return row


def test_batch_formats_give_each_tickers_own_forecast(batch_home):
    csv_dir = str(batch_home / "prices")
    singles = {ticker: one(batch_home, ticker) for ticker in SEEDS}
    result = forecast(batch_home, "--tickers", "AAA,BBB", "--source", "csv", "--csv-dir", csv_dir)
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0].split()[:4] == ["ticker", "origin", "h", "vol"]
    assert [line.split()[0] for line in table[2:]] == ["AAA", "BBB"]
    assert all(line.rstrip().endswith("ok") for line in table[2:])

    lines = forecast(
        batch_home, "--all", "--source", "csv", "--csv-dir", csv_dir, "--format", "jsonl"
    ).stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["ticker"] for row in rows] == ["AAA", "BBB"]
    for row in rows:
        single = singles[row["ticker"]]
        assert row["status"] == "ok" and row["error"] is None and row["engine"] == "numpy"
        assert row == single  # one record shape, for one ticker or many
    document = checked(
        forecast(
            batch_home, "--all", "--source", "csv", "--csv-dir", csv_dir, "--format", "json"
        ).stdout,
        "predict",
    )
    assert document["forecasts"] == rows and document["failed"] == []

    target = batch_home / "out.csv"
    written = forecast(
        batch_home,
        "--all",
        "--source",
        "csv",
        "--csv-dir",
        csv_dir,
        "--format",
        "csv",
        "--output",
        str(target),
    )
    assert written.exit_code == 0 and written.stdout == ""
    parsed = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["ticker"] for row in parsed] == ["AAA", "BBB"]
    for row in parsed:
        single = singles[row["ticker"]]
        assert float(row["variance"]) == pytest.approx(single["variance"], rel=1e-12)
        assert float(row["var_0.01"]) == pytest.approx(
            single["risk"]["levels"]["0.01"]["var"], rel=1e-12
        )
        assert row["status"] == "ok" and row["error"] == ""


def test_one_failing_ticker_is_reported_and_the_others_still_forecast(batch_home, tmp_path):
    csv_dir = tmp_path / "prices"
    csv_dir.mkdir()
    write_csv(csv_dir / "AAA.csv", make_prices(420, SEEDS["AAA"]))  # BBB.csv is missing
    result = forecast(
        batch_home, "--all", "--source", "csv", "--csv-dir", str(csv_dir), "--format", "jsonl"
    )
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["ticker"], row["status"]) for row in rows] == [("AAA", "ok"), ("BBB", "error")]
    assert rows[1]["error"] == f"--csv-dir {csv_dir} has no BBB.csv; add the file or leave BBB out"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: 1 of 2 tickers failed (BBB); their rows say why — fix those and run again "
        "(the other forecasts were printed)"
    ]


def test_a_corrupt_model_fails_only_its_row(batch_home, tmp_path):
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(batch_home, home)
    version = ModelRegistry(home / "models").champion_id("BBB")
    (home / "models" / "BBB" / version / "model.keras").write_bytes(b"garbage")
    result = forecast(
        home, "--tickers", "BBB,AAA", "--source", "csv", "--csv-dir", str(home / "prices")
    )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()[2:]
    # the table cuts a long error cell (60 characters); the JSON lines keep all of it
    assert lines[0].startswith("BBB") and "error: model file" in lines[0]
    assert lines[1].startswith("AAA") and lines[1].rstrip().endswith("ok")
    result = forecast(
        home, "--tickers", "BBB,AAA", "--source", "csv", "--csv-dir", str(home / "prices"),
        "--format", "jsonl",
    )
    first = json.loads(result.stdout.splitlines()[0])
    assert first["status"] == "error" and "model.keras" in first["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ticker", "AAA", "--tickers", "AAA,BBB"], "--ticker and --tickers both choose"),
        (["--tickers", "AAA", "--all"], "--tickers and --all both choose"),
        (["--all", "--model", "v1"], "--model names one version"),
        (["--tickers", "AAA", "--csv", "x.csv"], "--csv reads one ticker; with --tickers use"),
        (["--all", "--source", "csv"], "needs --csv-dir DIR"),
        (["--ticker", "AAA", "--csv-dir", "."], "--csv-dir reads several tickers"),
        (["--all", "--source", "sample", "--csv-dir", "."], "use it with --source csv, not sample"),
    ],
)
def test_conflicting_options_are_one_error_line(batch_home, args, message):
    result = forecast(batch_home, *args)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr


def test_help_says_a_failed_ticker_means_exit_status_1(batch_home):
    text = " ".join(forecast(batch_home, "-h").stdout.split())
    assert "exits with status 1 at the end if any failed" in text
    assert "--tickers" in text and "--all" in text and "--engine" in text


@pytest.mark.slow
def test_single_ticker_predict_imports_no_tensorflow_and_matches_keras(batch_home):
    path = str(batch_home / "prices" / "BBB.csv")
    args = ["--home", str(batch_home), "predict", "--ticker", "BBB", "--source", "csv"]
    args += ["--csv", path, "--format", "json"]
    script = (
        "import json, sys\n"
        "from forecaster.cli import cli\n"
        "try:\n"
        f"    cli.main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        "    print(json.dumps(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *forecast_lines, imported = done.stdout.strip().splitlines()
    assert json.loads(imported) == []
    (fast,) = checked("\n".join(forecast_lines), "predict")["forecasts"]
    keras_path = one(batch_home, "BBB", "--engine", "keras")
    assert fast["variance"] == pytest.approx(keras_path["variance"], rel=1e-6, abs=0)
    # VaR/ES come from a t fit by an optimizer: its tolerance (not the network) limits agreement
    for key, values in keras_path["risk"]["levels"].items():
        assert fast["risk"]["levels"][key]["var"] == pytest.approx(values["var"], rel=1e-5)
        assert fast["risk"]["levels"][key]["es"] == pytest.approx(values["es"], rel=1e-5)


@pytest.mark.slow
def test_a_cached_risk_fit_gives_the_cold_output_without_importing_scipy_stats(
    batch_home, tmp_path
):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(batch_home, home)
    shutil.rmtree(home / "data" / "cache" / "risk", ignore_errors=True)
    cold = one(home, "AAA")  # fits the t distribution and caches the fit
    assert list((home / "data" / "cache" / "risk" / "AAA").glob("*.t.numpy.json"))
    path = str(home / "prices" / "AAA.csv")
    args = ["--home", str(home), "predict", "--ticker", "AAA", "--source", "csv"]
    args += ["--csv", path, "--format", "json"]
    heavy = ("scipy.stats", "scipy.optimize", "tensorflow")
    script = (
        "import json, sys\n"
        "from forecaster.cli import cli\n"
        "try:\n"
        f"    cli.main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        f"    print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *forecast_lines, imported = done.stdout.strip().splitlines()
    assert json.loads(imported) == []
    assert checked("\n".join(forecast_lines), "predict")["forecasts"] == [cold]
