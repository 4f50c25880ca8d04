"""The morning report's numbers: one JSON-safe payload per night, from the history and registry.

:func:`build_report` gathers what a risk team reads the morning after a
nightly run (issue 13); :mod:`forecaster.evaluation.html_report` renders it.
Every score comes from the functions behind ``forecast history --score``
(:func:`~forecaster.jobs.history.load_history`, :meth:`TickerHistory.score`),
and the payload embeds that command's JSON verbatim under ``history``, so the
page and the command cannot disagree.

What is added here, all ex-ante (nothing after an origin's close is used for
that origin):

- ``recent``: the live score over the last 20 and 60 scored origins, next to
  HAR's on the same origins — a log-HAR (:class:`~forecaster.models.baselines.HAR`)
  fit at each origin on the data up to its close, with the issuing model's
  estimator and horizon;
- ``regime``: high/low volatility per origin, ex-ante (trailing 22-day mean
  variance above its 80% quantile over every day up to the origin) and ex-post
  (the realized target above the 80% quantile of the targets realized by the
  origin);
- ``running_bias``: the cumulative bias (:func:`forecaster.metrics.bias`) on the
  high-volatility origins, in both senses;
- ``lineage``: which model version issued which forecasts, and when it became
  champion; ``decision``: each ticker's latest nightly run; ``failures``:
  the tickers whose latest run failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.store import PriceStore
from forecaster.data.volatility import VARIANCE_FLOOR, daily_variance, log_returns
from forecaster.errors import DataError, ForecasterError
from forecaster.evaluation.defaults import REGIME_QUANTILE
from forecaster.jobs.history import ForecastHistory, TickerHistory, load_history, now_utc
from forecaster.settings import Settings
from forecaster.units import to_vol

#: Scored origins in the two recent windows of the summary table.
RECENT_WINDOWS = (20, 60)
#: Trailing days of the ex-ante regime variable (as ``evaluate``).
TRAILING_DAYS = 22
#: Version of the payload's layout.
REPORT_FORMAT = 1


def run_night(run: dict[str, Any]) -> str:
    """The night a run belongs to: its ``--as-of``, else its data's last day, else its date."""
    return run.get("as_of") or run.get("data_end") or str(run.get("created_at") or "")[:10]


