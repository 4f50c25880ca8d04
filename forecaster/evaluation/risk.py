"""Value-at-Risk and Expected Shortfall from variance forecasts: the risk view of a report.

The pieces live in two modules and are re-exported here (``risk.kupiec`` and
the rest keep working):

- :mod:`forecaster.evaluation.distributions`: from a variance forecast to a
  return distribution (``normal``, ``t``, ``fhs``), the overnight factor, the
  in-sample residuals they are fit on, VaR and ES;
- :mod:`forecaster.evaluation.coverage`: the breach indicator and its tests
  (Kupiec, Christoffersen, the Basel traffic light, McNeil–Frey, tick and FZ0
  losses).

This module assembles them: :func:`evaluate` (the ``risk`` block of
``forecast evaluate --risk``: every model's VaR/ES on the test period and
their backtests, overall and in the high-volatility regime) and
:func:`forecast_risk` (the VaR/ES of one issued forecast, with the fit cache).
A statistic that needs more data than there is is shown as ``null`` with the
message, never as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from forecaster.errors import EvaluationError
from forecaster.evaluation.coverage import (  # re-exported: see __all__
    BASEL_LEVEL,
    ES_DRAWS,
    basel_zone,
    breaches,
    christoffersen,
    fz0_losses,
    kupiec,
    mcneil_frey,
    tick_losses,
    traffic_light,
)
from forecaster.evaluation.defaults import DISTRIBUTIONS
from forecaster.evaluation.distributions import (  # re-exported: see __all__
    DEFAULT_DISTRIBUTION,
    DEFAULT_LEVELS,
    LEVEL_RANGE,
    MAX_LEVEL,
    MIN_LEVEL,
    NotEnoughData,
    ResidualBlock,
    ReturnDistribution,
    Unavailable,
    _vector,
    check_distribution,
    fit_distribution,
    horizon_returns,
    in_sample_residuals,
    level_key,
    overnight_factor,
    parse_levels,
    standardize,
    value_at_risk,
)

if TYPE_CHECKING:
    from forecaster.data.features import Dataset
    from forecaster.models.base import Forecaster


__all__ = [
    "DEFAULT_DISTRIBUTION",
    "DEFAULT_LEVELS",
    "DISTRIBUTIONS",
    "FitStore",
    "LEVEL_RANGE",
    "MAX_LEVEL",
    "MIN_LEVEL",
    "NotEnoughData",
    "ResidualBlock",
    "ReturnDistribution",
    "RiskResult",
    "Unavailable",
    "basel_zone",
    "breaches",
    "check_distribution",
    "christoffersen",
    "evaluate",
    "fit_distribution",
    "forecast_risk",
    "fz0_losses",
    "horizon_returns",
    "in_sample_residuals",
    "kupiec",
    "level_key",
    "mcneil_frey",
    "parse_levels",
    "standardize",
    "tick_losses",
    "traffic_light",
    "value_at_risk",
]

ES_TEST = f"mcneil-frey: one-sided bootstrap of exceedance residuals, {ES_DRAWS} draws"


@dataclass(frozen=True, eq=False)
class RiskResult:
    """The ``risk`` block of a report and the per-origin VaR/ES frame behind it.

    ``frame`` is indexed like the backtest's predictions: ``return_h`` (the
    realized h-day log return), then ``<model>_var_<level>`` and
    ``<model>_es_<level>`` for every model and level.
    """

    summary: dict[str, Any]
    frame: pd.DataFrame


def _attempt(entry: dict[str, Any], reasons: dict[str, str], key: str, compute: Any) -> Any:
    """``entry[key] = compute()``, or None with the reason when it is unavailable."""
    try:
        entry[key] = compute()
    except Unavailable as exc:
        entry[key] = None
        reasons[key] = str(exc)
    return entry[key]


def _model_forecasts(
    forecast: np.ndarray,
    blocks: list[ResidualBlock],
    horizon: int,
    distribution: str,
    levels: tuple[float, ...],
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], np.ndarray, list, dict[float, str]]:
    """VaR, ES and return sigma of one model, each block with its own fitted distribution."""
    n = forecast.size
    var = {alpha: np.full(n, np.nan) for alpha in levels}
    es = {alpha: np.full(n, np.nan) for alpha in levels}
    sigma = np.full(n, np.nan)
    fits, missing = [], {}
    ordered = sorted(blocks, key=lambda block: block.start)
    for number, block in enumerate(ordered):
        end = ordered[number + 1].start if number + 1 < len(ordered) else n
        place = slice(block.start, end)
        fit: dict[str, Any] = {
            "cut": f"{block.cut:%Y-%m-%d}",
            "n": int(block.residuals.size),
            "overnight": block.factor,
        }
        if not math.isfinite(block.factor):
            reason = "too few days before the cut to estimate the overnight factor"
            fits.append({**fit, "overnight": None, "params": None, "reason": reason})
            for alpha in levels:
                missing.setdefault(alpha, reason)
            continue
        scaled = forecast[place] * block.factor
        try:
            fitted = fit_distribution(distribution, block.residuals)
        except Unavailable as exc:
            fits.append({**fit, "params": None, "reason": str(exc)})
            for alpha in levels:
                missing.setdefault(alpha, str(exc))
            continue
        fits.append({**fit, "params": dict(fitted.params), "reason": None})
        sigma[place] = np.sqrt(horizon * scaled) * fitted.std()
        for alpha in levels:
            try:
                var[alpha][place], es[alpha][place] = value_at_risk(
                    scaled, horizon, fitted, alpha
                )
            except Unavailable as exc:
                missing.setdefault(alpha, str(exc))
    return var, es, sigma, fits, missing


def _regime(hits: np.ndarray, high: np.ndarray, high_ex_post: np.ndarray) -> dict[str, Any]:
    """Breaches on high ex-ante days vs the rest (and, for reference, on high ex-post days)."""

    def rate(mask: np.ndarray) -> float | None:
        return float(hits[mask].mean()) if mask.any() else None

    return {
        "n_high": int(high.sum()),
        "breaches_high": int(hits[high].sum()),
        "breach_rate_high": rate(high),
        "n_low": int((~high).sum()),
        "breaches_low": int(hits[~high].sum()),
        "breach_rate_low": rate(~high),
        "n_high_ex_post": int(high_ex_post.sum()),
        "breaches_high_ex_post": int(hits[high_ex_post].sum()),
        "breach_rate_high_ex_post": rate(high_ex_post),
    }


LEVEL_KEYS = (
    "expected_rate",
    "n",
    "breaches",
    "breach_rate",
    "kupiec",
    "christoffersen_independence",
    "christoffersen_conditional",
    "traffic_light",
    "es_test",
    "regime",
    "tick_loss",
    "fz0",
    "dm_fz0",
    "unavailable",
)


def _empty_level(alpha: float, n: int, reason: str) -> dict[str, Any]:
    entry: dict[str, Any] = {key: None for key in LEVEL_KEYS}
    entry.update(expected_rate=alpha, n=n)
    entry["unavailable"] = {
        key: reason for key in LEVEL_KEYS if key not in ("expected_rate", "n", "unavailable")
    }
    return entry


def _backtest_level(
    returns_h: np.ndarray,
    var: np.ndarray,
    es: np.ndarray,
    sigma: np.ndarray,
    high: np.ndarray,
    high_ex_post: np.ndarray,
    dates: pd.DatetimeIndex,
    alpha: float,
    horizon: int,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """One model's backtest at one level (usable rows only); also its FZ0 losses."""
    n = returns_h.size
    entry: dict[str, Any] = {"expected_rate": alpha, "n": n}
    reasons: dict[str, str] = {}
    hits = breaches(returns_h, var)
    entry["breaches"] = int(hits.sum())
    entry["breach_rate"] = float(hits.mean())
    tested = np.arange(0, n, horizon)  # non-overlapping h-day returns
    _attempt(entry, reasons, "kupiec", lambda: kupiec(hits[tested], alpha))
    try:
        tests = christoffersen(hits[tested], alpha)
        entry["christoffersen_independence"] = tests["independence"]
        entry["christoffersen_conditional"] = tests["conditional_coverage"]
    except Unavailable as exc:
        for key in ("christoffersen_independence", "christoffersen_conditional"):
            entry[key], reasons[key] = None, str(exc)
    if math.isclose(alpha, BASEL_LEVEL):
        _attempt(
            entry, reasons, "traffic_light", lambda: traffic_light(hits[tested], dates[tested])
        )
    else:
        entry["traffic_light"] = None
        reasons["traffic_light"] = f"defined for the {BASEL_LEVEL:g} level (99% VaR) only"
    _attempt(
        entry,
        reasons,
        "es_test",
        lambda: mcneil_frey(returns_h[tested], var[tested], es[tested], sigma[tested]),
    )
    entry["regime"] = _regime(hits, high, high_ex_post)
    entry["tick_loss"] = float(tick_losses(returns_h, var, alpha).mean())
    losses = _attempt(entry, reasons, "fz0", lambda: fz0_losses(returns_h, var, es, alpha))
    entry["fz0"] = float(losses.mean()) if losses is not None else None
    entry["dm_fz0"] = None
    entry["unavailable"] = reasons
    return {key: entry.get(key) for key in LEVEL_KEYS}, losses


