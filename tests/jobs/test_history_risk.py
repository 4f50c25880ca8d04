"""VaR/ES in the forecast history: stored with each issued forecast, backtested live.

Nightly runs here use a stand-in challenge step (as in test_promotion.py) whose
models carry a stand-in forecaster with a constant in-sample forecast, so
``risk.forecast_risk`` fits a real distribution in well under a second. The live
backtest is checked against breaches and a Kupiec statistic written out here
from the stored VaR and the cached closes.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecaster.data.features import build_dataset
from forecaster.data.store import PriceStore
from forecaster.evaluation import risk as risks
from forecaster.jobs import protocol
from forecaster.jobs.history import (
    NOT_STORED,
    SCHEMA_VERSION,
    ForecastHistory,
    load_history,
)
from forecaster.jobs.nightly import Challenge, run_nightly
from forecaster.models.config import LSTMConfig
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import make_prices, run_cli, stand_in_challenge, write_csv
from tests.contract import checked
from tests.jobs.test_promotion import WINDOW, stand_in

IN_SAMPLE_VARIANCE = 1e-4
#: Enough days for the default feature spec (context 252) to leave over 100 labeled origins.
#: Over 100 of them before the stand-in models' test_start (2016-03-01) for the t fit.
PRICE_DAYS, PRICE_START = 500, "2014-06-02"


class ConstantForecaster:
    """Forecasts the same daily variance at every origin (enough for forecast_risk)."""

    def dataset(self, prices: pd.DataFrame, exog: pd.DataFrame | None = None):
        return build_dataset(prices, LSTMConfig(init="zeros").feature_spec(), exog)

    def predict(self, dataset, rows) -> np.ndarray:
        return np.full(len(rows), IN_SAMPLE_VARIANCE)


@pytest.fixture
def settings(home) -> Settings:
    return Settings.resolve(home)


@pytest.fixture
def csv_dir(home):
    folder = home / "csv"
    folder.mkdir()
    write_csv(folder / "AAA.csv", make_prices(PRICE_DAYS, seed=1, start=PRICE_START))
    return folder


@pytest.fixture
def dates():
    return [
        f"{day:%Y-%m-%d}" for day in make_prices(PRICE_DAYS, seed=1, start=PRICE_START).index[-2:]
    ]


@pytest.fixture
def challenger(monkeypatch):
    """The stand-in challenge of test_promotion.py, with fitted stand-in forecasters."""

    challenge_step = stand_in_challenge(WINDOW, stand_in, ConstantForecaster)

    monkeypatch.setattr(protocol, "challenge_step", challenge_step)


def run(settings, csv_dir, as_of, **options):
    (record,) = run_nightly(
        ["AAA"],
        settings=settings,
        source="csv",
        csv_dir=csv_dir,
        as_of=as_of,
        window_days=WINDOW,
        **options,
    ).records
    return record


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity."""

    def refuse(name):
        raise ValueError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


# --- nightly stores VaR/ES with the forecast ---------------------------------------


def test_nightly_stores_normal_var_and_es_with_the_forecast(settings, csv_dir, dates, challenger):
    record = run(settings, csv_dir, dates[0], distribution="normal", levels="0.05,0.01")
    assert record["status"] == "ok", record["error"]
    history = ForecastHistory(settings.forecasts_db)
    (forecast,) = history.forecasts("AAA")
    rows = history.risks("AAA")
    assert [(row["level"], row["distribution"], row["reason"]) for row in rows] == [
        (0.01, "normal", None),
        (0.05, "normal", None),
    ]
    # The session forecast is scaled by the overnight factor (tests/evaluation/test_risk.py
    # checks its value against an independent computation).
    factor = record["risk"]["overnight"]["factor"]
    assert record["risk"]["overnight"]["method"] == "hansen-lunde-2005"
    assert 0 < factor != 1.0
    sigma = math.sqrt(factor * forecast["variance"])  # h = 1
    for row in rows:
        z = stats.norm.ppf(row["level"])
        assert row["var"] == pytest.approx(sigma * z, rel=1e-12)
        assert row["es"] == pytest.approx(-sigma * stats.norm.pdf(z) / row["level"], rel=1e-12)
        assert (row["origin"], row["model_version"]) == (
            forecast["origin"],
            record["champion_version"],
        )
    assert record["risk"]["levels"]["0.01"]["var"] == rows[0]["var"]
    assert record["risk"]["reason"] is None


