"""Realized-variance estimators checked against hand arithmetic and invariants."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.data.volatility import (
    BUILTIN_ESTIMATORS,
    BUILTIN_MEASURES,
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    VARIANCE_FLOOR,
    DailyVariance,
    VarianceEstimator,
    close_to_close,
    daily_variance,
    garman_klass,
    log_returns,
    parkinson,
    realized_vol,
    register_estimator,
    rogers_satchell,
    yang_zhang,
    yang_zhang_k,
)
from forecaster.errors import ConfigError, DataError

LN2 = math.log(2.0)

# Four hand-written days: (open, high, low, close).
BARS = [
    (100.0, 102.0, 99.0, 101.0),
    (101.5, 103.0, 100.0, 100.5),
    (100.0, 101.0, 98.0, 99.0),
    (99.5, 100.5, 97.5, 100.0),
]


def frame_from_bars(bars: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    index = pd.bdate_range("2020-01-01", periods=len(bars), name="date")
    frame = pd.DataFrame(bars, index=index, columns=["open", "high", "low", "close"])
    frame["volume"] = 1.0e6
    return frame


def synthetic_prices(n_rows: int, seed: int, daily_vol: float = 0.012) -> pd.DataFrame:
    """Seeded geometric random walk with a consistent OHLC range."""
    rng = np.random.default_rng(seed)
    overnight = rng.normal(0.0, daily_vol * 0.4, n_rows)
    intraday = rng.normal(0.0, daily_vol, n_rows)
    log_close = np.log(100.0) + np.cumsum(overnight + intraday)
    close = np.exp(log_close)
    open_ = np.exp(log_close - intraday)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, daily_vol * 0.5, n_rows)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, daily_vol * 0.5, n_rows)))
    index = pd.bdate_range("2010-01-04", periods=n_rows, name="date")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0e6}, index=index
    )


def sp500() -> pd.DataFrame:
    from arch.data import sp500 as sample

    raw = sample.load().drop(columns="Adj Close")
    raw.columns = raw.columns.str.lower()
    raw.index.name = "date"
    return raw.astype("float64")


# ---------------------------------------------------------------- hand-computed values


def test_log_returns_and_close_to_close_by_hand():
    prices = frame_from_bars(BARS)
    expected_returns = [math.log(100.5 / 101.0), math.log(99.0 / 100.5), math.log(100.0 / 99.0)]
    returns = log_returns(prices)
    assert math.isnan(returns.iloc[0])
    np.testing.assert_allclose(returns.iloc[1:], expected_returns, rtol=1e-13)
    variance = close_to_close(prices)
    assert math.isnan(variance.iloc[0])
    np.testing.assert_allclose(variance.iloc[1:], [r * r for r in expected_returns], rtol=1e-13)
    assert variance.index.equals(prices.index)


def test_parkinson_by_hand():
    expected = [
        math.log(102.0 / 99.0) ** 2 / (4 * LN2),
        math.log(103.0 / 100.0) ** 2 / (4 * LN2),
        math.log(101.0 / 98.0) ** 2 / (4 * LN2),
        math.log(100.5 / 97.5) ** 2 / (4 * LN2),
    ]
    np.testing.assert_allclose(parkinson(frame_from_bars(BARS)), expected, rtol=1e-13)


def test_garman_klass_by_hand():
    c = 2 * LN2 - 1
    expected = [
        0.5 * math.log(102.0 / 99.0) ** 2 - c * math.log(101.0 / 100.0) ** 2,
        0.5 * math.log(103.0 / 100.0) ** 2 - c * math.log(100.5 / 101.5) ** 2,
        0.5 * math.log(101.0 / 98.0) ** 2 - c * math.log(99.0 / 100.0) ** 2,
        0.5 * math.log(100.5 / 97.5) ** 2 - c * math.log(100.0 / 99.5) ** 2,
    ]
    np.testing.assert_allclose(garman_klass(frame_from_bars(BARS)), expected, rtol=1e-12)


def rs_by_hand(open_: float, high: float, low: float, close: float) -> float:
    return math.log(high / close) * math.log(high / open_) + math.log(low / close) * math.log(
        low / open_
    )


def test_rogers_satchell_by_hand():
    expected = [
        math.log(102.0 / 101.0) * math.log(102.0 / 100.0)
        + math.log(99.0 / 101.0) * math.log(99.0 / 100.0),
        math.log(103.0 / 100.5) * math.log(103.0 / 101.5)
        + math.log(100.0 / 100.5) * math.log(100.0 / 101.5),
        math.log(101.0 / 99.0) * math.log(101.0 / 100.0)
        + math.log(98.0 / 99.0) * math.log(98.0 / 100.0),
        math.log(100.5 / 100.0) * math.log(100.5 / 99.5)
        + math.log(97.5 / 100.0) * math.log(97.5 / 99.5),
    ]
    np.testing.assert_allclose(rogers_satchell(frame_from_bars(BARS)), expected, rtol=1e-12)


def test_yang_zhang_window_2_by_hand():
    k = 0.34 / (1.34 + 3.0 / 1.0)
    # Day 1 and 2 overnight / open-to-close returns and Rogers-Satchell terms.
    o1, o2, o3 = math.log(101.5 / 101.0), math.log(100.0 / 100.5), math.log(99.5 / 99.0)
    c1, c2, c3 = math.log(100.5 / 101.5), math.log(99.0 / 100.0), math.log(100.0 / 99.5)
    rs1, rs2, rs3 = (rs_by_hand(*bar) for bar in BARS[1:])
    # Sample variance (ddof=1) of two numbers a, b is (a - b)^2 / 2.
    at_2 = (o1 - o2) ** 2 / 2 + k * (c1 - c2) ** 2 / 2 + (1 - k) * (rs1 + rs2) / 2
    at_3 = (o2 - o3) ** 2 / 2 + k * (c2 - c3) ** 2 / 2 + (1 - k) * (rs2 + rs3) / 2
    result = yang_zhang(frame_from_bars(BARS), window=2)
    assert result.iloc[:2].isna().all()
    np.testing.assert_allclose(result.iloc[2:], [at_2, at_3], rtol=1e-12)


def test_yang_zhang_window_3_by_hand():
    k = 0.34 / (1.34 + 4.0 / 2.0)
    overnight = [math.log(101.5 / 101.0), math.log(100.0 / 100.5), math.log(99.5 / 99.0)]
    open_close = [math.log(100.5 / 101.5), math.log(99.0 / 100.0), math.log(100.0 / 99.5)]

    def sample_var(values: list[float]) -> float:
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / (len(values) - 1)

    v_rs = sum(rs_by_hand(*bar) for bar in BARS[1:]) / 3
    expected = sample_var(overnight) + k * sample_var(open_close) + (1 - k) * v_rs
    # the same arithmetic done once on paper, to 4 significant digits:
    # V_O = 3.317e-5, V_C = 7.489e-5, V_RS = 4.676e-4, k = 0.34 / 3.34 = 17/167 = 0.1018
    # -> 3.317e-5 + 0.1018 * 7.489e-5 + 0.8982 * 4.676e-4 = 4.608e-4
    assert sample_var(overnight) == pytest.approx(3.317e-5, rel=1e-3)
    assert sample_var(open_close) == pytest.approx(7.489e-5, rel=1e-3)
    assert v_rs == pytest.approx(4.676e-4, rel=1e-3)
    assert k == pytest.approx(17 / 167, rel=1e-14)
    assert expected == pytest.approx(4.608e-4, rel=1e-3)
    result = yang_zhang(frame_from_bars(BARS), window=3)
    assert result.iloc[:3].isna().all()
    assert result.iloc[3] == pytest.approx(expected, rel=1e-12)


def test_yang_zhang_too_short_is_all_nan():
    assert yang_zhang(frame_from_bars(BARS), window=4).isna().all()


# ---------------------------------------------------------------- daily_variance dispatch


@pytest.mark.parametrize(
    ("estimator", "function"),
    [
        ("close-to-close", close_to_close),
        ("parkinson", parkinson),
        ("garman-klass", garman_klass),
        ("rogers-satchell", rogers_satchell),
    ],
)
def test_daily_variance_dispatches_per_day_estimators(estimator, function):
    prices = synthetic_prices(60, seed=3)
    result = daily_variance(prices, estimator)
    assert isinstance(result, DailyVariance)
    assert result.estimator == estimator
    assert result.window is None
    assert result.n_floored == 0
    pd.testing.assert_series_equal(result.variance, function(prices), check_names=False)


def test_daily_variance_yang_zhang_records_window():
    prices = synthetic_prices(60, seed=4)
    result = daily_variance(prices, "yang-zhang", window=10)
    assert (result.estimator, result.window, result.n_floored) == ("yang-zhang", 10, 0)
    pd.testing.assert_series_equal(result.variance, yang_zhang(prices, 10), check_names=False)
    assert DEFAULT_ESTIMATOR == "garman-klass"
    assert daily_variance(prices).estimator == "garman-klass"


def test_unknown_estimator_lists_valid_names():
    prices = synthetic_prices(30, seed=1)
    message = (
        r"unknown volatility estimator 'bipower'; expected one of close-to-close, parkinson, "
        r"garman-klass, rogers-satchell, yang-zhang"
    )
    with pytest.raises(ConfigError, match=message):
        daily_variance(prices, "bipower")
    with pytest.raises(ConfigError, match=message):
        realized_vol(prices, "bipower")


# ---------------------------------------------------------------- the registry


def test_registry_holds_the_five_estimators_in_order():
    assert BUILTIN_ESTIMATORS == (
        "close-to-close",
        "parkinson",
        "garman-klass",
        "rogers-satchell",
        "yang-zhang",
    )
    # test-registered ones were removed; the measures a source provides follow the OHLC ones
    assert tuple(ESTIMATORS) == BUILTIN_ESTIMATORS + BUILTIN_MEASURES
    assert all(isinstance(record, VarianceEstimator) for record in ESTIMATORS.values())
    assert all(name == record.name for name, record in ESTIMATORS.items())
    # Leading NaN rows of each series, for a window of 10 days.
    undefined = {name: ESTIMATORS[name].undefined_rows(10) for name in BUILTIN_ESTIMATORS}
    assert undefined == {
        "close-to-close": 1,
        "parkinson": 0,
        "garman-klass": 0,
        "rogers-satchell": 0,
        "yang-zhang": 10,
    }
    prices = synthetic_prices(40, seed=2)
    for name, rows in undefined.items():
        variance = daily_variance(prices, name, window=10).variance
        assert variance.iloc[:rows].isna().all() and variance.iloc[rows:].notna().all(), name


def test_registering_a_taken_name_is_an_error():
    with pytest.raises(TypeError, match=r"estimator named 'parkinson' is already registered"):
        register_estimator("parkinson")(close_to_close)
    assert ESTIMATORS["parkinson"].function is parkinson


def test_an_estimator_registered_in_test_code_works_everywhere(scaled_close_to_close):
    """daily_variance and realized_vol take a sixth estimator with no other edit."""
    name = scaled_close_to_close
    prices = synthetic_prices(60, seed=5)
    result = daily_variance(prices, name, window=7)
    assert (result.estimator, result.window, result.n_floored) == (name, None, 0)
    pd.testing.assert_series_equal(result.variance, 2.0 * close_to_close(prices), check_names=False)
    np.testing.assert_allclose(
        realized_vol(prices, name, 5),
        math.sqrt(2.0) * realized_vol(prices, "close-to-close", 5),
        rtol=1e-13,
    )
    assert realized_vol(prices, name, 5).index.equals(prices.index[5:])
    with pytest.raises(DataError, match=r"needs at least 6 rows of prices, received 5"):
        realized_vol(prices.iloc[:5], name, 5)
    with pytest.raises(ConfigError, match=rf"expected one of .*yang-zhang, .*rk_twoscale, {name}$"):
        daily_variance(prices, "bipower")


@pytest.mark.parametrize("window", [1, 0, -3, 2.5, True])
def test_yang_zhang_window_below_two_is_config_error(window):
    prices = synthetic_prices(30, seed=1)
    match = rf"volatility window must be an integer of at least 2 days, received {window!r}"
    with pytest.raises(ConfigError, match=match):
        yang_zhang(prices, window)
    with pytest.raises(ConfigError, match=match):
        yang_zhang_k(window)
    with pytest.raises(ConfigError, match=match):
        daily_variance(prices, "yang-zhang", window)


def test_missing_columns_is_data_error():
    prices = synthetic_prices(10, seed=1).rename(columns={"high": "High"})
    with pytest.raises(DataError, match=r"missing column\(s\) \['high'\]"):
        parkinson(prices)


# ---------------------------------------------------------------- garman-klass floor


def test_garman_klass_floor_is_applied_and_counted():
    bars = [
        (100.0, 102.0, 99.0, 101.0),
        (100.0, 100.0, 100.0, 100.0),  # flat bar: exactly zero
        (100.0, 101.0, 99.0, 110.0),  # bad bar (close above high): negative
        (99.5, 100.5, 97.5, 100.0),
    ]
    prices = frame_from_bars(bars)
    raw_bad = 0.5 * math.log(101.0 / 99.0) ** 2 - (2 * LN2 - 1) * math.log(1.1) ** 2
    assert raw_bad < 0
    result = daily_variance(prices, "garman-klass")
    assert result.n_floored == 2
    assert result.variance.iloc[1] == VARIANCE_FLOOR
    assert result.variance.iloc[2] == VARIANCE_FLOOR
    assert result.variance.iloc[0] > VARIANCE_FLOOR
    pd.testing.assert_series_equal(garman_klass(prices), result.variance)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), flat=st.lists(st.booleans(), min_size=5, max_size=40))
def test_garman_klass_floor_count_matches_flat_bars(seed, flat):
    prices = synthetic_prices(len(flat), seed)
    mask = np.array(flat)
    for column in ("open", "high", "low"):
        prices.loc[mask, column] = prices.loc[mask, "close"]
    result = daily_variance(prices, "garman-klass")
    assert result.n_floored == int(mask.sum())
    assert (result.variance[mask] == VARIANCE_FLOOR).all()
    assert (result.variance[~mask] > VARIANCE_FLOOR).all()


# ---------------------------------------------------------------- properties

bar_strategy = st.tuples(
    st.floats(1.0, 1e4),  # open
    st.floats(1.0, 1e4),  # close
    st.floats(0.0, 0.2),  # extra above max(open, close), as a fraction (0 = touches)
    st.floats(0.0, 0.2),  # extra below min(open, close)
)


def bars_from_draws(draws: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    bars = [
        (open_, max(open_, close) * (1 + up), min(open_, close) * (1 - down), close)
        for open_, close, up, down in draws
    ]
    return frame_from_bars(bars)


@settings(max_examples=60, deadline=None)
@given(st.lists(bar_strategy, min_size=1, max_size=30))
def test_range_estimators_are_non_negative(draws):
    prices = bars_from_draws(draws)
    assert (rogers_satchell(prices) >= 0).all()
    assert (parkinson(prices) >= 0).all()
    assert (garman_klass(prices) >= VARIANCE_FLOOR).all()


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        # Yang & Zhang (2000), with alpha = 1.34: k = 0.34 / (1.34 + (n+1)/(n-1)).
        # Multiply through by 100 (n-1): k = 34 (n-1) / (134 (n-1) + 100 (n+1)) = 34 (n-1) / (234 n - 34).
        (2, 0.07834101382488479),  # 34 / 434 = 17/217
        (5, 0.11971830985915492),  # 136 / 1136 = 17/142
        (22, 0.1396167383652718),  # 34*21 / (234*22 - 34) = 714 / 5114 = 357/2557
        (252, 0.14480605423015577),  # 34*251 / (234*252 - 34) = 8534 / 58934 = 4267/29467
    ],
)
def test_yang_zhang_k_published_values(window, expected):
    assert yang_zhang_k(window) == pytest.approx(expected, rel=1e-14)


def test_yang_zhang_k_tends_to_0_34_over_2_34():
    # n -> infinity: (n+1)/(n-1) -> 1, k -> 0.34 / 2.34 = 0.1452991452...
    assert yang_zhang_k(10**9) == pytest.approx(0.1452991452991453, rel=1e-8)
    assert yang_zhang_k(2) < yang_zhang_k(22) < yang_zhang_k(252) < 0.1452991452991453


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), window=st.integers(2, 8))
def test_yang_zhang_uses_k_weight(seed, window):
    """Rebuild sigma2 from its three components with the published k."""
    prices = synthetic_prices(30, seed)
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    overnight = np.log(prices["open"] / prices["close"].shift(1))
    open_close = np.log(prices["close"] / prices["open"])
    rs = rogers_satchell(prices)
    expected = [np.nan] * window
    for end in range(window, len(prices)):
        days = slice(end - window + 1, end + 1)
        expected.append(
            overnight.iloc[days].var(ddof=1)
            + k * open_close.iloc[days].var(ddof=1)
            + (1 - k) * rs.iloc[days].mean()
        )
    np.testing.assert_allclose(yang_zhang(prices, window), expected, rtol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
    estimator=st.sampled_from(BUILTIN_ESTIMATORS),
)
def test_scaling_prices_changes_nothing(seed, scale, estimator):
    prices = synthetic_prices(40, seed)
    scaled = prices.copy()
    scaled[["open", "high", "low", "close"]] *= scale
    original = daily_variance(prices, estimator, window=5)
    rescaled = daily_variance(scaled, estimator, window=5)
    np.testing.assert_allclose(rescaled.variance, original.variance, rtol=1e-8, atol=1e-18)
    assert rescaled.n_floored == original.n_floored
    np.testing.assert_allclose(
        realized_vol(scaled, estimator, 5), realized_vol(prices, estimator, 5), rtol=1e-8
    )


# ---------------------------------------------------------------- realized_vol contract


@pytest.mark.parametrize("estimator", [e for e in BUILTIN_ESTIMATORS if e != "yang-zhang"])
@pytest.mark.parametrize("window", [1, 5])
def test_realized_vol_is_annualized_window_mean(estimator, window):
    prices = synthetic_prices(30, seed=7)
    daily = daily_variance(prices, estimator).variance.to_numpy()
    expected = {}
    for end in range(len(prices)):
        days = daily[end - window + 1 : end + 1] if end + 1 >= window else []
        if len(days) == window and not np.isnan(days).any():
            expected[prices.index[end]] = math.sqrt(252 * sum(days) / window)
    result = realized_vol(prices, estimator, window)
    assert result.name == "vol"
    assert not result.isna().any()
    first = window if estimator == "close-to-close" else window - 1
    assert result.index.equals(prices.index[first:])
    assert list(result.index) == list(expected)
    np.testing.assert_allclose(result.to_numpy(), list(expected.values()), rtol=1e-12)


def test_realized_vol_close_to_close_is_not_demeaned():
    # Constant 1% daily log return: demeaned variance would be 0, r^2 is not.
    close = 100.0 * np.exp(0.01 * np.arange(10))
    prices = frame_from_bars([(c, c * 1.001, c * 0.999, c) for c in close])
    result = realized_vol(prices, "close-to-close", 3)
    np.testing.assert_allclose(result, math.sqrt(252 * 0.01**2), rtol=1e-10)


def test_realized_vol_yang_zhang_is_window_estimate():
    prices = synthetic_prices(40, seed=11)
    result = realized_vol(prices, "yang-zhang", 6)
    sigma2 = yang_zhang(prices, 6)
    assert result.index.equals(prices.index[6:])
    np.testing.assert_allclose(result, np.sqrt(252 * sigma2.iloc[6:].to_numpy()), rtol=1e-13)


def test_realized_vol_too_short_is_data_error():
    with pytest.raises(DataError, match=r"needs at least 5 rows of prices, received 4"):
        realized_vol(frame_from_bars(BARS), "yang-zhang", 4)


def test_realized_vol_window_zero_is_config_error():
    with pytest.raises(ConfigError, match=r"at least 1 days, received 0"):
        realized_vol(frame_from_bars(BARS), "parkinson", 0)


def test_realized_vol_on_sp500_sample_starts_february_1999():
    prices = sp500()
    result = realized_vol(prices, "yang-zhang", 22)
    first = result.index[0]
    assert (first.year, first.month) == (1999, 2)
    assert first == prices.index[22]
    assert len(result) == len(prices) - 22
    # Long-run S&P 500 volatility 1999-2018 is in the mid-teens.
    assert 0.10 < result.mean() < 0.25
