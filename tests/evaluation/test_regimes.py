"""Regime thresholds: fit on training rows only, labels strictly above."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from forecaster.data.features import FeatureSpec, build_dataset
from forecaster.data.volatility import VARIANCE_FLOOR
from forecaster.errors import ConfigError, EvaluationError
from forecaster.evaluation import backtest
from forecaster.evaluation.regimes import RegimeThresholds, fit_thresholds, label
from tests.conftest import make_prices


def _linear_quantile(values: np.ndarray, quantile: float) -> float:
    """Reference: sort, then interpolate linearly at position (n - 1) * q."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * quantile
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


@pytest.fixture
def history() -> pd.DataFrame:
    """Trailing 22-day variance and target variance for 500 origins."""
    rng = np.random.default_rng(42)
    daily = (0.18**2 / 252) * rng.lognormal(0.0, 0.8, 522)
    trailing = np.convolve(daily, np.ones(22) / 22, mode="valid")[:500]
    target = daily[22:522]
    index = pd.bdate_range("2015-01-01", periods=500)
    return pd.DataFrame({"trailing": trailing, "target": target}, index=index)


@pytest.mark.parametrize("quantile", [0.8, 0.5, 0.95])
def test_fit_thresholds_are_training_quantiles(history, quantile):
    train = history.iloc[:300]
    thresholds = fit_thresholds(train["trailing"], train["target"], quantile=quantile)
    assert thresholds.quantile == quantile
    assert thresholds.ex_ante_var == pytest.approx(
        _linear_quantile(train["trailing"].to_numpy(), quantile), rel=1e-12
    )
    assert thresholds.ex_post_var == pytest.approx(
        _linear_quantile(train["target"].to_numpy(), quantile), rel=1e-12
    )


def _gk_by_hand(prices: pd.DataFrame) -> np.ndarray:
    """Garman–Klass daily variance written out here, floored like the target."""
    log_hl = np.log(prices["high"].to_numpy() / prices["low"].to_numpy())
    log_co = np.log(prices["close"].to_numpy() / prices["open"].to_numpy())
    return np.maximum(0.5 * log_hl**2 - (2 * math.log(2) - 1) * log_co**2, VARIANCE_FLOOR)


@pytest.mark.parametrize("horizon", [1, 5])
def test_backtest_thresholds_use_only_targets_realized_by_the_first_test_origin(horizon):
    """The backtest's thresholds against quantiles computed here from the prices.

    Reference: the 22-day trailing mean and the next-h-day mean of a hand-written
    Garman–Klass variance, over the origins whose target window ends on or before
    the first test origin. The test period is then shocked (every later day's range
    widened) and the backtest's thresholds must not move.
    """
    prices = make_prices(420, seed=11)
    spec = FeatureSpec(lookback=10, context=42, horizon=horizon)
    dataset = build_dataset(prices, spec)
    rows = np.flatnonzero(dataset.labeled())[-120:]  # the test period: the last 120 labeled
    first_origin = dataset.origins[rows[0]]
    cut = prices.index.get_loc(first_origin)

    variance = _gk_by_hand(prices)
    trailing, target = [], []
    for position in range(21, cut - horizon + 1):  # its target window ends by the cut
        if prices.index[position] < dataset.origins[0]:
            continue  # not an origin of the dataset (too little history before it)
        trailing.append(variance[position - 21 : position + 1].mean())
        target.append(variance[position + 1 : position + 1 + horizon].mean())
    assert len(trailing) == int(np.sum(dataset.origins < first_origin)) - horizon + 1

    shocked = prices.copy()
    later = prices.index > first_origin
    shocked.loc[later, "high"] *= 1.5
    shocked.loc[later, "low"] /= 1.5
    for frame in (prices, shocked):
        thresholds, labeled = backtest.test_period(build_dataset(frame, spec), rows, 0.8)
        assert thresholds.quantile == 0.8
        assert thresholds.ex_ante_var == pytest.approx(
            _linear_quantile(np.array(trailing), 0.8), rel=1e-9
        )
        assert thresholds.ex_post_var == pytest.approx(
            _linear_quantile(np.array(target), 0.8), rel=1e-9
        )
        assert labeled.index[0] == first_origin and len(labeled) == rows.size
    # the shock moves thresholds that also see the targets realized after the cut
    leaky = build_dataset(shocked, spec)
    seen = slice(0, int(rows[0]) + 1)
    moved = fit_thresholds(leaky.trailing_var[seen], leaky.floored_target()[seen])
    assert moved.ex_post_var != pytest.approx(_linear_quantile(np.array(target), 0.8), rel=1e-6)


