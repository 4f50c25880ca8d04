"""HARQ (Bollerslev, Patton & Quaedvlieg 2016) against an independent least-squares fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.data.features import FeatureSpec, build_dataset
from forecaster.data.validation import validate_prices
from forecaster.errors import ModelError
from forecaster.models.baselines import HARQ, create_baseline, usable_baselines
from tests.conftest import make_prices

BARS = Path(__file__).resolve().parents[3] / "shared" / "data" / "intraday" / "spy_5min_2018_2020.parquet"
FIT_END = 399


def simulated(seed: int = 0, n: int = 600) -> tuple[pd.Series, pd.Series, pd.Series]:
    """A persistent RV, a quarticity ~ RV^2 with noise, returns; one shared index."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2010-01-04", periods=n)
    log_rv = np.empty(n)
    log_rv[0] = -9.0
    for t in range(1, n):
        log_rv[t] = -9.0 + 0.9 * (log_rv[t - 1] + 9.0) + 0.4 * rng.standard_normal()
    rv = np.exp(log_rv)
    rq = rv**2 * rng.lognormal(0.5, 0.6, n)
    returns = np.sqrt(rv) * rng.standard_normal(n)
    return (pd.Series(rv, index), pd.Series(rq, index), pd.Series(returns, index))


def independent_fit(rv: np.ndarray, rq: np.ndarray, horizon: int, fit_end: int):
    """The HARQ regression written out with pandas and numpy.linalg.lstsq."""
    frame = pd.DataFrame({"rv": rv, "rq": rq})
    frame["week"] = frame["rv"].rolling(5).mean()
    frame["month"] = frame["rv"].rolling(22).mean()
    frame["rvq"] = frame["rv"] * np.sqrt(frame["rq"])
    frame["target"] = frame["rv"].rolling(horizon).mean().shift(-horizon)
    columns = ["rv", "week", "month", "rvq"]
    design = np.column_stack([np.ones(len(frame)), frame[columns].to_numpy()])
    rows = np.arange(21, fit_end - horizon + 1)  # targets realized by fit_end
    beta, *_ = np.linalg.lstsq(design[rows], frame["target"].to_numpy()[rows], rcond=None)
    return beta, design


@pytest.mark.parametrize("horizon", [1, 5, 22])
def test_harq_equals_an_independent_least_squares_fit(horizon):
    rv, rq, returns = simulated()
    model = HARQ().with_quarticity(rq).fit_series(rv, returns, horizon, rv.index[FIT_END])
    beta, design = independent_fit(rv.to_numpy(), rq.to_numpy(), horizon, FIT_END)
    np.testing.assert_allclose(model.coefficients, beta, rtol=1e-8)
    assert model.params["beta_quarticity"] == pytest.approx(beta[4], rel=1e-8)
    origins = rv.index[FIT_END + 1 :]
    forecast = model.predict_origins(origins)
    raw = design[FIT_END + 1 :] @ beta
    in_sample = rv.to_numpy()[: FIT_END + 1]
    sane = (raw >= in_sample.min()) & (raw <= in_sample.max())
    assert sane.sum() > 100  # most forecasts pass the filter
    np.testing.assert_allclose(forecast[sane], raw[sane], rtol=1e-10)
    np.testing.assert_array_equal(forecast[~sane], np.full((~sane).sum(), in_sample.mean()))


def test_the_insanity_filter_replaces_forecasts_outside_the_in_sample_range():
    rv, rq, returns = simulated(seed=3)
    rv.iloc[500] = 50 * rv.iloc[: FIT_END + 1].max()  # a test-period spike
    model = HARQ().with_quarticity(rq).fit_series(rv, returns, 1, rv.index[FIT_END])
    beta, design = independent_fit(rv.to_numpy(), rq.to_numpy(), 1, FIT_END)
    raw = design[500] @ beta
    in_sample = rv.to_numpy()[: FIT_END + 1]
    assert raw > in_sample.max() or raw < in_sample.min()  # the raw forecast is insane
    assert model.predict_origins(rv.index[[500]])[0] == in_sample.mean()
    assert model.n_filtered == 1
    low, high = model.params["insanity_lower"], model.params["insanity_upper"]
    assert (low, high) == (in_sample.min(), in_sample.max())


def test_no_look_ahead_test_period_data_never_moves_the_fit():
    rv, rq, returns = simulated(seed=5)
    fit_end = rv.index[FIT_END]
    model = HARQ().with_quarticity(rq).fit_series(rv, returns, 5, fit_end)
    later = rv.copy()
    later.iloc[FIT_END + 1 :] *= 3.0
    rq_later = rq.copy()
    rq_later.iloc[FIT_END + 1 :] *= 10.0
    moved = HARQ().with_quarticity(rq_later).fit_series(later, returns, 5, fit_end)
    np.testing.assert_array_equal(moved.coefficients, model.coefficients)
    assert moved.params == model.params
    origin = rv.index[[FIT_END]]
    assert moved.predict_origins(origin)[0] == model.predict_origins(origin)[0]


def test_harq_without_quarticity_is_left_out_with_a_note_or_one_error():
    kept, notes = usable_baselines(["har", "harq"], has_exog=False)
    assert kept == ["har"]
    assert notes == [
        "harq left out: it needs the realized quarticity rq, which only intraday bars (or a "
        "file with an rq column) provide; this source has none"
    ]
    assert usable_baselines(["har", "harq"], has_exog=False, has_quarticity=True)[0] == [
        "har", "harq"
    ]
    dataset = build_dataset(make_prices(500), FeatureSpec(context=63))
    assert dataset.quarticity is None
    with pytest.raises(ModelError, match="harq needs the realized quarticity rq"):
        create_baseline("harq").fit(dataset, dataset.origins[300])


@pytest.mark.skipif(not BARS.exists(), reason="../shared/data not present")
def test_harq_on_the_spy_bars_through_a_dataset():
    """Bars -> daily measures (partial days dropped) -> Dataset with rq -> HARQ = lstsq."""
    from forecaster.data.intraday import daily_measures, read_bars

    frame = daily_measures(read_bars(BARS)).frame
    validated = validate_prices(frame, "SPY bars").prices
    assert len(validated) == 693 and "rq" in validated  # 63 partial days dropped
    dataset = build_dataset(validated, FeatureSpec(estimator="rv5", context=63, lookback=10))
    np.testing.assert_array_equal(dataset.quarticity.to_numpy(), validated["rq"].to_numpy())
    cut = dataset.origins[350]
    model = create_baseline("harq").fit(dataset, cut)
    fit_end = int(np.searchsorted(validated.index, cut)) - 1
    beta, _ = independent_fit(validated["rv5"].to_numpy(), validated["rq"].to_numpy(), 1, fit_end)
    np.testing.assert_allclose(model.coefficients, beta, rtol=1e-8)
    forecast = model.predict(dataset, np.arange(350, len(dataset)))
    assert np.isfinite(forecast).all() and (forecast > 0).all()
