"""Risk view: every statistic against an independent computation, coverage on simulated
series with known volatility, no look-ahead, and the CLI (JSON, CSV, errors)."""

from __future__ import annotations

import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from forecaster import metrics
from forecaster.data.loader import load_prices
from forecaster.errors import ConfigError, EvaluationError
from forecaster.evaluation import backtest
from forecaster.evaluation import risk as risks
from forecaster.evaluation.report import render_markdown, render_table
from forecaster.models.lstm_forecaster import train
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import TINY, make_prices, run_cli, write_csv
from tests.contract import checked

N = 460


def no_nan(text: str) -> object:
    """``json.loads`` that fails on NaN/Infinity (they are not JSON)."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"JSON contains {constant}")

    return json.loads(text, parse_constant=refuse)


def no_nan_text(text: str) -> str:
    """``text`` after :func:`no_nan` found no NaN/Infinity in it."""
    no_nan(text)
    return text


# ------------------------------------------------------------------ arguments
def test_levels_are_parsed_sorted_and_unique():
    assert risks.parse_levels("0.05, 0.01,0.05") == (0.01, 0.05)
    assert risks.parse_levels([0.025]) == (0.025,)


@pytest.mark.parametrize(
    "text", ["0", "0.5", "-0.01", "0.7", "1", "1e-300", "0.00009", "nan", "inf", "-inf"]
)
def test_levels_outside_the_stated_range_are_refused(text):
    with pytest.raises(ConfigError, match=r"outside \[0.0001, 0.5\)"):
        risks.parse_levels(f"0.01,{text}")


def test_the_range_ends_are_as_stated():
    assert risks.parse_levels("0.0001,0.4999") == (0.0001, 0.4999)
    assert risks.LEVEL_RANGE == "[0.0001, 0.5)"


@pytest.mark.parametrize("name", ["normal", "t"])
def test_every_level_in_the_range_gives_finite_var_and_es(name):
    fitted = risks.fit_distribution(name, stats.t.rvs(2.5, size=500, random_state=0))
    for alpha in (risks.MIN_LEVEL, 0.01, 0.4999):
        q, e = fitted.quantile(alpha), fitted.shortfall(alpha)
        assert math.isfinite(q) and math.isfinite(e) and e < q < 0


def test_a_non_finite_quantile_is_unavailable_not_printed():
    fitted = risks.ReturnDistribution("t", {"dof": float("nan"), "scale": 1.0}, 500)
    with pytest.raises(risks.Unavailable, match="not a finite number"):
        fitted.quantile(0.01)
    with pytest.raises(risks.Unavailable, match="not a finite number"):
        risks.value_at_risk(np.array([1e-4]), 1, fitted, 0.01)


@pytest.mark.parametrize("text", ["abc", "0.01,,0.05", ""])
def test_levels_that_are_not_numbers_are_refused(text):
    with pytest.raises(ConfigError, match="--var-levels"):
        risks.parse_levels(text)


def test_unknown_distribution_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown return distribution 'laplace'.*normal, t, fhs"):
        risks.check_distribution("laplace")


def test_horizon_returns_sum_the_next_h_log_returns():
    returns = pd.Series([np.nan, 0.01, -0.02, 0.03, 0.005, -0.01])
    np.testing.assert_allclose(risks.horizon_returns(returns, [0, 2], 1), [0.01, 0.03])
    out = risks.horizon_returns(returns, [0, 1, 2, 3], 3)
    np.testing.assert_allclose(
        out[:3], [0.01 - 0.02 + 0.03, -0.02 + 0.03 + 0.005, 0.03 + 0.005 - 0.01]
    )
    assert np.isnan(out[3])  # day 6 is not in the series


# ------------------------------------------------------------ distributions
def test_normal_quantile_and_shortfall_match_the_integral():
    normal = risks.fit_distribution("normal")
    for alpha in (0.01, 0.05):
        q = normal.quantile(alpha)
        assert stats.norm.cdf(q) == pytest.approx(alpha, rel=1e-10)
        tail, _ = integrate.quad(lambda x: x * stats.norm.pdf(x), -np.inf, q)
        assert normal.shortfall(alpha) == pytest.approx(tail / alpha, rel=1e-8)


def test_t_fit_is_the_maximum_likelihood_fit_and_its_shortfall_the_integral():
    z = 0.8 * stats.t.rvs(5, size=4000, random_state=np.random.default_rng(3))
    fitted = risks.fit_distribution("t", z)
    dof, loc, scale = stats.t.fit(z, floc=0)
    assert loc == 0
    assert fitted.params["dof"] == pytest.approx(dof, rel=2e-3)
    assert fitted.params["scale"] == pytest.approx(scale, rel=2e-3)
    assert 4 < fitted.params["dof"] < 6.5 and fitted.n == 4000
    nu, s = fitted.params["dof"], fitted.params["scale"]
    for alpha in (0.01, 0.05):
        q = fitted.quantile(alpha)
        assert stats.t.cdf(q / s, nu) == pytest.approx(alpha, rel=1e-9)
        tail, _ = integrate.quad(lambda x: x * stats.t.pdf(x, nu, scale=s), -np.inf, q)
        assert fitted.shortfall(alpha) == pytest.approx(tail / alpha, rel=1e-6)
    assert fitted.std() == pytest.approx(s * math.sqrt(nu / (nu - 2)))


def test_fhs_takes_empirical_quantile_and_tail_mean():
    z = np.random.default_rng(4).standard_normal(1000) * 1.3
    fitted = risks.fit_distribution("fhs", z)
    ordered = np.sort(z)
    # linear interpolation between order statistics k and k+1 at position alpha * (n - 1)
    position = 0.05 * (z.size - 1)
    below, weight = int(position), position - int(position)
    expected_q = ordered[below] + weight * (ordered[below + 1] - ordered[below])
    assert fitted.quantile(0.05) == pytest.approx(expected_q, rel=1e-12)
    assert fitted.shortfall(0.05) == pytest.approx(ordered[ordered <= expected_q].mean())
    assert fitted.std() == pytest.approx(z.std())


def test_fits_need_enough_training_returns():
    with pytest.raises(risks.NotEnoughData, match="not enough data: the t distribution needs"):
        risks.fit_distribution("t", np.ones(50))
    fhs = risks.fit_distribution("fhs", np.random.default_rng(0).standard_normal(300))
    fhs.quantile(0.05)  # 15 residuals in the tail: enough
    with pytest.raises(risks.NotEnoughData, match="fhs at level 0.01 needs at least 500"):
        fhs.quantile(0.01)


def test_value_at_risk_scales_with_the_h_day_volatility():
    normal = risks.fit_distribution("normal")
    var, es = risks.value_at_risk(np.array([1e-4, 4e-4]), 5, normal, 0.01)
    sigma = np.sqrt(5 * np.array([1e-4, 4e-4]))
    np.testing.assert_allclose(var, sigma * stats.norm.ppf(0.01))
    np.testing.assert_allclose(es, -sigma * stats.norm.pdf(stats.norm.ppf(0.01)) / 0.01)


# ------------------------------------------------------------ coverage tests
def hand_built_hits() -> np.ndarray:
    """300 days, 9 breaches, two of them on consecutive days (a cluster)."""
    hits = np.zeros(300, dtype=bool)
    hits[[10, 11, 50, 90, 91, 150, 200, 240, 290]] = True
    return hits


def chi2_sf_1(x: float) -> float:
    return math.erfc(math.sqrt(x / 2))


def chi2_sf_2(x: float) -> float:
    return math.exp(-x / 2)


def test_kupiec_matches_the_formula():
    hits, p = hand_built_hits(), 0.01
    n, x = hits.size, int(hits.sum())
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (n - x) * math.log(1 - x / n) + x * math.log(x / n)
    )
    result = risks.kupiec(hits, p)
    assert result["stat"] == pytest.approx(lr, rel=1e-12)
    assert result["p_value"] == pytest.approx(chi2_sf_1(lr), rel=1e-9)
    assert result["p_value"] < 0.01  # 9 breaches where 3 are expected


def test_kupiec_without_breaches():
    result = risks.kupiec(np.zeros(500, dtype=bool), 0.01)
    assert result["stat"] == pytest.approx(-2 * 500 * math.log(0.99))


def test_christoffersen_matches_the_formula():
    hits, p = hand_built_hits(), 0.05
    counts = {(i, j): 0 for i in (0, 1) for j in (0, 1)}
    for before, after in zip(hits[:-1], hits[1:], strict=True):
        counts[int(before), int(after)] += 1
    n00, n01, n10, n11 = counts[0, 0], counts[0, 1], counts[1, 0], counts[1, 1]
    assert (n01, n11) == (7, 2)
    pi01, pi11 = n01 / (n00 + n01), n11 / (n10 + n11)
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    lr_ind = -2 * ((n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)) + 2 * (
        n00 * math.log(1 - pi01)
        + n01 * math.log(pi01)
        + n10 * math.log(1 - pi11)
        + n11 * math.log(pi11)
    )
    n, x = hits.size, int(hits.sum())
    lr_pof = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (n - x) * math.log(1 - x / n) + x * math.log(x / n)
    )
    result = risks.christoffersen(hits, p)
    assert result["transitions"] == {"n00": n00, "n01": n01, "n10": n10, "n11": n11}
    assert result["independence"]["stat"] == pytest.approx(lr_ind, rel=1e-12)
    assert result["independence"]["p_value"] == pytest.approx(chi2_sf_1(lr_ind), rel=1e-9)
    assert result["conditional_coverage"]["stat"] == pytest.approx(lr_pof + lr_ind, rel=1e-12)
    assert result["conditional_coverage"]["p_value"] == pytest.approx(
        chi2_sf_2(lr_pof + lr_ind), rel=1e-9
    )
    assert result["independence"]["p_value"] < 0.05  # 2 of 9 breaches followed by a breach


def test_coverage_tests_state_when_there_are_too_few_days():
    with pytest.raises(risks.NotEnoughData, match="need at least 200 test days .* got 150"):
        risks.kupiec(np.zeros(150, dtype=bool), 0.01)
    with pytest.raises(risks.NotEnoughData, match="not enough data"):
        risks.christoffersen(np.zeros(30, dtype=bool), 0.05)


def test_traffic_light_counts_each_window():
    counts = [3, 7, 12]  # green, yellow, red
    unused = 10
    hits = np.zeros(unused + 250 * len(counts), dtype=bool)
    hits[:unused] = True  # outside every non-overlapping window (anchored at the end)
    rng = np.random.default_rng(0)
    for number, count in enumerate(counts):
        start = unused + 250 * number
        hits[start + rng.choice(250, count, replace=False)] = True
    dates = pd.bdate_range("2015-01-01", periods=hits.size)
    light = risks.traffic_light(hits, dates)
    assert [w["breaches"] for w in light["windows"]] == counts
    assert [w["zone"] for w in light["windows"]] == ["green", "yellow", "red"]
    assert light["windows"][0]["start"] == f"{dates[unused]:%Y-%m-%d}"
    assert light["windows"][-1]["end"] == f"{dates[-1]:%Y-%m-%d}"
    assert light["unused"] == unused and light["latest"] == "red"
    assert light["shares"] == pytest.approx({"green": 1 / 3, "yellow": 1 / 3, "red": 1 / 3})
    rolling = [int(hits[end - 249 : end + 1].sum()) for end in range(249, hits.size)]
    zones = ["green" if c <= 4 else "yellow" if c <= 9 else "red" for c in rolling]
    assert light["n_rolling"] == len(rolling)
    for zone in ("green", "yellow", "red"):
        assert light["rolling_shares"][zone] == pytest.approx(zones.count(zone) / len(zones))


def test_basel_zone_boundaries():
    assert [risks.basel_zone(c) for c in (0, 4, 5, 9, 10, 30)] == [
        "green",
        "green",
        "yellow",
        "yellow",
        "red",
        "red",
    ]


def test_traffic_light_needs_250_days():
    with pytest.raises(risks.NotEnoughData, match="needs 250 test days, got 249"):
        risks.traffic_light(np.zeros(249, dtype=bool))


# ---------------------------------------------------------------- losses, ES
def test_tick_and_fz0_losses_match_the_formulas():
    y = np.array([-0.05, -0.01, 0.02, -0.031])
    v = np.array([-0.03, -0.02, -0.02, -0.03])
    e = np.array([-0.04, -0.025, -0.03, -0.035])
    a = 0.05
    tick = [(a - (yi <= vi)) * (yi - vi) for yi, vi in zip(y, v, strict=True)]
    fz0 = [
        -(1.0 if yi <= vi else 0.0) * (vi - yi) / (a * ei) + vi / ei + math.log(-ei) - 1
        for yi, vi, ei in zip(y, v, e, strict=True)
    ]
    np.testing.assert_allclose(risks.tick_losses(y, v, a), tick, rtol=1e-14)
    np.testing.assert_allclose(risks.fz0_losses(y, v, e, a), fz0, rtol=1e-14)
    with pytest.raises(risks.Unavailable, match="negative ES"):
        risks.fz0_losses(y, v, -e, a)


def test_mcneil_frey_matches_an_independent_bootstrap():
    rng = np.random.default_rng(7)
    y = rng.standard_normal(400) * 0.01
    sigma = np.full(400, 0.01)
    var, es = sigma * stats.norm.ppf(0.05), sigma * -stats.norm.pdf(stats.norm.ppf(0.05)) / 0.05
    result = risks.mcneil_frey(y, var, es, sigma, draws=999, seed=11)
    hit = y <= var
    e = (y[hit] - es[hit]) / sigma[hit]
    m = e.size
    t = e.mean() / (e.std(ddof=1) / math.sqrt(m))
    assert result["n_exceedances"] == m and result["stat"] == pytest.approx(t, rel=1e-12)
    centred = e - e.mean()
    draws = np.random.default_rng(11).integers(0, m, size=(999, m))
    below = 0
    for row in draws:
        sample = centred[row]
        below += sample.mean() / (sample.std(ddof=1) / math.sqrt(m)) <= t
    assert result["p_value"] == pytest.approx((1 + below) / 1000, abs=1e-12)


def test_mcneil_frey_needs_five_breaches():
    y = np.array([-0.05, -0.04, 0.01, 0.02, -0.03, 0.0])
    with pytest.raises(risks.NotEnoughData, match="ES test needs at least 5 breaches, got 3"):
        risks.mcneil_frey(y, np.full(6, -0.025), np.full(6, -0.035), np.full(6, 0.01))


# ------------------------------------------- simulated series, known volatility
def simulated(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns with a known, slowly varying daily variance (normal or unit-variance t_4)."""
    rng = np.random.default_rng(seed)
    variance = (0.01 * np.exp(0.4 * np.sin(np.arange(n) / 60))) ** 2
    if kind == "normal":
        shocks = rng.standard_normal(n)
    else:
        shocks = rng.standard_t(4, n) * math.sqrt(2 / 4)  # unit variance
    return np.sqrt(variance) * shocks, variance