def test_default_quantile_is_0_8(history):
    thresholds = fit_thresholds(history["trailing"], history["target"])
    assert thresholds.quantile == 0.8
    assert thresholds.ex_ante_var == pytest.approx(
        _linear_quantile(history["trailing"].to_numpy(), 0.8)
    )


def test_label_matches_loop_and_is_strict(history):
    thresholds = fit_thresholds(history["trailing"][:300], history["target"][:300])
    trailing = history["trailing"].to_numpy().copy()
    target = history["target"].to_numpy().copy()
    trailing[0] = thresholds.ex_ante_var  # exactly at the threshold -> not high
    target[1] = thresholds.ex_post_var

    high_ex_ante, high_ex_post = label(thresholds, trailing, target)

    assert high_ex_ante.dtype == bool and high_ex_post.dtype == bool
    assert high_ex_ante.tolist() == [value > thresholds.ex_ante_var for value in trailing]
    assert high_ex_post.tolist() == [value > thresholds.ex_post_var for value in target]
    assert not high_ex_ante[0] and not high_ex_post[1]
    # about 20% of training rows are high by construction
    assert high_ex_ante[:300].mean() == pytest.approx(0.2, abs=0.01)


def test_label_accepts_series(history):
    thresholds = RegimeThresholds(quantile=0.8, ex_ante_var=1e-4, ex_post_var=2e-4)
    high_ex_ante, high_ex_post = label(thresholds, history["trailing"], history["target"])
    np.testing.assert_array_equal(high_ex_ante, history["trailing"].to_numpy() > 1e-4)
    np.testing.assert_array_equal(high_ex_post, history["target"].to_numpy() > 2e-4)


def test_thresholds_vol_properties_and_dict():
    thresholds = RegimeThresholds(quantile=0.8, ex_ante_var=0.25**2 / 252, ex_post_var=4e-4)
    assert thresholds.ex_ante_vol == pytest.approx(0.25)
    assert thresholds.ex_post_vol == pytest.approx(math.sqrt(252 * 4e-4))
    as_dict = thresholds.to_dict()
    assert as_dict == {
        "quantile": 0.8,
        "ex_ante_var": thresholds.ex_ante_var,
        "ex_post_var": 4e-4,
        "ex_ante_vol": thresholds.ex_ante_vol,
        "ex_post_vol": thresholds.ex_post_vol,
    }
    assert RegimeThresholds.from_dict(as_dict) == thresholds
    with pytest.raises(dataclasses.FrozenInstanceError):
        thresholds.quantile = 0.9  # type: ignore[misc]


def test_from_dict_names_missing_keys():
    with pytest.raises(EvaluationError, match=r"missing \['ex_post_var'\]"):
        RegimeThresholds.from_dict({"quantile": 0.8, "ex_ante_var": 1e-4})


@pytest.mark.parametrize("quantile", [0.0, 1.0, 1.5, -0.2, True, "0.8", math.nan])
def test_fit_thresholds_rejects_bad_quantile(history, quantile):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        fit_thresholds(history["trailing"], history["target"], quantile=quantile)


def test_fit_thresholds_rejects_nan_and_empty(history):
    trailing = history["trailing"].to_numpy().copy()
    trailing[:21] = np.nan
    with pytest.raises(EvaluationError, match="train_trailing_var has 21 non-finite.*row 0"):
        fit_thresholds(trailing, history["target"])
    with pytest.raises(EvaluationError, match="train_target_var is empty"):
        fit_thresholds(history["trailing"], [])


def test_label_errors(history):
    thresholds = RegimeThresholds(quantile=0.8, ex_ante_var=1e-4, ex_post_var=2e-4)
    with pytest.raises(EvaluationError, match="trailing_var has 500 rows but target_var has 499"):
        label(thresholds, history["trailing"], history["target"][:-1])
    with pytest.raises(EvaluationError, match="must be a RegimeThresholds.*got dict"):
        label(thresholds.to_dict(), history["trailing"], history["target"])
    with pytest.raises(EvaluationError, match="target_var has 1 non-finite"):
        label(thresholds, [1e-4, 1e-4], [1e-4, np.inf])
