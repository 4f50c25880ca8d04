"""The cache of fitted VaR/ES distributions behind ``forecast predict`` (evaluation/risk_cache.py).

A fitted HAR stands in for a saved LSTM: ``forecast_risk`` treats any
forecaster alike, and HAR needs no TensorFlow.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from forecaster.data.features import build_dataset
from forecaster.evaluation import risk as risks
from forecaster.evaluation.risk_cache import FitCache
from forecaster.models.baselines import HAR
from tests.conftest import TINY, make_prices

CUT = "2016-03-01"


class Counting:
    """A forecaster that counts its predict calls (a cache hit makes none)."""

    def __init__(self, forecaster):
        self.forecaster, self.calls = forecaster, 0

    def predict(self, dataset, rows=None):
        self.calls += 1
        return self.forecaster.predict(dataset, rows)


@pytest.fixture(scope="module")
def fitted():
    prices = make_prices(400, seed=5)
    dataset = build_dataset(prices, TINY.feature_spec())
    return prices, dataset, HAR().fit(dataset, CUT)


def cache_for(folder, prices, dataset, version="v1", engine="numpy"):
    return FitCache.for_prices(folder, version, "SPY", engine, prices, dataset, CUT)


def risk(forecaster, dataset, distribution="t", levels="0.01,0.05", cache=None):
    return risks.forecast_risk(forecaster, dataset, 1.5e-4, CUT, distribution, levels, cache)


@pytest.mark.parametrize(
    ("distribution", "levels", "more"),
    [("t", "0.01,0.05", "0.01,0.025,0.05"), ("fhs", "0.05,0.1", "0.05,0.075,0.1")],
)
def test_a_cache_hit_gives_what_a_cold_run_gives_without_refitting(
    fitted, tmp_path, distribution, levels, more
):
    prices, dataset, har = fitted
    cold = risk(har, dataset, distribution, levels)
    assert cold["levels"] is not None
    cache = cache_for(tmp_path, prices, dataset)
    assert risk(har, dataset, distribution, levels, cache) == cold  # miss: computed, stored
    assert cache.path(distribution).is_file()
    counting = Counting(har)
    assert risk(counting, dataset, distribution, levels, cache) == cold
    assert counting.calls == 0  # no forward pass over the training rows
    # a level the cache does not hold yet is a miss; the stored levels are kept
    assert risk(counting, dataset, distribution, more, cache) == risk(
        har, dataset, distribution, more
    )
    assert counting.calls == 1
    assert sorted(cache.read(distribution)["levels"]) == sorted(more.split(","))


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: "{not json",
        lambda entry: json.dumps(
            {**entry, "levels": {"0.01": {"quantile": 1.0, "shortfall": 2.0}}}
        ),
        lambda entry: json.dumps({**entry, "params": {"dof": 1.0, "scale": 1.2}}),
        lambda entry: json.dumps({**entry, "n": 3}),
        lambda entry: json.dumps({**entry, "key": {**entry["key"], "version": "v2"}}),
        lambda entry: json.dumps([entry]),
    ],
    ids=["not-json", "positive-quantile", "dof-out-of-range", "too-few", "other-key", "a-list"],
)
def test_a_corrupt_or_foreign_cache_file_is_ignored_and_rewritten(fitted, tmp_path, damage):
    prices, dataset, har = fitted
    cache = cache_for(tmp_path, prices, dataset)
    cold = risk(har, dataset, cache=cache)
    path = cache.path("t")
    path.write_text(damage(json.loads(path.read_text())))
    assert cache.read("t") is None
    counting = Counting(har)
    assert risk(counting, dataset, cache=cache) == cold
    assert counting.calls == 1  # recomputed, not trusted
    assert cache.read("t") is not None  # and rewritten


def tamper(entry, key="0.01", factor=0.1):
    """``entry`` with one level's quantile and shortfall scaled: a plausible hand edit."""
    levels = {name: dict(value) for name, value in entry["levels"].items()}
    levels[key] = {name: value * factor for name, value in levels[key].items()}
    return {**entry, "levels": levels}


@pytest.mark.parametrize("distribution", ["t", "fhs"])
def test_a_tampered_cache_file_is_refit_not_served(fitted, tmp_path, distribution):
    """Issue 20: quantile and shortfall of the 1% level x 0.1 (VaR -0.50% for -5.00%)."""
    prices, dataset, har = fitted
    levels = "0.01,0.05" if distribution == "t" else "0.05,0.1"
    cache = cache_for(tmp_path, prices, dataset)
    cold = risk(har, dataset, distribution, levels, cache=cache)
    path = cache.path(distribution)
    entry = json.loads(path.read_text())
    edited = tamper(entry, levels.split(",")[0])
    assert edited["levels"] != entry["levels"] and edited["checksum"] == entry["checksum"]
    path.write_text(json.dumps(edited))
    assert cache.read(distribution) is None  # the checksum no longer matches
    counting = Counting(har)
    assert risk(counting, dataset, distribution, levels, cache=cache) == cold
    assert counting.calls == 1  # refit
    assert json.loads(path.read_text())["levels"] == entry["levels"]  # and rewritten


