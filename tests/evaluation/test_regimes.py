"""Regime thresholds: fit on training rows only, labels strictly above."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import ConfigError, EvaluationError
from forecaster.evaluation.regimes import RegimeThresholds, fit_thresholds, label


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


def test_thresholds_ignore_rows_after_training(history):
    n_train = 300
    before = fit_thresholds(history["trailing"][:n_train], history["target"][:n_train])

    shocked = history.copy()
    shocked.iloc[n_train:] *= 50.0  # a crash in the test period
    after = fit_thresholds(shocked["trailing"][:n_train], shocked["target"][:n_train])
    full = fit_thresholds(shocked["trailing"], shocked["target"])

    assert after == before
    # the shock would have moved thresholds fit on all rows: the test can fail
    assert full.ex_ante_var > before.ex_ante_var
    assert full.ex_post_var > before.ex_post_var


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
