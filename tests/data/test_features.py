"""Dataset building without look-ahead, chronological splits and scaling."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.data.features import (
    MIN_ORIGINS,
    SEQUENCE_FEATURES,
    TRAILING_DAYS,
    Dataset,
    FeatureScaler,
    FeatureSpec,
    build_dataset,
    split_dataset,
)
from forecaster.data.volatility import (
    BUILTIN_ESTIMATORS,
    VARIANCE_FLOOR,
    close_to_close,
    daily_variance,
)
from forecaster.errors import ConfigError, DataError

SMALL = {"lookback": 5, "context": 10, "block": 5, "window": 4}


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


def garman_klass_by_hand(prices: pd.DataFrame) -> list[float]:
    out = []
    for open_, high, low, close in prices[["open", "high", "low", "close"]].itertuples(index=False):
        value = (
            0.5 * math.log(high / low) ** 2 - (2 * math.log(2) - 1) * math.log(close / open_) ** 2
        )
        out.append(max(value, VARIANCE_FLOOR))
    return out


def sp500() -> pd.DataFrame:
    from arch.data import sp500 as sample

    raw = sample.load().drop(columns="Adj Close")
    raw.columns = raw.columns.str.lower()
    raw.index.name = "date"
    return raw.astype("float64")


# ---------------------------------------------------------------- FeatureSpec


def test_spec_defaults_and_round_trip():
    spec = FeatureSpec()
    assert (spec.lookback, spec.context, spec.horizon) == (22, 252, 1)
    assert (spec.estimator, spec.window, spec.block, spec.n_blocks) == ("garman-klass", 22, 21, 12)
    custom = FeatureSpec(lookback=10, context=40, horizon=5, estimator="yang-zhang", block=20)
    assert FeatureSpec.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon": 0}, r"horizon must be an integer of at least 1, received 0"),
        ({"lookback": 1}, r"lookback must be an integer of at least 2, received 1"),
        (
            {"context": 250},
            r"context must be at least block \(21 days\) and a multiple of it, "
            r"received context=250; pass e.g. --context 231",
        ),
        ({"context": 10}, r"context must be at least block \(21 days\).*received context=10"),
        (
            {"estimator": "vix"},
            r"unknown volatility estimator 'vix'; expected one of "
            r"close-to-close, parkinson",
        ),
        ({"window": 1}, r"window must be an integer of at least 2, received 1"),
    ],
)
def test_spec_validation_messages(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FeatureSpec(**kwargs)


def test_spec_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['units'\]"):
        FeatureSpec.from_dict({"lookback": 22, "units": 32})


# ---------------------------------------------------------------- dataset contents


@pytest.mark.parametrize("horizon", [1, 3])
def test_dataset_rows_match_independent_computation(horizon):
    prices = synthetic_prices(120, seed=5)
    spec = FeatureSpec(horizon=horizon, **SMALL)
    dataset = build_dataset(prices, spec)
    variance = garman_klass_by_hand(prices)
    close = prices["close"].tolist()
    returns = [math.nan] + [math.log(close[i] / close[i - 1]) for i in range(1, len(close))]

    # First origin: day 0 has no return; trailing 22-day mean needs days 1..22.
    first = 1 + max(5 + 10, TRAILING_DAYS) - 1
    assert dataset.positions[0] == first
    assert dataset.origins.equals(prices.index[first:])
    assert len(dataset) == len(prices) - first
    assert dataset.sequence.shape == (len(dataset), 5, len(SEQUENCE_FEATURES))
    assert dataset.sequence.dtype == np.float32 and dataset.context.dtype == np.float32
    assert dataset.context.shape == (len(dataset), 2)
    assert dataset.target.dtype == np.float64
    assert dataset.estimator == "garman-klass" and dataset.n_floored == 0

    for row, position in enumerate(dataset.positions):
        days = range(position - 4, position + 1)
        expected_sequence = [[math.log(variance[d]), returns[d], abs(returns[d])] for d in days]
        np.testing.assert_allclose(dataset.sequence[row], expected_sequence, rtol=1e-6)
        context_start = position - 5 - 10 + 1
        expected_context = [
            sum(
                math.log(variance[d])
                for d in range(context_start + 5 * b, context_start + 5 * b + 5)
            )
            / 5
            for b in range(2)
        ]
        np.testing.assert_allclose(dataset.context[row], expected_context, rtol=1e-6)
        trailing = sum(variance[position - 21 : position + 1]) / 22
        assert dataset.trailing_var[row] == pytest.approx(trailing, rel=1e-12)
        if position + horizon < len(prices):
            expected_target = sum(variance[position + 1 : position + horizon + 1]) / horizon
            assert dataset.target[row] == pytest.approx(expected_target, rel=1e-12)
        else:
            assert math.isnan(dataset.target[row])

    labeled = dataset.labeled()
    assert labeled.dtype == bool
    assert labeled.sum() == len(dataset) - horizon
    assert not labeled[-horizon:].any() and labeled[:-horizon].all()
    assert dataset.origins[-1] == prices.index[-1]  # the newest origin is kept for forecasting


def test_dataset_keeps_full_series_for_baselines():
    prices = synthetic_prices(100, seed=6)
    dataset = build_dataset(prices, FeatureSpec(estimator="yang-zhang", **SMALL))
    expected = daily_variance(prices, "yang-zhang", 4).variance
    pd.testing.assert_series_equal(dataset.variance, expected)
    assert dataset.returns.index.equals(prices.index)
    assert dataset.returns.iloc[1] == pytest.approx(
        math.log(prices["close"].iloc[1] / prices["close"].iloc[0])
    )
    # Yang-Zhang's first value is at position window=4, then the trailing 22 days.
    assert dataset.positions[0] == 4 + TRAILING_DAYS - 1
    assert np.isfinite(dataset.sequence).all() and np.isfinite(dataset.context).all()


def test_zero_close_to_close_variance_is_floored_before_log():
    prices = synthetic_prices(120, seed=8)
    prices.iloc[60, prices.columns.get_loc("close")] = prices["close"].iloc[59]  # r_60 = 0
    dataset = build_dataset(prices, FeatureSpec(estimator="close-to-close", **SMALL))
    row = int(np.flatnonzero(dataset.positions == 60)[0])
    assert dataset.sequence[row, -1, 0] == np.float32(math.log(VARIANCE_FLOOR))
    assert np.isfinite(dataset.sequence).all()


def test_an_estimator_registered_in_test_code_builds_a_dataset(scaled_close_to_close):
    """build_dataset takes a sixth estimator (2 r_t^2) with no other edit."""
    prices = synthetic_prices(120, seed=13)
    spec = FeatureSpec(estimator=scaled_close_to_close, **SMALL)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    dataset = build_dataset(prices, spec)
    reference = build_dataset(prices, FeatureSpec(estimator="close-to-close", **SMALL))
    assert dataset.estimator == scaled_close_to_close and dataset.n_floored == 0
    assert np.array_equal(dataset.positions, reference.positions)
    pd.testing.assert_series_equal(dataset.variance, 2.0 * close_to_close(prices))
    np.testing.assert_allclose(dataset.target, 2.0 * reference.target, rtol=1e-13)
    np.testing.assert_allclose(dataset.trailing_var, 2.0 * reference.trailing_var, rtol=1e-13)
    np.testing.assert_allclose(
        dataset.sequence[..., 0], reference.sequence[..., 0] + np.float32(math.log(2.0)), rtol=1e-6
    )
    np.testing.assert_array_equal(dataset.sequence[..., 1:], reference.sequence[..., 1:])


def test_a_windowed_estimator_registered_in_test_code_sets_the_warm_up(rolling_close_to_close):
    """A windowed estimator's warm-up (window rows) comes from its registry record."""
    prices = synthetic_prices(120, seed=14)
    spec = FeatureSpec(estimator=rolling_close_to_close, **SMALL)  # window 4
    dataset = build_dataset(prices, spec)
    assert dataset.positions[0] == 4 + TRAILING_DAYS - 1
    expected = close_to_close(prices).rolling(4).mean()
    pd.testing.assert_series_equal(dataset.variance, expected, check_names=False)
    assert np.isfinite(dataset.sequence).all() and np.isfinite(dataset.context).all()
    match = (
        r"need at least 76 = .* \+ 3 warm-up rows for estimator 'rolling-close-to-close' "
        r"\(window 4\) \+ 7 rows to fill"
    )
    with pytest.raises(DataError, match=match):
        build_dataset(prices.iloc[:75], spec)


