"""Sources: yfinance mocked at Ticker.history (so yf.download's reshaping runs), csv, sample."""

from __future__ import annotations

import pandas as pd
import pytest
import yfinance as yf
from curl_cffi.requests.exceptions import DNSError
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTzMissingError
from yfinance.utils import empty_df

from forecaster.data import sources
from forecaster.errors import DataError
from tests.conftest import make_prices


def yahoo_history_frame(n: int = 60) -> pd.DataFrame:
    """Shaped like Ticker.history: flat, tz-aware exchange-local index, actions, no Adj Close."""
    frame = make_prices(n).rename(columns=str.title)
    frame.index = pd.DatetimeIndex(frame.index, name="Date").tz_localize("America/New_York")
    frame["Dividends"] = 0.0
    frame["Stock Splits"] = 0.0
    frame["Capital Gains"] = 0.0
    return frame


@pytest.fixture
def fake_history(monkeypatch):
    """Install a fake Ticker.history; returns the list of calls it received."""
    calls: list[dict] = []

    def install(result):
        def history(self, *args, **kwargs):
            calls.append({"ticker": self.ticker, **kwargs})
            if isinstance(result, BaseException):
                raise result
            return result.copy()

        monkeypatch.setattr(yf.Ticker, "history", history)
        return calls

    return install


def test_yahoo_history_shape_is_normalized(fake_history, tmp_path):
    calls = fake_history(yahoo_history_frame())
    frame = sources.fetch_yahoo("SPY", cache_dir=tmp_path)
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert len(frame) == 60
    assert calls[0]["auto_adjust"] is True and calls[0]["period"] == "max"


def test_yahoo_end_is_inclusive(fake_history, tmp_path):
    calls = fake_history(yahoo_history_frame())
    sources.fetch_yahoo(
        "SPY", pd.Timestamp("2020-01-02"), pd.Timestamp("2020-03-31"), cache_dir=tmp_path
    )
    assert calls[0]["start"] == "2020-01-02" and calls[0]["end"] == "2020-04-01"


def test_download_multiindex_shape_is_normalized(fake_history):
    fake_history(yahoo_history_frame())
    downloaded = yf.download(
        "SPY", start="2015-01-01", progress=False, auto_adjust=True, threads=False
    )
    assert isinstance(downloaded.columns, pd.MultiIndex)
    flat = sources.normalize_yahoo_frame(downloaded, "SPY")
    assert sorted(flat.columns) == ["Close", "High", "Low", "Open", "Volume"]
    assert len(flat) == 60


def test_download_failed_ticker_all_nan_counts_as_empty(fake_history):
    fake_history(empty_df())
    downloaded = yf.download(
        "ZZZZ", start="2015-01-01", progress=False, auto_adjust=True, threads=False
    )
    assert sources.normalize_yahoo_frame(downloaded, "ZZZZ").empty


@pytest.mark.parametrize(
    "failure",
    [YFTzMissingError("ZZZZ"), YFPricesMissingError("ZZZZ", "")],
    ids=["tz-missing", "prices-missing"],
)
def test_unknown_ticker_raised(fake_history, tmp_path, failure):
    fake_history(failure)
    with pytest.raises(
        sources.UnknownTickerError, match=r"Yahoo has no price data for 'ZZZZ'.*check the symbol"
    ):
        sources.fetch_yahoo("ZZZZ", cache_dir=tmp_path)


def test_unknown_ticker_empty_frame(fake_history, tmp_path):
    fake_history(empty_df())
    with pytest.raises(
        sources.UnknownTickerError, match=r"Yahoo returned no price data for 'ZZZZ'"
    ):
        sources.fetch_yahoo("ZZZZ", cache_dir=tmp_path)


def test_rate_limit_has_its_own_message(fake_history, tmp_path):
    fake_history(YFRateLimitError())
    with pytest.raises(sources.RateLimitError, match=r"rate-limited .* wait a few minutes"):
        sources.fetch_yahoo("SPY", cache_dir=tmp_path)


def test_network_failure_has_its_own_message(fake_history, tmp_path):
    fake_history(DNSError("Could not resolve host: query2.finance.yahoo.com"))
    with pytest.raises(
        sources.NetworkError, match=r"could not reach Yahoo for SPY \(DNSError: Could not resolve"
    ):
        sources.fetch_yahoo("SPY", cache_dir=tmp_path)