def test_nightly_t_var_is_forecast_risk_of_the_issuing_model(settings, csv_dir, dates, challenger):
    run(settings, csv_dir, dates[0])  # first champion
    record = run(settings, csv_dir, dates[1])  # promoted: the challenger issues
    assert record["decision"] == "promoted"
    history = ForecastHistory(settings.forecasts_db)
    forecast = history.forecasts("AAA")[-1]
    prices = make_prices(PRICE_DAYS, seed=1, start=PRICE_START)
    forecaster = ConstantForecaster()
    expected = risks.forecast_risk(
        forecaster, forecaster.dataset(prices), forecast["variance"], "2016-03-01"
    )
    assert expected["levels"] is not None  # the t fit had enough returns
    stored = {
        risks.level_key(row["level"]): {"var": row["var"], "es": row["es"]}
        for row in history.risks("AAA")
        if row["origin"] == forecast["origin"]
    }
    assert stored.keys() == expected["levels"].keys()
    for key, values in expected["levels"].items():
        assert stored[key]["var"] == pytest.approx(values["var"], rel=1e-9)
        assert stored[key]["es"] == pytest.approx(values["es"], rel=1e-9)
    assert len(history.risks("AAA")) == 4  # two nights, two levels each


def test_not_enough_data_stores_a_null_row_with_the_reason(settings, csv_dir, dates, challenger):
    # fhs at 1% needs 500 standardized training returns; PRICE_DAYS of prices give fewer.
    record = run(settings, csv_dir, dates[0], distribution="fhs", levels="0.01")
    assert record["status"] == "ok", record["error"]
    assert record["risk"]["levels"] is None
    assert record["risk"]["reason"].startswith("not enough data: fhs at level 0.01 needs")
    (row,) = ForecastHistory(settings.forecasts_db).risks("AAA")
    assert (row["level"], row["var"], row["es"]) == (None, None, None)
    assert row["reason"] == record["risk"]["reason"] and row["distribution"] == "fhs"
    (entry,) = load_history(settings.forecasts_db, settings.prices_dir)
    score = entry.score()["risk"]
    assert (score["n_without_var"], score["reason"], score["levels"]) == (1, row["reason"], {})
    payload = entry.to_dict(with_score=True)
    assert payload["forecasts"][0]["risk"] == {
        "distribution": "fhs",
        "levels": None,
        "reason": row["reason"],
    }
    strict_json(json.dumps(payload))


def test_a_failed_commit_stores_no_risk(settings, csv_dir, dates, challenger, monkeypatch):
    real = ForecastHistory.transaction
    calls = []

    @contextlib.contextmanager
    def transaction(self):
        with real(self) as connection:
            yield connection
            calls.append(1)
            if len(calls) == 2:  # the run's own transaction (after the promotion intent)
                raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(ForecastHistory, "transaction", transaction)
    record = run(settings, csv_dir, dates[0])
    assert record["status"] == "failed" and record["error"] == "OperationalError: disk I/O error"
    history = ForecastHistory(settings.forecasts_db)
    assert history.forecasts() == [] and history.risks() == []


def test_nightly_refuses_a_bad_distribution_or_level(settings, csv_dir, dates):
    from forecaster.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown return distribution"):
        run(settings, csv_dir, dates[0], distribution="cauchy")
    with pytest.raises(ConfigError, match="outside"):
        run(settings, csv_dir, dates[0], levels="0.7")


# --- history --score: the live VaR backtest --------------------------------------------


