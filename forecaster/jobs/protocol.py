"""The nightly job's per-ticker protocol: load -> challenge -> decide -> forecast -> commit.

The fan-out (in-process, a local Dask cluster or an existing scheduler) and the
run as a whole are :mod:`forecaster.jobs.nightly`; this module is what happens
to one ticker, on whichever side it runs.

Shared-nothing with one writer. The **driver** (the process that runs
:func:`run_nightly`, under the nightly lock) alone reads and writes the data
home; the **task** (:func:`run_challenge`, on a Dask worker or in the driver's
own process) gets everything it needs as values and returns everything it made
as values. Per ticker:

1. driver, :func:`load_step` (in :func:`prepare_job`): loads prices through the
   cache up to ``as_of`` (never the sample as a fallback for a failed
   download) and stops with ``unchanged`` if a completed run already saw
   exactly this data (same fingerprint): no retrain, no new forecast. Else it
   packs a :class:`TickerJob`: the task's options, the prices and the
   champion's files as bytes (:class:`ChampionFiles`);
2. task, :func:`challenge_step`: trains a challenger with the champion's
   options (its seed, horizon, estimator, ...) except that the held-out test
   period is the recent window, the last ``window_days`` origins whose targets
   are realized by ``as_of`` (a ticker without a champion trains
   ``default_options``), and forecasts with it and the champion — the only step
   that calls the model layer. It works in a scratch registry in a temporary
   folder of the worker, holding the champion's files, which is deleted after;
3. task, :func:`decide_step`: scores challenger and champion on exactly the
   same window rows (QLIKE on floored targets, and bias) and keeps the champion
   unless the challenger is significantly better: a one-sided Diebold–Mariano
   test of the QLIKE losses at :attr:`PromotionRule.level` on at least
   :attr:`PromotionRule.min_scored` scored origins (:func:`decide`);
4. task, :func:`forecast_step`: the next forecast of the (possibly new)
   champion, made at the last close, with its VaR and ES. The task returns a
   :class:`TickerResult`: the run record, the verdict, the forecast and the
   challenger's files as bytes;
5. driver, :func:`commit_step`: stores the challenger version
   (:meth:`~forecaster.models.registry.ModelRegistry.add_files`, checked
   against its manifest), then :func:`issue_step` records the forecast and the
   run in the forecast history — in one transaction around which the registry
   moves the champion pointer
   (:meth:`~forecaster.models.registry.ModelRegistry.promoting`), the last
   write of the run, undone if the transaction fails. A move is written ahead
   into the history's ``promotions`` table first, so a run killed between the
   move and the commit is rolled back at the start of the next run
   (:func:`forecaster.jobs.recovery.reconcile`).

Any exception makes that ticker ``failed`` (recorded by the driver) and leaves
its champion as it was; the others go on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.loader import load_prices, parse_date
from forecaster.errors import ConfigError, DataError, ForecasterError, ModelError
from forecaster.evaluation.risk import (
    DEFAULT_DISTRIBUTION,
    DEFAULT_LEVELS,
)
from forecaster.evaluation.serving import usable_variance
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.record import Decision, RunRecord, stored_fields
from forecaster.settings import Settings
from forecaster.units import to_vol

if TYPE_CHECKING:
    from forecaster.data.loader import PriceData
    from forecaster.models.registry import ModelRegistry, ModelVersion

#: Trading days in the recent window on which challenger and champion are compared.
DEFAULT_WINDOW_DAYS = 63
#: One-sided level of the Diebold–Mariano test a challenger must pass to replace the
#: champion (``--promotion-level``). The test is oversized on 63 overlapping origins:
#: ``bench/promotion.md`` measured a seed-only twin promoted on 4.5% (h=1) and 5.6%
#: (h=22) of nights at 0.01, against 13.1% / 10.6% at 0.05; hence 0.01.
DEFAULT_PROMOTION_LEVEL = 0.01
#: Window origins scored by both models needed before any promotion (``--min-scored``).
DEFAULT_MIN_SCORED = 40

@dataclass(frozen=True)
class TickerTask:
    """What one ticker's nightly run is asked to do (no path of the data home in it)."""

    ticker: str
    source: str = "auto"
    csv_path: str | None = None
    panel_path: str | None = None
    as_of: str | None = None
    window_days: int = DEFAULT_WINDOW_DAYS
    default_options: dict[str, Any] | None = None
    distribution: str = DEFAULT_DISTRIBUTION
    levels: tuple[float, ...] = DEFAULT_LEVELS
    promotion: PromotionRule = dataclasses.field(default_factory=lambda: PromotionRule())
    universal: UniversalTask | None = None