# ---------------------------------------------------------------- no look-ahead


def perturb_after(prices: pd.DataFrame, position: int, seed: int) -> pd.DataFrame:
    """Multiply every OHLC row after ``position`` by random factors (range kept valid)."""
    rng = np.random.default_rng(seed)
    changed = prices.copy()
    later = len(prices) - position - 1
    level = rng.uniform(0.5, 2.0, later)
    stretch = rng.uniform(1.0, 1.05, later)
    for column in ("open", "high", "low", "close"):
        factor = level * (stretch if column == "high" else 1 / stretch if column == "low" else 1)
        changed.iloc[position + 1 :, changed.columns.get_loc(column)] *= factor
    changed.iloc[position + 1 :, changed.columns.get_loc("open")] *= rng.uniform(0.97, 1.03, later)
    changed["high"] = changed[["open", "high", "close"]].max(axis=1)
    changed["low"] = changed[["open", "low", "close"]].min(axis=1)
    return changed


@pytest.mark.parametrize("estimator", BUILTIN_ESTIMATORS)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(40, 110), horizon=st.integers(1, 4))
def test_no_look_ahead(estimator, seed, cut, horizon):
    prices = synthetic_prices(120, seed)
    spec = FeatureSpec(horizon=horizon, estimator=estimator, **SMALL)
    original = build_dataset(prices, spec)
    changed = build_dataset(perturb_after(prices, cut, seed + 1), spec)
    assert original.origins.equals(changed.origins)
    known = original.positions <= cut
    assert known.any()
    for name in ("sequence", "context", "trailing_var"):
        before, after = getattr(original, name), getattr(changed, name)
        assert np.array_equal(before[known], after[known]), name
        # The check can fail: the perturbation does reach later origins.
        assert not np.array_equal(before[~known], after[~known]), name
    # Targets realized entirely by the cut are unchanged; those crossing it change.
    settled = original.positions + horizon <= cut
    assert np.array_equal(original.target[settled], changed.target[settled])
    crossing = known & ~settled & original.labeled()
    assert (original.target[crossing] != changed.target[crossing]).all()