def _forecast(prices, position, variance, horizon=1):
    return {
        "ticker": "SPY",
        "origin": f"{prices.index[position]:%Y-%m-%d}",
        "horizon": horizon,
        "model_version": "v1",
        "init": "zeros",
        "estimator": "garman-klass",
        "estimator_window": 22,
        "source": "sample",
        "variance": variance,
        "vol": math.sqrt(252 * variance),
    }


def _normal_risk(variance, levels, horizon=1):
    fitted = risks.fit_distribution("normal")
    values = {}
    for level in levels:
        var, es = risks.value_at_risk(np.array([variance]), horizon, fitted, level)
        values[risks.level_key(level)] = {"var": float(var[0]), "es": float(es[0])}
    return {"distribution": "normal", "levels": values, "reason": None, "fit": {"n": 0}}


def _kupiec_by_hand(hits: np.ndarray, alpha: float) -> float:
    n, x = hits.size, int(hits.sum())
    p_hat = x / n
    restricted = (n - x) * math.log(1 - alpha) + x * math.log(alpha)
    unrestricted = (n - x) * math.log(1 - p_hat) + (x * math.log(p_hat) if x else 0.0)
    return float(stats.chi2.sf(-2 * (restricted - unrestricted), 1))


@pytest.fixture
def scored(settings):
    """300 daily forecasts with normal VaR on a cached random walk; the last one pending."""
    prices = make_prices(400, seed=7)
    PriceStore(settings.prices_dir).write("SPY", "sample", prices, "test prices")
    history = ForecastHistory(settings.forecasts_db)
    rng = np.random.default_rng(3)
    squared = np.diff(np.log(prices["close"].to_numpy())) ** 2
    positions = list(range(100, 400))
    variances = {}
    with history.transaction() as connection:  # as the nightly job stores them
        for position in positions:
            # the last 20 days' mean squared return, often too small: breaches at 1%
            recent = float(squared[position - 20 : position].mean())
            variances[position] = recent * float(rng.uniform(0.2, 1.2))
            forecast = _forecast(prices, position, variances[position])
            assert history.insert_forecast(connection, forecast)
            history.insert_risk(
                connection, forecast, _normal_risk(variances[position], (0.01, 0.05))
            )
    return settings, prices, variances


def test_score_counts_breaches_and_kupiec_like_an_independent_computation(scored):
    settings, prices, variances = scored
    close = prices["close"].to_numpy()
    realized = [p for p in variances if p + 1 < len(prices)]
    assert len(realized) == 299  # the cache's last day is still pending
    returns = np.array([math.log(close[p + 1] / close[p]) for p in realized])
    (entry,) = load_history(settings.forecasts_db, settings.prices_dir)
    score = entry.score()["risk"]
    assert (score["n_without_var"], score["distributions"]) == (0, ["normal"])
    for level in (0.01, 0.05):
        var = np.array([math.sqrt(variances[p]) * stats.norm.ppf(level) for p in realized])
        hits = returns <= var
        got = score["levels"][risks.level_key(level)]
        assert (got["n"], got["n_pending"], got["n_tested"]) == (299, 1, 299)
        assert got["breaches"] == int(hits.sum()) and got["breaches"] > 0
        assert got["breach_rate"] == pytest.approx(hits.mean())
        assert got["kupiec"]["p_value"] == pytest.approx(_kupiec_by_hand(hits, level), rel=1e-9)
    light = score["levels"]["0.01"]["traffic_light"]
    var = np.array([math.sqrt(variances[p]) * stats.norm.ppf(0.01) for p in realized])
    last = (returns <= var)[-250:]
    zone = "green" if last.sum() <= 4 else "yellow" if last.sum() <= 9 else "red"
    assert light == {
        "window": 250,
        "start": f"{prices.index[realized[-250]]:%Y-%m-%d}",
        "end": f"{prices.index[realized[-1]]:%Y-%m-%d}",
        "breaches": int(last.sum()),
        "zone": zone,
    }
    assert score["levels"]["0.05"]["traffic_light"] is None
    assert "0.01 level" in score["levels"]["0.05"]["unavailable"]["traffic_light"]
    # the realized return is the one stored with each forecast in the JSON
    forecasts = entry.to_dict()["forecasts"]
    assert forecasts[0]["realized_return"] == pytest.approx(returns[0], rel=1e-12)
    assert forecasts[-1]["realized_return"] is None


