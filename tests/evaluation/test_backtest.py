"""evaluate/compare end to end on a tiny model: JSON vs predictions CSV, look-ahead, plot, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from forecaster.data.loader import load_prices
from forecaster.evaluation import backtest
from forecaster.models.lstm_forecaster import load_forecaster, train
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import TINY, make_prices, write_csv
from tests.conftest import run_cli as run
from tests.contract import checked

N = 460


@pytest.fixture
def trained(home, tmp_path):
    """A CSV ticker with a tiny champion; returns (csv path, settings, version)."""
    path = tmp_path / "prices.csv"
    write_csv(path, make_prices(N, seed=5))
    settings = Settings.resolve(home)
    data = load_prices("TEST", source="csv", csv_path=path, settings=settings)
    registry = ModelRegistry(settings.models_dir)
    outcome = train(data, TINY, registry, test_fraction=0.25)
    return path, settings, outcome.version


def independent_scores(frame: pd.DataFrame, model: str) -> dict[str, float]:
    y = frame["target_var"].to_numpy()
    f = frame[model].to_numpy()
    vol_y, vol_f = np.sqrt(252 * y), np.sqrt(252 * f)
    ante = frame["high_ex_ante"].to_numpy() == 1
    post = frame["high_ex_post"].to_numpy() == 1
    return {
        "qlike": float(np.mean(y / f - np.log(y / f) - 1)),
        "mse": float(np.mean((y - f) ** 2)),
        "mae_vol": float(np.mean(np.abs(vol_f - vol_y))),
        "bias": float(np.mean(vol_f - vol_y)),
        "bias_low": float(np.mean((vol_f - vol_y)[~ante])),
        "bias_high_ex_ante": float(np.mean((vol_f - vol_y)[ante])) if ante.any() else None,
        "bias_high_ex_post": float(np.mean((vol_f - vol_y)[post])) if post.any() else None,
    }


def test_evaluate_json_matches_predictions_csv(trained, tmp_path):
    path, _, version = trained
    csv_out, png_out = tmp_path / "pred.csv", tmp_path / "plot.png"
    result = run(
        "evaluate",
        "--source",
        "csv",
        "--csv",
        str(path),
        "--ticker",
        "TEST",
        "--format",
        "json",
        "--predictions",
        str(csv_out),
        "--plot",
        str(png_out),
    )
    assert result.exit_code == 0, result.output
    document = checked(result.stdout, "evaluate")
    assert document["panel"] is None
    (payload,) = document["results"]  # one ticker: still a list of one record
    assert payload["model_version"] == version.version and payload["init"] == "encoder"
    for key in (
        "ticker",
        "horizon",
        "estimator",
        "test_start",
        "test_end",
        "n",
        "regime",
        "models",
        "diebold_mariano",
    ):
        assert key in payload
    assert set(payload["models"]) == {"lstm", "har", "garch", "gjr", "ewma", "naive", "gbm"}
    assert set(payload["diebold_mariano"]) == {"lstm", "garch", "gjr", "ewma", "naive", "gbm"}
    included = payload["model_confidence_set"]["included"]
    assert included and set(included) <= set(payload["models"])
    best = min(payload["models"], key=lambda name: payload["models"][name]["qlike"])
    assert best in included  # the lowest-QLIKE model is never eliminated first
    frame = pd.read_csv(csv_out)
    assert list(frame.columns) == [
        "date",
        "target_var",
        "high_ex_ante",
        "high_ex_post",
        "lstm",
        "har",
        "garch",
        "gjr",
        "ewma",
        "naive",
        "gbm",
    ]
    assert len(frame) == payload["n"] and frame["date"].iloc[0] == payload["test_start"]
    assert int(frame["high_ex_ante"].sum()) == payload["regime"]["n_high_ex_ante"]
    for model in payload["models"]:
        expected = independent_scores(frame, model)
        for key, value in expected.items():
            assert payload["models"][model][key] == pytest.approx(value, rel=1e-9, abs=1e-15), (
                model,
                key,
            )
    assert png_out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_out.stat().st_size > 10_000


def test_evaluate_table_highlights_and_defaults_to_all_champions(trained, tmp_path):
    path, settings, _ = trained
    other = load_prices("TWO", source="csv", csv_path=path, settings=settings)
    second = train(other, TINY.replace(seed=1), ModelRegistry(settings.models_dir))
    result = run("evaluate", "--source", "csv", "--csv", str(path), "--baselines", "har,naive")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    headers = [line for line in lines if " — model " in line]
    assert [line.split(" — ")[0] for line in headers] == ["TEST", "TWO"]
    assert second.version.version in headers[1]
    assert sum(line.startswith("lstm ") for line in lines) == 2
    assert "*" in result.stdout and "best in column" in result.stdout


def test_thresholds_and_baselines_ignore_the_test_period(trained):
    """Perturb the prices after a test origin (four origins spread over the test period, in
    turn): every forecast at or before it stays the same, the later ones move."""
    path, settings, version = trained
    data = load_prices("TEST", source="csv", csv_path=path, settings=settings)
    models = ["har", "ewma", "naive", "gbm"]
    network = load_forecaster(version)
    first = backtest.held_out(version, data, models, forecaster=network)
    origins = first.predictions.index
    assert len(origins) > 50
    rng = np.random.default_rng(1)
    for at in (0, len(origins) // 3, 2 * len(origins) // 3, len(origins) - 2):
        cut = origins[at]
        prices = data.prices.copy()
        later = prices.index > cut
        prices.loc[later, ["open", "high", "low", "close"]] *= rng.uniform(
            0.8, 1.2, (later.sum(), 1)
        )
        prices.loc[later, "high"] *= 1.02  # a wider range too: every estimator moves
        prices["high"] = prices[["open", "high", "low", "close"]].max(axis=1)
        prices["low"] = prices[["open", "high", "low", "close"]].min(axis=1)
        perturbed = backtest.held_out(
            version,
            data.__class__(**{**data.__dict__, "prices": prices}),
            models,
            forecaster=network,
        )
        assert perturbed.thresholds == first.thresholds, cut
        assert perturbed.predictions.index.equals(origins)
        for model in ("lstm", *models):
            before = first.predictions[model].to_numpy()
            after = perturbed.predictions[model].to_numpy()
            # at and before the cut: nothing later was used
            np.testing.assert_array_equal(
                after[: at + 1], before[: at + 1], err_msg=f"{model} {cut}"
            )
            # after it, the perturbation reaches the forecasts (so the check above can fail)
            assert not np.allclose(after[at + 1 :], before[at + 1 :]), (model, cut)


@pytest.mark.slow
def test_walk_forward_has_no_look_ahead(trained):
    path, settings, version = trained
    data = load_prices("TEST", source="csv", csv_path=path, settings=settings)
    refit = 25
    first = backtest.walk_forward(version, data, ["har", "naive"], refit_every=refit)
    cut = first.predictions.index[2 * refit]  # the third refit date
    prices = data.prices.copy()
    later = prices.index >= cut
    prices.loc[later, ["open", "high", "low", "close"]] *= (
        1.5 + np.arange(later.sum())[:, None] * 0.001
    )
    prices["high"] = prices[["open", "high", "low", "close"]].max(axis=1)
    prices["low"] = prices[["open", "high", "low", "close"]].min(axis=1)
    second = backtest.walk_forward(
        version,
        data.__class__(**{**data.__dict__, "prices": prices}),
        ["har", "naive"],
        refit_every=refit,
    )
    before = first.predictions.index < cut
    assert before.sum() == 2 * refit
    pd.testing.assert_frame_equal(
        first.predictions.loc[before, ["lstm", "har", "naive"]],
        second.predictions.loc[before, ["lstm", "har", "naive"]],
    )
    # and the perturbation did change later forecasts, so the check can fail
    assert not np.allclose(
        first.predictions.loc[~before, "lstm"], second.predictions.loc[~before, "lstm"]
    )


def test_evaluate_without_champion_says_to_train(home):
    result = run("evaluate")
    assert result.exit_code == 1
    assert (
        result.stderr.startswith("error: no champion model under")
        and "forecast train --ticker SPY" in result.stderr
    )


@pytest.mark.slow
def test_compare_two_seeds_json(home, tmp_path):
    path = tmp_path / "prices.csv"
    write_csv(path, make_prices(N, seed=5))

    def compare(inits: str, seeds: int, *extra: str):
        source = ("--ticker", "TEST", "--source", "csv", "--csv", str(path))
        tiny = ("--epochs", "1", "--units", "4", "--ensemble", "1")
        result = run("compare", *source, "--inits", inits, "--seeds", str(seeds), *tiny, *extra)
        assert result.exit_code == 0, result.output
        return result

    payload = json.loads(compare("zeros,learned", 2, "--format", "json").stdout)
    assert set(payload["inits"]) == {"zeros", "learned"} and payload["seeds"] == 2
    for scores in payload["inits"].values():
        assert set(scores) == {"qlike", "mse", "bias", "bias_high_ex_ante", "bias_high_ex_post"}
    assert payload["reference"] == "har" and payload["har"]["qlike"] > 0
    # Seed 0 alone (training is deterministic per seed) gives the first per-seed value a;
    # the two-seed mean m then gives the second, b = 2m - a, and the reported std must
    # be their sample std (ddof=1): |a - b| / sqrt(2) = sqrt(2) |a - m|, and not zero.
    seed_zero = json.loads(compare("zeros,learned", 1, "--format", "json").stdout)
    assert seed_zero["seeds"] == 1 and seed_zero["har"] == payload["har"]
    for init, scores in payload["inits"].items():
        for key, two_seeds in scores.items():
            first = seed_zero["inits"][init][key]["mean"]
            assert seed_zero["inits"][init][key]["std"] == 0.0
            second = 2 * two_seeds["mean"] - first
            expected = float(np.std([first, second], ddof=1))
            tolerance = 1e-9 * abs(two_seeds["mean"])
            assert two_seeds["std"] == pytest.approx(expected, rel=1e-6, abs=tolerance), (init, key)
        assert scores["qlike"]["std"] > 0, f"{init}: seeds 0 and 1 gave the same QLIKE"
    table = compare("zeros", 1)
    assert "har (reference)" in table.stdout and "±" in table.stdout
    assert set(payload["baselines"]) == {"har", "garch", "gjr", "ewma", "naive", "gbm"}
    assert payload["baselines"]["har"] == payload["har"]
    against_ewma = compare("zeros", 1, "--reference", "ewma", "--baselines", "none")
    assert "ewma (reference)" in against_ewma.stdout and "har" not in against_ewma.stdout


def test_compare_unknown_init(home):
    result = run("compare", "--inits", "zeros,bogus")
    assert result.exit_code == 2 and "unknown strategies bogus" in result.stderr
    assert "Invalid value for '--inits'" in result.stderr  # click's usage error, before any work


def test_compare_gives_init_options_to_the_strategies_that_have_them(home, monkeypatch):
    from forecaster.errors import ModelError
    from forecaster.evaluation import compare as compare_module

    path = home / "prices.csv"
    write_csv(path, make_prices(N, seed=5))
    source = ("--ticker", "TEST", "--source", "csv", "--csv", str(path))
    seen = {}

    class Recorder:  # records the first strategy's config, then stops the run
        def __init__(self, config, threads=None):
            seen[config.init] = dict(config.init_options)
            raise ModelError("stop here: the config is recorded")

    monkeypatch.setattr(compare_module, "LSTMForecaster", Recorder)
    for inits in ("encoder,zeros", "zeros,encoder"):
        args = ("compare", *source, "--inits", inits, "--seeds", "1")
        result = run(*args, "--init-option", "encoder_units=3")
        assert result.exit_code == 1 and "stop here" in result.stderr
    assert seen == {"zeros": {}, "encoder": {"encoder_units": 3}}

    wrong = run("compare", *source, "--inits", "zeros,learned", "--init-option", "encoder_units=3")
    assert wrong.exit_code == 1 and wrong.stderr.count("\n") == 1
    assert "applies to none of the compared strategies (zeros, learned)" in wrong.stderr


def test_predictions_csv_round_trips(trained):
    path, settings, version = trained
    data = load_prices("TEST", source="csv", csv_path=path, settings=settings)
    run_ = backtest.held_out(version, data, ["har"])
    frame = pd.read_csv(io.StringIO(backtest.predictions_csv(run_)), index_col="date")
    np.testing.assert_array_equal(frame["lstm"].to_numpy(), run_.predictions["lstm"].to_numpy())


def test_evaluate_defaults_to_the_training_csv_then_its_cache_then_errors(trained, tmp_path):
    """A model trained on a CSV file is scored on that file without --csv; once the file
    is gone, on the prices cached from it; once those are gone too, one error line."""
    path, settings, version = trained
    assert version.record.data.path == str(path.resolve())
    args = ("evaluate", "--ticker", "TEST", "--baselines", "har", "--format", "json")
    explicit = run(*args, "--source", "csv", "--csv", str(path))
    assert explicit.exit_code == 0, explicit.output

    recorded = run(*args)
    assert recorded.exit_code == 0, recorded.output
    assert recorded.stdout == explicit.stdout
    assert f"note: TEST: prices from {path}, the CSV file model {version.version}" in (
        recorded.stderr
    )

    path.rename(tmp_path / "moved.csv")
    cached = run(*args)
    assert cached.exit_code == 0, cached.output
    assert cached.stdout == explicit.stdout
    assert (
        f"warning: TEST: the CSV file model {version.version} was trained on ({path}) is gone; "
        "using the prices cached from it"
    ) in cached.stderr

    (settings.prices_dir / "TEST.csv.parquet").unlink()
    failed = run(*args)
    assert failed.exit_code == 1
    assert failed.stderr == (
        f"error: TEST model {version.version} was trained on {str(path)!r}, which no longer "
        "exists, and the price cache holds no prices from it; pass --csv PATH with a copy of "
        "that file (and --source csv) to evaluate it\n"
    )