@dataclass(frozen=True)
class UniversalTask:
    """A ticker's part of a ``--universal`` night (:mod:`forecaster.jobs.universe`).

    ``version`` is the current universal model (None when there is none and
    tonight's refit failed). On a ``refit`` night the ticker's challenger is that
    version's view of it, or its fine-tune when ``fine_tune`` (training
    settings) is given and the fine-tune scores better on the validation rows;
    on the other nights the champion only issues (``next_refit`` weekdays to go).
    """

    version: str | None
    refit: bool
    fine_tune: dict[str, Any] | None = None
    next_refit: int | None = None
    note: str | None = None  # why there is no refit tonight, e.g. the refit failed


# --- one ticker: four steps over a RunRecord --------------------------------------
#
# Each step takes and returns explicit values and fills the record as it goes, so
# that a failure leaves in the record exactly what was known when it happened.


def task_prices(task: TickerTask, settings: Settings) -> PriceData:
    """A task's prices up to its ``as_of``, through the cache, never the sample as a fallback."""
    return load_prices(
        task.ticker,
        source=task.source,
        csv_path=task.csv_path,
        panel_path=task.panel_path,
        end=parse_date(task.as_of, "--as-of"),
        settings=settings,
        allow_fallback=False,
    )


def load_step(
    task: TickerTask, settings: Settings, history: ForecastHistory, record: RunRecord
) -> PriceData | None:
    """Step 1: the prices up to ``as_of``, or None if a completed run already saw them.

    Fills ``source``, ``data_end``, ``rows``, ``rows_added`` and ``fingerprint``;
    on data already processed, also that run's outcome and ``status`` ``unchanged``.
    """
    ticker = task.ticker
    if task.csv_path is not None and not Path(task.csv_path).is_file():
        raise DataError(
            f"no CSV file for {ticker}: expected {task.csv_path} (--csv-dir holds one file per "
            "ticker, named <TICKER>.csv, with columns Date, Open, High, Low, Close[, Volume])"
        )
    try:
        data = task_prices(task, settings)
    except DataError as exc:
        # The loader speaks of --start/--end (the interactive options); the job has --as-of
        # and --csv-dir.
        message = str(exc).replace("adjust --start/--end", "check --as-of")
        if task.source == "csv":
            message = message.replace("--csv PATH", "--csv-dir DIR")
        raise type(exc)(message) from None
    record.source = data.source
    record.data_end = f"{data.end:%Y-%m-%d}"
    record.rows = int(len(data.prices))
    record.rows_added = int(data.added)
    record.fingerprint = data.fingerprint

    done = history.completed_run(ticker, data.fingerprint)
    if done is None:
        return data
    # Repeat what that run concluded; its identity, timing and status are this run's own.
    own = {"ticker", "as_of", "data_end", "fingerprint", "status", "error", "seconds"}
    for name, _ in stored_fields():
        if name not in own:
            setattr(record, name, done[name])
    record.status = "unchanged"
    return None


# --- step 2, challenge: the only code that touches the model layer ----------------
#
# ``challenge_step`` and its helpers below (``recent_window``, ``model_forecasts``,
# ``_champion_options``) are all that calls train/LoadedModel/TrainOptions/
# floored_target. To move nightly onto another model contract, replace this section
# with a function of the same signature that returns a :class:`Challenge`.


@dataclass(frozen=True, eq=False)
class Challenge:
    """Challenger and champion, each with a forecast for every origin of the prices.

    ``window`` holds the recent window's origins and ``target`` their realized
    targets (floored as in training), on which the two are compared. Forecasts
    are daily variances indexed by origin (NaN where a model gives none); the
    champion's are None when the ticker had no champion. The fitted
    forecasters (``challenger_forecaster``, ``champion_forecaster``) give the
    issued forecast its VaR and ES; None leaves the forecast without them (with
    the reason recorded).
    """

    champion: ModelVersion | None
    challenger: ModelVersion
    window: pd.DatetimeIndex
    target: np.ndarray
    challenger_forecasts: pd.Series
    champion_forecasts: pd.Series | None
    challenger_forecaster: Any = None
    champion_forecaster: Any = None
    note: str | None = None  # how the challenger was chosen (universal nights)
    ship_challenger: bool = True  # False: the driver already has its files
    serve_only: bool = False  # no challenger tonight: the champion issues


def recent_window(dataset: Any, window_days: int) -> np.ndarray:
    """Row indices of the last ``window_days`` labeled origins of ``dataset``.

    Raises
    ------
    DataError
        The labeled origins before the window are too few to train and
        validate a challenger (the split that holds the window out fails).
    """
    from forecaster.data.features import MIN_ORIGINS, split_dataset

    labeled = np.flatnonzero(dataset.labeled())
    n_before = max(0, labeled.size - window_days)
    problem = DataError(
        f"{n_before} labeled origins before the {window_days}-day comparison window (data up "
        f"to {dataset.origins[-1]:%Y-%m-%d}) are too few to train and validate a challenger "
        f"(at least {MIN_ORIGINS} training origins must remain); use a longer history or a "
        "smaller --window-days"
    )
    if n_before == 0:
        raise problem
    window = labeled[-window_days:]
    try:
        split_dataset(dataset, test_start=dataset.origins[window[0]])
    except (ConfigError, DataError):
        raise problem from None
    return window