def evaluate(
    predictions: pd.DataFrame,
    models: list[str],
    returns_h: Any,
    blocks: dict[str, list[ResidualBlock]],
    horizon: int,
    distribution: str = DEFAULT_DISTRIBUTION,
    levels: Iterable[float] | str = DEFAULT_LEVELS,
    reference: str = "har",
) -> RiskResult:
    """VaR/ES of every model over a backtest's test period, and their backtests.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The backtest's predictions frame (``high_ex_ante`` and one variance
        column per model, indexed by origin).
    models : list of str
        Model columns of ``predictions``.
    returns_h : array-like
        Realized h-day log return at each origin of ``predictions``.
    blocks : dict
        Per model, the :class:`ResidualBlock` s its distributions are fit on.
    horizon : int
        Forecast horizon h.
    distribution, levels, reference
        ``--dist``, ``--var-levels`` and the Diebold–Mariano reference model.

    Returns
    -------
    RiskResult
        Rows where any model lacks a forecast are left out of every statistic
        (as in the point-forecast summary), so all models face the same days.
    """
    distribution = check_distribution(distribution)
    levels = parse_levels(levels)
    returns_h = _vector(returns_h, "returns_h")
    if returns_h.size != len(predictions):
        raise EvaluationError(
            f"returns_h has {returns_h.size} rows but the predictions frame has {len(predictions)}"
        )
    frame = pd.DataFrame({"return_h": returns_h}, index=predictions.index)
    usable = np.isfinite(returns_h) & predictions[models].notna().all(axis=1).to_numpy()
    if not usable.any():
        raise EvaluationError("no test origin has a realized return and every model's forecast")
    dates = predictions.index[usable]
    high = predictions["high_ex_ante"].to_numpy(dtype=bool)[usable]
    high_ex_post = predictions["high_ex_post"].to_numpy(dtype=bool)[usable]
    realized = returns_h[usable]
    results: dict[str, dict[str, Any]] = {}
    fits: dict[str, list] = {}
    losses: dict[str, dict[float, np.ndarray | None]] = {}
    for name in models:
        forecast = predictions[name].to_numpy(dtype=np.float64)
        var, es, sigma, fits[name], missing = _model_forecasts(
            forecast, blocks.get(name, []), horizon, distribution, levels
        )
        results[name], losses[name] = {}, {}
        for alpha in levels:
            key = level_key(alpha)
            frame[f"{name}_var_{key}"] = var[alpha]
            frame[f"{name}_es_{key}"] = es[alpha]
            lacking = ~np.isfinite(var[alpha][usable]) | ~np.isfinite(es[alpha][usable])
            if alpha in missing or lacking.any():
                reason = missing.get(alpha, f"{name} has no {distribution} fit for some test days")
                results[name][key] = _empty_level(alpha, int(usable.sum()), reason)
                losses[name][alpha] = None
                continue
            results[name][key], losses[name][alpha] = _backtest_level(
                realized,
                var[alpha][usable],
                es[alpha][usable],
                sigma[usable],
                high,
                high_ex_post,
                dates,
                alpha,
                horizon,
            )
    _diebold_mariano(results, losses, levels, reference, horizon)
    summary = {
        "distribution": distribution,
        "levels": list(levels),
        "horizon": horizon,
        "return": f"log close-to-close return over the {horizon} trading day(s) after the origin",
        "n": int(usable.sum()),
        "test_step": horizon,
        "n_tested": int(np.arange(0, usable.sum(), horizon).size),
        "reference": reference,
        "es_test": ES_TEST,
        "fits": fits,
        "models": results,
        "notes": [],
    }
    return RiskResult(summary, frame)


