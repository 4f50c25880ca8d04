"""Metrics checked against references computed independently inside each test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats import sandwich_covariance as sandwich

from forecaster import metrics
from forecaster.errors import ConfigError, EvaluationError


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Realistic daily variances: ~15-30% vol, forecasts a noisy version of the target."""
    rng = np.random.default_rng(7)
    target = (rng.uniform(0.10, 0.35, 250) ** 2 / 252) * rng.lognormal(0.0, 0.3, 250)
    forecast = target * rng.lognormal(0.05, 0.4, 250)
    return target, forecast


# ----------------------------------------------------------------------------- losses
def test_qlike_matches_loop(pair):
    target, forecast = pair
    expected = [y / f - math.log(y / f) - 1.0 for y, f in zip(target, forecast, strict=True)]
    np.testing.assert_allclose(metrics.qlike_losses(target, forecast), expected, rtol=1e-12)
    assert metrics.qlike(target, forecast) == pytest.approx(sum(expected) / len(expected))


def test_qlike_is_zero_only_for_exact_forecast(pair):
    target, _ = pair
    assert metrics.qlike(target, target) == 0.0
    assert metrics.qlike(target, target * 1.1) > 0.0
    assert metrics.qlike(target, target * 0.9) > 0.0


def test_qlike_accepts_series():
    target = pd.Series([1e-4, 2e-4], index=pd.to_datetime(["2020-01-02", "2020-01-03"]))
    forecast = pd.Series([2e-4, 1e-4])
    expected = (0.5 - math.log(0.5) - 1 + 2 - math.log(2) - 1) / 2
    assert metrics.qlike(target, forecast) == pytest.approx(expected)


def test_mse_and_mae_vol(pair):
    target, forecast = pair
    expected_mse = sum((y - f) ** 2 for y, f in zip(target, forecast, strict=True)) / len(target)
    assert metrics.mse(target, forecast) == pytest.approx(expected_mse, rel=1e-12)
    vol_errors = [
        abs(math.sqrt(252 * f) - math.sqrt(252 * y)) for y, f in zip(target, forecast, strict=True)
    ]
    assert metrics.mae_vol(target, forecast) == pytest.approx(np.mean(vol_errors), rel=1e-12)


def test_mae_vol_is_in_annualized_vol_points():
    # 16% realized vs 20% forecast vol -> 4 vol points
    target = np.array([0.16**2 / 252])
    forecast = np.array([0.20**2 / 252])
    assert metrics.mae_vol(target, forecast) == pytest.approx(0.04)
    assert metrics.bias(target, forecast) == pytest.approx(0.04)
    assert metrics.bias(forecast, target) == pytest.approx(-0.04)


def test_bias_overall_and_masked(pair):
    target, forecast = pair
    errors = np.sqrt(252 * forecast) - np.sqrt(252 * target)
    mask = target > np.median(target)
    assert metrics.bias(target, forecast) == pytest.approx(errors.mean(), rel=1e-12)
    assert metrics.bias(target, forecast, mask) == pytest.approx(errors[mask].mean(), rel=1e-12)
    assert metrics.bias(target, forecast, pd.Series(~mask)) == pytest.approx(
        errors[~mask].mean(), rel=1e-12
    )


def test_bias_empty_mask_is_nan(pair):
    target, forecast = pair
    assert math.isnan(metrics.bias(target, forecast, np.zeros(target.size, dtype=bool)))


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (np.ones(3, dtype=bool), "1-D boolean mask with 250 rows"),
        (np.ones(250), "must be boolean"),
    ],
)
def test_bias_rejects_bad_mask(pair, mask, match):
    with pytest.raises(EvaluationError, match=match):
        metrics.bias(*pair, mask)


@pytest.mark.parametrize(
    ("target", "forecast", "match"),
    [
        ([1e-4, 2e-4], [1e-4], "target_var has 2 rows but forecast_var has 1"),
        ([], [], "empty"),
        ([1e-4, 2e-4], [1e-4, 0.0], r"forecast_var must be finite and strictly positive.*row 1"),
        ([1e-4, -1e-4], [1e-4, 1e-4], r"target_var must be finite.*row 1 = -0.0001"),
        ([np.nan, 1e-4], [1e-4, 1e-4], r"target_var must be finite.*row 0 = nan"),
        ([1e-4, 1e-4], [np.inf, 1e-4], r"forecast_var must be finite.*row 0 = inf"),
        ([[1e-4, 1e-4]], [[1e-4, 1e-4]], "one-dimensional"),
        (["a", "b"], [1e-4, 1e-4], "must be numeric"),
    ],
)
@pytest.mark.parametrize("function", [metrics.qlike, metrics.qlike_losses, metrics.mse])
def test_invalid_inputs_raise(function, target, forecast, match):
    with pytest.raises(EvaluationError, match=match):
        function(target, forecast)


