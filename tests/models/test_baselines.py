"""Baselines checked against independent computations, for look-ahead and for errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from forecaster.errors import ConfigError, EvaluationError, ModelError
from forecaster.models.baselines import (
    BASELINES,
    EWMA,
    GARCH,
    GBM,
    GJR,
    HAR,
    Baseline,
    Naive,
    create_baseline,
    parse_baselines,
)

N_ROWS = 600
FIT_END_POS = 399  # fit on the first 400 rows


def _simulate(seed: int = 0, n_rows: int = N_ROWS) -> tuple[pd.Series, pd.Series]:
    """GARCH(1,1) log returns and a positive, noisy variance proxy, leading NaN in both."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 0.02, 0.08, 0.90  # percent units
    sigma2 = omega / (1 - alpha - beta)
    returns = np.empty(n_rows)
    proxy = np.empty(n_rows)
    for row in range(n_rows):
        shock = rng.standard_normal()
        returns[row] = math.sqrt(sigma2) * shock / 100
        proxy[row] = sigma2 / 1e4 * rng.lognormal(-0.125, 0.5)
        sigma2 = omega + alpha * (100 * returns[row]) ** 2 + beta * sigma2
    index = pd.bdate_range("2010-01-04", periods=n_rows)
    returns[0] = np.nan  # no return on the first day
    proxy[0] = np.nan
    return pd.Series(proxy, index=index), pd.Series(returns, index=index)


@pytest.fixture(scope="module")
def data() -> tuple[pd.Series, pd.Series]:
    return _simulate()


@pytest.fixture(scope="module")
def fit_end(data) -> pd.Timestamp:
    return data[0].index[FIT_END_POS]


# ---------------------------------------------------------------------------- HAR
def _har_reference(variance: pd.Series, horizon: int, fit_end_pos: int):
    """Build the HAR regression by explicit slicing and solve it with numpy lstsq."""
    values = variance.to_numpy()
    rows, responses = [], []
    for origin in range(len(values)):
        window = values[origin - 21 : origin + 1] if origin >= 21 else []
        if len(window) < 22 or np.isnan(window).any():
            continue
        if origin + horizon > fit_end_pos:
            break
        rows.append(
            [1.0, math.log(values[origin]), math.log(np.mean(values[origin - 4 : origin + 1]))]
            + [math.log(np.mean(window))]
        )
        responses.append(math.log(np.mean(values[origin + 1 : origin + horizon + 1])))
    design, response = np.array(rows), np.array(responses)
    coefficients = np.linalg.lstsq(design, response, rcond=None)[0]
    residuals = response - design @ coefficients
    return coefficients, residuals @ residuals / (len(response) - 4), len(response)


@pytest.mark.parametrize("horizon", [1, 5, 22])
def test_har_matches_lstsq_on_realized_targets(data, fit_end, horizon):
    variance, returns = data
    coefficients, residual_variance, n_obs = _har_reference(variance, horizon, FIT_END_POS)

    model = HAR().fit_series(variance, returns, horizon, fit_end)

    np.testing.assert_allclose(model.coefficients, coefficients, rtol=1e-9)
    assert model.residual_variance == pytest.approx(residual_variance, rel=1e-9)
    assert model.n_obs == n_obs == FIT_END_POS - horizon - 21  # first origin is row 22
    assert model.lognormal_correction == pytest.approx(math.exp(0.5 * residual_variance))
    assert model.params["beta_monthly"] == pytest.approx(coefficients[3], rel=1e-9)

    origin = 450
    values = variance.to_numpy()
    features = np.array(
        [
            1.0,
            math.log(values[origin]),
            math.log(values[origin - 4 : origin + 1].mean()),
            math.log(values[origin - 21 : origin + 1].mean()),
        ]
    )
    expected = math.exp(features @ coefficients + 0.5 * residual_variance)
    forecast = model.predict_origins(variance.index[[origin]])
    assert forecast == pytest.approx([expected], rel=1e-9)


def test_har_rejects_zero_variance_in_training(data, fit_end):
    variance, returns = data
    zeroed = variance.copy()
    zeroed.iloc[100] = 0.0
    with pytest.raises(ModelError, match=r"HAR works in logs.*zero on 2010-05-24.*garman-klass"):
        HAR().fit_series(zeroed, returns, 1, fit_end)


def test_har_rejects_zero_variance_at_prediction(data, fit_end):
    variance, returns = data
    zeroed = variance.copy()
    zeroed.iloc[500] = 0.0  # after fit_end: fitting is fine, forecasting near it is not
    model = HAR().fit_series(zeroed, returns, 1, fit_end)
    assert np.isfinite(model.predict_origins(variance.index[[499, 501]])).all()
    with pytest.raises(ModelError, match="is zero at the origins 2011-12-05; use a range"):
        model.predict_origins(variance.index[[499, 500, 501]])