@pytest.mark.parametrize(
    ("kind", "dist"), [("normal", "normal"), ("t", "t"), ("t", "fhs"), ("normal", "fhs")]
)
def test_coverage_passes_at_the_true_volatility_and_fails_30_percent_below(kind, dist):
    # Kupiec at 5% rejects a right model 5% of the time per level; over seeds 0..39 these
    # four cases passed both levels in 39, 34, 30 and 35 runs (t and fhs also carry the
    # estimation error of their fit on 4000 days). The seed is fixed, so the test is exact.
    returns, variance = simulated(kind, 6500, seed=0)
    train, test = slice(0, 4000), slice(4000, None)
    fitted = risks.fit_distribution(dist, risks.standardize(returns[train], variance[train], 1))
    for alpha in (0.01, 0.05):
        var, _ = risks.value_at_risk(variance[test], 1, fitted, alpha)
        hits = risks.breaches(returns[test], var)
        assert risks.kupiec(hits, alpha)["p_value"] > 0.05, (alpha, hits.mean())
        low = 0.7**2 * variance[test]  # volatility 30% too low
        var_low, es_low = risks.value_at_risk(low, 1, fitted, alpha)
        hits_low = risks.breaches(returns[test], var_low)
        assert risks.kupiec(hits_low, alpha)["p_value"] < 0.01, (alpha, hits_low.mean())
        if kind == "normal":
            # beyond a too-shallow VaR, normal tails fall off faster than the scaled-down ES
            # says; t tails are scale-free (E[R | R < u] is proportional to u), so there the
            # ES test, conditional on the breaches, has no power against a pure scale error
            sigma_low = np.sqrt(low) * fitted.std()
            assert risks.mcneil_frey(returns[test], var_low, es_low, sigma_low)["p_value"] < 0.01


