"""``forecast evaluate``: score saved models against the baselines on held-out data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.options import (
    BASELINES,
    MAX_REFIT_DAYS,
    SOURCE_CHOICE,
    TICKER,
    TICKERS,
    BaselinesCommand,
    NamesOption,
    bars_label,
    baseline_names,
    format_option,
    given,
    int_option,
    load_from_options,
    output_option,
    reference_option,
    regime_quantile_option,
    risk_options,
    tz_option,
)
from forecaster.cli.output import check_destinations, shown_path, write_files, write_output
from forecaster.cli.schemas import schema_id

if TYPE_CHECKING:
    from forecaster.data.loader import PriceData
    from forecaster.models.registry import ModelVersion


@click.command(cls=BaselinesCommand)
@click.option(
    "--ticker", "-t", type=TICKER, help="Ticker (default: every ticker with a champion)."
)
@click.option("--model", "model_version", help="Model version (default: the champion).")
@click.option(
    "--source",
    type=SOURCE_CHOICE,
    help="Price source (default: the one the model was trained on).",
)
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False), help="CSV file for --source csv."
)
@click.option(
    "--bars",
    "bars_path",
    type=click.Path(dir_okay=False),
    help="Intraday bars file of the ticker (see `forecast train --bars`); default: the file "
    "the model was trained on.",
)
@tz_option
@click.option(
    "--panel",
    "panel_path",
    type=click.Path(dir_okay=False),
    help="Long-format file of many tickers: score each (--tickers, default all) and add a "
    "panel summary.",
)
@click.option(
    "--tickers",
    type=TICKERS,
    help="With --panel: comma-separated tickers to score, or all (the default).",
)
@click.option(
    "--baselines",
    cls=NamesOption,
    names=baseline_names,
    type=BASELINES,
    show_default=True,
    help="Comma-separated baselines ({names}; 'none').",
)
@reference_option("Model the others are tested against (Diebold-Mariano, ratios).")
@regime_quantile_option
@click.option(
    "--walk-forward",
    is_flag=True,
    help="Refit every model on an expanding window over the test period.",
)
@int_option(
    "--refit-every", 1, 63, "Trading days between walk-forward refits.", maximum=MAX_REFIT_DAYS
)
@format_option("table", "json", "markdown")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Write a PNG plot here (one ticker).",
)
@click.option(
    "--predictions",
    "predictions_path",
    type=click.Path(dir_okay=False),
    help="Write the per-origin predictions CSV here (one ticker).",
)
@output_option("Write the report to this file instead of stdout.")
@click.option(
    "--risk",
    is_flag=True,
    help="Add the risk view: each model's VaR/ES and their coverage backtests.",
)
@risk_options
@pass_app
def evaluate(
    app: AppContext,
    ticker,
    model_version,
    source,
    csv_path,
    bars_path,
    tz,
    panel_path,
    tickers,
    baselines,
    reference,
    regime_quantile,
    walk_forward,
    refit_every,
    fmt,
    plot_path,
    predictions_path,
    output,
    risk,
    distribution,
    var_levels,
) -> None:
    """Score the LSTM against the baselines on held-out data.

    The baselines are {baselines} (all by default; --baselines picks some).
    Reports QLIKE, MSE, MAE of vol, bias overall / low / high-volatility regime
    (ex-ante and ex-post), Mincer-Zarnowitz and Diebold-Mariano against HAR
    (or the --reference model).
    Regime thresholds and baseline parameters come from pre-test data only.

    \b
    Example:
      forecast evaluate
      forecast evaluate --ticker SPY --format json --plot spy.png --predictions spy.csv
      forecast evaluate --ticker SPY --walk-forward --refit-every 63
      forecast evaluate --ticker SPY --risk --dist fhs --var-levels 0.01,0.05

    A universal model on the tickers of a panel, those it never saw included
    (zero-shot: each standardized by its own rows before the model's cut),
    with a panel summary (mean/median QLIKE ratio, share beating the
    reference, Diebold-Mariano on the daily cross-sectional mean loss):

    \b
      forecast evaluate --model VERSION --panel stocks.parquet --tickers all
      forecast evaluate --model VERSION --ticker IBM --source csv --csv ibm.csv

    --risk turns each variance forecast into VaR and ES of the h-day log
    close-to-close return (--dist, --var-levels; t and fhs are fit on each
    model's standardized pre-test returns) and backtests them: breaches,
    Kupiec, Christoffersen, Basel traffic light (1%), McNeil-Frey ES test,
    breach rate by regime, tick and FZ0 losses, Diebold-Mariano on FZ0.
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import EvaluationError
    from forecaster.evaluation import backtest as backtests
    from forecaster.evaluation import report
    from forecaster.evaluation import risk as risks
    from forecaster.models.baselines import parse_baselines

    check_destinations(plot_path, predictions_path, output)
    names = parse_baselines(baselines)
    risk = risk or given("distribution") or given("var_levels")
    if risk:  # fail on a bad --dist/--var-levels before any model is loaded
        distribution = risks.check_distribution(distribution)
        levels = risks.parse_levels(var_levels)
    if tickers is not None and panel_path is None:
        raise EvaluationError("--tickers chooses tickers of a --panel file; pass --panel PATH")
    if panel_path is not None:
        if walk_forward or plot_path or predictions_path or risk:
            raise EvaluationError(
                "--panel scores many tickers held out; --walk-forward, --plot, --predictions and "
                "--risk work one ticker at a time: drop them (or score one --ticker)"
            )
        if csv_path is not None or bars_path is not None or source not in (None, "panel"):
            raise EvaluationError("--panel holds the prices; drop --csv/--bars/--source")
        from forecaster.cli.panel import evaluate_panel

        text = evaluate_panel(
            app, panel_path, ticker, tickers, model_version, names, reference, regime_quantile,
            fmt, color=output is None and sys.stdout.isatty(),
        )
        write_output(text, output)
        return
    registry = app.registry
    if bars_path is not None and ticker is None and model_version is None:
        ticker = bars_label("", bars_path)  # the bars' ticker (from the file name)
    if ticker is None and model_version is None:
        tickers = registry.tickers_with_champion()
        if not tickers:
            raise EvaluationError(
                f"no champion model under {registry.models_dir}; run `forecast train --ticker SPY` first "
                "(or pass --home to the folder holding your models/)"
            )
        versions = [registry.champion(name) for name in tickers]
    elif ticker is not None and model_version is not None and not _saved_under(
        registry, normalize_ticker(ticker), model_version
    ):
        from forecaster.cli.panel import evaluate_zero_shot

        text = evaluate_zero_shot(
            app, normalize_ticker(ticker), model_version, source, csv_path, names, reference,
            regime_quantile, fmt, color=output is None and sys.stdout.isatty(),
            bars=(bars_path, tz),
        )
        write_output(text, output)
        return
    else:
        versions = [registry.resolve(normalize_ticker(ticker) if ticker else None, model_version)]
    if (plot_path or predictions_path) and len(versions) > 1:
        raise EvaluationError(
            f"--plot/--predictions write one ticker's file but {len(versions)} tickers have champions "
            f"({', '.join(v.ticker for v in versions)}); add --ticker"
        )
    results, runs, risk_views = [], [], []
    for version in versions:
        data = _training_prices(app, version, source, csv_path, bars_path, tz)
        if walk_forward:

            def progress(number, total, date, name=version.ticker):
                click.echo(f"  {name}: refit {number}/{total} at {date:%Y-%m-%d}", err=True)

            run = backtests.walk_forward(
                version,
                data,
                names,
                regime_quantile,
                refit_every,
                on_refit=progress if sys.stderr.isatty() else None,
                reference=reference,
                risk=risk,
            )
        else:
            run = backtests.held_out(version, data, names, regime_quantile, reference, risk=risk)
        runs.append(run)
        result = backtests.summarize(run)
        if risk:
            risk_views.append(backtests.risk_summary(run, distribution, levels))
            result["risk"] = risk_views[-1].summary
        results.append(result)
    first_risk = risk_views[0] if risk_views else None
    files = []
    if predictions_path:
        files.append((predictions_path, backtests.predictions_csv(runs[0], first_risk).encode()))
    if plot_path:
        frame = first_risk.frame if first_risk else None
        files.append((plot_path, report.plot_png(runs[0].predictions, results[0], frame)))
    write_files(files)
    if fmt == "json":
        text = report.render_json(results, schema=schema_id("evaluate"))
    elif fmt == "markdown":
        text = "\n".join(report.render_markdown(r) for r in results)
    else:
        color = output is None and sys.stdout.isatty()
        text = "\n\n".join(report.render_table(r, color=color) for r in results) + "\n"
    write_output(text, output)


def _saved_under(registry, ticker: str, version: str) -> bool:
    """Whether ``version`` is saved under ``ticker`` (else it is scored zero-shot there)."""
    return (registry.models_dir / ticker / version).is_dir()


#: Sources that read a user's file: the file's description prefix and its option.
FILE_SOURCES = {"csv": ("CSV file", "--csv"), "bars": ("bars file", "--bars")}


def _recorded_file(version: ModelVersion) -> Path | None:
    """The file a model was trained on, as recorded (older records: from the description)."""
    recorded = version.record.data
    if recorded.path is not None:
        return Path(recorded.path)
    prefix = FILE_SOURCES[recorded.source][0] + " "
    if recorded.description.startswith(prefix):
        return Path(recorded.description[len(prefix) :]).expanduser()
    return None


def _training_prices(
    app: AppContext,
    version: ModelVersion,
    source: str | None,
    csv_path: str | None,
    bars_path: str | None = None,
    tz: str | None = None,
) -> PriceData:
    """The prices to score a model on: the user's choice, else the model's own source.

    A model trained on a file (CSV or intraday bars) is scored on that file when
    it still exists, else on the prices cached from it (with a warning), else it
    is an error that names the file and how to fix it.
    """
    from forecaster.data.loader import load_cached
    from forecaster.errors import ConfigError, DataError

    if source is not None or csv_path is not None or bars_path is not None:
        chosen = source or ("bars" if bars_path is not None else "csv")
        return load_from_options(
            app, version.ticker, chosen, csv_path, None, None, bars_path=bars_path, tz=tz
        )
    recorded = version.record.data
    if recorded.source not in FILE_SOURCES:
        return load_from_options(app, version.ticker, recorded.source, None, None, None)
    kind = recorded.source
    label, option = FILE_SOURCES[kind]
    path = _recorded_file(version)
    if path is not None and path.is_file():
        click.echo(
            f"note: {version.ticker}: prices from {shown_path(path)}, the {label} "
            f"model {version.version} was trained on",
            err=True,
        )
        if kind == "bars":
            return load_from_options(
                app, version.ticker, "bars", None, None, None, bars_path=str(path), tz=tz
            )
        return load_from_options(app, version.ticker, "csv", str(path), None, None)
    try:
        cached = load_cached(version.ticker, kind, settings=app.settings)
    except DataError:
        cached = None  # a damaged cache: the error below says what to pass instead
    if cached is not None and (
        path is None
        or cached.description == recorded.description
        or cached.description == f"{label} {path}"
    ):
        click.echo(
            f"warning: {version.ticker}: the {label} model {version.version} was trained on "
            f"({shown_path(path) if path else 'not recorded'}) is gone; using the prices "
            f"cached from it, {cached.start:%Y-%m-%d} to {cached.end:%Y-%m-%d}",
            err=True,
        )
        return cached
    where = f"{str(shown_path(path))!r}" if path is not None else f"a {label} (path not recorded)"
    extra = " (and --source csv)" if kind == "csv" else ""
    raise ConfigError(
        f"{version.ticker} model {version.version} was trained on {where}, which no longer "
        f"exists, and the price cache holds no prices from it; pass {option} PATH with a copy "
        f"of that file{extra} to evaluate it"
    )
