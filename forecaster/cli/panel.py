"""Scoring one model on many tickers: ``forecast evaluate --panel`` and zero-shot tickers.

A universal (pooled) model is loaded once and serves every ticker: those it
was trained on with their own scalers, the others zero-shot (standardized by
their own rows before the model's cut). ``har-pooled`` is fit once on the
panel's tickers (rows before the cut) and serves each of them.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click

from forecaster.cli.app import AppContext
from forecaster.cli.options import exog_inputs, load_from_options, load_many, panel_tickers
from forecaster.cli.schemas import schema_id


def _with_exog(app: AppContext, data, config, panel_path, source):
    exog = exog_inputs(app, config, panel_path, source, None)
    return data if exog is None else dataclasses.replace(data, exog=exog)


def evaluate_panel(
    app: AppContext,
    panel_path: str,
    ticker: str | None,
    tickers: str | None,
    model_version: str | None,
    baselines: list[str],
    reference: str,
    quantile: float,
    fmt: str,
    color: bool = False,
) -> str:
    """Score a model (or each ticker's champion) on the panel's tickers; the report text."""
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import EvaluationError, ForecasterError
    from forecaster.evaluation import backtest as backtests
    from forecaster.evaluation.panel import loss_frame, panel_summary
    from forecaster.models.baselines import PooledHAR
    from forecaster.models.lstm_forecaster import load_forecaster

    registry = app.registry
    names = [normalize_ticker(ticker)] if ticker else panel_tickers(panel_path, tickers)
    if model_version is None:
        with_champion = set(registry.tickers_with_champion())
        missing = [name for name in names if name not in with_champion]
        if len(missing) == len(names):
            raise EvaluationError(
                f"none of the {len(names)} panel tickers has a champion model; pass --model "
                "VERSION (e.g. a universal model) to score them"
            )
        for name in missing:
            click.echo(f"warning: skipped {name}: no champion (pass --model VERSION)", err=True)
        names = [name for name in names if name in with_champion]
        versions = {name: registry.champion(name) for name in names}
    else:
        found = registry.find(model_version)
        versions = {name: found for name in names}
    loaded: dict[str, Any] = {}

    def forecaster_of(version):
        if version.version not in loaded:
            loaded[version.version] = load_forecaster(version)
        return loaded[version.version]

    def load(name: str):
        data = load_from_options(app, name, "panel", None, None, None, panel_path=panel_path)
        return _with_exog(app, data, versions[name].record.config, panel_path, "panel")

    datas = {data.ticker: data for data in load_many(app, names, load, "loading")}
    panel_fits = None
    if "har-pooled" in baselines:
        panel_fits = _pooled_har_fits(datas, versions, forecaster_of, PooledHAR)
    results, losses, failed = [], {}, {}
    bar = None
    if sys.stderr.isatty() and len(datas) > 1:
        bar = click.progressbar(
            length=len(datas), label=f"scoring {len(datas)} tickers", file=sys.stderr,
            show_eta=True, show_pos=True,
        )
        bar.__enter__()
    try:
        for name, data in datas.items():
            version = versions[name]
            try:
                run = backtests.zero_shot(
                    version, data, baselines, quantile, reference,
                    panel_fits=panel_fits.get(version.version) if panel_fits else None,
                    forecaster=forecaster_of(version),
                )
                result = backtests.summarize(run)
            except ForecasterError as exc:
                failed[name] = str(exc)
                click.echo(f"warning: skipped {name}: {exc}", err=True)
                continue
            finally:
                if bar is not None:
                    bar.update(1)
            results.append(result)
            usable = run.predictions[run.models].notna().all(axis=1)
            losses[name] = loss_frame(run.predictions[usable], run.models)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if not results:
        raise EvaluationError(
            f"no ticker of the panel could be scored ({len(failed)} failed; reasons above)"
        )
    horizon = results[0]["horizon"]
    if len({result["horizon"] for result in results}) > 1:
        raise EvaluationError(
            "the champions have different horizons; a panel summary compares one horizon: "
            "pass --model VERSION"
        )
    summary = panel_summary(losses, reference, horizon) if reference in results[0]["models"] else None
    if summary is not None:
        summary["skipped"] = failed
    return _render(results, summary, fmt, color)


def _pooled_har_fits(datas, versions, forecaster_of, pooled_har_class) -> dict[str, dict]:
    """Per model version: har-pooled fit on the panel's tickers before that model's cut."""
    import pandas as pd

    fits = {}
    by_version: dict[str, list[str]] = {}
    for name, version in versions.items():
        if name in datas:
            by_version.setdefault(version.version, []).append(name)
    for version_id, names in by_version.items():
        version = versions[names[0]]
        base = forecaster_of(version)
        cut = pd.Timestamp(version.record.split["test_start"])
        datasets = {name: base.dataset(datas[name].prices, datas[name].exog) for name in names}
        fitted = pooled_har_class().fit_panel(datasets, cut)
        fits[version_id] = {"har-pooled": fitted.fresh}
    return fits


def evaluate_zero_shot(
    app: AppContext,
    ticker: str,
    model_version: str,
    source: str | None,
    csv_path: str | None,
    baselines: list[str],
    reference: str,
    quantile: float,
    fmt: str,
    color: bool = False,
    bars: tuple[str | None, str | None] = (None, None),
) -> str:
    """Score a model on one ticker it was not saved under (zero-shot), from any source.

    ``bars`` is ``(--bars, --tz)``.
    """
    from forecaster.evaluation import backtest as backtests

    version = app.registry.find(model_version)
    bars_path, tz = bars
    chosen = source or ("csv" if csv_path else "bars" if bars_path else "auto")
    data = load_from_options(app, ticker, chosen, csv_path, None, None, bars_path=bars_path, tz=tz)
    data = _with_exog(app, data, version.record.config, None, chosen)
    run = backtests.zero_shot(version, data, baselines, quantile, reference)
    return _render([backtests.summarize(run)], None, fmt, color)


def _render(results: list[dict], summary: dict | None, fmt: str, color: bool) -> str:
    from forecaster.evaluation import report
    from forecaster.evaluation.panel import render_panel

    if fmt == "json":
        return report.render_json(results, summary, schema=schema_id("evaluate"))
    if fmt == "markdown":
        text = "\n".join(report.render_markdown(r) for r in results)
        return text + ("\n```\n" + render_panel(summary) + "\n```\n" if summary else "")
    text = "\n\n".join(report.render_table(r, color=color) for r in results) + "\n"
    return text + ("\n" + render_panel(summary) + "\n" if summary else "")
