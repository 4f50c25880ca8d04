"""Shared fixtures: small, seeded, real-shaped price data, an isolated home, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from forecaster.cli import cli
from forecaster.models.config import LSTMConfig

#: A tiny LSTM (4 units, 2 epochs, one member) on short windows: seconds to train on ~400 days.
TINY = LSTMConfig(units=4, lookback=10, context=42, epochs=2, patience=1, ensemble=1)


def make_prices(n: int = 400, seed: int = 0, start: str = "2015-01-02") -> pd.DataFrame:
    """A geometric random walk with a consistent OHLC range (validated-frame shape)."""
    rng = np.random.default_rng(seed)
    dates = pd.DatetimeIndex(pd.bdate_range(start, periods=n).as_unit("ns"), name="date", freq=None)
    sigma = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # slowly varying volatility
    close = 100 * np.exp(np.cumsum(rng.normal(0, sigma)))
    open_ = close * np.exp(rng.normal(0, sigma / 3))
    open_[1:] = close[:-1] * np.exp(rng.normal(0, sigma[1:] / 3))
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0, sigma / 2)))
    low = bottom * np.exp(-np.abs(rng.normal(0, sigma / 2)))
    volume = rng.integers(1_000_000, 5_000_000, n).astype(float)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=dates
    )


def write_csv(path, prices: pd.DataFrame) -> None:
    """Write prices as a user's CSV (Date, Open, High, Low, Close, Volume)."""
    frame = prices.rename(columns=str.title)
    frame.index = frame.index.strftime("%Y-%m-%d")
    frame.index.name = "Date"
    frame.to_csv(path)


@pytest.fixture(autouse=True)
def yahoo_pauses(monkeypatch) -> list[float]:
    """Yahoo's retry waits, recorded instead of slept (no test waits on a mocked network)."""
    from forecaster.data import sources

    pauses: list[float] = []
    monkeypatch.setattr(sources, "_pause", pauses.append)
    return pauses


@pytest.fixture
def prices() -> pd.DataFrame:
    return make_prices()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty data home; FORECAST_HOME points at it."""
    monkeypatch.setenv("FORECAST_HOME", str(tmp_path))
    return tmp_path


def run_cli(*args: str) -> Result:
    """Run ``forecast ARGS`` in-process; exceptions other than exits propagate."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def run(home):
    """``forecast ARGS`` in-process, against the isolated home."""
    return run_cli


def fake_record(ticker: str = "SPY", version: str = "v1", **config):
    """A valid model record with placeholder fitted state (for registry tests, no TensorFlow)."""
    from forecaster.models.config import LSTMConfig
    from forecaster.models.record import DataRecord, ModelRecord

    return ModelRecord(
        ticker=ticker,
        version=version,
        package_version="test",
        created_at="2026-01-01T00:00:00+00:00",
        config=LSTMConfig(**{"init": "zeros", **config}),
        network={"n_features": 3, "context_size": 12, "unroll": True},
        scaler={},
        scale=1.0,
        data=DataRecord("csv", "test prices", "2015-01-02", "2016-07-01", 400, "0" * 16),
        split={"test_start": "2016-03-01", "test_end": "2016-06-30"},
        training={},
        metrics={},
    )


def stand_in_challenge(window_days: int, save_version, forecaster=None):
    """A nightly challenge step without TensorFlow: a stand-in challenger forecasting the target
    exactly, against a champion forecasting twice the target (so the challenger is promoted).

    ``save_version(registry, ticker)`` saves a placeholder version and returns its id;
    ``forecaster()``, if given, makes the fitted forecaster each model issues VaR/ES with.
    """
    from forecaster.jobs.nightly import Challenge

    def challenge_step(task, data, registry, record):
        champion_id = registry.champion_id(task.ticker)
        champion = registry.get(task.ticker, champion_id) if champion_id else None
        record.previous_champion = champion_id
        origins = data.prices.index
        window = origins[-window_days - 1 : -1]
        record.window_start, record.window_end = f"{window[0]:%Y-%m-%d}", f"{window[-1]:%Y-%m-%d}"
        record.horizon = 1
        challenger = registry.get(task.ticker, save_version(registry, task.ticker))
        record.challenger_version = challenger.version
        truth = pd.Series(np.linspace(1e-4, 2e-4, len(origins)), index=origins)
        forecasters = {}
        if forecaster is not None:
            forecasters["challenger_forecaster"] = forecaster()
            forecasters["champion_forecaster"] = forecaster() if champion is not None else None
        return Challenge(
            champion=champion,
            challenger=challenger,
            window=window,
            target=truth[window].to_numpy(),
            challenger_forecasts=truth,
            champion_forecasts=2 * truth if champion is not None else None,
            **forecasters,
        )

    return challenge_step
