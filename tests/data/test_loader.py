"""Source selection: auto's cache / Yahoo / fallback rules, csv, reporting."""

from __future__ import annotations

import pandas as pd
import pytest
import yfinance as yf
from curl_cffi.requests.exceptions import DNSError
from yfinance.exceptions import YFRateLimitError, YFTzMissingError

from forecaster.data.loader import load_cached, load_prices, parse_date
from forecaster.data.sources import NetworkError, UnknownTickerError
from forecaster.errors import ConfigError, DataError
from forecaster.settings import Settings
from tests.conftest import make_prices, write_csv
from tests.data.test_sources import flaky_history, yahoo_history_frame


@pytest.fixture
def settings(tmp_path):
    return Settings.resolve(tmp_path)


def fail_with(monkeypatch, failure):
    def history(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(yf.Ticker, "history", history)


def serve(monkeypatch, frame):
    calls = []

    def history(self, *args, **kwargs):
        calls.append(kwargs)
        start = pd.Timestamp(kwargs.get("start", "1900-01-01")).tz_localize("America/New_York")
        return frame.loc[start:].copy()

    monkeypatch.setattr(yf.Ticker, "history", history)
    return calls


def test_auto_falls_back_to_sample_for_spy_with_warning(monkeypatch, settings):
    fail_with(monkeypatch, DNSError("Could not resolve host"))
    data = load_prices("spy", settings=settings)
    assert data.source == "sample" and len(data.prices) == 5031
    assert data.warnings == (
        "warning: Yahoo unreachable; using offline sample data instead: S&P 500 index (arch "
        "sample data, 1999-2018) standing in for SPY, 1999-01-04 to 2018-12-31",
    )


def test_auto_never_falls_back_when_not_allowed(monkeypatch, settings):
    fail_with(monkeypatch, DNSError("Could not resolve host"))
    with pytest.raises(NetworkError, match="could not reach Yahoo"):
        load_prices("SPY", settings=settings, allow_fallback=False)


def test_auto_other_ticker_offline_is_an_error(monkeypatch, settings):
    fail_with(monkeypatch, YFRateLimitError())
    with pytest.raises(DataError, match="rate-limited"):
        load_prices("AAPL", settings=settings)


def test_auto_unknown_ticker_does_not_fall_back(monkeypatch, settings):
    fail_with(monkeypatch, YFTzMissingError("SPYY"))
    with pytest.raises(UnknownTickerError):
        load_prices("SPYY", settings=settings)


def test_auto_uses_fresh_cache_without_network(monkeypatch, settings):
    serve(monkeypatch, yahoo_history_frame(80))
    first = load_prices("SPY", source="yahoo", settings=settings)
    fail_with(monkeypatch, AssertionError("network must not be touched"))
    second = load_prices("SPY", settings=settings)
    assert second.from_cache and second.source == "yahoo"
    pd.testing.assert_frame_equal(first.prices, second.prices)


def test_yahoo_incremental_update_asks_only_for_recent_days(monkeypatch, settings):
    full = yahoo_history_frame(80)
    serve(monkeypatch, full.iloc[:60])
    load_prices("SPY", source="yahoo", settings=settings)
    calls = serve(monkeypatch, full)
    data = load_prices("SPY", source="yahoo", settings=settings)
    assert data.added == 20 and len(data.prices) == 80
    asked_from = pd.Timestamp(calls[0]["start"])
    assert full.index[59].tz_localize(None) - asked_from <= pd.Timedelta(days=7)


def test_stale_cache_used_when_yahoo_down(monkeypatch, settings):
    serve(monkeypatch, yahoo_history_frame(80))
    load_prices("AAPL", source="yahoo", settings=settings)
    monkeypatch.setattr("forecaster.data.loader.CACHE_MAX_AGE", pd.Timedelta(0))
    fail_with(monkeypatch, DNSError("Could not resolve host"))
    data = load_prices("AAPL", settings=settings)
    assert data.from_cache and data.warnings[0].startswith(
        "warning: Yahoo unavailable (NetworkError)"
    )


def test_a_retried_yahoo_fetch_says_so_on_stderr(run, monkeypatch):
    flaky_history(monkeypatch, [DNSError("Could not resolve host")], yahoo_history_frame(80))
    result = run("fetch", "--ticker", "SPY", "--source", "yahoo")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "note: SPY: Yahoo unreachable on attempt 1 of 3 (DNSError: Could not resolve host); "
        "tried again after 1 s\n"
    )
    assert result.stdout.startswith("SPY: 80 rows")