def test_es_test_passes_at_the_true_volatility():
    returns, variance = simulated("normal", 3000, seed=0)
    normal = risks.fit_distribution("normal")
    var, es = risks.value_at_risk(variance, 1, normal, 0.05)
    assert risks.mcneil_frey(returns, var, es, np.sqrt(variance))["p_value"] > 0.05


def test_a_t_series_breaks_the_normal_var_at_one_percent():
    returns, variance = simulated("t", 4000, seed=21)
    var, _ = risks.value_at_risk(variance, 1, risks.fit_distribution("normal"), 0.01)
    assert risks.kupiec(risks.breaches(returns, var), 0.01)["p_value"] < 0.01


def frame_for(returns: np.ndarray, variance: np.ndarray, models: dict[str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"target_var": variance, "trailing_var": variance, "high_ex_ante": False},
        index=pd.bdate_range("2010-01-04", periods=returns.size, name="date"),
    )
    frame["high_ex_post"] = frame["target_var"] > np.quantile(variance, 0.8)
    frame.loc[frame.index[::7], "high_ex_ante"] = True
    for name, scale in models.items():
        frame[name] = variance * scale**2
    return frame


def test_evaluate_fits_each_block_on_its_own_residuals_and_matches_the_parts():
    returns, variance = simulated("normal", 1400, seed=5)
    test = slice(800, None)
    frame = frame_for(returns[test], variance[test], {"good": 1.0, "har": 0.7})
    rng = np.random.default_rng(1)
    blocks = {
        # walk-forward: a second refit halfway; the second block's residuals are twice as wide
        name: [
            risks.ResidualBlock(0, frame.index[0], rng.standard_normal(500)),
            risks.ResidualBlock(300, frame.index[300], 2 * rng.standard_normal(500)),
        ]
        for name in ("good", "har")
    }
    result = risks.evaluate(frame, ["good", "har"], returns[test], blocks, 1, "fhs", "0.01,0.05")
    summary = result.summary
    assert (
        summary["n"] == 600 and summary["fits"]["good"][1]["cut"] == f"{frame.index[300]:%Y-%m-%d}"
    )
    for name in ("good", "har"):
        for number, block in enumerate(blocks[name]):
            fitted = risks.fit_distribution("fhs", block.residuals)
            place = slice(block.start, 300 if number == 0 else None)
            expected, _ = risks.value_at_risk(frame[name].to_numpy()[place], 1, fitted, 0.05)
            np.testing.assert_allclose(result.frame[f"{name}_var_0.05"].to_numpy()[place], expected)
    y = result.frame["return_h"].to_numpy()
    for name in ("good", "har"):
        entry = summary["models"][name]["0.05"]
        var, es = (result.frame[f"{name}_{kind}_0.05"].to_numpy() for kind in ("var", "es"))
        hits = y <= var
        assert entry["breaches"] == hits.sum() and entry["breach_rate"] == pytest.approx(
            hits.mean()
        )
        assert entry["kupiec"] == pytest.approx(risks.kupiec(hits, 0.05))
        assert entry["tick_loss"] == pytest.approx(risks.tick_losses(y, var, 0.05).mean())
        assert entry["fz0"] == pytest.approx(risks.fz0_losses(y, var, es, 0.05).mean())
        high = frame["high_ex_ante"].to_numpy()
        assert entry["regime"]["breaches_high"] == hits[high].sum()
        assert entry["regime"]["breach_rate_low"] == pytest.approx(hits[~high].mean())
        assert (
            entry["traffic_light"] is None and "0.01 level" in entry["unavailable"]["traffic_light"]
        )
    good, har = (
        risks.fz0_losses(y, *(result.frame[f"{n}_{k}_0.05"] for k in ("var", "es")), 0.05)
        for n in ("good", "har")
    )
    assert summary["models"]["good"]["0.05"]["dm_fz0"] == metrics.diebold_mariano(good, har, 1)
    assert summary["models"]["har"]["0.05"]["dm_fz0"] is None
    # the 1% level: 600 days is enough for the tests, not for fhs's tail of 500 residuals
    assert summary["models"]["good"]["0.01"]["kupiec"] is not None
    assert summary["models"]["good"]["0.01"]["traffic_light"]["windows"]


