"""train/predict end to end through the CLI on tiny models and small data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecaster.models.initial_state import available_strategies
from forecaster.models.lstm_forecaster import load_forecaster
from forecaster.models.registry import ModelRegistry
from tests.conftest import make_prices, write_csv
from tests.contract import checked

TINY = ["--units", "4", "--lookback", "10", "--context", "42", "--epochs", "2", "--patience", "1"]
TINY += ["--ensemble", "1"]


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "prices.csv"
    write_csv(path, make_prices(420, seed=3))
    return str(path)


def train(run, csv_file, *extra: str):
    result = run("train", "--ticker", "TEST", "--source", "csv", "--csv", csv_file, *TINY, *extra)
    assert result.exit_code == 0, result.output
    return result


def predict(run, csv_file, *extra: str) -> dict:
    result = run(
        "predict",
        "--ticker",
        "TEST",
        "--source",
        "csv",
        "--csv",
        csv_file,
        "--format",
        "json",
        *extra,
    )
    assert result.exit_code == 0, result.output
    (row,) = checked(result.stdout, "predict")["forecasts"]
    return row


@pytest.mark.parametrize("init", available_strategies())
def test_every_strategy_trains_and_predicts(run, csv_file, home, init):
    result = train(run, csv_file, "--init", init)
    assert "version:" in result.stdout and "(champion)" in result.stdout
    assert "validation: QLIKE" in result.stdout and "test 20" in result.stdout
    payload = predict(run, csv_file)
    assert set(payload) == {
        "ticker",
        "origin",
        "horizon",
        "vol",
        "variance",
        "model_version",
        "init",
        "risk",
        "status",
        "engine",
        "error",
    }
    assert payload["status"] == "ok" and payload["error"] is None
    assert payload["risk"]["reason"] is None and payload["risk"]["levels"]["0.01"]["var"] < 0
    assert payload["init"] == init and payload["horizon"] == 1
    assert payload["origin"] == make_prices(420, seed=3).index[-1].strftime("%Y-%m-%d")
    assert payload["vol"] == pytest.approx(np.sqrt(252 * payload["variance"]))
    meta = ModelRegistry(home / "models").champion("TEST").meta
    for key in (
        "format",
        "config",
        "network",
        "scaler",
        "bias_correction",
        "split",
        "data",
        "objective",
        "metrics",
        "training",
        "package_version",
    ):
        assert key in meta
    assert meta["config"]["init"] == init and meta["config"]["horizon"] == 1
    assert "init" not in meta and "horizon" not in meta  # every fact once
    assert meta["data"]["fingerprint"] and meta["split"]["test_end"] <= meta["data"]["end"]


def test_same_seed_same_forecast_and_no_promote(run, csv_file, home):
    train(run, csv_file, "--seed", "7")
    first = predict(run, csv_file)
    result = train(run, csv_file, "--seed", "7", "--no-promote")
    assert "(champion)" not in result.stdout
    second_version = result.stdout.split("version: ")[1].split()[0]
    second = predict(run, csv_file, "--model", second_version)
    assert predict(run, csv_file)["model_version"] == first["model_version"]  # champion kept
    assert second["variance"] == first["variance"]


def test_horizon_five_and_models_commands(run, csv_file):
    train(run, csv_file, "--horizon", "5", "--estimator", "parkinson")
    payload = predict(run, csv_file)
    assert payload["horizon"] == 5
    listing = run("models", "list", "--ticker", "TEST")
    assert listing.exit_code == 0 and f"* TEST     {payload['model_version']}" in listing.stdout
    shown = json.loads(run("models", "show", payload["model_version"]).stdout)
    assert shown["config"]["estimator"] == "parkinson" and shown["config"]["horizon"] == 5


def test_init_option_reaches_the_strategy_and_is_listed_in_help(run, csv_file, home):
    help_text = run("train", "-h").stdout
    assert "encoder: encoder_units=16" in " ".join(help_text.split())
    train(run, csv_file, "--init", "encoder", "--init-option", "encoder_units=3")
    version = ModelRegistry(home / "models").champion("TEST")
    assert version.meta["config"]["init_options"] == {"encoder_units": 3}
    assert load_forecaster(version).model.get_layer("encoder_hidden").units == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--init", "zeros", "--init-option", "encoder_units=3"], "strategy 'zeros' has no option"),
        # --state-stddev used to be ignored unless --init random, and overridden by the option
        (
            ["--state-stddev", "0.3"],
            "error: --state-stddev 0.3 sets the stddev of a random initial state, but --init "
            "encoder (the default) draws none; pass --init random with it, or drop",
        ),
        (["--init", "learned", "--state-stddev", "0.3"], "but --init learned draws none"),
        (
            ["--init", "random", "--init-option", "state_stddev=0.2", "--state-stddev", "0.3"],
            "error: --state-stddev 0.3 and --init-option state_stddev=0.2 both set the random "
            "initial state's stddev; pass only one of them",
        ),
    ],
)
def test_init_option_of_another_strategy_is_one_error_line(run, csv_file, args, message):
    """Whether an option fits the chosen --init depends on two options: a runtime error."""
    result = run("train", "--ticker", "TEST", "--source", "csv", "--csv", csv_file, *TINY, *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--init", "encoder", "--init-option", "encoder_units"], "expects NAME=VALUE"),
        (["--init", "encoder", "--init-option", "encoder_units=x"], "expected a int value"),
        (["--init", "encoder", "--init-option", "encoder_units=0"], "encoder_units must be an"),
        (["--init", "encoder", "--init-option", "encoder_units=2000"], "must be an integer <= 1024"),
    ],
)
def test_malformed_init_option_is_a_usage_error(run, csv_file, args, message):
    result = run("train", "--ticker", "TEST", "--source", "csv", "--csv", csv_file, *TINY, *args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--init-option'" in result.stderr and message in result.stderr


def test_saved_model_reloads_with_identical_predictions(run, csv_file, home):
    train(run, csv_file, "--init", "encoder")
    version = ModelRegistry(home / "models").champion("TEST")
    first = load_forecaster(version)
    dataset = first.dataset(make_prices(420, seed=3))
    np.testing.assert_array_equal(first.predict(dataset), load_forecaster(version).predict(dataset))


def test_corrupt_model_file_is_one_error_line(run, csv_file, home):
    train(run, csv_file)
    version = ModelRegistry(home / "models").champion("TEST")
    version.model_path.write_bytes(b"garbage")
    result = run("predict", "--ticker", "TEST", "--source", "csv", "--csv", csv_file)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and str(version.model_path) in result.stderr
    assert result.stderr.count("\n") == 1


def test_predict_without_champion(run, csv_file):
    result = run("predict", "--ticker", "NONE", "--source", "csv", "--csv", csv_file)
    assert result.exit_code == 1
    assert (
        "error: no champion model for NONE" in result.stderr
        and "forecast train --ticker NONE" in result.stderr
    )


def test_too_little_history_for_lookback_and_context(run, tmp_path, home):
    path = tmp_path / "short.csv"
    write_csv(path, make_prices(120))
    result = run(
        "train", "--ticker", "TEST", "--source", "csv", "--csv", str(path), "--context", "252"
    )
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert "120" in result.stderr and "--context" in result.stderr
    assert not (home / "models" / "TEST").exists()


def test_unknown_init_lists_valid_names(run):
    result = run("train", "--init", "bogus")
    assert result.exit_code == 2
    for name in available_strategies():
        assert name in result.output


def test_predict_model_version_without_ticker_finds_its_ticker(run, csv_file):
    train(run, csv_file)
    version = predict(run, csv_file)["model_version"]
    result = run(
        "predict", "--model", version, "--source", "csv", "--csv", csv_file, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert checked(result.stdout, "predict")["forecasts"][0]["ticker"] == "TEST"


def test_meta_without_horizon_is_one_error_line(run, csv_file, home):
    train(run, csv_file)
    version = ModelRegistry(home / "models").champion("TEST")
    meta_path = version.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["horizon"]
    # as a version saved before manifests (a manifest would report the edit first)
    del meta["manifest"]
    (version.path / "manifest.json").unlink()
    meta_path.write_text(json.dumps(meta))
    result = run("predict", "--ticker", "TEST", "--source", "csv", "--csv", csv_file)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: model metadata '{meta_path}' is incomplete or corrupt ("
    )
    assert result.stderr.count("\n") == 1


def test_version_ids_that_are_paths_are_refused(run):
    result = run("models", "promote", "../SPY/x")
    assert result.exit_code == 1 and "is not a valid name" in result.stderr


@pytest.mark.parametrize("command", ["train", "compare"])
def test_test_start_and_test_fraction_together_are_refused(run, csv_file, command):
    source = ("--ticker", "TEST", "--source", "csv", "--csv", csv_file)
    split = ("--test-start", "2016-01-04", "--test-fraction", "0.3")
    result = run(command, *source, *split)
    assert result.exit_code == 1 and "pass only one of them" in result.stderr