@pytest.mark.parametrize(
    ("distribution", "levels", "edit"),
    [
        ("t", "0.01,0.05", lambda entry: tamper(entry)),  # less extreme than the 5% level
        ("t", "0.01,0.05", lambda entry: tamper(entry, factor=1.01)),  # off its own dof/scale
        ("t", "0.01", lambda entry: {**entry, "params": {**entry["params"], "scale": 1.5}}),
        ("fhs", "0.05,0.1", lambda entry: tamper(entry, "0.05")),
    ],
    ids=["t-not-monotone", "t-off-its-params", "t-params-edited", "fhs-not-monotone"],
)
def test_a_self_contradicting_cache_file_is_refit_even_with_a_matching_checksum(
    fitted, tmp_path, distribution, levels, edit
):
    """Someone who also rewrites the checksum still cannot make the file contradict itself."""
    from forecaster.evaluation.risk_cache import _checksum

    prices, dataset, har = fitted
    cache = cache_for(tmp_path, prices, dataset)
    cold = risk(har, dataset, distribution, levels, cache=cache)
    path = cache.path(distribution)
    edited = edit(json.loads(path.read_text()))
    edited["checksum"] = _checksum(edited)
    path.write_text(json.dumps(edited))
    assert cache.read(distribution) is None
    counting = Counting(har)
    assert risk(counting, dataset, distribution, levels, cache=cache) == cold
    assert counting.calls == 1


def test_the_key_changes_with_version_distribution_engine_and_the_prices_before_the_cut(
    fitted, tmp_path
):
    prices, dataset, har = fitted
    cache = cache_for(tmp_path, prices, dataset)
    risk(har, dataset, cache=cache)
    for other in (
        cache_for(tmp_path, prices, dataset, version="v2"),
        cache_for(tmp_path, prices, dataset, engine="keras"),
    ):
        assert other.path("t") != cache.path("t") and other.read("t") is None
    assert cache.read("fhs") is None and cache.path("fhs") != cache.path("t")

    revised = prices.copy()
    revised.iloc[50, revised.columns.get_loc("high")] *= 1.01  # a vendor revision before the cut
    moved = cache_for(tmp_path, revised, build_dataset(revised, TINY.feature_spec()))
    assert moved.path("t") == cache.path("t") and moved.data != cache.data
    assert moved.read("t") is None
    shorter = prices.iloc[5:]  # another --start
    assert (
        cache_for(tmp_path, shorter, build_dataset(shorter, TINY.feature_spec())).data != cache.data
    )


def test_prices_after_the_cut_leave_the_key_and_the_fit_unchanged(fitted, tmp_path):
    prices, dataset, har = fitted
    cache = cache_for(tmp_path, prices, dataset)
    risk(har, dataset, cache=cache)
    later = prices.copy()
    after = later.index > dataset.origins[dataset.origins.searchsorted(CUT)]
    later.loc[after, ["open", "high", "low", "close"]] *= 1.3  # revised after the first test origin
    later_dataset = build_dataset(later, TINY.feature_spec())
    later_cache = cache_for(tmp_path, later, later_dataset)
    assert later_cache.data == cache.data
    # the claim behind the key: a cold fit on the revised prices is the cached one
    assert risk(har, later_dataset, cache=later_cache) == risk(har, later_dataset)


def test_normal_needs_no_cache_and_matches_scipy():
    normal = risks.fit_distribution("normal")
    for alpha in (0.001, 0.01, 0.025, 0.05, 0.2, 0.49):
        q = float(stats.norm.ppf(alpha))
        assert normal.quantile(alpha) == pytest.approx(q, rel=1e-9, abs=0)
        assert normal.shortfall(alpha) == pytest.approx(-stats.norm.pdf(q) / alpha, rel=1e-9)


def test_cached_factors_equal_scipys_t_formulas(fitted, tmp_path):
    prices, dataset, har = fitted
    cache = cache_for(tmp_path, prices, dataset)
    risk(har, dataset, cache=cache)
    entry = cache.read("t")
    dof, scale = entry["params"]["dof"], entry["params"]["scale"]
    for key, factor in entry["levels"].items():
        alpha = float(key)
        q = float(stats.t.ppf(alpha, dof))
        es = -scale * (dof + q**2) / (dof - 1) * float(stats.t.pdf(q, dof)) / alpha
        assert factor["quantile"] == pytest.approx(scale * q, rel=1e-9, abs=0)
        assert factor["shortfall"] == pytest.approx(es, rel=1e-9, abs=0)
        assert np.isfinite(factor["quantile"])


def test_an_unwritable_cache_costs_only_speed(fitted, tmp_path):
    prices, dataset, har = fitted
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = cache_for(blocker, prices, dataset)  # its folder cannot be created
    assert risk(har, dataset, cache=cache) == risk(har, dataset)
    assert cache.read("t") is None