def model_forecasts(forecaster: Any, prices: pd.DataFrame) -> pd.Series:
    """A forecaster's variance forecast for every origin of ``prices`` (NaN = none)."""
    return forecaster.forecast_series(forecaster.dataset(prices))


def _recent_window(
    prices: pd.DataFrame, config: Any, window_days: int, record: RunRecord
) -> tuple[Any, np.ndarray, pd.DatetimeIndex]:
    """The dataset, the recent window's rows and origins; the window is noted in ``record``."""
    from forecaster.data.features import build_dataset

    dataset = build_dataset(prices, config.feature_spec())
    rows = recent_window(dataset, window_days)
    window = dataset.origins[rows]
    record.window_start = f"{window[0]:%Y-%m-%d}"
    record.window_end = f"{window[-1]:%Y-%m-%d}"
    record.horizon = int(config.horizon)
    return dataset, rows, window


def challenge_step(
    task: TickerTask, data: PriceData, registry: ModelRegistry, record: RunRecord
) -> Challenge:
    """Step 2: train a challenger and forecast the prices with it and the champion.

    The challenger is an LSTM forecaster rebuilt from the champion's config (a
    first champion gets ``task.default_options``), fit before the recent window
    (held out as its test period); it is saved to the registry but not
    promoted. Fills
    ``previous_champion``, ``window_start``, ``window_end``, ``horizon`` and
    ``challenger_version``.
    """
    from forecaster.models.config import LSTMConfig
    from forecaster.models.lstm_forecaster import load_forecaster, train

    ticker = task.ticker
    champion_id = registry.champion_id(ticker)
    champion = registry.get(ticker, champion_id) if champion_id is not None else None
    if champion is not None:
        base = champion.record.config
        trained_to = champion.record.data.end
        if pd.Timestamp(trained_to) > data.end:
            # Its selection saw prices after this night: replaying it would look ahead.
            raise DataError(
                f"champion {champion_id} was chosen on data up to {trained_to}, after this "
                f"run's last date {data.end:%Y-%m-%d}; replay nights in date order, or use a "
                "fresh --home for a backfill"
            )
    else:
        base = LSTMConfig.from_dict(task.default_options or {})
    if base.market or base.exog:
        inputs = ([f"market {base.market}"] if base.market else []) + list(base.exog)
        raise ConfigError(
            f"champion {champion_id} reads {', '.join(inputs)} besides {ticker}'s own prices; "
            "the nightly job retrains one ticker at a time from its own prices and cannot "
            "supply those inputs yet; promote a model without --market/--exog for "
            f"{ticker} (`forecast models promote`), or retrain the universal model with "
            "`forecast train --panel` on a schedule"
        )
    record.previous_champion = champion_id

    dataset, rows, window = _recent_window(data.prices, base, task.window_days, record)

    outcome = train(
        data,
        base,
        registry,
        test_start=window[0],
        promote=False,
        nightly={
            "as_of": task.as_of,
            "window_start": record.window_start,
            "window_end": record.window_end,
            "window_days": task.window_days,
            "champion_at_training": champion_id,
        },
    )
    record.challenger_version = outcome.version.version
    challenger_forecasts = model_forecasts(outcome.forecaster, data.prices)
    champion_forecaster = load_forecaster(champion) if champion is not None else None
    champion_forecasts = (
        model_forecasts(champion_forecaster, data.prices) if champion is not None else None
    )
    return Challenge(
        champion=champion,
        challenger=outcome.version,
        window=window,
        target=dataset.floored_target()[rows],
        challenger_forecasts=challenger_forecasts,
        champion_forecasts=champion_forecasts,
        challenger_forecaster=outcome.forecaster,
        champion_forecaster=champion_forecaster,
    )


