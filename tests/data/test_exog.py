"""Exogenous inputs: reading, aligning without look-ahead, and their place in the features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.exog import align, build_exog, parse_exog_option, read_exog_file
from forecaster.data.features import FeatureSpec, build_dataset
from forecaster.errors import ConfigError, DataError
from tests.conftest import make_prices

SPEC = FeatureSpec(lookback=10, context=42, exog=("market", "VIX"))


def vix_like(index: pd.DatetimeIndex, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(15 * np.exp(np.cumsum(rng.normal(0, 0.05, len(index)))), index=index)


def exog_frame(prices: pd.DataFrame, vix: pd.Series) -> pd.DataFrame:
    market = make_prices(len(prices) + 20, seed=7, start=str(prices.index[0].date()))
    frame = build_exog(market, "garman-klass", 22)
    frame["VIX"] = vix
    return frame


def test_align_takes_the_latest_value_on_or_before_each_date():
    values = pd.Series([10.0, 20.0, 40.0], index=pd.to_datetime(["2020-01-02", "2020-01-06", "2020-01-08"]))
    dates = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-07", "2020-01-08"])
    out = align(values, pd.DatetimeIndex(dates), "X")
    assert np.isnan(out[0])  # before the series starts: not usable yet
    np.testing.assert_allclose(out[1:], np.log([10.0, 10.0, 20.0, 40.0]))


def test_align_refuses_a_stale_value():
    values = pd.Series([10.0, 20.0], index=pd.to_datetime(["2020-01-02", "2020-01-20"]))
    dates = pd.DatetimeIndex(pd.to_datetime(["2020-01-02", "2020-01-13", "2020-01-20"]))
    with pytest.raises(DataError, match="no value within 7 days before 2020-01-13"):
        align(values, dates, "X")


def test_a_future_change_of_vix_changes_nothing_before_its_date():
    prices = make_prices(400, seed=1)
    vix = vix_like(prices.index)
    base = build_dataset(prices, SPEC, exog_frame(prices, vix))
    cut = prices.index[300]
    shifted = vix.copy()
    shifted[shifted.index > cut] *= 3.0  # a different future (e.g. shifted or revised)
    later = build_dataset(prices, SPEC, exog_frame(prices, shifted))
    before = base.origins <= cut
    assert before.sum() > 100
    np.testing.assert_array_equal(base.sequence[before], later.sequence[before])
    np.testing.assert_array_equal(base.context[before], later.context[before])
    # and it does reach the inputs after its date
    assert not np.array_equal(base.sequence[~before], later.sequence[~before])


def test_exog_inputs_are_the_last_sequence_features():
    prices = make_prices(400, seed=1)
    vix = vix_like(prices.index)
    dataset = build_dataset(prices, SPEC, exog_frame(prices, vix))
    assert dataset.sequence.shape[2] == 5
    assert SPEC.features[-2:] == ("exog:market", "exog:VIX")
    last_day = dataset.positions[-1]
    assert dataset.sequence[-1, -1, 4] == pytest.approx(np.log(vix.iloc[last_day]), rel=1e-6)
    np.testing.assert_array_equal(dataset.sequence[-1], dataset.features[last_day - 9 : last_day + 1])


def test_an_input_that_starts_later_delays_the_first_origin():
    prices = make_prices(500, seed=1)
    vix = vix_like(prices.index).iloc[100:]
    plain = build_dataset(prices, FeatureSpec(lookback=10, context=42))
    late = build_dataset(prices, SPEC, exog_frame(prices, vix))
    assert late.origins[0] > plain.origins[0]
    assert np.isfinite(late.sequence).all()


def test_missing_input_is_one_error():
    with pytest.raises(DataError, match="need the exogenous input\\(s\\) VIX"):
        build_dataset(make_prices(400), SPEC, pd.DataFrame({"market": [1.0]}))


def test_parse_exog_option():
    assert parse_exog_option(("VIX=a.csv", "VXN = b.csv")) == {"VIX": "a.csv", "VXN": "b.csv"}
    for bad in ("VIX", "=a.csv", "market=a.csv", "V-X=a.csv"):
        with pytest.raises(ConfigError):
            parse_exog_option((bad,))


def test_read_cboe_history_and_date_value_files(tmp_path):
    cboe = tmp_path / "VIX_History.csv"
    cboe.write_text("DATE,OPEN,HIGH,LOW,CLOSE\n2020-01-02,13,14,12,13.5\n2020-01-03,14,15,13,14.5\n")
    plain = tmp_path / "x.csv"
    plain.write_text("date,value\n2020-01-03,2\n2020-01-02,1\n")
    np.testing.assert_allclose(read_exog_file(cboe, "VIX").to_numpy(), [13.5, 14.5])
    assert read_exog_file(plain, "X").to_numpy().tolist() == [1.0, 2.0]  # sorted by date
    negative = tmp_path / "neg.csv"
    negative.write_text("date,value\n2020-01-02,1\n2020-01-03,-2\n")
    with pytest.raises(DataError, match="non-positive value\\(s\\), first on 2020-01-03"):
        read_exog_file(negative, "X")