# --------------------------------------------------------------------------- EWMA
def test_ewma_matches_loop(data, fit_end):
    variance, returns = data
    values = variance.to_numpy()
    expected = {}
    level = np.mean(values[1:23])  # first 22 available values (row 0 is NaN)
    expected[22] = level
    for row in range(23, N_ROWS):
        level = 0.94 * level + 0.06 * values[row]
        expected[row] = level

    for horizon in (1, 5):
        model = EWMA().fit_series(variance, returns, horizon, fit_end)
        rows = [22, 23, 100, 399, 400, 599]
        np.testing.assert_allclose(
            model.predict_origins(variance.index[rows]), [expected[row] for row in rows], rtol=1e-12
        )
        assert model.earliest_origin == variance.index[22]


# -------------------------------------------------------------------------- naive
def test_naive_matches_slicing(data, fit_end):
    variance, returns = data
    model = Naive().fit_series(variance, returns, 5, fit_end)
    rows = [22, 57, 399, 400, 599]
    expected = [variance.iloc[row - 21 : row + 1].mean() for row in rows]
    np.testing.assert_allclose(model.predict_origins(variance.index[rows]), expected, rtol=1e-12)


# ------------------------------------------------------------------------ GARCH/GJR
def _hand_sigma2(returns: pd.Series, params: pd.Series, gamma: float) -> np.ndarray:
    """GARCH/GJR conditional variance (percent^2) with arch's backcast, by a loop."""
    resids = 100 * returns.dropna().to_numpy() - params["mu"]
    weights = 0.94 ** np.arange(75)
    backcast = float(np.sum(weights / weights.sum() * resids[:75] ** 2))
    omega, alpha, beta = params["omega"], params["alpha[1]"], params["beta[1]"]
    sigma2 = np.empty(resids.size + 1)  # sigma2[k] = variance of resids[k]; one step beyond
    sigma2[0] = omega + alpha * backcast + 0.5 * gamma * backcast + beta * backcast
    for step in range(1, resids.size + 1):
        last = resids[step - 1]
        sigma2[step] = omega + (alpha + gamma * (last < 0)) * last**2 + beta * sigma2[step - 1]
    return sigma2


@pytest.mark.parametrize("model_class", [GARCH, GJR])
def test_garch_params_equal_direct_arch_fit_on_training_slice(data, fit_end, model_class):
    variance, returns = data
    model = model_class().fit_series(variance, returns, 1, fit_end)
    direct = arch_model(
        100 * returns.iloc[1 : FIT_END_POS + 1].to_numpy(),
        mean="Constant",
        vol="GARCH",
        p=1,
        o=model_class.o,
        q=1,
        dist="normal",
    ).fit(disp="off")
    np.testing.assert_allclose(model.arch_params.to_numpy(), direct.params.to_numpy(), rtol=1e-8)
    assert list(model.params)[: len(direct.params)] == list(direct.params.index)


@pytest.mark.parametrize("model_class", [GARCH, GJR])
def test_garch_one_step_forecast_by_hand(data, fit_end, model_class):
    variance, returns = data
    model = model_class().fit_series(variance, returns, 1, fit_end)
    params = model.arch_params
    gamma = float(params.get("gamma[1]", 0.0))
    sigma2 = _hand_sigma2(returns, params, gamma)
    resids = 100 * returns.dropna().to_numpy() - params["mu"]

    origin = FIT_END_POS  # first out-of-sample forecast: made at fit_end for the next day
    step = origin - 1  # position among valid returns
    eps = resids[step]
    by_hand = (
        params["omega"]
        + (params["alpha[1]"] + gamma * (eps < 0)) * eps**2
        + params["beta[1]"] * sigma2[step]
    )
    assert by_hand == pytest.approx(sigma2[step + 1])
    forecast = model.predict_origins(variance.index[[origin, 550]])
    assert forecast[0] == pytest.approx(by_hand / 1e4, rel=1e-9)
    assert forecast[1] == pytest.approx(sigma2[550] / 1e4, rel=1e-9)


@pytest.mark.parametrize("model_class", [GARCH, GJR])
def test_garch_multi_step_is_mean_of_analytic_path(data, fit_end, model_class):
    variance, returns = data
    horizon = 5
    model = model_class().fit_series(variance, returns, horizon, fit_end)
    params = model.arch_params
    gamma = float(params.get("gamma[1]", 0.0))
    sigma2 = _hand_sigma2(returns, params, gamma)
    persistence = params["alpha[1]"] + 0.5 * gamma + params["beta[1]"]
    origin = 450
    path = [sigma2[origin]]  # one step ahead of origin 450 (valid position 449)
    for _ in range(horizon - 1):
        path.append(params["omega"] + persistence * path[-1])
    assert model.predict_origins(variance.index[[origin]]) == pytest.approx([np.mean(path) / 1e4], rel=1e-9)