def universal_challenge_step(
    task: TickerTask, data: PriceData, registry: ModelRegistry, record: RunRecord
) -> Challenge:
    """Step 2 of a ``--universal`` night: the universal model's challenger, or none.

    On a refit night (or for a ticker without a champion) the challenger is the
    universal version's view of the ticker, or its fine-tune from that version
    (``task.universal.fine_tune`` settings, test period = the recent window)
    when the fine-tune has the lower QLIKE on the validation rows, which both
    models used for early stopping; the choice and both scores are in
    ``note``. Any other night there is no challenger: the champion's forecasts
    are scored on the window for the record and it issues (``serve_only``).
    """
    from forecaster.data.features import split_dataset
    from forecaster.models.lstm_forecaster import fine_tune_config, load_forecaster, train

    universal = task.universal
    assert universal is not None
    ticker = task.ticker
    champion_id = registry.champion_id(ticker)
    champion = registry.get(ticker, champion_id) if champion_id is not None else None
    record.previous_champion = champion_id
    if not universal.refit and champion is not None:
        # Serving only: NumPy on the saved weights where it can (as `forecast predict` does),
        # so a night without a refit needs no TensorFlow.
        champion_forecaster = load_forecaster(champion, engine="auto")
        dataset, rows, window = _recent_window(
            data.prices, champion.record.config, task.window_days, record
        )
        forecasts = model_forecasts(champion_forecaster, data.prices)
        return Challenge(
            champion=champion,
            challenger=champion,
            window=window,
            target=dataset.floored_target()[rows],
            challenger_forecasts=forecasts,
            champion_forecasts=forecasts,
            challenger_forecaster=champion_forecaster,
            champion_forecaster=champion_forecaster,
            note=universal.note
            or f"no universal refit tonight (next in {universal.next_refit} weekdays)",
            ship_challenger=False,
            serve_only=True,
        )
    if universal.version is None:
        raise ModelError(
            f"{ticker} has no champion and there is no universal model to give it one"
            + (f" ({universal.note})" if universal.note else "")
        )
    champion_forecaster = load_forecaster(champion) if champion is not None else None
    parent = registry.get(ticker, universal.version)
    view = load_forecaster(parent)
    dataset, rows, window = _recent_window(
        data.prices, parent.record.config, task.window_days, record
    )
    chosen, chosen_forecaster, ship = parent, view, False
    note = f"challenger: universal {parent.version}"
    if universal.fine_tune is not None:
        outcome = train(
            data,
            fine_tune_config(parent.record, **universal.fine_tune),
            registry,
            test_start=window[0],
            promote=False,
            parent=parent,
            nightly={
                "as_of": task.as_of,
                "window_start": record.window_start,
                "window_end": record.window_end,
                "window_days": task.window_days,
                "champion_at_training": champion_id,
                "universal": parent.version,
            },
        )
        validation = split_dataset(dataset, test_start=window[0]).validation
        truth = dataset.floored_target()[validation]
        tuned_qlike = metrics.qlike(truth, outcome.forecaster.predict(dataset, validation))
        view_qlike = metrics.qlike(truth, view.predict(dataset, validation))
        better = tuned_qlike < view_qlike
        if better:
            chosen, chosen_forecaster, ship = outcome.version, outcome.forecaster, True
        note = (
            f"challenger: {'fine-tuned ' + outcome.version.version if better else 'universal'} "
            f"(validation qlike fine-tuned {tuned_qlike:.4f} vs universal {view_qlike:.4f})"
        )
    record.challenger_version = chosen.version
    challenger_forecasts = model_forecasts(chosen_forecaster, data.prices)
    champion_forecasts = (
        model_forecasts(champion_forecaster, data.prices) if champion is not None else None
    )
    return Challenge(
        champion=champion,
        challenger=chosen,
        window=window,
        target=dataset.floored_target()[rows],
        challenger_forecasts=challenger_forecasts,
        champion_forecasts=champion_forecasts,
        challenger_forecaster=chosen_forecaster,
        champion_forecaster=champion_forecaster,
        note=note,
        ship_challenger=ship,
    )


# --- step 3, decide ------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionRule:
    """When a challenger replaces the champion.

    The challenger must beat the champion in a one-sided Diebold–Mariano test
    (:func:`forecaster.metrics.diebold_mariano`: QLIKE losses, HAC variance over
    ``horizon - 1`` lags, HLN correction) at ``level``, on at least
    ``min_scored`` window origins that both models forecast. Under equal
    accuracy a challenger is then promoted on about ``level`` of the nights
    (measured in ``bench/promotion.md``), where "lower QLIKE by any margin" did
    so about half the time.
    """

    level: float = DEFAULT_PROMOTION_LEVEL
    min_scored: int = DEFAULT_MIN_SCORED

    def __post_init__(self) -> None:
        level, scored = self.level, self.min_scored
        if (
            isinstance(level, bool)
            or not isinstance(level, (int, float))
            or not (0.0 < level < 0.5)
        ):
            raise ConfigError(
                f"--promotion-level must be a number strictly between 0 and 0.5, received "
                f"{level!r}; the default 0.01 promoted a seed-only twin on about 5% of nights"
            )
        if isinstance(scored, bool) or not isinstance(scored, int) or scored < 3:
            raise ConfigError(f"--min-scored must be an integer of at least 3, received {scored!r}")


@dataclass(frozen=True)
class Verdict:
    """The decision, why, and the test behind it.

    ``reason`` is recorded in the champion pointer when the challenger is
    promoted and in the run record either way; ``dm_stat`` and ``dm_pvalue``
    (one-sided: small = the challenger is better) are None when no test ran.
    """

    decision: Decision
    reason: str
    dm_stat: float | None = None
    dm_pvalue: float | None = None

    @property
    def promotes(self) -> bool:
        return self.decision != "kept"


