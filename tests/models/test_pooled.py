"""Pooled (global) models: one LSTM on several series, per-series scalers, one cut;
serving trained and unseen tickers; fine-tuning with lineage; evaluate's overlap check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.features import FeatureScaler, build_dataset, split_dataset
from forecaster.data.loader import PriceData
from forecaster.errors import ConfigError, EvaluationError, ModelError
from forecaster.evaluation.backtest import check_out_of_sample
from forecaster.models.lstm_forecaster import (
    LSTMForecaster,
    fine_tune_config,
    load_forecaster,
    train,
    train_pooled,
)
from forecaster.models.record import ModelRecord
from forecaster.models.registry import ModelRegistry
from tests.conftest import TINY, make_prices, write_csv
from tests.contract import checked

pytestmark = pytest.mark.usefixtures("tf_configured")

DAYS = 420
SEEDS = {"AAA": 11, "BBB": 12, "CCC": 13}
CLI_TINY = ["--units", "4", "--lookback", "10", "--context", "42", "--epochs", "2"]
CLI_TINY += ["--ensemble", "1"]
CLI_TINY += ["--patience", "1"]


def datasets(config=TINY, **prices) -> dict:
    spec = config.feature_spec()
    return {ticker: build_dataset(frame, spec) for ticker, frame in prices.items()}


def series_prices() -> dict[str, pd.DataFrame]:
    return {ticker: make_prices(DAYS, seed) for ticker, seed in SEEDS.items()}


def price_data(ticker: str, prices: pd.DataFrame) -> PriceData:
    return PriceData(ticker=ticker, prices=prices, source="csv", description=f"{ticker} test")


@pytest.fixture(scope="module")
def pooled():
    """A tiny model pooled over AAA and BBB, cut at AAA's 300th origin."""
    prices = series_prices()
    sets = datasets(AAA=prices["AAA"], BBB=prices["BBB"])
    cut = sets["AAA"].origins[300]
    forecaster = LSTMForecaster(TINY, threads=1).fit_pooled(sets, cut)
    return forecaster, sets, cut, prices