def test_nonpositive_error_message_says_how_to_fix():
    with pytest.raises(EvaluationError, match="QLIKE is undefined otherwise.*drop or floor"):
        metrics.mae_vol([1e-4], [0.0])


# -------------------------------------------------------------------- Mincer–Zarnowitz
def _newey_west_se(design: np.ndarray, residuals: np.ndarray, lags: int) -> np.ndarray:
    scores = design * residuals[:, None]
    meat = scores.T @ scores
    for lag in range(1, lags + 1):
        weight = 1.0 - lag / (lags + 1)
        cross = scores[lag:].T @ scores[:-lag]
        meat += weight * (cross + cross.T)
    bread = np.linalg.inv(design.T @ design)
    return np.sqrt(np.diag(bread @ meat @ bread))


@pytest.mark.parametrize("lags", [0, 1, 5])
def test_mincer_zarnowitz_matches_hand_ols_and_newey_west(pair, lags):
    target, forecast = pair
    design = np.column_stack([np.ones_like(forecast), forecast])
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    residuals = target - design @ coefficients
    r2 = 1.0 - residuals @ residuals / np.sum((target - target.mean()) ** 2)
    se = _newey_west_se(design, residuals, lags)

    result = metrics.mincer_zarnowitz(target, forecast, lags)

    assert set(result) == {"intercept", "slope", "r2", "se_intercept", "se_slope"}
    assert result["intercept"] == pytest.approx(coefficients[0], rel=1e-9)
    assert result["slope"] == pytest.approx(coefficients[1], rel=1e-9)
    assert result["r2"] == pytest.approx(r2, rel=1e-9)
    assert result["se_intercept"] == pytest.approx(se[0], rel=1e-9)
    assert result["se_slope"] == pytest.approx(se[1], rel=1e-9)


def test_mincer_zarnowitz_perfect_forecast():
    target = np.linspace(1e-5, 4e-4, 50)
    result = metrics.mincer_zarnowitz(target, target, lags=2)
    assert result["slope"] == pytest.approx(1.0)
    assert result["intercept"] == pytest.approx(0.0, abs=1e-15)
    assert result["r2"] == pytest.approx(1.0)


def test_mincer_zarnowitz_constant_forecast_is_nan(pair):
    target, _ = pair
    result = metrics.mincer_zarnowitz(target, np.full(target.size, 1e-4), lags=1)
    assert all(math.isnan(value) for value in result.values())


def test_mincer_zarnowitz_errors(pair):
    with pytest.raises(ConfigError, match="lags must be an integer >= 0, got -1"):
        metrics.mincer_zarnowitz(*pair, lags=-1)
    with pytest.raises(ConfigError, match="lags must be an integer >= 0, got 1.5"):
        metrics.mincer_zarnowitz(*pair, lags=1.5)
    with pytest.raises(EvaluationError, match="at least 3 rows.*got 2"):
        metrics.mincer_zarnowitz([1e-4, 2e-4], [1e-4, 3e-4], lags=0)


# ---------------------------------------------------------------------- Diebold–Mariano
def _statsmodels_dm(loss_a: np.ndarray, loss_b: np.ndarray, horizon: int, kernel: str):
    """DM statistic from statsmodels: the t statistic of an OLS of d on a constant with a
    HAC covariance over lags 1..h-1 (no small-sample correction), times the HLN factor.

    Returns (stat, two-sided p-value with n-1 degrees of freedom, long-run variance)."""
    d = loss_a - loss_b
    n = d.size
    ols = sm.OLS(d, np.ones(n)).fit()
    weights = {"uniform": sandwich.weights_uniform, "bartlett": sandwich.weights_bartlett}
    cov = sandwich.cov_hac(
        ols, nlags=horizon - 1, weights_func=weights[kernel], use_correction=False
    )[0, 0]
    long_run_var = n * cov  # cov of the mean = long-run variance / n
    if long_run_var <= 0:
        return math.nan, math.nan, long_run_var
    stat = ols.params[0] / math.sqrt(cov)
    stat *= math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    return stat, 2 * stats.t.sf(abs(stat), n - 1), long_run_var