def decide(
    challenger_losses: np.ndarray,
    champion_losses: np.ndarray | None,
    horizon: int,
    rule: PromotionRule | None = None,
) -> Verdict:
    """``first`` (no champion), ``promoted`` (significantly better) or ``kept``.

    ``challenger_losses`` and ``champion_losses`` are the QLIKE losses of the
    two models on the same scored origins. The reason names the test's figures.
    """
    rule = rule or PromotionRule()
    n = int(np.size(challenger_losses))
    challenger_qlike = float(np.mean(challenger_losses)) if n else math.nan
    if champion_losses is None:
        return Verdict("first", f"first champion, qlike {challenger_qlike:.6f} on {n} origins")
    champion_qlike = float(np.mean(champion_losses))
    scores = f"challenger qlike {challenger_qlike:.6f} vs champion {champion_qlike:.6f}"
    needed = max(rule.min_scored, 2 * int(horizon) + 1)
    if n < needed:
        return Verdict("kept", f"{scores} on {n} origins, fewer than the {needed} needed to test")
    test = metrics.diebold_mariano(challenger_losses, champion_losses, int(horizon))
    stat, two_sided = test["stat"], test["p_value"]
    p_value = two_sided / 2.0 if stat < 0 else 1.0 - two_sided / 2.0
    figures = f"{scores} on {n} origins; one-sided DM {stat:.2f}, p {p_value:.4f}"
    if p_value < rule.level:
        return Verdict("promoted", f"{figures} < {rule.level:g}", stat, p_value)
    return Verdict("kept", f"{figures} >= {rule.level:g}", stat, p_value)