# ---------------------------------------------------------------- too little history


def test_too_little_history_message_and_boundary():
    spec = FeatureSpec()  # lookback 22 + context 252 + horizon 1 + 50 origins = 325 rows
    prices = synthetic_prices(325, seed=2)
    assert build_dataset(prices.iloc[:325], spec).labeled().sum() == MIN_ORIGINS
    match = (
        r"too little price history: received 324 rows \(2010-01-04 to .*\), need at least 325 "
        r"= lookback 22 \+ context 252 \+ horizon 1 \+ 50 labeled origins; fetch a longer "
        r"history \(an earlier --start\) or use a smaller --context / --lookback"
    )
    with pytest.raises(DataError, match=match):
        build_dataset(prices.iloc[:324], spec)


def test_too_little_history_names_warm_up_rows():
    spec = FeatureSpec(lookback=5, context=10, block=5, estimator="yang-zhang", window=4)
    # First origin = 4 + 22 - 1 = 25, needed = 25 + 1 + 50 = 76 = 5 + 10 + 1 + 50 + 3 + 7.
    match = (
        r"received 75 rows .* need at least 76 = lookback 5 \+ context 10 \+ horizon 1 \+ 50 "
        r"labeled origins \+ 3 warm-up rows for estimator 'yang-zhang' \(window 4\) \+ 7 rows "
        r"to fill the 22-day trailing variance; fetch a longer history"
    )
    with pytest.raises(DataError, match=match):
        build_dataset(synthetic_prices(75, seed=2), spec)
    with pytest.raises(DataError, match=r"received 0 rows, need at least 76"):
        build_dataset(synthetic_prices(0, seed=2), spec)
    assert len(build_dataset(synthetic_prices(76, seed=2), spec)) == 51
    long_context = FeatureSpec(lookback=5, context=20, block=5, estimator="yang-zhang", window=4)
    with pytest.raises(
        DataError, match=r"need at least 79 = .* \+ 3 warm-up rows .* \(window 4\); "
    ):
        build_dataset(synthetic_prices(78, seed=2), long_context)


