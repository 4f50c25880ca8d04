"""One test per validation rule, asserting the message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.validation import REPAIR_TOLERANCE, parse_dates, validate_prices
from forecaster.errors import DataError
from tests.conftest import make_prices


def raw(n: int = 30) -> pd.DataFrame:
    frame = make_prices(n).rename(columns=str.title)
    return frame


def test_clean_frame_passes_unchanged():
    frame = raw()
    result = validate_prices(frame, "test")
    assert list(result.prices.columns) == ["open", "high", "low", "close", "volume"]
    np.testing.assert_array_equal(result.prices["close"].to_numpy(), frame["Close"].to_numpy())
    assert result.repairs == {}


def test_columns_any_case_adj_close_ignored_volume_optional():
    frame = raw().drop(columns="Volume")
    frame.columns = [" OPEN", "high ", "Low", "close"]
    frame["Adj Close"] = 1.0
    result = validate_prices(frame, "test")
    assert result.prices["volume"].isna().all()
    assert "adj close" not in result.prices.columns


def test_missing_column_is_named():
    with pytest.raises(DataError, match=r"missing column\(s\) low.*received \[Open, High, Close"):
        validate_prices(raw()[["Open", "High", "Close"]], "test")


def test_unparseable_dates_are_named():
    dates = pd.Series(["2020-01-02", "2020-01-03", "not a date", "2020-01-07", "2020-13-45"])
    with pytest.raises(
        DataError, match=r"^test: 2 unparseable date\(s\): row 3 \('not a date'\), row 5"
    ):
        parse_dates(dates, "test")


def test_duplicated_dates_are_named():
    frame = raw(6)
    frame.index = frame.index[[0, 1, 2, 2, 4, 5]]
    with pytest.raises(
        DataError, match=r"1 duplicated date\(s\): \d{4}-\d\d-\d\d; expected one row"
    ):
        validate_prices(frame, "test")


def test_unsorted_dates_are_named():
    frame = raw(6).iloc[[0, 1, 3, 2, 4, 5]]
    expected = frame.index[3].strftime("%Y-%m-%d")
    with pytest.raises(
        DataError, match=rf"not in increasing order, 1 out-of-order date\(s\): {expected}"
    ):
        validate_prices(frame, "test")


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_or_non_finite_prices_are_named(value):
    frame = raw(10)
    frame.iloc[4, frame.columns.get_loc("Close")] = value
    day = frame.index[4].strftime("%Y-%m-%d")
    with pytest.raises(
        DataError, match=rf"1 date\(s\) with missing, non-finite or non-positive prices: {day}"
    ):
        validate_prices(frame, "test")


def test_many_offenders_show_first_five_and_count():
    frame = raw(20)
    frame["Close"] = -1.0
    with pytest.raises(
        DataError, match=r"20 date\(s\) .*: [\d-]+, [\d-]+, [\d-]+, [\d-]+, [\d-]+ and 15 more"
    ):
        validate_prices(frame, "test")


def test_high_below_open_close_is_an_error():
    frame = raw(10)
    frame.iloc[3, frame.columns.get_loc("High")] = frame["Open"].iloc[3] * 0.95
    frame.iloc[3, frame.columns.get_loc("Close")] = frame["Open"].iloc[3]
    day = frame.index[3].strftime("%Y-%m-%d")
    with pytest.raises(DataError, match=rf"1 date\(s\) where high < max\(open, close\).*: {day}"):
        validate_prices(frame, "test")


def test_low_above_open_close_is_an_error():
    frame = raw(10)
    bottom = min(frame["Open"].iloc[7], frame["Close"].iloc[7])
    frame.iloc[7, frame.columns.get_loc("Low")] = bottom * 1.05
    with pytest.raises(DataError, match=r"low > min\(open, close\)"):
        validate_prices(frame, "test")


def test_tiny_inconsistencies_are_repaired_and_counted():
    frame = raw(10)
    top = max(frame["Open"].iloc[2], frame["Close"].iloc[2])
    frame.iloc[2, frame.columns.get_loc("High")] = top * (1 - REPAIR_TOLERANCE / 10)
    bottom = min(frame["Open"].iloc[5], frame["Close"].iloc[5])
    frame.iloc[5, frame.columns.get_loc("Low")] = bottom * (1 + REPAIR_TOLERANCE / 10)
    result = validate_prices(frame, "test")
    assert result.repairs == {
        "high raised to max(open, close)": 1,
        "low lowered to min(open, close)": 1,
    }
    assert result.prices["high"].iloc[2] == pytest.approx(top)
    assert result.prices["low"].iloc[5] == pytest.approx(bottom)
    assert len(result.prices) == 10  # nothing dropped


def test_empty_frame_is_an_error():
    with pytest.raises(DataError, match=r"^test: no rows of prices; expected at least one row"):
        validate_prices(raw(10).iloc[0:0], "test")


def test_tz_aware_index_becomes_local_calendar_date():
    frame = raw(5)
    frame.index = frame.index.tz_localize("America/New_York")
    result = validate_prices(frame, "test")
    assert result.prices.index.tz is None
    assert result.prices.index[0] == raw(5).index[0]
