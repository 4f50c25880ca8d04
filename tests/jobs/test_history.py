"""Forecast history: idempotent inserts, completed runs, realized variance and live scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecaster.data.store import PriceStore
from forecaster.errors import DataError
from forecaster.jobs.history import (
    NOT_STORED,
    ForecastHistory,
    load_history,
    realized_variance,
)
from tests.conftest import make_prices


def _forecast(prices, position, horizon=1, variance=2e-5, version="v1", estimator="garman-klass"):
    return {
        "ticker": "SPY",
        "origin": f"{prices.index[position]:%Y-%m-%d}",
        "horizon": horizon,
        "model_version": version,
        "init": "encoder",
        "estimator": estimator,
        "estimator_window": 22,
        "source": "sample",
        "variance": variance,
        "vol": math.sqrt(252 * variance),
    }


def _garman_klass(prices) -> np.ndarray:
    """Reference: 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2, written out independently."""
    high, low = prices["high"].to_numpy(), prices["low"].to_numpy()
    open_, close = prices["open"].to_numpy(), prices["close"].to_numpy()
    return 0.5 * np.log(high / low) ** 2 - (2 * math.log(2) - 1) * np.log(close / open_) ** 2


def test_same_forecast_twice_is_one_row(tmp_path):
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    prices = make_prices(50)
    with history.transaction() as connection:
        assert history.insert_forecast(connection, _forecast(prices, 10)) is True
        assert history.insert_forecast(connection, _forecast(prices, 10, variance=9e-5)) is False
        assert history.insert_forecast(connection, _forecast(prices, 10, version="v2")) is True
    rows = history.forecasts("SPY")
    assert [(row["model_version"], row["variance"]) for row in rows] == [("v1", 2e-5), ("v2", 2e-5)]


def test_completed_run_ignores_failed_runs_and_other_data(tmp_path):
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    assert history.completed_run("SPY", "abc") is None  # no file yet
    history.record_run({"ticker": "SPY", "fingerprint": "abc", "status": "failed", "error": "x"})
    assert history.completed_run("SPY", "abc") is None
    history.record_run({"ticker": "SPY", "fingerprint": "abc", "status": "ok", "decision": "kept"})
    history.record_run({"ticker": "QQQ", "fingerprint": "def", "status": "ok"})
    found = history.completed_run("SPY", "abc")
    assert found["decision"] == "kept" and found["status"] == "ok"
    assert history.completed_run("SPY", "def") is None
    assert [run["status"] for run in history.runs("SPY")] == ["failed", "ok"]


def test_transaction_rolls_back_on_error(tmp_path):
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    prices = make_prices(50)
    with pytest.raises(RuntimeError, match="promotion failed"):
        with history.transaction() as connection:
            history.insert_forecast(connection, _forecast(prices, 10))
            history.insert_run(connection, {"ticker": "SPY", "status": "ok"})
            raise RuntimeError("promotion failed")
    assert history.forecasts() == [] and history.runs() == []


def test_corrupt_history_file_is_a_clear_error(tmp_path):
    path = tmp_path / "forecasts.sqlite"
    path.write_bytes(b"this is not a database, just some bytes" * 20)
    with pytest.raises(DataError, match=r"forecast history .*forecasts\.sqlite.* move the file"):
        ForecastHistory(path).forecasts()


@pytest.mark.parametrize("horizon", [1, 5])
def test_realized_variance_is_the_mean_over_the_days_after_origin(horizon):
    prices = make_prices(60, seed=3)
    reference = _garman_klass(prices)
    origin = f"{prices.index[40]:%Y-%m-%d}"
    value = realized_variance(prices, origin, horizon, "garman-klass", 22)
    assert value == pytest.approx(reference[41 : 41 + horizon].mean(), rel=1e-12)
    last_realized = len(prices) - 1 - horizon
    assert (
        realized_variance(
            prices, f"{prices.index[last_realized]:%Y-%m-%d}", horizon, "garman-klass", 22
        )
        is not None
    )
    pending = f"{prices.index[last_realized + 1]:%Y-%m-%d}"
    assert realized_variance(prices, pending, horizon, "garman-klass", 22) is None
    assert realized_variance(prices, "1990-01-02", horizon, "garman-klass", 22) is None


def test_realized_variance_uses_the_issuing_models_estimator():
    prices = make_prices(60, seed=4)
    parkinson = np.log(prices["high"] / prices["low"]).to_numpy() ** 2 / (4 * math.log(2))
    origin = f"{prices.index[30]:%Y-%m-%d}"
    assert realized_variance(prices, origin, 1, "parkinson", 22) == pytest.approx(parkinson[31])
    assert realized_variance(prices, origin, 1, "garman-klass", 22) != pytest.approx(parkinson[31])


def test_load_history_scores_realized_forecasts_against_the_cache(tmp_path):
    prices = make_prices(80, seed=5)
    PriceStore(tmp_path / "prices").write("SPY", "sample", prices.iloc[:70], "test prices")
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    variances = {60: 3e-5, 65: 1e-5, 68: 4e-5, 69: 2e-5}  # origin 69 is the cache's last day
    with history.transaction() as connection:
        for position, variance in variances.items():
            history.insert_forecast(connection, _forecast(prices, position, variance=variance))

    (spy,) = load_history(tmp_path / "forecasts.sqlite", tmp_path / "prices", "SPY")
    reference = _garman_klass(prices)
    realized = [row["realized_var"] for row in spy.forecasts]
    assert realized[:3] == pytest.approx([reference[61], reference[66], reference[69]], rel=1e-12)
    assert realized[3] is None

    score = spy.score()
    target = np.array([reference[61], reference[66], reference[69]])
    forecast = np.array([3e-5, 1e-5, 4e-5])
    ratio = target / forecast
    assert score["n"] == 3 and score["n_pending"] == 1
    assert score["qlike"] == pytest.approx(np.mean(ratio - np.log(ratio) - 1), rel=1e-10)
    assert score["mse"] == pytest.approx(np.mean((target - forecast) ** 2), rel=1e-10)
    vol_error = np.sqrt(252 * forecast) - np.sqrt(252 * target)
    assert score["bias"] == pytest.approx(vol_error.mean(), rel=1e-10)
    assert score["mae_vol"] == pytest.approx(np.abs(vol_error).mean(), rel=1e-10)

    payload = spy.to_dict(with_score=True)
    assert set(payload) == {"ticker", "forecasts", "score"}
    assert set(payload["forecasts"][0]) >= {
        "origin",
        "horizon",
        "model_version",
        "init",
        "variance",
        "vol",
        "created_at",
        "realized_var",
    }
    assert "score" not in spy.to_dict()


def test_nothing_realized_scores_as_empty(tmp_path):
    prices = make_prices(40, seed=6)
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    with history.transaction() as connection:
        history.insert_forecast(connection, _forecast(prices, 39))
    (spy,) = load_history(tmp_path / "forecasts.sqlite", tmp_path / "prices")  # no cache at all
    assert spy.forecasts[0]["realized_var"] is None
    assert spy.score() == {
        "n": 0,
        "n_pending": 1,
        "qlike": None,
        "mse": None,
        "mae_vol": None,
        "bias": None,
        "risk": {
            "return": "log close-to-close return over the h trading days after the origin",
            "distributions": [],
            "n_without_var": 1,
            "reason": NOT_STORED,
            "levels": {},
        },
    }
    assert load_history(tmp_path / "missing.sqlite", tmp_path / "prices") == []