def _window_score(target: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    return {"qlike": metrics.qlike(target, forecast), "bias": metrics.bias(target, forecast)}


def _saw_window(champion: ModelVersion, window_start: pd.Timestamp) -> bool | None:
    """Whether the champion's training or validation rows reach into the window."""
    try:
        return bool(pd.Timestamp(champion.record.split["validation_end"]) >= window_start)
    except (KeyError, TypeError, ValueError):
        return None


def decide_step(
    challenge: Challenge,
    window_days: int,
    record: RunRecord,
    rule: PromotionRule | None = None,
    horizon: int | None = None,
) -> Verdict:
    """Step 3: score both models on the same window rows and decide (:func:`decide`).

    The rows are the window origins where the target and every model's
    forecast are finite; QLIKE and bias are computed on exactly those. Fills
    ``window_rows``, the scores, ``champion_saw_window``, ``decision``, the
    test's ``dm_stat``/``dm_pvalue`` and ``decision_reason``.
    """
    window, target = challenge.window, challenge.target
    candidate = challenge.challenger_forecasts.reindex(window).to_numpy()
    usable = np.isfinite(target) & np.isfinite(candidate)
    incumbent = None
    if challenge.champion_forecasts is not None:
        incumbent = challenge.champion_forecasts.reindex(window).to_numpy()
        usable &= np.isfinite(incumbent)
    if usable.sum() < max(1, window_days // 2):
        raise ModelError(
            f"only {int(usable.sum())} of the {window_days} window origins "
            f"({window[0]:%Y-%m-%d}..{window[-1]:%Y-%m-%d}) have forecasts from both models; "
            "use a larger --window-days"
        )
    challenger_score = _window_score(target[usable], candidate[usable])
    champion_score: dict[str, float | None] = {"qlike": None, "bias": None}
    champion_losses = None
    if incumbent is not None:
        champion_score = _window_score(target[usable], incumbent[usable])
        champion_losses = metrics.qlike_losses(target[usable], incumbent[usable])
    horizon = int(horizon if horizon is not None else (record.horizon or 1))
    verdict = decide(
        metrics.qlike_losses(target[usable], candidate[usable]), champion_losses, horizon, rule
    )
    span = f"{window[0]:%Y-%m-%d}..{window[-1]:%Y-%m-%d}"
    note = f"; {challenge.note}" if challenge.note else ""
    verdict = dataclasses.replace(verdict, reason=f"nightly: {verdict.reason} ({span}){note}")
    record.window_rows = int(usable.sum())
    record.challenger_qlike = challenger_score["qlike"]
    record.challenger_bias = challenger_score["bias"]
    record.champion_qlike = champion_score["qlike"]
    record.champion_bias = champion_score["bias"]
    record.champion_saw_window = (
        _saw_window(challenge.champion, window[0]) if challenge.champion is not None else None
    )
    record.decision = verdict.decision
    # A constant loss differential gives an infinite statistic: stored as null (JSON has no
    # infinity); its p-value (0 or 1) and the reason still say what happened.
    finite = verdict.dm_stat is not None and math.isfinite(verdict.dm_stat)
    record.dm_stat = verdict.dm_stat if finite else None
    record.dm_pvalue = verdict.dm_pvalue
    record.decision_reason = verdict.reason
    return verdict


def serve_step(challenge: Challenge, record: RunRecord) -> Verdict:
    """Step 3 of a night without a challenger: score the champion on the window; keep it."""
    window, target = challenge.window, challenge.target
    forecast = challenge.champion_forecasts.reindex(window).to_numpy()
    usable = np.isfinite(target) & np.isfinite(forecast)
    if usable.any():
        score = _window_score(target[usable], forecast[usable])
        record.champion_qlike, record.champion_bias = score["qlike"], score["bias"]
    record.window_rows = int(usable.sum())
    record.decision = "kept"
    record.decision_reason = f"nightly: {challenge.note}"
    return Verdict("kept", record.decision_reason)


# --- step 4, forecast (task) and the commit (driver) ----------------------------------


def issue_risk(
    task: TickerTask, data: PriceData, chosen: ModelVersion, forecaster: Any, variance: float
) -> dict[str, Any]:
    """VaR and ES of the issued forecast (:func:`risk.forecast_risk`), from its model.

    ``t`` and ``fhs`` are fit on the model's standardized returns before its
    test period. When they cannot be (too few returns), or there is no fitted
    forecaster, ``levels`` is None and ``reason`` says why: the forecast is
    still issued, without VaR.
    """
    from forecaster.evaluation.serving import serve_risk
    from forecaster.models.lstm_forecaster import dataset_of

    if forecaster is None:
        return {
            "distribution": task.distribution,
            "horizon": int(chosen.record.horizon),
            "levels": None,
            "fit": {"n": 0, "params": None, "before": None},
            "reason": f"no fitted forecaster of {chosen.version} in this run",
        }
    return serve_risk(
        chosen, forecaster, dataset_of(forecaster, data), variance, task.distribution, task.levels
    )


def warm_risk(
    task: TickerTask, data: PriceData, chosen: ModelVersion, variance: float, scratch: Path
) -> dict[str, bytes]:
    """The VaR/ES fit cache ``forecast predict`` would write for ``chosen`` (task side).

    ``forecast predict`` fits the t or FHS distribution on the serving model's
    training residuals the first time it serves a version (seconds of forward
    passes) and caches the fit under the home's risk cache. A night that
    promotes a champion does that work here, with the engine predict uses by
    default (``auto``), for the night's ``--dist`` and ``--var-levels``: the
    files come back as bytes (path relative to the risk cache folder) for the
    driver to store. ``normal`` has nothing to fit. Best effort: any failure
    returns nothing (predict then fits on first use, as before).
    """
    if task.distribution == "normal":
        return {}
    from forecaster.evaluation.serving import fit_cache, serve, serve_risk
    from forecaster.models.lstm_forecaster import load_forecaster

    folder = scratch / "risk"
    try:
        issued = serve(chosen, load_forecaster(chosen, engine="auto"), data, task.ticker)
        cache = fit_cache(folder, chosen, task.ticker, issued.forecaster, data, issued.dataset)
        serve_risk(
            chosen, issued.forecaster, issued.dataset, variance, task.distribution, task.levels,
            cache=cache,
        )
        return {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in folder.rglob("*.json")
        }
    except Exception:  # a cache: its absence costs only predict's first call
        return {}


def store_risk_files(folder: Path, files: dict[str, bytes]) -> None:
    """Driver: write a task's :func:`warm_risk` files under the home's risk cache (atomic)."""
    from forecaster.files import atomic_write_bytes

    for name, payload in files.items():
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts or len(relative.parts) != 2:
            continue  # never write outside <risk cache>/<TICKER>/<file>
        with contextlib.suppress(OSError):
            atomic_write_bytes(folder / relative, payload)


@dataclass(frozen=True)
class Issue:
    """The forecast to record (a ``forecasts`` row) and its VaR/ES (``forecast_risk``)."""

    forecast: dict[str, Any]
    risk: dict[str, Any]


def forecast_step(
    task: TickerTask, data: PriceData, challenge: Challenge, verdict: Verdict, record: RunRecord
) -> Issue:
    """Step 4 (task): the (possibly new) champion's next forecast, made at the last close.

    Fills ``champion_version``, ``origin``, ``horizon``, ``variance``, ``vol``
    and ``risk``.
    """
    if verdict.promotes:
        chosen, forecasts = challenge.challenger, challenge.challenger_forecasts
        forecaster = challenge.challenger_forecaster
    else:  # kept: there is a champion
        chosen, forecasts = challenge.champion, challenge.champion_forecasts
        forecaster = challenge.champion_forecaster
    origin = forecasts.index[-1]
    variance = usable_variance(chosen.version, origin, forecasts.iloc[-1], task.ticker)
    chosen_record = chosen.record
    record.champion_version = chosen.version
    record.origin = f"{origin:%Y-%m-%d}"
    record.horizon = int(chosen_record.horizon)
    record.variance = variance
    record.vol = float(to_vol(variance))

    forecast = {
        "ticker": task.ticker,
        "origin": record.origin,
        "horizon": record.horizon,
        "model_version": chosen.version,
        "init": chosen_record.init,
        "estimator": chosen_record.estimator,
        "estimator_window": int(chosen_record.config.window),
        "source": data.source,
        "variance": variance,
        "vol": record.vol,
    }
    risk = issue_risk(task, data, chosen, forecaster, variance)
    record.risk = {
        key: risk[key] for key in ("distribution", "levels", "reason", "overnight") if key in risk
    }
    return Issue(forecast, risk)


def issue_step(
    task: TickerTask,
    issue: Issue,
    verdict: Verdict,
    registry: ModelRegistry,
    history: ForecastHistory,
    record: RunRecord,
    seconds: Callable[[], float],
) -> None:
    """Step 5 (driver): record the issued forecast and the run; move the pointer if promoted.

    The forecast row, the run row and the champion move are one unit: the pointer
    moves after both rows are written and before they commit, and if anything
    up to the commit fails the rows roll back and the registry puts the old
    pointer back. Against a kill, which no ``except`` sees, the move is first
    committed as an intent (with the pointer as it was) that the run's own
    transaction deletes; an intent left behind is rolled back by
    :func:`~forecaster.jobs.recovery.reconcile` at the next start. Sets
    ``status`` ``ok`` once committed.
    """
    forecast, risk = issue.forecast, issue.risk
    completed = dataclasses.replace(record, status="ok", seconds=seconds())
    if not verdict.promotes:
        with history.transaction() as connection:
            if history.insert_forecast(connection, forecast):
                history.insert_risk(connection, forecast, risk)
            history.insert_run(connection, completed)
        record.status = "ok"
        return
    version = record.challenger_version
    intent = history.begin_promotion(
        task.ticker, version, verdict.reason, registry.pointer_bytes(task.ticker), completed
    )
    try:
        # ``promoting`` is entered last inside the transaction but exits after it, so a
        # failed commit also undoes the promotion.
        with contextlib.ExitStack() as promotion:
            with history.transaction() as connection:
                if history.insert_forecast(connection, forecast):
                    history.insert_risk(connection, forecast, risk)
                history.insert_run(connection, completed)
                history.finish_promotion(connection, intent)
                promotion.enter_context(registry.promoting(task.ticker, version, verdict.reason))
    except BaseException:
        with contextlib.suppress(Exception):  # else the next start's reconcile drops it
            history.drop_promotion(intent)
        raise
    record.status = "ok"


# --- what travels between driver and task ------------------------------------------


@dataclass(frozen=True)
class ChampionFiles:
    """A champion as bytes: its version's files by name and the pointer file."""

    version: str
    files: dict[str, bytes]
    pointer: bytes


@dataclass(frozen=True)
class TickerJob:
    """All a task gets: options, prices and the champion's files; no path of the data home.

    ``record`` is the run record as the driver's load step filled it.
    """

    task: TickerTask
    data: PriceData
    champion: ChampionFiles | None
    record: RunRecord
    universal: ChampionFiles | None = None  # the universal version, when the task needs it


@dataclass(frozen=True)
class TickerResult:
    """All a task returns: the record, and on success the verdict and the forecast.

    ``challenger`` holds the files of the challenger version it trained (also
    when a later step failed: it is kept for the record, like any challenger);
    ``risk_files`` the VaR/ES fit cache of a newly promoted champion as
    ``forecast predict`` reads it (:func:`warm_risk`: path under the risk cache
    folder -> bytes); ``seconds`` is the task's own time.
    """

    record: RunRecord
    seconds: float
    verdict: Verdict | None = None
    issue: Issue | None = None
    challenger: dict[str, bytes] | None = None
    risk_files: dict[str, bytes] = dataclasses.field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.verdict is not None and self.issue is not None


def _fail(record: RunRecord, exc: BaseException) -> None:
    """Mark ``record`` failed by ``exc``: nothing was promoted, the champion is as it was."""
    record.status = "failed"
    record.decision = None
    record.champion_version = record.previous_champion
    record.origin = record.variance = record.vol = record.risk = None
    if isinstance(exc, ForecasterError):
        record.error = str(exc)
    else:
        record.error = f"{exc.__class__.__name__}: {exc}"
        record.traceback = traceback.format_exc()


def _write_champion(
    registry: ModelRegistry, ticker: str, champion: ChampionFiles, pointer: bool = True
) -> None:
    """Put a version's files into a scratch registry, as the data home holds them.

    ``pointer``: also write its ``champion.json`` (False for the universal version).
    """
    folder = registry.models_dir / ticker
    if not (folder / champion.version).is_dir():
        (folder / champion.version).mkdir(parents=True)
        for name, payload in champion.files.items():
            (folder / champion.version / name).write_bytes(payload)
    if pointer:
        (folder / "champion.json").write_bytes(champion.pointer)


def _worker_address() -> str | None:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.get_worker().address
    except ValueError:  # not inside a Dask task
        return None


def run_challenge(job: TickerJob) -> TickerResult:
    """The task: challenge -> decide -> forecast, with no access to the data home.

    Runs on a Dask worker (or in the driver's process for a sequential run). It
    needs only a writable temporary folder: a scratch registry there holds the
    champion's files and the new challenger, and is deleted before returning.
    Never raises for the ticker's own failures: the record says ``failed``.
    """
    import logging

    from forecaster.models.registry import ModelRegistry

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing chatter
    started = time.perf_counter()
    ticker = job.task.ticker
    record = dataclasses.replace(job.record, worker=_worker_address())
    challenger: dict[str, bytes] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="forecaster-task-") as scratch:
            registry = ModelRegistry(Path(scratch) / "models")
            if job.champion is not None:
                _write_champion(registry, ticker, job.champion)
            if job.universal is not None:
                _write_champion(registry, ticker, job.universal, pointer=False)
            if job.task.universal is not None:
                challenge = universal_challenge_step(job.task, job.data, registry, record)
            else:
                challenge = challenge_step(job.task, job.data, registry, record)
            if challenge.ship_challenger:
                challenger = registry.version_files(ticker, challenge.challenger.version)
            if challenge.serve_only:
                verdict = serve_step(challenge, record)
            else:
                verdict = decide_step(challenge, job.task.window_days, record, job.task.promotion)
            issue = forecast_step(job.task, job.data, challenge, verdict, record)
            risk_files = (
                warm_risk(job.task, job.data, challenge.challenger, record.variance, Path(scratch))
                if verdict.promotes
                else {}
            )
        seconds = round(time.perf_counter() - started, 2)
        return TickerResult(record, seconds, verdict, issue, challenger, risk_files)
    except Exception as exc:  # one ticker's failure never stops the others
        _fail(record, exc)
        return TickerResult(record, round(time.perf_counter() - started, 2), None, None, challenger)
    finally:
        _clear_session()


def _clear_session() -> None:
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


# --- the driver -------------------------------------------------------------------


def prepare_job(
    task: TickerTask,
    settings: Settings,
    registry: ModelRegistry,
    history: ForecastHistory,
    record: RunRecord,
) -> TickerJob | None:
    """Driver, step 1: the job for ``task``, or None when its data was already processed."""
    data = load_step(task, settings, history, record)
    if data is None:
        return None
    champion = None
    champion_id = registry.champion_id(task.ticker)
    if champion_id is not None:
        champion = ChampionFiles(
            champion_id,
            registry.version_files(task.ticker, champion_id),
            registry.pointer_bytes(task.ticker) or b"",
        )
    record.previous_champion = champion_id
    universal = None
    wanted = task.universal
    if (
        wanted is not None
        and wanted.version is not None
        and wanted.version != champion_id
        and (wanted.refit or champion_id is None)
    ):
        universal = ChampionFiles(
            wanted.version, registry.version_files(task.ticker, wanted.version), b""
        )
    # The cache's path means nothing on a worker.
    return TickerJob(task, dataclasses.replace(data, cache_path=None), champion, record, universal)


def lost_task(job: TickerJob, exc: BaseException) -> TickerResult:
    """The result of a task that Dask could not run to its end (worker lost, ...)."""
    record = dataclasses.replace(job.record, status="failed")
    record.champion_version = record.previous_champion
    name = exc.__class__.__name__
    if name == "KilledWorker":
        retries = getattr(exc, "allowed_failures", "?")
        last = getattr(getattr(exc, "last_worker", None), "address", "unknown")
        record.error = (
            f"the Dask workers running {job.task.ticker}'s task died while running it, and it "
            f"was re-run as often as the scheduler allows (distributed.scheduler.allowed-failures "
            f"= {retries}; last worker {last}); check the workers' "
            "memory and logs. Nothing was written for this ticker"
        )
    else:
        record.error = f"Dask could not run {job.task.ticker}'s task ({name}: {exc})"
    return TickerResult(record, 0.0)


def commit_step(
    task: TickerTask,
    result: TickerResult,
    registry: ModelRegistry,
    history: ForecastHistory,
    seconds: Callable[[], float],
    risk_cache_dir: Path | None = None,
) -> RunRecord:
    """Driver, step 5: store the challenger, then issue (or record the failure).

    After a committed promotion, the new champion's VaR/ES fit cache
    (:func:`warm_risk`) is stored under ``risk_cache_dir``, so the next
    ``forecast predict`` does not fit it again.
    """
    record = result.record
    try:
        if result.challenger is not None:
            registry.add_files(task.ticker, record.challenger_version, result.challenger)
        if result.succeeded:
            issue_step(task, result.issue, result.verdict, registry, history, record, seconds)
            if risk_cache_dir is not None and result.risk_files:
                store_risk_files(risk_cache_dir, result.risk_files)
            record.seconds = seconds()
            return record
    except Exception as exc:
        _fail(record, exc)
    _record_failure(history, record, seconds())
    return record


def _record_failure(history: ForecastHistory, record: RunRecord, seconds: float) -> None:
    record.seconds = seconds
    try:
        history.record_run(record)
    except Exception as secondary:  # the history itself may be what failed
        record.error += f" (and the failure could not be recorded: {secondary})"