# ---------------------------------------------------------------- split


@pytest.fixture(scope="module")
def dataset_h5() -> Dataset:
    return build_dataset(synthetic_prices(500, seed=9), FeatureSpec(horizon=5, **SMALL))


def test_split_is_chronological_and_purged(dataset_h5):
    split = split_dataset(dataset_h5, test_fraction=0.2, validation_fraction=0.15)
    labeled_rows = np.flatnonzero(dataset_h5.labeled())
    n_test = round(0.2 * labeled_rows.size)
    assert np.array_equal(split.test, labeled_rows[-n_test:])
    before = labeled_rows[:-n_test]
    n_validation = round(0.15 * before.size)
    # Validation loses its last h-1 rows, train its last h-1 rows (labels reach 5 days ahead).
    assert np.array_equal(split.validation, before[-n_validation:][:-4])
    assert np.array_equal(split.train, before[: -n_validation - 4])
    assert split.n_purged == 8
    for earlier, later in ((split.train, split.validation), (split.validation, split.test)):
        assert np.all(np.diff(earlier) == 1)
        assert earlier[-1] + dataset_h5.horizon <= later[0]
    assert dataset_h5.labeled()[np.concatenate([split.train, split.validation, split.test])].all()
    dates = split.to_dict()
    assert dates["train_start"] == dataset_h5.origins[split.train[0]].date().isoformat()
    assert dates["validation_end"] == dataset_h5.origins[split.validation[-1]].date().isoformat()
    assert dates["test_end"] == dataset_h5.origins[labeled_rows[-1]].date().isoformat()
    assert (dates["n_train"], dates["n_validation"], dates["n_test"]) == (
        split.train.size,
        split.validation.size,
        split.test.size,
    )
    json.dumps(dates)


def test_split_horizon_one_purges_nothing():
    dataset = build_dataset(synthetic_prices(300, seed=10), FeatureSpec(**SMALL))
    split = split_dataset(dataset)
    assert split.n_purged == 0
    assert split.train[-1] + 1 == split.validation[0]
    assert split.validation[-1] + 1 == split.test[0]
    assert split.test[-1] == len(dataset) - 2  # the newest origin has no target