def _diebold_mariano(
    results: dict[str, dict[str, Any]],
    losses: dict[str, dict[float, np.ndarray | None]],
    levels: tuple[float, ...],
    reference: str,
    horizon: int,
) -> None:
    from forecaster import metrics

    for name in results:
        for alpha in levels:
            entry = results[name][level_key(alpha)]
            if name == reference:
                entry["unavailable"]["dm_fz0"] = "this is the reference model"
                continue
            if reference not in losses:
                entry["unavailable"]["dm_fz0"] = f"the reference model {reference!r} is not scored"
                continue
            mine, theirs = losses[name][alpha], losses[reference][alpha]
            if mine is None or theirs is None:
                which = name if mine is None else reference
                entry["unavailable"]["dm_fz0"] = f"no FZ0 loss for {which} at this level"
                continue
            try:
                entry["dm_fz0"] = metrics.diebold_mariano(mine, theirs, horizon)
            except EvaluationError as exc:
                entry["unavailable"]["dm_fz0"] = f"not enough data: {exc}"


class FitStore(Protocol):
    """Where :func:`forecast_risk` keeps fits (:class:`~forecaster.evaluation.risk_cache.FitCache`).

    ``read`` gives ``{"n", "params", "levels": {level key: {"quantile",
    "shortfall"}}}`` of a validated fit for this model, ticker and data, or None.
    """

    def read(self, distribution: str) -> dict[str, Any] | None: ...

    def write(
        self, distribution: str, n: int, params: dict[str, float], levels: dict[str, Any]
    ) -> None: ...


