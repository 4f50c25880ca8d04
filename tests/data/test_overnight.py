"""The overnight factor (Hansen & Lunde 2005) behind close-to-close VaR/ES: no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.features import FeatureSpec, build_dataset, overnight_scale
from forecaster.errors import DataError
from forecaster.evaluation.risk import overnight_factor
from forecaster.models.baselines import GARCH, HAR
from tests.conftest import make_prices

SPEC = FeatureSpec(context=63)


def gapped_prices(n: int = 500, seed: int = 0, gap: float = 0.006) -> pd.DataFrame:
    """Prices whose open jumps away from the previous close: an overnight variance."""
    prices = make_prices(n, seed=seed).copy()
    rng = np.random.default_rng(seed + 100)
    jump = np.exp(gap * rng.standard_normal(n))
    for column in ("open", "high", "low", "close"):
        prices[column] = prices[column] * np.cumprod(jump)
    return prices


def test_the_factor_is_sum_of_squared_returns_over_sum_of_variances_before_the_cut():
    prices = gapped_prices()
    dataset = build_dataset(prices, SPEC)
    cut = dataset.origins[300]
    scale = overnight_scale(dataset, cut)
    before = prices.loc[prices.index < cut]
    log_return = np.log(before["close"].to_numpy()[1:] / before["close"].to_numpy()[:-1])
    high, low = before["high"].to_numpy()[1:], before["low"].to_numpy()[1:]
    open_, close = before["open"].to_numpy()[1:], before["close"].to_numpy()[1:]
    gk = 0.5 * np.log(high / low) ** 2 - (2 * np.log(2) - 1) * np.log(close / open_) ** 2
    assert scale.factor == pytest.approx((log_return**2).sum() / gk.sum(), rel=1e-12)
    assert scale.factor > 1.05  # the gaps are outside the session Garman-Klass sees
    assert (scale.n_days, scale.end) == (len(before) - 1, f"{before.index[-1]:%Y-%m-%d}")
    assert scale.to_dict()["method"] == "hansen-lunde-2005"


def test_no_look_ahead_the_test_period_never_moves_the_factor():
    prices = gapped_prices(seed=3)
    dataset = build_dataset(prices, SPEC)
    cut = dataset.origins[300]
    changed = prices.copy()
    later = changed.index >= cut
    changed.loc[later, ["open", "high", "low", "close"]] *= np.exp(
        np.random.default_rng(9).normal(0, 0.05, later.sum())
    )[:, None]
    changed.loc[later, "high"] = changed.loc[later, ["open", "high", "close"]].max(axis=1) * 1.03
    changed.loc[later, "low"] = changed.loc[later, ["open", "low", "close"]].min(axis=1) * 0.97
    perturbed = build_dataset(changed, SPEC)
    assert not np.allclose(perturbed.variance[later], dataset.variance[later])
    assert overnight_scale(perturbed, cut) == overnight_scale(dataset, cut)
    # One day more moves it: the cut is where the data stops.
    assert overnight_scale(perturbed, dataset.origins[301]) != overnight_scale(dataset, dataset.origins[301])


def test_close_to_close_needs_no_factor_and_garch_gets_none():
    prices = gapped_prices(seed=5)
    dataset = build_dataset(prices, FeatureSpec(context=63, estimator="close-to-close"))
    assert overnight_scale(dataset, dataset.origins[300]).factor == pytest.approx(1.0, rel=1e-12)
    session = build_dataset(prices, SPEC)
    cut = session.origins[300]
    assert overnight_factor(GARCH(), session, cut) == 1.0  # a model of the returns' variance
    assert overnight_factor(HAR(), session, cut) == overnight_scale(session, cut).factor


def test_too_few_days_before_the_cut_is_one_error():
    dataset = build_dataset(gapped_prices(), SPEC)
    with pytest.raises(DataError, match="the overnight factor needs at least 20 days"):
        overnight_scale(dataset, dataset.variance.index[10])
    assert np.isnan(overnight_factor(HAR(), dataset, dataset.variance.index[10]))