def test_diebold_mariano_horizon_one_is_the_one_sample_t_test():
    rng = np.random.default_rng(3)
    loss_model = rng.gamma(2.0, 1.0, 120)
    loss_reference = rng.gamma(2.0, 1.1, 120)
    result = metrics.diebold_mariano(loss_model, loss_reference, horizon=1)
    reference = stats.ttest_1samp(loss_model - loss_reference, 0.0)
    assert result["stat"] == pytest.approx(reference.statistic, rel=1e-10)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-10)


def test_diebold_mariano_rectangular_lags_for_multi_step():
    rng = np.random.default_rng(4)
    noise = rng.standard_normal(300)
    # MA(4) loss differential: positive autocorrelation up to lag 4, like 5-day targets
    differential = np.convolve(noise, np.ones(5), mode="valid") + 0.3
    loss_reference = rng.gamma(2.0, 1.0, differential.size)
    loss_model = loss_reference + differential
    expected_stat, expected_p, variance = _statsmodels_dm(loss_model, loss_reference, 5, "uniform")
    assert variance > 0  # the rectangular estimate is used
    # and it differs from the Bartlett one: the test tells the two kernels apart
    assert _statsmodels_dm(loss_model, loss_reference, 5, "bartlett")[0] != pytest.approx(
        expected_stat, rel=1e-3
    )
    result = metrics.diebold_mariano(loss_model, loss_reference, horizon=5)
    assert result["stat"] == pytest.approx(expected_stat, rel=1e-10)
    assert result["p_value"] == pytest.approx(expected_p, rel=1e-10)
    assert result["stat"] > 0  # model has higher loss than reference


def test_diebold_mariano_falls_back_to_bartlett_when_variance_not_positive():
    rng = np.random.default_rng(5)
    # strongly alternating differential: gamma_1 ~ -gamma_0, so gamma_0 + 2 gamma_1 < 0
    signs = np.where(np.arange(200) % 2 == 0, 1.0, -1.0)
    differential = signs * rng.uniform(0.9, 1.1, 200) - 0.05
    loss_reference = np.full(200, 3.0)
    loss_model = loss_reference + differential
    _, _, rectangular = _statsmodels_dm(loss_model, loss_reference, 2, "uniform")
    assert rectangular <= 0  # precondition: the rectangular estimate is unusable
    # statsmodels' own HAC route: OLS on a constant, Bartlett kernel, maxlags = h - 1
    ols = sm.OLS(loss_model - loss_reference, np.ones(200)).fit(
        cov_type="HAC", cov_kwds={"maxlags": 1, "use_correction": False}
    )
    expected_stat = ols.tvalues[0] * math.sqrt((200 + 1 - 4 + 2 / 200) / 200)
    expected_p = 2 * stats.t.sf(abs(expected_stat), 199)
    assert _statsmodels_dm(loss_model, loss_reference, 2, "bartlett")[0] == pytest.approx(
        expected_stat, rel=1e-12
    )
    result = metrics.diebold_mariano(loss_model, loss_reference, horizon=2)
    assert result["stat"] == pytest.approx(expected_stat, rel=1e-10)
    assert result["p_value"] == pytest.approx(expected_p, rel=1e-10)
    assert result["stat"] < 0  # model has lower loss than reference


def test_diebold_mariano_degenerate_differentials():
    losses = np.linspace(0.1, 2.0, 30)
    assert metrics.diebold_mariano(losses, losses, horizon=3) == {"stat": 0.0, "p_value": 1.0}
    better = metrics.diebold_mariano(losses - 0.1, losses, horizon=1)
    assert better == {"stat": -math.inf, "p_value": 0.0}


def test_diebold_mariano_errors():
    losses = np.ones(10)
    with pytest.raises(EvaluationError, match="loss_model has 10 rows but loss_reference has 9"):
        metrics.diebold_mariano(losses, losses[:9], horizon=1)
    with pytest.raises(EvaluationError, match="horizon 5 needs more than 10 loss pairs, got 10"):
        metrics.diebold_mariano(losses, losses, horizon=5)
    with pytest.raises(EvaluationError, match=r"loss_reference must be finite.*row 2 = nan"):
        metrics.diebold_mariano(losses, np.where(np.arange(10) == 2, np.nan, 1.0), horizon=1)
    with pytest.raises(ConfigError, match="horizon must be an integer >= 1, got 0"):
        metrics.diebold_mariano(losses, losses, horizon=0)