def flaky_history(monkeypatch, failures, frame=None):
    """Ticker.history failing with each of ``failures`` in turn, then returning ``frame``."""
    calls: list[str] = []
    pending = list(failures)

    def history(self, *args, **kwargs):
        calls.append(self.ticker)
        if pending:
            raise pending.pop(0)
        return frame.copy()

    monkeypatch.setattr(yf.Ticker, "history", history)
    return calls


def test_a_network_error_is_retried_and_the_retry_noted(monkeypatch, tmp_path, yahoo_pauses):
    calls = flaky_history(
        monkeypatch, [DNSError("Could not resolve host: query2.finance.yahoo.com")],
        yahoo_history_frame(),
    )  # fmt: skip
    notes: list[str] = []
    frame = sources.fetch_yahoo("SPY", cache_dir=tmp_path, on_retry=notes.append)
    assert len(frame) == 60 and calls == ["SPY", "SPY"]
    assert yahoo_pauses == [sources.YAHOO_BACKOFF_SECONDS[0]] == [1.0]
    assert notes == [
        "note: SPY: Yahoo unreachable on attempt 1 of 3 (DNSError: Could not resolve host: "
        "query2.finance.yahoo.com); tried again after 1 s"
    ]


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (YFTzMissingError("ZZZZ"), sources.UnknownTickerError),
        (YFPricesMissingError("ZZZZ", ""), sources.UnknownTickerError),
        (YFRateLimitError(), sources.RateLimitError),
    ],
    ids=["tz-missing", "prices-missing", "rate-limit"],
)
def test_an_unknown_ticker_or_a_rate_limit_is_not_retried(
    monkeypatch, tmp_path, yahoo_pauses, failure, kind
):
    calls = flaky_history(monkeypatch, [failure], yahoo_history_frame())
    with pytest.raises(kind):
        sources.fetch_yahoo("ZZZZ", cache_dir=tmp_path)
    assert calls == ["ZZZZ"] and yahoo_pauses == []


def test_a_network_down_on_every_attempt_is_one_error_naming_the_attempts(
    monkeypatch, tmp_path, yahoo_pauses
):
    down = [DNSError(f"Could not resolve host (attempt {n})") for n in (1, 2, 3)]
    calls = flaky_history(monkeypatch, down)
    notes: list[str] = []
    with pytest.raises(sources.NetworkError) as raised:
        sources.fetch_yahoo("SPY", cache_dir=tmp_path, on_retry=notes.append)
    assert str(raised.value) == (
        "could not reach Yahoo for SPY (DNSError: Could not resolve host (attempt 3); 3 "
        "attempts over 3 s); check the network, or use --source sample (SPY/QQQ) or --source "
        "csv --csv PATH"
    )
    assert len(calls) == sources.YAHOO_ATTEMPTS == 3
    assert yahoo_pauses == [1.0, 2.0] and len(notes) == 2


def test_errors_are_distinct_data_errors():
    kinds = {sources.NetworkError, sources.RateLimitError, sources.UnknownTickerError}
    assert all(issubclass(kind, DataError) for kind in kinds) and len(kinds) == 3


@pytest.mark.parametrize(
    "ticker,expected",
    [("SPY", "S&P 500"), ("^gspc", "S&P 500"), ("qqq", "NASDAQ"), ("^IXIC", "NASDAQ")],
)
def test_sample_maps_tickers(ticker, expected):
    assert expected in sources.sample_for(ticker).description
    frame = sources.fetch_sample(ticker)
    assert frame.index[0] == pd.Timestamp("1999-01-04") and len(frame) == 5031
    assert "Adj Close" not in frame.columns


def test_sample_unknown_ticker_lists_holdings():
    with pytest.raises(
        DataError, match=r"no data for 'AAPL'; it holds SPY \(S&P 500.*QQQ \(NASDAQ"
    ):
        sources.sample_for("AAPL")


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; pass --csv PATH"):
        sources.read_csv(tmp_path / "nope.csv")


def test_csv_without_date_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Day,Open,High,Low,Close\n2020-01-02,1,1,1,1\n")
    with pytest.raises(DataError, match=r"missing column Date; received \[Day, Open"):
        sources.read_csv(path)


def test_csv_empty_file(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("")
    with pytest.raises(DataError, match=r"could not be parsed"):
        sources.read_csv(path)


@pytest.mark.parametrize("module", ["arch.data.sp500", "arch.data.nasdaq"])
def test_sample_is_read_exactly_as_arch_loads_it(module):
    import importlib

    from forecaster.data.sources import _read_sample

    fast = _read_sample(module)
    pd.testing.assert_frame_equal(fast, importlib.import_module(module).load())