def test_history_score_json_and_table(scored):
    result = run_cli("history", "--ticker", "SPY", "--score", "--format", "json")
    assert result.exit_code == 0, result.stderr
    strict_json(result.stdout)
    (payload,) = checked(result.stdout, "history")["tickers"]
    levels = payload["score"]["risk"]["levels"]
    assert set(levels) == {"0.01", "0.05"}
    assert set(levels["0.01"]) == {
        "level",
        "n",
        "n_pending",
        "breaches",
        "breach_rate",
        "n_tested",
        "kupiec",
        "traffic_light",
        "unavailable",
    }
    assert payload["forecasts"][0]["risk"]["levels"]["0.01"]["var"] < 0
    lines = run_cli("history", "--ticker", "SPY", "--format", "csv").stdout.splitlines()
    assert lines[0].endswith(",realized_return,distribution,var_0.01,es_0.01,var_0.05,es_0.05")
    first = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    stored = payload["forecasts"][0]
    assert float(first["var_0.01"]) == stored["risk"]["levels"]["0.01"]["var"]
    assert float(first["realized_return"]) == stored["realized_return"]
    assert first["distribution"] == "normal" and len(lines) == 301
    table = run_cli("history", "--ticker", "SPY", "--score").stdout
    assert f"VaR 1%: {levels['0.01']['breaches']} breaches in 299 realized" in table
    assert f"traffic light {levels['0.01']['traffic_light']['zone']}" in table


def test_few_scored_days_give_reasons_not_numbers(tmp_path):
    prices = make_prices(60, seed=8)
    PriceStore(tmp_path / "prices").write("SPY", "sample", prices, "test prices")
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    with history.transaction() as connection:
        for position in range(40, 60):
            forecast = _forecast(prices, position, 1e-4)
            assert history.insert_forecast(connection, forecast)
            history.insert_risk(connection, forecast, _normal_risk(1e-4, (0.01,)))
    (entry,) = load_history(tmp_path / "forecasts.sqlite", tmp_path / "prices")
    got = entry.score()["risk"]["levels"]["0.01"]
    assert got["n"] == 19 and got["breaches"] is not None
    assert got["kupiec"] is None and got["traffic_light"] is None
    assert got["unavailable"]["kupiec"].startswith("not enough data: coverage tests at level 0.01")
    assert got["unavailable"]["traffic_light"] == (
        "not enough data: the Basel traffic light needs 250 test days, got 19"
    )
    strict_json(json.dumps(entry.to_dict(with_score=True)))


def test_overlapping_h_day_returns_are_thinned_for_the_tests(tmp_path):
    prices = make_prices(260, seed=9)
    PriceStore(tmp_path / "prices").write("SPY", "sample", prices, "test prices")
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    with history.transaction() as connection:
        for position in range(50, 255):
            forecast = _forecast(prices, position, 1e-4, horizon=5)
            assert history.insert_forecast(connection, forecast)
            history.insert_risk(connection, forecast, _normal_risk(1e-4, (0.05,), horizon=5))
    (entry,) = load_history(tmp_path / "forecasts.sqlite", tmp_path / "prices")
    got = entry.score()["risk"]["levels"]["0.05"]
    close = prices["close"].to_numpy()
    realized = [p for p in range(50, 255) if p + 5 < len(prices)]
    returns = np.array([math.log(close[p + 5] / close[p]) for p in realized])
    hits = returns <= math.sqrt(5e-4) * stats.norm.ppf(0.05)
    assert got["n"] == len(realized) and got["breaches"] == int(hits.sum())
    assert got["n_tested"] == len(range(0, len(realized), 5)) == 41
    assert got["kupiec"]["p_value"] == pytest.approx(_kupiec_by_hand(hits[::5], 0.05), rel=1e-9)


