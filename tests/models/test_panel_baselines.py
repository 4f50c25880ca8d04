"""har-pooled and harx against independent least-squares fits written differently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.exog import build_exog
from forecaster.data.features import FeatureSpec, build_dataset, split_dataset
from forecaster.errors import ModelError
from forecaster.models.baselines import HAR, HARX, PooledHAR
from tests.conftest import make_prices

SPEC = FeatureSpec(lookback=10, context=42, horizon=5, exog=("market", "VIX"))


def _dataset(seed: int, exog: bool = True):
    prices = make_prices(600, seed=seed)
    if not exog:
        return build_dataset(prices, FeatureSpec(lookback=10, context=42, horizon=5))
    frame = build_exog(make_prices(620, seed=40 + seed), "garman-klass", 22)
    rng = np.random.default_rng(seed)
    frame["VIX"] = pd.Series(15 * np.exp(np.cumsum(rng.normal(0, 0.05, 600))), index=prices.index)
    return build_dataset(prices, SPEC, frame)


def _reference_design(dataset, fit_end):
    """HAR rows by pandas rolling means (not the module's cumulative sums), realized by fit_end."""
    v = dataset.variance.clip(lower=1e-12)
    frame = pd.DataFrame(
        {
            "d": np.log(v),
            "w": np.log(v.rolling(5).mean()),
            "m": np.log(v.rolling(22).mean()),
            "y": np.log(v.rolling(5).mean().shift(-5)),
        }
    )
    realized_by = frame.index.get_loc(fit_end) - 5  # last origin whose 5-day target is realized
    return frame, realized_by


def test_harx_matches_an_independent_least_squares_fit():
    dataset = _dataset(0)
    cut = dataset.origins[450]
    harx = HARX().fit(dataset, cut)
    fit_end = dataset.variance.index[dataset.variance.index.get_loc(cut) - 1]
    frame, last = _reference_design(dataset, fit_end)
    frame["market"], frame["VIX"] = dataset.exog["market"], dataset.exog["VIX"]
    rows = frame.iloc[: last + 1].dropna()
    X = np.column_stack([np.ones(len(rows)), rows[["d", "w", "m", "market", "VIX"]].to_numpy()])
    beta = np.linalg.solve(X.T @ X, X.T @ rows["y"].to_numpy())  # normal equations
    assert harx.n_obs == len(rows)
    np.testing.assert_allclose(harx.coefficients, beta, rtol=1e-7, atol=1e-9)
    resid = rows["y"].to_numpy() - X @ beta
    s2 = resid @ resid / (len(rows) - X.shape[1])
    test = split_dataset(dataset, test_start=cut).test
    at = frame.loc[dataset.origins[test]]
    Xt = np.column_stack([np.ones(len(at)), at[["d", "w", "m", "market", "VIX"]].to_numpy()])
    np.testing.assert_allclose(harx.predict(dataset, test), np.exp(Xt @ beta + s2 / 2), rtol=1e-7)


def test_harx_without_inputs_is_an_error():
    dataset = _dataset(0, exog=False)
    with pytest.raises(ModelError, match="harx needs exogenous inputs"):
        HARX().fit(dataset, dataset.origins[450])


def test_har_pooled_matches_an_independent_stacked_fit():
    datasets = {f"S{i}": _dataset(i) for i in range(3)}
    cut = pd.Timestamp(datasets["S0"].origins[450])
    pooled = PooledHAR().fit_panel(datasets, cut)
    blocks, moments = [], {}
    for name, dataset in datasets.items():
        position = dataset.variance.index.searchsorted(cut) - 1
        fit_end = dataset.variance.index[position]
        frame, last = _reference_design(dataset, fit_end)
        logs = frame["d"].iloc[: position + 1].dropna()
        mu, sd = logs.mean(), logs.std(ddof=0)
        moments[name] = (mu, sd)
        rows = frame.iloc[: last + 1].dropna()
        blocks.append((rows[["d", "w", "m", "y"]] - mu) / sd)
    stacked = pd.concat(blocks)
    X = np.column_stack([np.ones(len(stacked)), stacked[["d", "w", "m"]].to_numpy()])
    z = np.linalg.lstsq(X, stacked["y"].to_numpy(), rcond=None)[0]
    got = [pooled.pooled[k] for k in ("z_const", "z_beta_daily", "z_beta_weekly", "z_beta_monthly")]
    np.testing.assert_allclose(got, z, rtol=1e-7, atol=1e-10)
    # one series: the panel's slopes, its own intercept mu (1 - sum b) + sd b0
    mu, sd = moments["S1"]
    har = pooled.fresh().fit(datasets["S1"], cut)
    assert har.coefficients[1:] == pytest.approx(z[1:], rel=1e-7)
    assert har.coefficients[0] == pytest.approx(mu * (1 - z[1:].sum()) + sd * z[0], rel=1e-7)


def test_har_pooled_on_one_series_without_a_panel_is_har():
    dataset = _dataset(0, exog=False)
    cut = dataset.origins[450]
    test = split_dataset(dataset, test_start=cut).test
    np.testing.assert_allclose(
        PooledHAR().fit(dataset, cut).predict(dataset, test),
        HAR().fit(dataset, cut).predict(dataset, test),
        rtol=1e-10,
    )


def test_harx_no_look_ahead_and_fit_stops_at_the_cut():
    """Later prices and later inputs change neither the fit nor earlier forecasts."""
    dataset = _dataset(0)
    cut = dataset.origins[450]
    rows = np.arange(300, 450)  # origins before the cut (in-sample forecasts)
    clean = HARX().fit(dataset, cut)
    prices = make_prices(600, seed=0)
    later = prices.index >= cut
    prices.loc[later, ["high"]] *= 1.3
    frame = build_exog(make_prices(620, seed=40), "garman-klass", 22)
    rng = np.random.default_rng(0)
    vix = pd.Series(15 * np.exp(np.cumsum(rng.normal(0, 0.05, 600))), index=prices.index)
    vix[vix.index >= cut] *= 2.0
    frame["VIX"] = vix
    frame.loc[frame.index >= cut, "market"] *= 3.0
    shocked_set = build_dataset(prices, SPEC, frame)
    shocked = HARX().fit(shocked_set, cut)
    np.testing.assert_array_equal(clean.coefficients, shocked.coefficients)
    np.testing.assert_allclose(shocked.predict(shocked_set, rows), clean.predict(dataset, rows), rtol=1e-12)
    after = np.arange(460, 500)
    assert not np.allclose(shocked.predict(shocked_set, after), clean.predict(dataset, after))