def test_evaluate_uses_non_overlapping_returns_for_tests_at_longer_horizons():
    returns, variance = simulated("normal", 1200, seed=8)
    frame = frame_for(returns, variance, {"har": 1.0})
    blocks = {"har": [risks.ResidualBlock(0, frame.index[0], np.empty(0))]}
    result = risks.evaluate(frame, ["har"], returns, blocks, 5, "normal", [0.05])
    entry = result.summary["models"]["har"]["0.05"]
    assert result.summary["test_step"] == 5 and result.summary["n_tested"] == 240
    hits = returns <= result.frame["har_var_0.05"].to_numpy()
    assert entry["breaches"] == hits.sum()  # every origin
    assert entry["kupiec"] == pytest.approx(risks.kupiec(hits[::5], 0.05))  # every 5th


def test_evaluate_reports_missing_fits_as_null_with_the_reason():
    returns, variance = simulated("normal", 300, seed=2)
    frame = frame_for(returns, variance, {"lstm": 1.0, "har": 1.0})
    blocks = {
        "lstm": [risks.ResidualBlock(0, frame.index[0], np.ones(20))],
        "har": [
            risks.ResidualBlock(0, frame.index[0], np.random.default_rng(0).standard_normal(150))
        ],
    }
    result = risks.evaluate(frame, ["lstm", "har"], returns, blocks, 1, "t", "0.01,0.05")
    lstm = result.summary["models"]["lstm"]["0.05"]
    assert lstm["breaches"] is None and lstm["fz0"] is None
    assert lstm["unavailable"]["kupiec"].startswith("not enough data: the t distribution needs")
    assert result.summary["fits"]["lstm"][0]["params"] is None
    assert result.frame["lstm_var_0.05"].isna().all()
    har = result.summary["models"]["har"]
    assert har["0.05"]["kupiec"] is not None and har["0.01"]["kupiec"] is not None
    # the ES test runs exactly when there are 5 breaches or more, counted here from the frame
    for key in ("0.01", "0.05"):
        hits = int((result.frame["return_h"] <= result.frame[f"har_var_{key}"]).sum())
        assert har[key]["breaches"] == hits
        if hits >= 5:
            assert har[key]["es_test"]["n_exceedances"] == hits
            assert "es_test" not in har[key]["unavailable"]
        else:
            assert har[key]["es_test"] is None
            assert har[key]["unavailable"]["es_test"] == (
                f"not enough data: the ES test needs at least 5 breaches, got {hits}"
            )
    assert har["0.01"]["es_test"] is None and har["0.05"]["es_test"] is not None  # both cases
    text = render_table({**summary_shell(), "risk": result.summary})
    assert "Risk view" in text and "n/a (lstm 0.01, lstm 0.05): not enough data" in text
    assert "level 0.01 (99% VaR)" in text and "Basel G/Y/R" in text
    assert "| lstm | n/a |" in render_markdown({**summary_shell(), "risk": result.summary})


