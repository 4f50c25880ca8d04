"""A universal model from a panel file, with market and VIX inputs: train, predict, evaluate
(zero-shot included), the leak guard, and a learning test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecaster import metrics
from forecaster.data.exog import build_exog
from forecaster.data.features import build_dataset, split_dataset
from forecaster.models.lstm_forecaster import LSTMForecaster
from tests.conftest import TINY, make_prices, write_csv
from tests.contract import checked
from tests.data.test_panel import long_format

pytestmark = pytest.mark.usefixtures("tf_configured")

DAYS = 460
CLI_TINY = ["--units", "4", "--lookback", "10", "--context", "42", "--epochs", "2",
            "--ensemble", "1", "--patience", "1", "--threads", "1"]
SEEDS = {"AAA": 11, "BBB": 12, "CCC": 13, "MKT": 14, "NEW": 15}


@pytest.fixture
def files(tmp_path):
    frames = {ticker: make_prices(DAYS, seed) for ticker, seed in SEEDS.items()}
    broken = make_prices(DAYS, 16)
    broken.iloc[40, broken.columns.get_loc("high")] = broken.iloc[40]["low"] * 0.5
    frames["BAD"] = broken
    panel = tmp_path / "panel.parquet"
    long_format(frames).to_parquet(panel)
    rng = np.random.default_rng(5)
    vix = tmp_path / "vix.csv"
    index = frames["AAA"].index
    pd.DataFrame(
        {"date": index.strftime("%Y-%m-%d"), "value": 15 * np.exp(np.cumsum(rng.normal(0, 0.05, DAYS)))}
    ).to_csv(vix, index=False)
    new_csv = tmp_path / "NEW.csv"
    write_csv(new_csv, frames["NEW"])
    spec = TINY.feature_spec()
    origins = build_dataset(frames["AAA"], spec).origins
    return {"panel": panel, "vix": vix, "new": new_csv, "origins": origins}


def _version(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("version:"))


def test_cli_universal_train_predict_and_evaluate(run, home, files):
    cut = f"{files['origins'][330]:%Y-%m-%d}"
    result = run("train", "--panel", str(files["panel"]), "--tickers", "AAA,BBB,CCC,BAD",
                 "--market", "MKT", "--exog", f"VIX={files['vix']}", "--test-start", cut,
                 *CLI_TINY)
    assert result.exit_code == 0, result.output
    assert "warning: skipped BAD:" in result.stderr  # reported by name, the others trained
    assert "inputs: own series + market MKT, VIX" in result.stdout
    version = _version(result.stdout)
    meta = json.loads((home / "models" / "AAA" / version / "meta.json").read_text())
    assert meta["config"]["market"] == "MKT"
    assert meta["config"]["exog"] == {"VIX": str(files["vix"].resolve())}
    assert meta["network"]["n_features"] == 5

    # one universal version serves trained and unseen tickers; NumPy and Keras agree
    rows = {}
    for engine in ("numpy", "keras"):
        result = run("predict", "--panel", str(files["panel"]), "--tickers", "AAA,NEW",
                     "--model", version, "--format", "jsonl", "--engine", engine)
        assert result.exit_code == 0, result.output
        rows[engine] = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["ticker"] for row in rows["numpy"]] == ["AAA", "NEW"]
    for a, b in zip(rows["numpy"], rows["keras"], strict=True):
        assert a["status"] == "ok" and a["vol"] > 0
        assert a["vol"] == pytest.approx(b["vol"], rel=1e-5)

    result = run("evaluate", "--model", version, "--panel", str(files["panel"]), "--tickers",
                 "AAA,NEW", "--baselines", "har,harx,har-pooled", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = checked(result.stdout, "evaluate")
    assert [r["ticker"] for r in payload["results"]] == ["AAA", "NEW"]
    assert all(r["test_start"] == cut for r in payload["results"])
    assert any("zero-shot" in note for note in payload["results"][1]["notes"])
    panel = payload["panel"]
    assert panel["reference"] == "har" and panel["n_tickers"] == 2
    assert set(panel["models"]) == {"lstm", "harx", "har-pooled"}
    for row in panel["models"].values():
        assert 0 < row["mean_ratio"] < 10 and 0 <= row["share_beating"] <= 1
        assert 0 <= row["dm_p_value"] <= 1

    # one unseen ticker from any source (zero-shot)
    result = run("evaluate", "--model", version, "--ticker", "NEW", "--source", "csv", "--csv",
                 str(files["new"]), "--baselines", "har,harx", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = checked(result.stdout, "evaluate")
    assert [r["ticker"] for r in payload["results"]] == ["NEW"] and payload["panel"] is None

    # the nightly job cannot supply the inputs yet: the ticker fails alone, saying why
    result = run("nightly", "--panel", str(files["panel"]), "--tickers", "AAA", "--keep", "all")
    assert result.exit_code == 1
    assert "reads market MKT, VIX besides AAA's own prices" in result.stderr

    # the exogenous file the model reads is gone: one error line, exit 1
    files["vix"].rename(files["vix"].with_suffix(".bak"))
    result = run("predict", "--panel", str(files["panel"]), "--ticker", "AAA", "--model", version)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "reads the exogenous series VIX" in result.stderr


def test_cli_zero_shot_refuses_days_a_parent_saw(run, home, files):
    late = f"{files['origins'][380]:%Y-%m-%d}"
    result = run("train", "--panel", str(files["panel"]), "--tickers", "AAA,BBB",
                 "--test-start", late, *CLI_TINY)
    assert result.exit_code == 0, result.output
    parent = _version(result.stdout)
    early = f"{files['origins'][300]:%Y-%m-%d}"
    result = run("train", "--panel", str(files["panel"]), "--ticker", "CCC", "--from", parent,
                 "--test-start", early, "--epochs", "1")
    assert result.exit_code == 0, result.output
    child = _version(result.stdout)
    result = run("evaluate", "--model", child, "--ticker", "NEW", "--source", "csv", "--csv",
                 str(files["new"]))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: NEW: model")
    assert f"model {parent} saw AAA" in result.stderr
    assert "overlaps days used in training or validation" in result.stderr


def test_a_small_universal_model_learns():
    """Seeded and short: validation QLIKE clearly below a constant forecast's."""
    config = TINY.replace(units=8, epochs=8, patience=3, market="MKT")
    market = make_prices(700, 30)
    exog = build_exog(market, config.estimator, config.window)
    model = LSTMForecaster(config, threads=1)
    sets = {f"S{i}": model.dataset(make_prices(700, 40 + i), exog) for i in range(4)}
    cut = sets["S0"].origins[520]
    model.fit_pooled(sets, cut)
    ratios = []
    for name, dataset in sets.items():
        split = split_dataset(dataset, test_start=cut)
        target = dataset.floored_target()
        constant = np.full(split.validation.size, target[split.train].mean())
        forecast = model.for_ticker(name).predict(dataset, split.validation)
        y = target[split.validation]
        ratios.append(metrics.qlike(y, forecast) / metrics.qlike(y, constant))
    assert np.mean(ratios) < 0.9, ratios


