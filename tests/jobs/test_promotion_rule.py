"""The nightly promotion rule: a one-sided Diebold–Mariano test, not "lower by any margin".

The statistic is worked here from its definition (mean loss differential over the
square root of its long-run variance — the autocovariances up to lag h-1 — times
the Harvey–Leybourne–Newbold factor, Student's t with n-1 degrees of freedom) and
compared with what :func:`forecaster.jobs.nightly.decide` records.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from forecaster.errors import ConfigError
from forecaster.jobs.nightly import PromotionRule, decide, run_nightly
from forecaster.settings import Settings
from tests.conftest import run_cli


def hand_dm(challenger: np.ndarray, champion: np.ndarray, h: int) -> tuple[float, float]:
    """(statistic, one-sided p-value that the challenger has the lower expected loss)."""
    d = challenger - champion
    n = d.size
    centred = d - d.mean()
    gammas = [np.sum(centred[k:] * centred[: n - k]) / n for k in range(h)]
    variance = gammas[0] + 2 * sum(gammas[1:])
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = d.mean() / math.sqrt(variance / n) * hln
    return stat, float(stats.t.cdf(stat, df=n - 1))


def losses(seed: int, n: int = 63, edge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    champion = rng.gamma(2.0, 0.2, n)
    challenger = champion + rng.normal(-edge, 0.1, n)
    return challenger, champion


@pytest.mark.parametrize("horizon", [1, 5])
def test_the_recorded_statistic_is_the_hand_computed_one(horizon):
    challenger, champion = losses(3, edge=0.05)
    verdict = decide(challenger, champion, horizon, PromotionRule(0.05, 40))
    stat, p_value = hand_dm(challenger, champion, horizon)
    assert verdict.dm_stat == pytest.approx(stat, rel=1e-10)
    assert verdict.dm_pvalue == pytest.approx(p_value, rel=1e-10)
    assert verdict.decision == ("promoted" if p_value < 0.05 else "kept")
    assert f"one-sided DM {stat:.2f}, p {p_value:.4f}" in verdict.reason


def test_a_significantly_better_challenger_is_promoted_and_the_level_decides():
    challenger, champion = losses(5, edge=0.05)
    _, p_value = hand_dm(challenger, champion, 1)
    assert 1e-6 < p_value < 0.05  # the example sits between the two levels used below
    assert decide(challenger, champion, 1, PromotionRule(0.05, 40)).decision == "promoted"
    assert decide(challenger, champion, 1, PromotionRule(p_value / 2, 40)).decision == "kept"


def test_lower_by_a_hair_is_not_enough():
    challenger, champion = losses(7)
    challenger = champion - 1e-4 + np.random.default_rng(1).normal(0, 0.1, champion.size)
    assert challenger.mean() < champion.mean()  # the old rule promoted this
    verdict = decide(challenger, champion, 1)
    assert verdict.decision == "kept" and verdict.dm_pvalue > 0.05


def test_identical_models_are_never_promoted():
    _, champion = losses(2)
    verdict = decide(champion.copy(), champion, 1)
    assert verdict.decision == "kept" and verdict.dm_pvalue == 0.5


def test_too_few_scored_origins_keep_the_champion_without_a_test():
    challenger, champion = losses(4, n=30, edge=1.0)  # far better, but only 30 rows
    verdict = decide(challenger, champion, 1, PromotionRule(0.05, 40))
    assert verdict.decision == "kept" and verdict.dm_stat is None
    assert "30 origins, fewer than the 40 needed" in verdict.reason
    # h=22 needs 2h+1 = 45 rows even when --min-scored is lower
    challenger, champion = losses(4, n=44, edge=1.0)
    assert "fewer than the 45 needed" in decide(challenger, champion, 22, PromotionRule(0.05, 10)).reason


def test_no_champion_is_a_first_promotion():
    challenger, _ = losses(1)
    verdict = decide(challenger, None, 1)
    assert verdict.decision == "first" and verdict.promotes and verdict.dm_stat is None


@pytest.mark.parametrize("level", [0.0, 0.5, 1.2, -0.1, True, "0.05"])
def test_a_level_outside_0_to_half_is_refused(level):
    with pytest.raises(ConfigError, match="--promotion-level must be a number strictly between"):
        PromotionRule(level, 40)


def test_min_scored_above_the_window_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="--min-scored 70 is more than --window-days 63"):
        run_nightly(["SPY"], settings=Settings.resolve(tmp_path), source="sample", min_scored=70)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    "option", [["--promotion-level", "0.5"], ["--promotion-level", "x"], ["--min-scored", "2"]]
)
def test_bad_rule_values_are_usage_errors(home, option):
    result = run_cli("nightly", "--tickers", "SPY", *option)
    assert result.exit_code == 2 and option[0] in result.output


def test_the_command_line_defaults_are_the_rules_defaults():
    from forecaster.cli import cli
    from forecaster.jobs.nightly import DEFAULT_MIN_SCORED, DEFAULT_PROMOTION_LEVEL

    defaults = {p.name: p.default for p in cli.commands["nightly"].params}
    assert defaults["promotion_level"] == DEFAULT_PROMOTION_LEVEL == PromotionRule().level
    assert defaults["min_scored"] == DEFAULT_MIN_SCORED == PromotionRule().min_scored