def summary_shell() -> dict:
    """A point-forecast summary without models (the risk section renders on its own)."""
    return {
        "ticker": "SIM",
        "model_version": "v",
        "init": "encoder",
        "horizon": 1,
        "estimator": "garman-klass",
        "test_start": "2010-01-04",
        "test_end": "2011-02-01",
        "n": 300,
        "regime": {
            "quantile": 0.8,
            "threshold_ex_ante_vol": 0.2,
            "threshold_ex_post_vol": 0.2,
            "n_high_ex_ante": 1,
            "n_high_ex_post": 1,
        },
        "models": {},
        "notes": [],
    }


# ------------------------------------------------------- on a tiny trained model
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CSV ticker with a tiny champion: (home, csv path, version), trained once."""
    home = tmp_path_factory.mktemp("risk_home")
    path = home / "prices.csv"
    write_csv(path, make_prices(N, seed=5))
    settings = Settings.resolve(home)
    data = load_prices("TEST", source="csv", csv_path=path, settings=settings)
    outcome = train(data, TINY, ModelRegistry(settings.models_dir), test_fraction=0.25)
    return home, path, outcome.version


def evaluate(trained, *args: str):
    home, path, _ = trained
    source = ("--ticker", "TEST", "--source", "csv", "--csv", str(path))
    return run_cli("--home", str(home), "evaluate", *source, *args)


def test_evaluate_risk_json_is_valid_and_recomputable_from_the_csv(trained, tmp_path):
    csv_out, png_out = tmp_path / "pred.csv", tmp_path / "plot.png"
    result = evaluate(
        trained, "--risk", "--format", "json", "--predictions", str(csv_out), "--plot", str(png_out)
    )
    assert result.exit_code == 0, result.output
    (payload,) = checked(no_nan_text(result.stdout), "evaluate")["results"]
    risk = payload["risk"]
    assert risk["distribution"] == "t" and risk["levels"] == [0.01, 0.05]
    assert risk["horizon"] == 1 and risk["n"] == payload["n"] and risk["reference"] == "har"
    for key in ("return", "test_step", "n_tested", "es_test", "fits", "models", "notes"):
        assert key in risk
    assert set(risk["models"]) == set(payload["models"])
    frame = pd.read_csv(csv_out)
    assert "return_h" in frame.columns
    y = frame["return_h"].to_numpy()
    for name, levels in risk["models"].items():
        assert set(levels) == {"0.01", "0.05"}
        fit = risk["fits"][name][0]
        assert fit["n"] >= 100 and set(fit["params"]) == {"dof", "scale"}
        for key, entry in levels.items():
            assert set(entry) == set(risks.LEVEL_KEYS)
            var = frame[f"{name}_var_{key}"].to_numpy()
            es = frame[f"{name}_es_{key}"].to_numpy()
            assert (es < var).all() and (var < 0).all()
            hits = y <= var
            assert entry["breaches"] == int(hits.sum())
            assert entry["fz0"] == pytest.approx(
                np.mean(-(hits * (var - y)) / (float(key) * es) + var / es + np.log(-es) - 1)
            )
            assert entry["tick_loss"] == pytest.approx(np.mean((float(key) - hits) * (y - var)))
            for column, value in entry.items():
                if value is None:
                    assert entry["unavailable"][column], (name, key, column)
        # about 100 test days: too few for the 1% tests, enough for 5%
        one = levels["0.01"]
        assert one["kupiec"] is None
        assert one["unavailable"]["kupiec"].startswith("not enough data: coverage tests")
        assert one["unavailable"]["traffic_light"].startswith("not enough data: the Basel")
        assert levels["0.05"]["kupiec"] is not None
    assert png_out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_risk_table_and_fhs_states_what_is_missing(trained):
    result = evaluate(trained, "--dist", "fhs", "--baselines", "har,ewma")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Risk view" in text and "filtered historical simulation" in text
    assert "not enough data: fhs at level 0.01 needs at least 500" in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_risk_fits_and_first_var_ignore_the_test_period(trained):
    home, path, version = trained
    settings = Settings.resolve(home)
    data = load_prices("TEST", source="csv", csv_path=path, settings=settings)
    first = backtest.held_out(version, data, ["har", "garch", "ewma"], risk=True)
    prices = data.prices.copy()
    later = prices.index > pd.Timestamp(version.record.split["test_start"])
    prices.loc[later, ["open", "high", "low", "close"]] *= np.random.default_rng(1).uniform(
        0.7, 1.3, (later.sum(), 1)
    )
    prices["high"] = prices[["open", "high", "low", "close"]].max(axis=1)
    prices["low"] = prices[["open", "high", "low", "close"]].min(axis=1)
    changed = data.__class__(**{**data.__dict__, "prices": prices})
    second = backtest.held_out(version, changed, ["har", "garch", "ewma"], risk=True)
    for dist in ("t", "fhs"):
        a = backtest.risk_summary(first, dist, [0.05])
        b = backtest.risk_summary(second, dist, [0.05])
        assert a.summary["fits"] == b.summary["fits"]
        risk_columns = [c for c in a.frame.columns if c != "return_h"]
        pd.testing.assert_series_equal(a.frame[risk_columns].iloc[0], b.frame[risk_columns].iloc[0])
        assert not np.allclose(a.frame["return_h"].iloc[1:], b.frame["return_h"].iloc[1:])


def test_risk_summary_needs_a_risk_backtest(trained):
    home, path, version = trained
    data = load_prices("TEST", source="csv", csv_path=path, settings=Settings.resolve(home))
    run = backtest.held_out(version, data, ["har"])
    with pytest.raises(EvaluationError, match="risk=True"):
        backtest.risk_summary(run)
    text = backtest.predictions_csv(backtest.held_out(version, data, ["har"], risk=True))
    assert "return_h" not in pd.read_csv(io.StringIO(text)).columns  # only with a risk result


@pytest.mark.parametrize("command", ["evaluate", "predict", "nightly"])
def test_an_unknown_distribution_is_a_usage_error(trained, command):
    home, _, _ = trained
    result = run_cli("--home", str(home), command, "--dist", "laplace")
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--dist': 'laplace' is not one of 'normal', 't', 'fhs'" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_predict_reports_var_and_es(trained):
    home, path, version = trained
    source = ("--ticker", "TEST", "--source", "csv", "--csv", str(path))
    result = run_cli("--home", str(home), "predict", *source, "--format", "json")
    assert result.exit_code == 0, result.output
    (payload,) = checked(no_nan_text(result.stdout), "predict")["forecasts"]
    risk = payload["risk"]
    assert risk["distribution"] == "t" and risk["reason"] is None
    assert risk["fit"]["before"] == version.record.split["test_start"] and risk["fit"]["n"] >= 100
    # The session (Garman-Klass) forecast is scaled by the Hansen-Lunde overnight factor,
    # sum r^2 / sum v over the days before the test period, recorded with the model.
    factor = risk["overnight"]["factor"]
    prices = load_prices("TEST", source="csv", csv_path=path, settings=Settings.resolve(home)).prices
    before = prices.loc[: pd.Timestamp(version.record.split["test_start"]) - pd.Timedelta(days=1)]
    log_return = np.log(before["close"]).diff()
    gk = 0.5 * np.log(before["high"] / before["low"]) ** 2 - (2 * math.log(2) - 1) * np.log(
        before["close"] / before["open"]
    ) ** 2
    used = log_return.notna()
    assert factor == pytest.approx((log_return[used] ** 2).sum() / gk[used].sum(), rel=1e-9)
    assert version.record.overnight["factor"] == factor != 1.0
    sigma = math.sqrt(factor * payload["variance"])
    nu, s = risk["fit"]["params"]["dof"], risk["fit"]["params"]["scale"]
    assert risk["levels"]["0.01"]["var"] == pytest.approx(sigma * s * stats.t.ppf(0.01, nu))
    assert risk["levels"]["0.05"]["es"] < risk["levels"]["0.05"]["var"] < 0
    normal = run_cli(
        "--home", str(home), "predict", *source, "--dist", "normal", "--var-levels", "0.05"
    )
    assert normal.exit_code == 0 and "VaR 5% " in normal.stdout and "(normal)" in normal.stdout
    fhs = run_cli("--home", str(home), "predict", *source, "--dist", "fhs", "--var-levels", "0.01")
    assert fhs.exit_code == 0 and "n/a — not enough data: fhs at level 0.01" in fhs.stdout
    bad = run_cli("--home", str(home), "predict", *source, "--var-levels", "0.5")
    assert bad.exit_code == 2 and "VaR level 0.5 is outside [0.0001, 0.5)" in bad.stderr


@pytest.mark.slow
def test_walk_forward_fits_each_block_before_it(trained):
    home, path, version = trained
    data = load_prices("TEST", source="csv", csv_path=path, settings=Settings.resolve(home))
    run = backtest.walk_forward(version, data, ["har"], refit_every=40, risk=True)
    dates = run.predictions.index
    cuts = [f"{dates[i]:%Y-%m-%d}" for i in range(0, len(dates), 40)]
    result = backtest.risk_summary(run, "t", [0.05])
    for name in ("lstm", "har"):
        fits = result.summary["fits"][name]
        assert [fit["cut"] for fit in fits] == cuts
        sizes = [fit["n"] for fit in fits]
        assert sizes == sorted(sizes) and sizes[-1] > sizes[0]  # expanding window
    assert any("each refit" in note for note in result.summary["notes"])
    assert result.frame["lstm_var_0.05"].notna().all()  # every block has its own fit


@pytest.mark.parametrize(
    "command",
    [
        ("predict", "--ticker", "SPY", "--source", "sample"),
        ("evaluate", "--ticker", "SPY"),
        ("nightly", "--tickers", "SPY", "--source", "sample"),
    ],
)
@pytest.mark.parametrize("levels", ["1e-300", "0.01,nan", "inf", "0.5", "x"])
def test_every_command_checks_var_levels_when_parsing(tmp_path, command, levels):
    """A level outside the stated range is a usage error (exit 2) before any work starts."""
    home = tmp_path / "home"
    result = run_cli("--home", str(home), *command, "--var-levels", levels)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--var-levels'" in result.stderr
    assert "[0.0001, 0.5)" in result.stderr
    assert "Traceback" not in result.output
    assert not home.exists()  # nothing trained, fetched or locked


def test_json_output_refuses_non_finite_numbers():
    from forecaster.cli.output import json_text

    assert json_text({"var": -0.05}) == '{"var": -0.05}'
    for bad in (float("inf"), float("nan")):
        with pytest.raises(EvaluationError, match="not finite"):
            json_text({"levels": {"1e-300": {"var": bad}}})