def test_split_with_test_start(dataset_h5):
    chosen = dataset_h5.origins[300]
    split = split_dataset(dataset_h5, test_start=str(chosen.date()))
    assert split.test[0] == 300
    assert (dataset_h5.origins[split.test] >= chosen).all()
    assert split.validation[-1] + 5 <= 300
    # A date that is not a trading day starts the test at the next origin.
    between = dataset_h5.origins[300] - pd.Timedelta(hours=12)
    assert split_dataset(dataset_h5, test_start=between).test[0] == 300


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"test_start": "1990-01-01"},
            ConfigError,
            r"test_start 1990-01-01 is outside the "
            r"labeled origins 2010-.* to 2011-.*; choose a date after",
        ),
        ({"test_start": "2030-01-01"}, ConfigError, r"test_start 2030-01-01 is outside"),
        (
            {"test_start": "not a date"},
            ConfigError,
            r"test_start must be a date like "
            r"2016-01-04, received 'not a date'",
        ),
        (
            {"test_start": "2010-03-15"},
            ConfigError,
            r"the split leaves \d+ training and \d+ "
            r"validation origins .* need at least 50 training and 1 validation origin; choose a "
            r"later test_start",
        ),
        (
            {"test_fraction": 0.0},
            ConfigError,
            r"test_fraction must be a number strictly "
            r"between 0 and 1, received 0.0",
        ),
        ({"test_fraction": 1.5}, ConfigError, r"test_fraction .* received 1.5"),
        ({"validation_fraction": 1.0}, ConfigError, r"validation_fraction .* received 1.0"),
        (
            {"test_fraction": 0.9},
            DataError,
            r"the split leaves \d+ training .* use a longer "
            r"price history or smaller test/validation fractions",
        ),
    ],
)
def test_split_errors(dataset_h5, kwargs, error, match):
    with pytest.raises(error, match=match):
        split_dataset(dataset_h5, **kwargs)


# ---------------------------------------------------------------- scaler


@pytest.fixture(scope="module")
def fitted(dataset_h5):
    split = split_dataset(dataset_h5)
    return split, FeatureScaler().fit(dataset_h5, split.train)


def test_scaler_statistics_come_from_train_rows(dataset_h5, fitted):
    split, scaler = fitted
    train_sequence = dataset_h5.sequence[split.train].astype(np.float64).reshape(-1, 3)
    train_context = dataset_h5.context[split.train].astype(np.float64)
    log_target = np.log(dataset_h5.target[split.train])
    np.testing.assert_allclose(scaler.sequence_mean, train_sequence.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.sequence_std, train_sequence.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.context_mean, train_context.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.context_std, train_context.std(axis=0), rtol=1e-12)
    assert scaler.target_mean == pytest.approx(log_target.mean(), rel=1e-12)
    assert scaler.target_std == pytest.approx(log_target.std(), rel=1e-12)

    scaled = scaler.transform_sequence(dataset_h5.sequence[split.train])
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.reshape(-1, 3).mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.reshape(-1, 3).std(axis=0), 1.0, rtol=1e-5)
    context = scaler.transform_context(dataset_h5.context[split.train])
    np.testing.assert_allclose(context.mean(axis=0), 0.0, atol=1e-5)
    z = scaler.transform_target(dataset_h5.target[split.train])
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0)
    np.testing.assert_allclose(scaler.inverse_target(z), dataset_h5.target[split.train], rtol=1e-12)


def test_scaler_ignores_rows_it_was_not_fitted_on(dataset_h5, fitted):
    split, scaler = fitted
    rng = np.random.default_rng(0)
    sequence, context, target = (
        dataset_h5.sequence.copy(),
        dataset_h5.context.copy(),
        dataset_h5.target.copy(),
    )
    others = np.concatenate([split.validation, split.test])
    sequence[others] = rng.normal(50.0, 9.0, sequence[others].shape)
    context[others] = rng.normal(-50.0, 9.0, context[others].shape)
    target[others] = rng.uniform(1.0, 2.0, others.size)
    altered = dataclasses.replace(dataset_h5, sequence=sequence, context=context, target=target)
    refit = FeatureScaler().fit(altered, split.train)
    assert refit.to_dict() == scaler.to_dict()
    # ...while changing a training row does move it.
    sequence[split.train[0]] += 1.0
    moved = FeatureScaler().fit(dataclasses.replace(altered, sequence=sequence), split.train)
    assert moved.to_dict() != scaler.to_dict()