def test_the_feed_cuts_exactly_the_dataset_windows_and_training_is_repeatable():
    from forecaster.data.features import FeatureScaler
    from forecaster.models.feed import SeriesRows, WindowFeed

    sets = {f"S{i}": build_dataset(make_prices(400, 50 + i), TINY.feature_spec()) for i in range(2)}
    parts, expected = [], []
    for dataset in sets.values():
        rows = np.arange(5, len(dataset), 3)
        scaler = FeatureScaler().fit(dataset, np.arange(0, 200))
        daily = scaler.transform_sequence(dataset.features)
        context = scaler.transform_context(dataset.context[rows])
        parts.append(SeriesRows(daily, dataset.positions[rows], context, np.zeros(rows.size)))
        expected.append(scaler.transform_sequence(dataset.sequence[rows]))
    feed = WindowFeed(parts, TINY.lookback)
    order = np.random.default_rng(0).permutation(len(feed))
    np.testing.assert_array_equal(feed.take(order)["sequence"], np.concatenate(expected)[order])

    cut = sets["S0"].origins[300]
    runs = [LSTMForecaster(TINY, threads=1).fit_pooled(sets, cut) for _ in range(2)]
    rows = np.arange(len(sets["S1"]) - 30, len(sets["S1"]))
    a, b = (run.for_ticker("S1").predict(sets["S1"], rows) for run in runs)
    np.testing.assert_array_equal(a, b)