# --- an old history file keeps working ---------------------------------------------------

#: The schema of a history file written before VaR was stored (schema 2), as
#: `sqlite3 .schema` prints a file made by that code (commit 6d76f6c).
SCHEMA_2 = """
CREATE TABLE forecasts (
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
CREATE TABLE runs (
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
CREATE INDEX runs_by_data ON runs (ticker, fingerprint, status);
CREATE TABLE promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticker TEXT NOT NULL,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    previous_pointer BLOB,
    run TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def test_a_schema_2_history_opens_and_records_var(settings, csv_dir, dates, challenger):
    settings.forecasts_db.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(settings.forecasts_db)
    connection.executescript(SCHEMA_2)
    connection.execute("PRAGMA user_version = 2")
    connection.execute(
        "INSERT INTO forecasts VALUES ('AAA', '2015-01-05', 1, 'old', 'zeros', 'garman-klass', "
        "22, 'csv', 0.0001, 0.1587, '2015-01-05T22:00:00+00:00')"
    )
    connection.commit()
    connection.close()

    record = run(settings, csv_dir, dates[0], distribution="normal")
    assert record["status"] == "ok" and record["risk"]["levels"] is not None
    history = ForecastHistory(settings.forecasts_db)
    assert [row["model_version"] for row in history.forecasts("AAA")] == [
        "old",
        record["champion_version"],
    ]
    assert {row["origin"] for row in history.risks("AAA")} == {record["origin"]}
    connection = sqlite3.connect(settings.forecasts_db)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    connection.close()
    (entry,) = load_history(settings.forecasts_db, settings.prices_dir)
    old = entry.to_dict()["forecasts"][0]
    assert old["model_version"] == "old" and old["risk"] is None
    assert entry.score()["risk"]["n_without_var"] == 1  # the old forecast
    assert entry.score()["risk"]["reason"] == NOT_STORED
    assert ModelRegistry(settings.models_dir).champion_id("AAA") == record["champion_version"]


@pytest.mark.parametrize("fitted", [True, False])
def test_a_kept_champion_issues_its_own_var(
    settings, csv_dir, dates, challenger, monkeypatch, fitted
):
    first = run(settings, csv_dir, dates[0], distribution="normal")
    stand_in_step = protocol.challenge_step

    def worse_challenger(task, data, registry, record):
        challenge = stand_in_step(task, data, registry, record)
        return Challenge(
            **{
                **challenge.__dict__,
                "challenger_forecasts": 2 * challenge.champion_forecasts,
                "champion_forecaster": challenge.champion_forecaster if fitted else None,
            }
        )

    monkeypatch.setattr(protocol, "challenge_step", worse_challenger)
    second = run(settings, csv_dir, dates[1], distribution="normal")
    assert second["decision"] == "kept"
    assert second["champion_version"] == first["champion_version"]
    rows = ForecastHistory(settings.forecasts_db).risks("AAA")
    if fitted:
        sigma = math.sqrt(second["risk"]["overnight"]["factor"] * second["variance"])
        assert second["risk"]["levels"]["0.01"]["var"] == pytest.approx(
            sigma * stats.norm.ppf(0.01), rel=1e-12
        )
        assert [(row["origin"], row["level"]) for row in rows][2:] == [
            (second["origin"], 0.01),
            (second["origin"], 0.05),
        ]
    else:  # a champion without a fitted forecaster: issued, without VaR, saying why
        assert second["risk"] == {
            "distribution": "normal",
            "levels": None,
            "reason": f"no fitted forecaster of {first['champion_version']} in this run",
        }
        assert [(row["origin"], row["level"]) for row in rows][2:] == [(second["origin"], None)]
    assert {row["model_version"] for row in rows} == {first["champion_version"]}