def test_garch_refuses_origins_inside_the_backcast_window(data, fit_end):
    variance, returns = data
    model = GARCH().fit_series(variance, returns, 1, fit_end)
    assert model.earliest_origin == variance.index[75]  # 75th valid return
    with pytest.raises(EvaluationError, match=r"cannot forecast at 2010-04-16.*2010-04-19"):
        model.predict_origins(variance.index[[74, 200]])


# ------------------------------------------------------------- every baseline: no leak
#: Baselines fit on a variance and a return series alone (harx also needs exogenous inputs:
#: tests/models/test_panel_baselines.py checks it the same ways; harq the quarticity:
#: tests/models/test_harq.py).
SERIES_BASELINES = [
    name
    for name in BASELINES
    if not getattr(BASELINES[name], "needs_exog", False)
    and not getattr(BASELINES[name], "needs_quarticity", False)
]


@pytest.mark.parametrize("name", SERIES_BASELINES)
def test_no_look_ahead(data, fit_end, name):
    """Perturbing data after a date leaves forecasts at earlier origins unchanged."""
    variance, returns = data
    cutoff = 480
    rng = np.random.default_rng(99)
    shocked_variance = variance.copy()
    shocked_returns = returns.copy()
    shocked_variance.iloc[cutoff + 1 :] *= rng.uniform(2.0, 6.0, N_ROWS - cutoff - 1)
    shocked_returns.iloc[cutoff + 1 :] *= rng.uniform(2.0, 3.0, N_ROWS - cutoff - 1)

    horizon = 5
    clean = create_baseline(name).fit_series(variance, returns, horizon, fit_end)
    shocked = create_baseline(name).fit_series(shocked_variance, shocked_returns, horizon, fit_end)
    origins = variance.index[80:]
    early = origins <= variance.index[cutoff]

    np.testing.assert_allclose(
        shocked.predict_origins(origins[early]), clean.predict_origins(origins[early]), rtol=1e-12, atol=0
    )
    # the perturbation is visible after the cutoff, so the test can fail
    assert not np.allclose(shocked.predict_origins(origins[~early]), clean.predict_origins(origins[~early]))


@pytest.mark.parametrize("name", SERIES_BASELINES)
def test_fit_uses_only_rows_up_to_fit_end(data, fit_end, name):
    """Data after fit_end (but before the origin) is used only as forecast input."""
    variance, returns = data
    shocked_variance = variance.copy()
    shocked_returns = returns.copy()
    shocked_variance.iloc[FIT_END_POS + 1 :] *= 4.0
    shocked_returns.iloc[FIT_END_POS + 1 :] *= 2.0
    clean = create_baseline(name).fit_series(variance, returns, 1, fit_end)
    shocked = create_baseline(name).fit_series(shocked_variance, shocked_returns, 1, fit_end)
    assert shocked.params == clean.params
    np.testing.assert_allclose(
        shocked.predict_origins(variance.index[[100, FIT_END_POS]]),
        clean.predict_origins(variance.index[[100, FIT_END_POS]]),
        rtol=1e-12,
    )


@pytest.mark.parametrize("name", SERIES_BASELINES)
def test_interface(data, fit_end, name):
    variance, returns = data
    model = create_baseline(name)
    assert isinstance(model, Baseline) and model.name == name
    assert model.fit_series(variance, returns, 22, fit_end) is model
    origins = variance.index[400:420]
    forecast = model.predict_origins(origins)
    assert forecast.shape == (20,) and forecast.dtype == np.float64
    assert (forecast > 0).all() and np.isfinite(forecast).all()
    # the typical level: within a factor of 3 of the average realized variance
    assert 1 / 3 < forecast.mean() / variance.iloc[400:442].mean() < 3
    assert model.predict_origins(pd.DatetimeIndex([])).shape == (0,)
    assert model.predict_origins(list(origins[:2])) == pytest.approx(forecast[:2])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", list(BASELINES))
def test_predict_before_fit(name):
    with pytest.raises(ModelError, match=f"baseline '{name}' is not fitted; call fit"):
        create_baseline(name).predict_origins(pd.DatetimeIndex(["2010-06-01"]))
    with pytest.raises(ModelError, match="not fitted"):
        _ = create_baseline(name).params


def test_predict_names_missing_origins(data, fit_end):
    variance, returns = data
    model = Naive().fit_series(variance, returns, 1, fit_end)
    origins = pd.DatetimeIndex(["2010-06-01", "2010-06-05", "2030-01-01"])  # Saturday, future
    with pytest.raises(EvaluationError, match=r"2 origins are not dates.*2010-06-05, 2030-01-01"):
        model.predict_origins(origins)