def test_csv_source_reads_file_and_range(tmp_path, settings):
    path = tmp_path / "mine.csv"
    write_csv(path, make_prices(100))
    data = load_prices(
        "MINE", source="csv", csv_path=path, start=pd.Timestamp("2015-02-02"), settings=settings
    )
    assert data.source == "csv" and data.start == pd.Timestamp("2015-02-02")
    assert data.prices.index[-1] == make_prices(100).index[-1]


def test_a_csv_given_by_a_relative_path_is_located_absolutely(tmp_path, settings, monkeypatch):
    """Where the file is (recorded with a model, so `evaluate` can find it from any folder)."""
    write_csv(tmp_path / "mine.csv", make_prices(100))
    monkeypatch.chdir(tmp_path)
    data = load_prices("MINE", source="csv", csv_path="mine.csv", settings=settings)
    assert data.location == tmp_path.resolve() / "mine.csv"
    cached = load_cached("MINE", "csv", settings=settings)
    assert cached.description == data.description and cached.prices.equals(data.prices)
    assert load_cached("OTHER", "csv", settings=settings) is None


def test_csv_needs_path(settings):
    with pytest.raises(ConfigError, match="--source csv needs --csv PATH"):
        load_prices("X", source="csv", settings=settings)


def test_start_after_end(settings):
    with pytest.raises(ConfigError, match="is after --end"):
        load_prices(
            "SPY",
            source="sample",
            start=pd.Timestamp("2018-01-01"),
            end=pd.Timestamp("2017-01-01"),
            settings=settings,
        )


def test_bad_date_option():
    with pytest.raises(
        ConfigError, match=r"--start 'yesterday-ish' is not a date; expected YYYY-MM-DD"
    ):
        parse_date("yesterday-ish", "--start")


def test_range_outside_data(settings):
    with pytest.raises(
        DataError,
        match=r"sample for SPY: no price rows from 2030-01-01 to 2030-02-01; .*adjust --start/--end",
    ):
        load_prices(
            "SPY",
            source="sample",
            start=pd.Timestamp("2030-01-01"),
            end=pd.Timestamp("2030-02-01"),
            settings=settings,
        )


def test_first_fetch_with_start_does_not_cut_later_full_history(settings):
    short = load_prices("SPY", source="sample", start=pd.Timestamp("2018-01-01"), settings=settings)
    assert short.start == pd.Timestamp("2018-01-02")
    full = load_prices("SPY", source="sample", settings=settings)
    assert full.start == pd.Timestamp("1999-01-04") and len(full.prices) == 5031
    again = load_prices("SPY", source="sample", settings=settings)
    assert again.added == 0 and len(again.prices) == 5031  # now incremental


def test_header_only_csv_is_an_error_and_keeps_the_cache(tmp_path, settings):
    good = tmp_path / "good.csv"
    write_csv(good, make_prices(60))
    load_prices("ABC", source="csv", csv_path=good, settings=settings)
    cache = settings.prices_dir / "ABC.csv.parquet"
    before = cache.read_bytes()
    empty = tmp_path / "empty.csv"
    empty.write_text("Date,Open,High,Low,Close\n")
    with pytest.raises(
        DataError, match=r"no price rows; expected at least one row.*cache was left as it was"
    ):
        load_prices("ABC", source="csv", csv_path=empty, settings=settings)
    assert cache.read_bytes() == before


def test_shorter_csv_reports_removed_rows(tmp_path, settings):
    path = tmp_path / "p.csv"
    write_csv(path, make_prices(100))
    load_prices("ABC", source="csv", csv_path=path, settings=settings)
    write_csv(path, make_prices(100).iloc[:70])
    data = load_prices("ABC", source="csv", csv_path=path, settings=settings)
    assert data.removed == 30 and len(data.prices) == 70


def test_fresh_yahoo_cache_outside_range_is_a_clean_error(monkeypatch, settings):
    serve(monkeypatch, yahoo_history_frame(80))
    load_prices("SPY", source="yahoo", settings=settings)
    with pytest.raises(
        DataError, match=r"cached SPY from Yahoo: no rows from 2030-01-01 onwards; the data covers"
    ):
        load_prices("SPY", start=pd.Timestamp("2030-01-01"), settings=settings)