def test_scaler_round_trips_through_json(dataset_h5, fitted):
    split, scaler = fitted
    payload = json.loads(json.dumps(scaler.to_dict()))
    assert payload["sequence_features"] == list(SEQUENCE_FEATURES)
    restored = FeatureScaler.from_dict(payload)
    assert restored.to_dict() == scaler.to_dict()
    rows = split.test
    np.testing.assert_array_equal(
        restored.transform_sequence(dataset_h5.sequence[rows]),
        scaler.transform_sequence(dataset_h5.sequence[rows]),
    )
    np.testing.assert_array_equal(
        restored.transform_context(dataset_h5.context[rows]),
        scaler.transform_context(dataset_h5.context[rows]),
    )
    np.testing.assert_array_equal(restored.inverse_target([0.5]), scaler.inverse_target([0.5]))


def test_scaler_errors(dataset_h5, fitted):
    _, scaler = fitted
    payload = scaler.to_dict()
    with pytest.raises(ConfigError, match=r"missing key\(s\) \['target_std'\]"):
        FeatureScaler.from_dict({k: v for k, v in payload.items() if k != "target_std"})
    with pytest.raises(ConfigError, match=r"scaler metadata is malformed: expected 3"):
        FeatureScaler.from_dict(payload | {"sequence_std": [1.0, 0.0, 1.0]})
    with pytest.raises(ConfigError, match=r"scaler metadata is malformed"):
        FeatureScaler.from_dict(payload | {"context_mean": "abc"})
    with pytest.raises(ConfigError, match=r"received 5 rows without a realized target"):
        FeatureScaler().fit(dataset_h5, np.arange(len(dataset_h5) - 10, len(dataset_h5)))
    with pytest.raises(ConfigError, match=r"needs a non-empty 1-d array of row indices"):
        FeatureScaler().fit(dataset_h5, np.array([], dtype=int))
    with pytest.raises(RuntimeError, match=r"not fitted"):
        FeatureScaler().transform_target(np.array([1e-4]))


# ---------------------------------------------------------------- real sample
# (its speed is measured by bench/build_dataset_speed.py, not asserted here)


def test_full_sp500_sample_builds_every_origin():
    prices = sp500()
    dataset = build_dataset(prices, FeatureSpec())
    first = 1 + 22 + 252 - 1  # day 0 has no return; lookback 22 + context 252 before it
    assert (len(prices), prices.index[0], prices.index[-1]) == (
        5031,
        pd.Timestamp("1999-01-04"),
        pd.Timestamp("2018-12-31"),
    )
    assert len(dataset) == len(prices) - first
    assert dataset.positions[0] == first and dataset.positions[-1] == len(prices) - 1
    assert dataset.origins[0] == prices.index[first]
    assert dataset.origins[-1] == prices.index[-1] == pd.Timestamp("2018-12-31")
    assert dataset.sequence.shape == (len(dataset), 22, len(SEQUENCE_FEATURES))
    assert dataset.context.shape == (len(dataset), 12)
    assert dataset.target.shape == dataset.trailing_var.shape == (len(dataset),)
    for name in ("sequence", "context", "trailing_var"):
        assert np.isfinite(getattr(dataset, name)).all(), name
    assert (dataset.trailing_var > 0).all()
    labeled = dataset.labeled()
    assert labeled.sum() == len(dataset) - 1 and not labeled[-1]
    assert (dataset.target[labeled] >= VARIANCE_FLOOR).all()
    # The last labeled target is the Garman-Klass variance of the last day.
    assert dataset.target[-2] == pytest.approx(garman_klass_by_hand(prices.iloc[-1:])[0])
    split = split_dataset(dataset)
    scaler = FeatureScaler().fit(dataset, split.train)
    assert np.isfinite(scaler.transform_sequence(dataset.sequence)).all()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_non_finite_prices_are_data_error():
    prices = synthetic_prices(120, seed=12)
    prices.iloc[70, prices.columns.get_loc("low")] = 0.0
    with pytest.raises(DataError, match=r"not finite on 1 day\(s\), first 2010-04-12"):
        build_dataset(prices, FeatureSpec(**SMALL))