def test_predict_names_origins_without_history(data, fit_end):
    variance, returns = data
    model = HAR().fit_series(variance, returns, 1, fit_end)
    with pytest.raises(
        EvaluationError,
        match=r"'har' cannot forecast at 2010-01-04, 2010-01-05.*earliest usable origin is "
        r"2010-02-03",
    ):
        model.predict_origins(variance.index[:30])


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True])
def test_fit_rejects_bad_horizon(data, fit_end, horizon):
    with pytest.raises(ConfigError, match="horizon must be a positive integer"):
        Naive().fit_series(*data, horizon, fit_end)


def test_fit_input_errors(data, fit_end):
    variance, returns = data
    with pytest.raises(ModelError, match="fit_end 2000-01-01 00:00:00 is before the first date"):
        Naive().fit_series(variance, returns, 1, pd.Timestamp("2000-01-01"))
    with pytest.raises(ModelError, match="must share one DatetimeIndex"):
        Naive().fit_series(variance, returns.iloc[1:], 1, fit_end)
    with pytest.raises(ModelError, match="variance must be a pandas Series"):
        Naive().fit_series(variance.to_numpy(), returns, 1, fit_end)
    with pytest.raises(ModelError, match="returns must have a DatetimeIndex"):
        Naive().fit_series(variance, returns.reset_index(drop=True), 1, fit_end)
    with pytest.raises(ModelError, match="sorted and unique"):
        Naive().fit_series(variance.iloc[::-1], returns.iloc[::-1], 1, fit_end)
    gap = variance.copy()
    gap.iloc[[50, 60]] = np.nan
    with pytest.raises(ModelError, match="variance must be finite and non-negative.*2010-03-15"):
        Naive().fit_series(gap, returns, 1, fit_end)
    negative = variance.copy()
    negative.iloc[70] = -1e-5
    with pytest.raises(ModelError, match="non-negative after its leading NaNs.*2010-04-12"):
        Naive().fit_series(negative, returns, 1, fit_end)
    with pytest.raises(ModelError, match="cannot be compared"):
        Naive().fit_series(variance, returns, 1, fit_end.tz_localize("UTC"))


@pytest.mark.parametrize("horizon", [1, 5])
def test_gbm_equals_a_direct_fit_on_the_first_85_percent(data, fit_end, horizon):
    """Features, purged training rows, log target and validation scale rebuilt by hand."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    variance, returns = data
    model = GBM().fit_series(variance, returns, horizon, fit_end)
    v = variance.to_numpy()
    r = returns.to_numpy()
    mean = {w: variance.rolling(w).mean().to_numpy() for w in (5, 22)}
    design = np.column_stack([np.log(v), np.log(mean[5]), np.log(mean[22]), r, np.abs(r)])
    target = pd.Series(v).rolling(horizon).mean().shift(-horizon).to_numpy()
    first = 22  # day 0 is NaN: the first full month of history ends on day 22
    rows = np.arange(first, FIT_END_POS - horizon + 1)
    n_val = round(0.15 * rows.size)
    validation, train = rows[-n_val:], rows[:-n_val]
    train = train[train + horizon <= validation[0]]
    direct = HistGradientBoostingRegressor(**GBM.settings, early_stopping=False, random_state=0)
    direct.fit(design[train], np.log(target[train]))
    scale = np.mean(target[validation] / np.exp(direct.predict(design[validation])))
    assert model.params["scale"] == pytest.approx(scale, rel=1e-12)
    assert model.params["n_obs"] == train.size
    origins = [FIT_END_POS + 1, FIT_END_POS + 20]
    expected = np.exp(direct.predict(design[origins])) * scale
    np.testing.assert_allclose(model.predict_origins(variance.index[origins]), expected, rtol=1e-12)


def test_too_little_training_data(data):
    variance, returns = data
    with pytest.raises(ModelError, match="HAR needs at least 30 training origins.*got 19"):
        HAR().fit_series(variance, returns, 1, variance.index[41])
    with pytest.raises(ModelError, match="GARCH needs at least 100 returns up to fit_end, got 59"):
        GARCH().fit_series(variance, returns, 1, variance.index[59])


def test_registry_and_parsing():
    assert list(BASELINES) == [
        "har", "garch", "gjr", "ewma", "naive", "gbm", "harq", "har-pooled", "harx"
    ]
    assert isinstance(create_baseline("gjr"), GJR)
    with pytest.raises(ConfigError, match="unknown baseline 'arima'; valid names are har, garch"):
        create_baseline("arima")
    assert parse_baselines("har,garch") == ["har", "garch"]
    assert parse_baselines(" HAR , ewma,har,") == ["har", "ewma"]
    assert parse_baselines("all") == list(BASELINES)
    assert parse_baselines("") == [] and parse_baselines("none") == []
    with pytest.raises(ConfigError, match="unknown baseline 'garch2'.*'all' / 'none'"):
        parse_baselines("har,garch2")