def test_one_cut_for_all_series_and_nothing_after_it_is_used(pooled):
    forecaster, sets, cut, prices = pooled
    for ticker, state in forecaster.series.items():
        split = state.split
        assert split.test_start == cut
        origins = sets[ticker].origins
        assert origins[split.validation[-1]] < cut and origins[split.train[-1]] < cut
        # validation: the last 15% of the series' origins before the cut
        assert split.validation.size == round(0.15 * (split.train.size + split.validation.size))
    # another series' later prices (after the cut) change nothing in the fit
    shocked = prices["BBB"].copy()
    shocked.loc[shocked.index > cut, ["high", "close"]] *= 1.3
    again = LSTMForecaster(TINY, threads=1).fit_pooled(
        datasets(AAA=prices["AAA"], BBB=shocked), cut
    )
    for before, after in zip(forecaster.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert again.scale == forecaster.scale
    assert again.series["BBB"].scaler.to_dict() == forecaster.series["BBB"].scaler.to_dict()


def test_each_series_has_the_scaler_of_its_own_training_rows(pooled):
    forecaster, sets, cut, _ = pooled
    for ticker, dataset in sets.items():
        own = FeatureScaler().fit(dataset, split_dataset(dataset, test_start=cut).train)
        assert forecaster.series[ticker].scaler.to_dict() == own.to_dict()
    first, second = (forecaster.series[t].scaler.to_dict() for t in sets)
    assert first != second


def test_predicts_each_trained_ticker_and_an_unseen_one(pooled):
    forecaster, sets, cut, _ = pooled
    with pytest.raises(ModelError, match="pooled over AAA, BBB; choose the series"):
        forecaster.predict(sets["AAA"])
    forecasts = {}
    for ticker, dataset in sets.items():
        forecasts[ticker] = forecaster.for_ticker(ticker).predict(dataset)
        assert np.isfinite(forecasts[ticker]).all() and (forecasts[ticker] > 0).all()
    unseen = build_dataset(make_prices(DAYS, 99), TINY.feature_spec())
    with pytest.raises(ModelError, match="pass CCC's dataset"):
        forecaster.for_ticker("CCC")
    view = forecaster.for_ticker("CCC", unseen)
    forecast = view.predict(unseen)
    assert np.isfinite(forecast).all()
    # its scaler: its own labeled rows whose targets were realized by the close of the cut
    labeled = np.flatnonzero(unseen.labeled())
    last_day = unseen.variance.index[unseen.positions[labeled] + unseen.horizon]
    rows = labeled[last_day <= cut]
    assert view.scaler.to_dict() == FeatureScaler().fit(unseen, rows).to_dict()
    short = build_dataset(make_prices(DAYS, 5, start="2016-01-04"), TINY.feature_spec())
    with pytest.raises(ModelError, match="at least 50"):
        forecaster.for_ticker("NEW", short)


def test_har_anchored_ensemble_pools_with_one_anchor_per_series(pooled):
    _, sets, cut, _ = pooled
    config = TINY.replace(anchor="har", ensemble=2)
    forecaster = LSTMForecaster(config, threads=1).fit_pooled(sets, cut)
    anchors = {ticker: state.anchor["params"] for ticker, state in forecaster.series.items()}
    assert anchors["AAA"] != anchors["BBB"]
    for ticker, dataset in sets.items():
        assert np.isfinite(forecaster.for_ticker(ticker).predict(dataset)).all()
    unseen = build_dataset(make_prices(DAYS, 99), TINY.feature_spec())
    view = forecaster.for_ticker("CCC", unseen)
    assert view.anchor is not None and np.isfinite(view.predict(unseen)).all()


def test_stateful_strategy_cannot_be_pooled(pooled):
    _, sets, cut, _ = pooled
    stateful = TINY.replace(init="stateful")
    with pytest.raises(ConfigError, match="'stateful' strategy cannot be pooled"):
        LSTMForecaster(stateful).fit_pooled(sets, cut)


def test_a_cut_outside_a_series_is_an_error_naming_it(pooled):
    _, sets, _, prices = pooled
    late = datasets(AAA=prices["AAA"], LATE=make_prices(DAYS, 4, start="2017-01-02"))
    with pytest.raises(ConfigError, match="^LATE: test_start 2016-.* is outside"):
        LSTMForecaster(TINY).fit_pooled(late, sets["AAA"].origins[300])


def test_saved_under_every_ticker_and_reloads_with_identical_forecasts(tmp_path):
    prices = series_prices()
    registry = ModelRegistry(tmp_path)
    datas = [price_data(t, prices[t]) for t in ("AAA", "BBB")]
    cut = build_dataset(prices["AAA"], TINY.feature_spec()).origins[300]
    outcome = train_pooled(datas, TINY, registry, test_start=cut, threads=1)
    version = outcome.version
    unseen = build_dataset(make_prices(DAYS, 99), TINY.feature_spec())
    for data in datas:
        assert registry.champion_id(data.ticker) == version
        saved = registry.get(data.ticker, version)
        record = saved.record
        assert record.ticker == data.ticker and record.tickers == ["AAA", "BBB"]
        assert record.split == record.series[data.ticker]["split"]
        assert record.split["test_start"] == f"{cut:%Y-%m-%d}"
        assert {item["ticker"] for item in record.seen} == {"AAA", "BBB"}
        loaded = load_forecaster(saved)
        dataset = loaded.dataset(data.prices)
        np.testing.assert_array_equal(
            loaded.predict(dataset), outcome.forecaster.for_ticker(data.ticker).predict(dataset)
        )
        np.testing.assert_array_equal(
            loaded.for_ticker("CCC", unseen).predict(unseen),
            outcome.forecaster.for_ticker("CCC", unseen).predict(unseen),
        )
    # a single-ticker record of format 2 without the new fields still loads
    meta = registry.get("AAA", version).meta
    legacy = {k: v for k, v in meta.items() if k not in ("series", "parent", "seen")}
    legacy_record = ModelRecord.from_dict({**legacy, "ticker": "AAA"})
    assert legacy_record.series is None and legacy_record.parent is None
    assert legacy_record.seen_ranges()[0]["ticker"] == "AAA"


def test_fine_tuning_records_lineage_and_overlaps_are_refused(tmp_path):
    prices = series_prices()
    registry = ModelRegistry(tmp_path)
    datas = [price_data(t, prices[t]) for t in ("AAA", "BBB")]
    cut = build_dataset(prices["AAA"], TINY.feature_spec()).origins[300]
    parent = train_pooled(datas, TINY, registry, test_start=cut, threads=1, promote=False)
    parent_version = parent.versions["AAA"]
    config = fine_tune_config(parent_version.record, epochs=1)
    with pytest.raises(ConfigError, match="cannot change units"):
        fine_tune_config(parent_version.record, units=8)
    dataset = build_dataset(prices["CCC"], TINY.feature_spec())
    early = train(
        price_data("CCC", prices["CCC"]),
        config,
        registry,
        test_start=dataset.origins[200],
        threads=1,
        parent=parent_version,
    )
    record = early.record
    assert record.parent == {"ticker": "AAA", "version": parent.version}
    assert record.training["fine_tuned"] is True
    assert [item["ticker"] for item in record.seen] == ["CCC", "AAA", "BBB"]
    with pytest.raises(EvaluationError, match=f"model {parent.version} saw AAA"):
        check_out_of_sample(record)
    later = train(
        price_data("CCC", prices["CCC"]),
        config,
        registry,
        test_start=dataset.origins[310],
        threads=1,
        parent=parent_version,
    )
    check_out_of_sample(later.record)  # after every day the parent saw: accepted
    wider = TINY.replace(units=8)
    with pytest.raises(ConfigError, match="cannot change units"):
        train(price_data("CCC", prices["CCC"]), wider, registry, parent=parent_version)


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def csv_dir(tmp_path):
    folder = tmp_path / "prices"
    folder.mkdir()
    for ticker, frame in series_prices().items():
        write_csv(folder / f"{ticker}.csv", frame)
    write_csv(folder / "NEW.csv", make_prices(DAYS, 99))
    return folder


def test_cli_pooled_train_predict_fine_tune_and_evaluate(run, home, csv_dir):
    cut = f"{build_dataset(series_prices()['AAA'], TINY.feature_spec()).origins[300]:%Y-%m-%d}"
    common = ["--source", "csv", *CLI_TINY, "--threads", "1"]
    result = run("train", "--tickers", "AAA,BBB", "--csv-dir", str(csv_dir), "--test-start",
                 cut, *common)
    assert result.exit_code == 0, result.output
    assert "(champion of AAA, BBB)" in result.stdout and "BBB: train" in result.stdout
    version = result.stdout.split()[1]
    for ticker in ("AAA", "BBB", "NEW"):
        args = ["predict", "--ticker", ticker, "--source", "csv", "--csv",
                str(csv_dir / f"{ticker}.csv"), "--format", "json"]
        if ticker == "NEW":
            args += ["--model", version]
        result = run(*args)
        assert result.exit_code == 0, result.output
        (payload,) = checked(result.stdout, "predict")["forecasts"]
        assert payload["ticker"] == ticker and payload["model_version"] == version
        assert payload["vol"] > 0
    assert "NEW is standardized by its own rows" in result.stderr

    result = run("evaluate", "--ticker", "BBB", "--baselines", "har,naive", "--csv",
                 str(csv_dir / "BBB.csv"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert checked(result.stdout, "evaluate")["results"][0]["test_start"] == cut

    ccc = ["--ticker", "CCC", "--csv", str(csv_dir / "CCC.csv"), "--from", version]
    result = run("train", *ccc, "--source", "csv", "--epochs", "1", "--test-start", "2015-11-02")
    assert result.exit_code == 0, result.output
    assert f"fine-tuned from: {version} (AAA, BBB)" in result.stdout
    early = result.stdout.split()[1]
    result = run("evaluate", "--ticker", "CCC", "--model", early, "--csv",
                 str(csv_dir / "CCC.csv"))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: CCC model")
    assert "overlaps days used in training or validation" in result.stderr

    result = run("train", *ccc, "--source", "csv", "--test-start", cut)
    assert result.exit_code == 0, result.output
    result = run("evaluate", "--ticker", "CCC", "--baselines", "har", "--csv",
                 str(csv_dir / "CCC.csv"), "--format", "json")
    assert result.exit_code == 0, result.output

    result = run("train", *ccc, "--source", "csv", "--units", "8")
    assert result.exit_code == 1 and "cannot change units" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tickers", "AAA"], "needs at least two tickers"),
        (["--universe", "missing.txt"], "cannot read universe file"),
        (["--universe", "EMPTY"], "lists no ticker|names no ticker"),
        (["--tickers", "AAA,BBB", "--init", "stateful"], "cannot be pooled"),
        (["--tickers", "AAA,BBB", "--ticker", "AAA"], "--ticker and --tickers"),
        (["--tickers", "AAA,BBB", "--test-start", "2020-01-02"], "AAA: test_start 2020"),
    ],
)
def test_cli_bad_ticker_lists_are_one_error_line(run, home, csv_dir, tmp_path, args, message):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    args = [str(empty) if arg == "EMPTY" else arg for arg in args]
    result = run("train", *args, "--source", "csv", "--csv-dir", str(csv_dir), *CLI_TINY)
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert pd.Series([result.stderr]).str.contains(message).all(), result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [(" , ", "--tickers names no ticker"), ("AAA,B/B", "ticker 'B/B' is not usable")],
)
def test_cli_malformed_ticker_lists_are_usage_errors(run, csv_dir, value, message):
    result = run("train", "--tickers", value, "--source", "csv", "--csv-dir", str(csv_dir))
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--tickers'" in result.stderr and message in result.stderr


def test_cli_universe_file_pools_its_tickers(run, home, csv_dir, tmp_path):
    universe = tmp_path / "universe.txt"
    universe.write_text("# two series\nAAA\nccc  # lower case is fine\n")
    result = run("train", "--universe", str(universe), "--source", "csv", "--csv-dir",
                 str(csv_dir), *CLI_TINY, "--no-promote")
    assert result.exit_code == 0, result.output
    assert "AAA: train" in result.stdout and "CCC: train" in result.stdout
    assert "champion" not in result.stdout