def _latest_per_origin(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One forecast per origin, the latest issued (as the live VaR backtest counts them)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:  # ordered by origin, then creation
        latest[row["origin"]] = row
    return [latest[origin] for origin in sorted(latest)]


def _score_entry(score: dict[str, Any]) -> dict[str, Any]:
    return {key: score[key] for key in ("n", "qlike", "mse", "mae_vol", "bias")}


class _Series:
    """A ticker's daily variance (one estimator) and log returns from the cache, up to as_of."""

    def __init__(self, prices: pd.DataFrame, estimator: str, window: int) -> None:
        self.variance = daily_variance(prices, estimator, window).variance
        self.returns = log_returns(prices)
        values = np.maximum(self.variance.to_numpy(dtype=np.float64), VARIANCE_FLOOR)
        self.trailing = pd.Series(values).rolling(TRAILING_DAYS).mean().to_numpy()
        self._values = values

    def position(self, origin: str) -> int:
        return int(self.variance.index.get_indexer([pd.Timestamp(origin)])[0])

    def regime(self, origin: str, horizon: int) -> dict[str, Any] | None:
        """Ex-ante and ex-post thresholds known at the close of ``origin`` (None: too little data)."""
        position = self.position(origin)
        if position < 0 or not np.isfinite(self.trailing[position]):
            return None
        known = self.trailing[: position + 1]
        known = known[np.isfinite(known)]
        # targets realized by the origin: mean variance over q+1..q+h with q + h <= position
        cumulative = np.concatenate([[0.0], np.cumsum(self._values[: position + 1])])
        starts = np.arange(0, position - horizon + 1)
        targets = (cumulative[starts + 1 + horizon] - cumulative[starts + 1]) / horizon
        if known.size < TRAILING_DAYS or targets.size < TRAILING_DAYS:
            return None
        return {
            "trailing_var": float(self.trailing[position]),
            "ex_ante_var": float(np.quantile(known, REGIME_QUANTILE)),
            "ex_post_var": float(np.quantile(targets, REGIME_QUANTILE)),
        }

    def har_forecast(self, origin: str, horizon: int) -> float | None:
        """Log-HAR fit on the data up to ``origin``'s close, forecasting from it (None: cannot)."""
        from forecaster.models.baselines import HAR

        try:
            har = HAR().fit_series(self.variance, self.returns, horizon, pd.Timestamp(origin))
            value = float(har.predict_origins(pd.DatetimeIndex([pd.Timestamp(origin)]))[0])
        except ForecasterError:
            return None
        return value if np.isfinite(value) and value > 0 else None


def _load_series(
    store: PriceStore, row: dict[str, Any], as_of: str, cache: dict[tuple[Any, ...], Any]
) -> _Series | None:
    key = (row["ticker"], row["source"], row["estimator"], row["estimator_window"])
    if key not in cache:
        entry = store.read(row["ticker"], row["source"])
        if entry is None:
            cache[key] = None
        else:
            prices = entry.prices.loc[: pd.Timestamp(as_of)]
            cache[key] = _Series(prices, row["estimator"], row["estimator_window"])
    return cache[key]


def _recent(entry: TickerHistory, har: dict[str, float | None]) -> dict[str, Any]:
    """Live score of the last N scored origins, and HAR's on the same origins."""
    scored = [row for row in _latest_per_origin(entry.forecasts) if row["realized_var"] is not None]
    result: dict[str, Any] = {}
    for days in RECENT_WINDOWS:
        rows = scored[-days:]
        item: dict[str, Any] = {
            "days": days,
            "n": len(rows),
            "start": rows[0]["origin"] if rows else None,
            "end": rows[-1]["origin"] if rows else None,
            "model": None,
            "har": None,
            "qlike_ratio": None,
            "reason": None,
        }
        if not rows:
            item["reason"] = "nothing scored yet"
        elif any(har.get(row["origin"]) is None for row in rows):
            item["model"] = _score_entry(TickerHistory(entry.ticker, rows).score())
            item["reason"] = "HAR cannot be fit at every origin (too little history)"
        else:
            item["model"] = _score_entry(TickerHistory(entry.ticker, rows).score())
            har_rows = [{**row, "variance": har[row["origin"]]} for row in rows]
            item["har"] = _score_entry(TickerHistory(entry.ticker, har_rows).score())
            item["qlike_ratio"] = item["model"]["qlike"] / item["har"]["qlike"]
        result[str(days)] = item
    return result


def _decision(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    status, decision = run["status"], run["decision"]
    challenger, champion = run["challenger_qlike"], run["champion_qlike"]
    if status == "failed":
        outcome, reason = "failed", run["error"] or "failed (no error recorded)"
    elif decision == "first":
        outcome, reason = "promoted", "first champion of this ticker (no champion before)"
    elif decision in ("promoted", "kept") and run.get("decision_reason"):
        outcome = decision
        reason = str(run["decision_reason"]).removeprefix("nightly: ")
    elif decision == "promoted":  # a run recorded before the promotion test (schema < 4)
        outcome = "promoted"
        reason = f"challenger QLIKE {challenger:.4f} <= champion {champion:.4f} on the recent window"
    elif decision == "kept":
        outcome = "kept"
        reason = f"challenger QLIKE {challenger:.4f} > champion {champion:.4f} on the recent window"
    else:
        outcome, reason = str(decision or status), ""
    return {
        "night": run_night(run),
        "status": status,
        "decision": decision,
        "outcome": outcome,
        "reason": reason,
        "challenger_version": run["challenger_version"],
        "champion_version": run["champion_version"],
        "challenger_qlike": challenger,
        "champion_qlike": champion,
        "dm_stat": run.get("dm_stat"),
        "dm_pvalue": run.get("dm_pvalue"),
        "window_start": run["window_start"],
        "window_end": run["window_end"],
        "error": run["error"],
    }


def _lineage(entry: TickerHistory, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each issuing version: its forecasts' origins and the night it became champion."""
    promoted: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run["status"] == "ok" and run["decision"] in ("first", "promoted"):
            promoted.setdefault(run["champion_version"], run)
    versions: dict[str, list[str]] = {}
    for row in entry.forecasts:
        versions.setdefault(row["model_version"], []).append(row["origin"])
    lineage = []
    for version, origins in versions.items():
        run = promoted.get(version)
        lineage.append(
            {
                "version": version,
                "n_forecasts": len(origins),
                "first_origin": min(origins),
                "last_origin": max(origins),
                "champion_since": run_night(run) if run else None,
                "how": (run["decision"] if run else "trained outside the nightly job"),
            }
        )
    lineage.sort(key=lambda item: (item["first_origin"], item["version"]))
    return lineage


def _ticker_report(
    entry: TickerHistory,
    runs: list[dict[str, Any]],
    store: PriceStore,
    as_of: str,
    champion: str | None,
) -> dict[str, Any]:
    cache: dict[tuple[Any, ...], Any] = {}
    unique = _latest_per_origin(entry.forecasts)
    series_rows: list[dict[str, Any]] = []
    har: dict[str, float | None] = {}
    scored = [row for row in unique if row["realized_var"] is not None]
    har_origins = {row["origin"] for row in scored[-max(RECENT_WINDOWS) :]}
    for row in unique:
        source = _load_series(store, row, as_of, cache)
        regime = None if source is None else source.regime(row["origin"], row["horizon"])
        if row["origin"] in har_origins:
            har[row["origin"]] = (
                None if source is None else source.har_forecast(row["origin"], row["horizon"])
            )
        realized = row["realized_var"]
        series_rows.append(
            {
                "origin": row["origin"],
                "horizon": row["horizon"],
                "model_version": row["model_version"],
                "variance": row["variance"],
                "vol": row["vol"],
                "realized_var": realized,
                "realized_vol": None
                if realized is None
                else float(to_vol(max(realized, VARIANCE_FLOOR))),
                "har_var": har.get(row["origin"]),
                "high_ex_ante": None
                if regime is None
                else bool(regime["trailing_var"] > regime["ex_ante_var"]),
                "high_ex_post": None
                if regime is None or realized is None
                else bool(realized > regime["ex_post_var"]),
                "ex_ante_threshold_vol": None
                if regime is None
                else float(to_vol(regime["ex_ante_var"])),
                "trailing_vol": None if regime is None else float(to_vol(regime["trailing_var"])),
            }
        )
    latest = series_rows[-1] if series_rows else None
    previous = series_rows[-2] if len(series_rows) > 1 else None
    latest_row = unique[-1] if unique else None
    summary_latest = None
    if latest is not None:
        payload = entry.to_dict()["forecasts"]
        risk = next(
            (
                item["risk"]
                for item in reversed(payload)
                if item["origin"] == latest_row["origin"]
                and item["model_version"] == latest_row["model_version"]
            ),
            None,
        )
        summary_latest = {
            "origin": latest["origin"],
            "horizon": latest["horizon"],
            "model_version": latest["model_version"],
            "vol": latest["vol"],
            "variance": latest["variance"],
            "risk": risk,
            "previous_origin": previous["origin"] if previous else None,
            "previous_vol": previous["vol"] if previous else None,
            "change": latest["vol"] - previous["vol"] if previous else None,
        }
    running: dict[str, list[dict[str, Any]]] = {}
    for sense in ("high_ex_ante", "high_ex_post"):
        points, target, forecast = [], [], []
        for row in series_rows:
            if row[sense] and row["realized_var"] is not None:
                target.append(max(row["realized_var"], VARIANCE_FLOOR))
                forecast.append(row["variance"])
                points.append(
                    {"origin": row["origin"], "n": len(target), "bias": metrics.bias(target, forecast)}
                )
        running[sense] = points
    regime_now = None
    if latest is not None and latest["high_ex_ante"] is not None:
        regime_now = {
            "origin": latest["origin"],
            "regime": "high" if latest["high_ex_ante"] else "low",
            "trailing_vol": latest["trailing_vol"],
            "threshold_vol": latest["ex_ante_threshold_vol"],
            "quantile": REGIME_QUANTILE,
        }
    return {
        "ticker": entry.ticker,
        "champion": champion,
        "latest": summary_latest,
        "recent": _recent(entry, har),
        "regime": regime_now,
        "decision": _decision(latest_run(runs)),
        "series": series_rows,
        "running_bias": running,
        "lineage": _lineage(entry, runs),
    }


def latest_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run of the latest night (the newest-created among that night's), not the newest run.

    A back-dated run (``nightly --as-of`` an earlier night) is created last but
    tells nothing about the latest night: it must not hide that night's decision.
    ``runs`` are oldest-created first.
    """
    if not runs:
        return None
    return max(enumerate(runs), key=lambda pair: (run_night(pair[1]), pair[0]))[1]


def staleness(last_night: str | None, as_of: str) -> dict[str, Any] | None:
    """``{last_night, as_of, weekdays}`` when weekdays passed after the last night up to
    ``as_of`` (the history is older than the report's date), else None."""
    if last_night is None or last_night >= as_of:
        return None
    after = pd.Timestamp(last_night) + pd.Timedelta(days=1)
    weekdays = len(pd.bdate_range(after, pd.Timestamp(as_of)))
    if weekdays == 0:  # a weekend after a Friday night is not stale
        return None
    return {"last_night": last_night, "as_of": as_of, "weekdays": weekdays}


def latest_night(settings: Settings) -> str | None:
    """The latest night in the history: the latest run's night or forecast origin."""
    history = ForecastHistory(settings.forecasts_db)
    nights = [run_night(run) for run in history.runs()]
    nights += [row["origin"] for row in history.forecasts()]
    nights = [night for night in nights if night]
    return max(nights) if nights else None


def build_report(settings: Settings, as_of: str | None = None) -> dict[str, Any]:
    """The morning report's payload for the night ``as_of`` (default: the latest).

    Parameters
    ----------
    settings : Settings
        The data home: forecast history, price cache and model registry.
    as_of : str, optional
        ``YYYY-MM-DD``; the history as it stood at that close (later forecasts,
        runs and prices are left out).

    Raises
    ------
    DataError
        The history holds no forecast and no run (up to ``as_of``).
    """
    from forecaster.models.registry import ModelRegistry

    db = Path(settings.forecasts_db)
    latest = latest_night(settings)
    if latest is None:
        raise DataError(
            f"the forecast history {str(db)!r} holds no forecast and no nightly run, so there "
            "is nothing to report; run `forecast nightly --tickers ...` first (or pass the "
            "--home that holds your history)"
        )
    as_of = as_of or latest
    histories = load_history(settings.forecasts_db, settings.prices_dir, as_of=as_of)
    all_runs = [run for run in ForecastHistory(db).runs() if run_night(run) <= as_of]
    if not histories and not all_runs:
        raise DataError(
            f"the forecast history {str(db)!r} holds nothing up to {as_of} (its latest night "
            f"is {latest}); pass a later --as-of, or leave it out for the latest night"
        )
    runs_by_ticker: dict[str, list[dict[str, Any]]] = {}
    for run in all_runs:
        runs_by_ticker.setdefault(run["ticker"], []).append(run)
    by_ticker = {entry.ticker: entry for entry in histories}
    tickers = sorted(set(by_ticker) | set(runs_by_ticker))
    registry = ModelRegistry(settings.models_dir)
    store = PriceStore(Path(settings.prices_dir))
    reports = []
    for ticker in tickers:
        try:
            champion = registry.champion_id(ticker)
        except ForecasterError as exc:
            champion = f"unreadable champion pointer: {exc}"
        reports.append(
            _ticker_report(
                by_ticker.get(ticker, TickerHistory(ticker)),
                runs_by_ticker.get(ticker, []),
                store,
                as_of,
                champion,
            )
        )
    nights = [run_night(run) for run in all_runs]
    nights += [row["origin"] for entry in histories for row in entry.forecasts]
    last_night = max((night for night in nights if night), default=None)
    failures = [
        {"ticker": item["ticker"], "night": item["decision"]["night"], "error": item["decision"]["reason"]}
        for item in reports
        if item["decision"] is not None and item["decision"]["status"] == "failed"
    ]
    return {
        "format": REPORT_FORMAT,
        "as_of": as_of,
        "last_night": last_night,
        "stale": staleness(last_night, as_of),
        "generated_at": now_utc(),
        "recent_windows": list(RECENT_WINDOWS),
        "regime_quantile": REGIME_QUANTILE,
        "failures": failures,
        "tickers": reports,
        "history": [entry.to_dict(with_score=True) for entry in histories],
    }
