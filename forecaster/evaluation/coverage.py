"""Coverage backtests of VaR and ES: breaches, Kupiec, Christoffersen, the Basel traffic light,
McNeil-Frey and the tick/FZ0 losses.

Backtests
---------
A breach is ``R <= VaR``. For one level: the breach count and rate; Kupiec's
proportion-of-failures LR test; Christoffersen's independence and
conditional-coverage LR tests (chi-squared p-values); the Basel traffic light
for 99% VaR over 250-day windows (green <= 4, yellow 5–9, red >= 10 breaches);
the McNeil–Frey (2000) bootstrap test of the exceedance residuals
``(R - ES) / sigma`` on breach days (H0: mean zero; H1: mean below zero, i.e.
ES not deep enough; one-sided, centred i.i.d. bootstrap of the t statistic);
the tick (quantile) loss of VaR and the FZ0 joint loss of (VaR, ES) of Patton,
Ziegel and Chen (2019).

For h > 1 the h-day returns of consecutive origins overlap, so the tests that
assume independent breaches (Kupiec, Christoffersen, traffic light, ES test)
use every h-th origin (non-overlapping returns); counts, rates and losses use
every origin.

A statistic that needs more data than there is raises :class:`NotEnoughData`;
the reports show it as ``null`` with the message, never as NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from forecaster.errors import EvaluationError
from forecaster.evaluation.distributions import NotEnoughData, Unavailable, _check_alpha, _vector

#: Basel: 99% VaR assessed over 250 trading days.
BASEL_LEVEL = 0.01
BASEL_WINDOW = 250
#: Highest breach count of the green and of the yellow zone (Basel, 250 days at 99%).
BASEL_GREEN_MAX = 4
BASEL_YELLOW_MAX = 9
ZONES: tuple[str, ...] = ("green", "yellow", "red")
#: Coverage tests need at least this many expected breaches (n * alpha).
MIN_EXPECTED_BREACHES = 2.0
#: The ES test needs at least this many breaches.
MIN_EXCEEDANCES = 5
#: Bootstrap draws and seed of the McNeil–Frey test (reproducible p-values).
ES_DRAWS = 9999
ES_SEED = 0


def breaches(returns_h: Any, var: Any) -> np.ndarray:
    """Breach indicator ``R <= VaR``."""
    return _vector(returns_h, "returns_h") <= _vector(var, "var")


def _hits(hits: Any) -> np.ndarray:
    array = np.asarray(hits)
    if array.ndim != 1 or array.dtype != bool:
        raise EvaluationError("hits must be a one-dimensional boolean breach indicator")
    return array


def _loglik(failures: float, successes: float, p: float) -> float:
    """``failures * ln p + successes * ln(1 - p)`` with 0 ln 0 = 0."""
    from scipy import special

    return float(special.xlogy(failures, p) + special.xlog1py(successes, -p))


def _chi2_sf(stat: float, dof: int) -> float:
    from scipy import stats

    return float(stats.chi2.sf(stat, dof))


def _coverage_data(hits: np.ndarray, alpha: float) -> None:
    expected = hits.size * alpha
    if expected < MIN_EXPECTED_BREACHES:
        raise NotEnoughData(
            f"not enough data: coverage tests at level {alpha:g} need at least "
            f"{math.ceil(MIN_EXPECTED_BREACHES / alpha)} test days ({MIN_EXPECTED_BREACHES:g} "
            f"expected breaches), got {hits.size}"
        )


def kupiec(hits: Any, alpha: float) -> dict[str, float]:
    """Kupiec (1995) proportion-of-failures test.

    ``LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]`` ~ chi2(1).
    """
    hits, alpha = _hits(hits), _check_alpha(alpha)
    _coverage_data(hits, alpha)
    n, x = hits.size, int(hits.sum())
    stat = -2.0 * (_loglik(x, n - x, alpha) - _loglik(x, n - x, x / n))
    stat = max(stat, 0.0)
    return {"stat": stat, "p_value": _chi2_sf(stat, 1)}


def christoffersen(hits: Any, alpha: float) -> dict[str, Any]:
    """Christoffersen (1998) independence and conditional-coverage LR tests.

    From the transition counts ``n_ij`` (breach state i followed by j):
    ``LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)]
    + 2 ln[(1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11]`` ~ chi2(1), and
    ``LR_cc = LR_pof + LR_ind`` ~ chi2(2) with the Kupiec ``LR_pof``.
    """
    hits, alpha = _hits(hits), _check_alpha(alpha)
    _coverage_data(hits, alpha)
    before, after = hits[:-1], hits[1:]
    n00 = int(np.sum(~before & ~after))
    n01 = int(np.sum(~before & after))
    n10 = int(np.sum(before & ~after))
    n11 = int(np.sum(before & after))
    pi = (n01 + n11) / max(n00 + n01 + n10 + n11, 1)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    restricted = _loglik(n01 + n11, n00 + n10, pi)
    unrestricted = _loglik(n01, n00, pi01) + _loglik(n11, n10, pi11)
    independence = max(-2.0 * (restricted - unrestricted), 0.0)
    conditional = kupiec(hits, alpha)["stat"] + independence
    return {
        "independence": {
            "stat": independence,
            "p_value": _chi2_sf(independence, 1),
        },
        "conditional_coverage": {
            "stat": conditional,
            "p_value": _chi2_sf(conditional, 2),
        },
        "transitions": {"n00": n00, "n01": n01, "n10": n10, "n11": n11},
    }


def basel_zone(count: int) -> str:
    """Basel traffic-light zone of a 250-day breach count of 99% VaR."""
    if count <= BASEL_GREEN_MAX:
        return "green"
    return "yellow" if count <= BASEL_YELLOW_MAX else "red"


def _shares(counts: np.ndarray) -> dict[str, float]:
    zones = [basel_zone(int(c)) for c in counts]
    return {zone: zones.count(zone) / len(zones) for zone in ZONES}


def traffic_light(hits: Any, dates: Any = None) -> dict[str, Any]:
    """Basel traffic light of 99% VaR over 250-observation windows.

    ``windows``: consecutive, non-overlapping windows anchored at the last
    observation (the oldest ``unused`` observations that do not fill a window
    are left out), each with its breach count and zone; ``shares``: the share
    of those windows per zone; ``rolling_shares``: the share per zone of every
    250-observation window ending on each day (the daily assessment);
    ``latest``: the zone of the most recent window.
    """
    hits = _hits(hits)
    n = hits.size
    if n < BASEL_WINDOW:
        raise NotEnoughData(
            f"not enough data: the Basel traffic light needs {BASEL_WINDOW} test days, got {n}"
        )
    labels = [f"{pd.Timestamp(d):%Y-%m-%d}" for d in dates] if dates is not None else list(range(n))
    cumulative = np.concatenate([[0], np.cumsum(hits)])
    rolling = cumulative[BASEL_WINDOW:] - cumulative[:-BASEL_WINDOW]
    unused = n % BASEL_WINDOW
    windows = []
    for start in range(unused, n, BASEL_WINDOW):
        count = int(cumulative[start + BASEL_WINDOW] - cumulative[start])
        windows.append(
            {
                "start": labels[start],
                "end": labels[start + BASEL_WINDOW - 1],
                "breaches": count,
                "zone": basel_zone(count),
            }
        )
    return {
        "window": BASEL_WINDOW,
        "windows": windows,
        "shares": _shares(np.array([w["breaches"] for w in windows])),
        "rolling_shares": _shares(rolling),
        "n_rolling": int(rolling.size),
        "unused": int(unused),
        "latest": windows[-1]["zone"],
    }


def mcneil_frey(
    returns_h: Any,
    var: Any,
    es: Any,
    sigma: Any,
    draws: int = ES_DRAWS,
    seed: int = ES_SEED,
) -> dict[str, float]:
    """McNeil–Frey (2000) bootstrap test of Expected Shortfall.

    On breach days the exceedance residuals ``e = (R - ES) / sigma`` have mean
    zero if ES is right. ``stat = mean(e) / (sd(e) / sqrt(m))`` (``ddof=1``);
    the p-value is one-sided (H1: mean < 0, ES not deep enough):
    ``(1 + #{t_b <= stat}) / (draws + 1)`` over ``draws`` t statistics of
    resamples (with replacement) of the centred residuals ``e - mean(e)``,
    drawn with ``numpy.random.default_rng(seed)``.
    """
    returns_h = _vector(returns_h, "returns_h")
    var, es, sigma = (_vector(a, n) for a, n in ((var, "var"), (es, "es"), (sigma, "sigma")))
    hit = returns_h <= var
    residuals = (returns_h[hit] - es[hit]) / sigma[hit]
    m = residuals.size
    if m < MIN_EXCEEDANCES:
        raise NotEnoughData(
            f"not enough data: the ES test needs at least {MIN_EXCEEDANCES} breaches, got {m}"
        )
    spread = float(np.std(residuals, ddof=1))
    if not spread > 0:
        raise NotEnoughData("not enough data: the exceedance residuals have no spread")
    mean = float(residuals.mean())
    stat = mean / (spread / math.sqrt(m))
    centred = residuals - mean
    sample = centred[np.random.default_rng(seed).integers(0, m, size=(draws, m))]
    sample_spread = sample.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = sample.mean(axis=1) / (sample_spread / math.sqrt(m))
    boot = np.where(sample_spread > 0, boot, 0.0)
    p_value = (1 + int(np.sum(boot <= stat))) / (draws + 1)
    return {"stat": stat, "p_value": float(p_value), "n_exceedances": m, "mean_residual": mean}


def tick_losses(returns_h: Any, var: Any, alpha: float) -> np.ndarray:
    """Quantile (tick) loss ``(alpha - 1{R <= VaR}) (R - VaR)`` per row."""
    returns_h, var = _vector(returns_h, "returns_h"), _vector(var, "var")
    return (_check_alpha(alpha) - (returns_h <= var)) * (returns_h - var)


def fz0_losses(returns_h: Any, var: Any, es: Any, alpha: float) -> np.ndarray:
    """FZ0 loss of (VaR, ES) (Patton, Ziegel & Chen 2019), ES < 0.

    ``L = -1{R <= v} (v - R) / (alpha e) + v / e + ln(-e) - 1``.
    """
    returns_h, var, es = (_vector(a, n) for a, n in ((returns_h, "r"), (var, "var"), (es, "es")))
    alpha = _check_alpha(alpha)
    if not (es < 0).all():
        raise Unavailable("the FZ0 loss is defined for a negative ES only, and an ES here is not")
    hit = (returns_h <= var).astype(np.float64)
    return -hit * (var - returns_h) / (alpha * es) + var / es + np.log(-es) - 1.0