# ------------------------------------------------------------------------------ score
def test_score_keys_and_values(pair):
    target, forecast = pair
    rng = np.random.default_rng(11)
    ex_ante = rng.random(target.size) > 0.7
    ex_post = target > np.quantile(target, 0.8)
    errors = np.sqrt(252 * forecast) - np.sqrt(252 * target)

    result = metrics.score(target, forecast, ex_ante, ex_post, mz_lags=2)

    assert list(result) == [
        "qlike",
        "mse",
        "mae_vol",
        "bias",
        "bias_low",
        "bias_high_ex_ante",
        "bias_high_ex_post",
        "mz",
    ]
    assert list(result["mz"]) == ["intercept", "slope", "r2", "se_intercept", "se_slope"]
    ratio = target / forecast
    assert result["qlike"] == pytest.approx(np.mean(ratio - np.log(ratio) - 1), rel=1e-12)
    assert result["mse"] == pytest.approx(np.mean((target - forecast) ** 2), rel=1e-12)
    assert result["mae_vol"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-12)
    assert result["bias"] == pytest.approx(errors.mean(), rel=1e-12)
    # low regime = not high ex-ante (rows high only ex-post stay in it)
    assert result["bias_low"] == pytest.approx(errors[~ex_ante].mean(), rel=1e-12)
    assert result["bias_high_ex_ante"] == pytest.approx(errors[ex_ante].mean(), rel=1e-12)
    assert result["bias_high_ex_post"] == pytest.approx(errors[ex_post].mean(), rel=1e-12)
    mz = metrics.mincer_zarnowitz(target, forecast, 2)
    assert result["mz"] == {
        key: mz[key] for key in ("intercept", "slope", "r2", "se_intercept", "se_slope")
    }


def test_score_empty_regime_gives_nan_bias(pair):
    target, forecast = pair
    none = np.zeros(target.size, dtype=bool)
    result = metrics.score(target, forecast, none, none, mz_lags=0)
    assert math.isnan(result["bias_high_ex_ante"])
    assert math.isnan(result["bias_high_ex_post"])
    assert result["bias_low"] == pytest.approx(result["bias"])


def test_score_rejects_misaligned_flags(pair):
    target, forecast = pair
    flags = np.zeros(target.size, dtype=bool)
    with pytest.raises(EvaluationError, match="high_ex_post must be a 1-D boolean mask"):
        metrics.score(target, forecast, flags, flags[:-1], mz_lags=0)


# ---------------------------------------------------------------- model confidence set
def _loss_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 0.5, 400)
    return pd.DataFrame(
        {
            "lstm": base + rng.normal(0, 0.05, 400),
            "har": base + rng.normal(0, 0.05, 400),
            "naive": base + 1.0 + rng.normal(0, 0.05, 400),
        }
    )


def test_model_confidence_set_excludes_clearly_worse_model():
    included = metrics.model_confidence_set(_loss_frame(), size=0.1, seed=0, reps=300)
    assert included == ["lstm", "har"]


def test_model_confidence_set_is_reproducible_and_matches_arch():
    from arch.bootstrap import MCS

    frame = _loss_frame(1)
    frame["har"] += 0.02  # make the decision less obvious
    first = metrics.model_confidence_set(frame, size=0.2, seed=5, reps=200)
    second = metrics.model_confidence_set(frame, size=0.2, seed=5, reps=200)
    reference = MCS(frame, size=0.2, reps=200, seed=5)
    reference.compute()
    assert first == second
    assert first == [name for name in frame.columns if name in set(reference.included)]


def test_model_confidence_set_single_model():
    frame = _loss_frame()[["har"]]
    assert metrics.model_confidence_set(frame) == ["har"]


def test_model_confidence_set_errors():
    frame = _loss_frame()
    with pytest.raises(EvaluationError, match="must be a pandas DataFrame.*got ndarray"):
        metrics.model_confidence_set(frame.to_numpy())
    with pytest.raises(ConfigError, match=r"size must be a number in \(0, 1\).*got 1.5"):
        metrics.model_confidence_set(frame, size=1.5)
    with_nan = frame.copy()
    with_nan.iloc[3, 1] = np.nan
    with pytest.raises(EvaluationError, match="NaN or infinite.*drop the origins"):
        metrics.model_confidence_set(with_nan)
    with pytest.raises(EvaluationError, match="at least 10 rows of losses, got 5"):
        metrics.model_confidence_set(frame.head(5))
    duplicated = frame.copy()
    duplicated.columns = ["har", "har", "naive"]
    with pytest.raises(EvaluationError, match="duplicate model names"):
        metrics.model_confidence_set(duplicated)
