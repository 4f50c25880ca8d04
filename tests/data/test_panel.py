"""The --panel source: long-format files, per-ticker validation, caching, bad prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.data.loader import load_prices
from forecaster.data.panel import load_panel, read_panel, resolve_tickers
from forecaster.data.validation import validate_prices
from forecaster.errors import ConfigError, DataError
from forecaster.settings import Settings
from tests.conftest import make_prices

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def long_format(frames: dict[str, pd.DataFrame], ticker_column: str = "ticker") -> pd.DataFrame:
    parts = []
    for ticker, prices in frames.items():
        part = prices.reset_index().rename(columns={"index": "date"})
        part.insert(0, ticker_column, ticker)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def panel_csv(tmp_path) -> Path:
    frames = {name: make_prices(300, seed=i) for i, name in enumerate(["AAA", "BBB", "CCC"])}
    broken = make_prices(300, seed=9)
    broken.iloc[50, broken.columns.get_loc("close")] = -1.0
    frames["BAD"] = broken
    table = long_format(frames)
    table.columns = [c.upper() for c in table.columns]  # any case
    path = tmp_path / "panel.csv"
    table.to_csv(path, index=False)
    return path


def test_read_panel_any_case_and_symbol_column(tmp_path):
    frames = {"X": make_prices(50, seed=1), "Y": make_prices(50, seed=2)}
    path = tmp_path / "p.parquet"
    long_format(frames, "Symbol").to_parquet(path)
    panel = read_panel(path)
    assert panel.tickers == ["X", "Y"]
    assert len(panel.rows("Y")) == 50
    with pytest.raises(DataError, match="has no rows for 'Z'.*holds 2 tickers"):
        panel.rows("Z")


def test_read_panel_missing_column_is_one_error(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"ticker": ["A"], "date": ["2020-01-02"], "close": [1.0]}).to_csv(path)
    with pytest.raises(DataError, match="lacks column\\(s\\) open, high, low"):
        read_panel(path)


def test_resolve_tickers_all_default_and_unknown(panel_csv):
    assert resolve_tickers(panel_csv, None) == ["AAA", "BBB", "CCC", "BAD"]
    assert resolve_tickers(panel_csv, "all") == ["AAA", "BBB", "CCC", "BAD"]
    assert resolve_tickers(panel_csv, "ccc,aaa") == ["CCC", "AAA"]
    with pytest.raises(ConfigError, match="does not hold: ZZZ"):
        resolve_tickers(panel_csv, "AAA,ZZZ")


def test_bad_ticker_is_reported_and_skipped_others_cached(panel_csv, tmp_path):
    settings = Settings.resolve(tmp_path / "home")
    result = load_panel(
        ["AAA", "BAD", "CCC"],
        lambda t: load_prices(t, source="panel", panel_path=panel_csv, settings=settings),
    )
    assert [data.ticker for data in result.loaded] == ["AAA", "CCC"]
    assert list(result.failed) == ["BAD"]
    assert "non-positive" in result.failed["BAD"]
    for ticker in ("AAA", "CCC"):
        assert (settings.prices_dir / f"{ticker}.panel.parquet").is_file()
    assert not (settings.prices_dir / "BAD.panel.parquet").exists()


def test_cli_fetch_panel_names_the_skipped_ticker(run, panel_csv):
    result = run("fetch", "--panel", str(panel_csv))
    assert result.exit_code == 0, result.output
    assert "warning: skipped BAD:" in result.stderr
    assert "3 of 4 tickers cached, 1 skipped" in result.stdout
    assert result.stdout.count("rows,") == 3


def test_cli_tickers_without_panel_is_an_error(run):
    result = run("fetch", "--tickers", "AAA")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --tickers chooses tickers of a --panel file")


def _spiky(low_factor: float, seed: int = 0) -> pd.DataFrame:
    prices = make_prices(120, seed=seed)
    day = prices.index[80]
    prices.loc[day, "low"] = min(prices.loc[day, "open"], prices.loc[day, "close"]) * low_factor
    return prices


def test_bad_print_low_is_repaired_and_counted():
    prices = _spiky(0.15)  # like XL on 2015-08-24: a low far below the day's open and close
    validated = validate_prices(prices, "test")
    day = prices.index[80]
    body = min(prices.loc[day, "open"], prices.loc[day, "close"])
    assert validated.prices.loc[day, "low"] == pytest.approx(body)
    assert validated.repairs == {"bad-print low set to min(open, close)": 1}
    # every other row is untouched
    others = validated.prices.drop(index=day)
    pd.testing.assert_frame_equal(others, prices.drop(index=day))


def test_an_ordinary_wide_range_is_not_a_bad_print():
    prices = _spiky(0.97)  # a 3% wick: trading, not a bad print
    assert "bad-print low set to min(open, close)" not in validate_prices(prices, "t").repairs


def test_bad_print_decision_uses_only_earlier_rows():
    prices = _spiky(0.15)
    later = prices.copy()
    # much wider ranges after the day must not change the day's repair
    later.iloc[81:, later.columns.get_loc("low")] *= 0.5
    later.iloc[81:, later.columns.get_loc("high")] *= 1.5
    a = validate_prices(prices, "t").prices.iloc[:81]
    b = validate_prices(later, "t").prices.iloc[:81]
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.skipif(not (SHARED / "stocks_daily.parquet").is_file(), reason="no shared data")
def test_real_bad_print_xl_2015_08_24_is_repaired():
    table = pd.read_parquet(SHARED / "stocks_daily.parquet", filters=[("ticker", "==", "XL")])
    frame = table.set_index(pd.to_datetime(table["date"]))[["open", "high", "low", "close"]]
    frame = frame.loc["2015-01-01":"2015-12-31"]
    assert frame.loc["2015-08-24", "low"] == pytest.approx(5.14, abs=0.01)
    validated = validate_prices(frame, "XL")
    repaired = validated.prices.loc["2015-08-24"]
    assert repaired["low"] == pytest.approx(min(repaired["open"], repaired["close"]))
    assert validated.repairs["bad-print low set to min(open, close)"] == 1
    assert np.log(validated.prices["high"] / validated.prices["low"]).max() < 0.2


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--tickers", "all"],
        ["predict", "--tickers", "ALL"],
        ["nightly", "--tickers", "all"],
    ],
)
def test_tickers_all_without_a_panel_is_one_error(run, args):
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "all means every ticker of a --panel file" in result.stderr