def forecast_risk(
    forecaster: Forecaster,
    dataset: Dataset,
    variance: float,
    test_start: pd.Timestamp | str,
    distribution: str = DEFAULT_DISTRIBUTION,
    levels: Iterable[float] | str = DEFAULT_LEVELS,
    cache: FitStore | None = None,
) -> dict[str, Any]:
    """VaR and ES of the next h-day log return from one variance forecast.

    ``t`` and ``fhs`` are fit on the forecaster's standardized returns at the
    origins before ``test_start`` (a saved model's training and validation
    rows). When they are too few, ``levels`` is None and ``reason`` says why.
    With ``cache`` (a :class:`FitStore` such as
    :class:`~forecaster.evaluation.risk_cache.FitCache`), a fit
    cached for this model, ticker and price history is used (no forward pass
    over the training rows, no scipy import), and a fit computed here is
    stored; the result is the same either way.

    The forecast is first multiplied by the overnight factor estimated on the
    days before ``test_start`` (:func:`overnight_factor`; 1 for GARCH-type models).

    Returns
    -------
    dict
        ``distribution``, ``horizon``, ``levels`` ({level: {``var``, ``es``}}
        or None), ``fit`` ({``n``, ``params``}), ``overnight`` ({``method``,
        ``factor``}) and ``reason``.
    """
    distribution = check_distribution(distribution)
    levels = parse_levels(levels)
    horizon = dataset.horizon
    start = pd.Timestamp(test_start)
    factor = overnight_factor(forecaster, dataset, start)
    overnight = {"method": "hansen-lunde-2005", "factor": factor if math.isfinite(factor) else None}
    if not math.isfinite(factor):
        return {
            "distribution": distribution,
            "horizon": horizon,
            "levels": None,
            "fit": {"n": 0, "params": None, "before": f"{start:%Y-%m-%d}"},
            "overnight": overnight,
            "reason": "too few days before the test period to estimate the overnight factor",
        }
    variance = factor * float(variance)  # the close-to-close variance (module docstring)
    sigma = np.sqrt(horizon * _vector(np.array([variance]), "forecast_var"))  # as value_at_risk
    cached = cache.read(distribution) if cache is not None and distribution != "normal" else None
    if cached is not None and all(level_key(alpha) in cached["levels"] for alpha in levels):
        factors = [cached["levels"][level_key(alpha)] for alpha in levels]
        return {
            "distribution": distribution,
            "horizon": horizon,
            "levels": {
                level_key(alpha): {
                    "var": float((sigma * factor["quantile"])[0]),
                    "es": float((sigma * factor["shortfall"])[0]),
                }
                for alpha, factor in zip(levels, factors, strict=True)
            },
            "fit": {
                "n": cached["n"],
                "params": dict(cached["params"]),
                "before": f"{start:%Y-%m-%d}",
            },
            "overnight": overnight,
            "reason": None,
        }
    residuals = np.empty(0)
    if distribution != "normal":
        first_test_row = int(dataset.origins.searchsorted(start, side="left"))
        residuals = in_sample_residuals(forecaster, dataset, first_test_row, factor)
    payload: dict[str, Any] = {
        "distribution": distribution,
        "horizon": horizon,
        "levels": None,
        "fit": {"n": int(residuals.size), "params": None, "before": f"{start:%Y-%m-%d}"},
        "overnight": overnight,
        "reason": None,
    }
    try:
        fitted = fit_distribution(distribution, residuals)
        values, factors = {}, {}
        for alpha in levels:
            key = level_key(alpha)
            factors[key] = {
                "quantile": fitted.quantile(alpha),
                "shortfall": fitted.shortfall(alpha),
            }
            var, es = value_at_risk(np.array([variance]), horizon, fitted, alpha)
            values[key] = {"var": float(var[0]), "es": float(es[0])}
    except Unavailable as exc:
        payload["reason"] = str(exc)
        return payload
    payload["levels"] = values
    payload["fit"]["params"] = dict(fitted.params)
    if cache is not None and distribution != "normal":
        known = cached["levels"] if cached is not None else {}  # same key: the same fit
        cache.write(distribution, payload["fit"]["n"], dict(fitted.params), {**known, **factors})
    return payload
