"""``forecast nightly`` and ``forecast history``: the scheduled job and its track record.

Importing this module imports neither TensorFlow nor Dask.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.models import prune_lines
from forecaster.cli.options import (
    DATE,
    MAX_REFIT_DAYS,
    MAX_WORKERS,
    SOURCE_CHOICE,
    TICKER,
    TICKERS,
    format_option,
    keep_option,
    output_option,
    risk_options,
)
from forecaster.cli.output import (
    annualized_vol,
    check_destinations,
    echo_json,
    json_text,
    number,
    percent,
    risk_text,
    summarize,
    write_output,
)
from forecaster.cli.schemas import schema_id

#: ``forecast nightly --keep`` default (forecaster.jobs.retention.DEFAULT_NIGHTLY_KEEP; that
#: module imports pandas, which --help must not).
DEFAULT_NIGHTLY_KEEP = 5


def _progress_line(record: dict[str, Any]) -> str:
    ticker, status, seconds = record["ticker"], record["status"], record["seconds"]
    if status == "failed":
        return f"{ticker}: failed — {record['error']} ({seconds} s)"
    scores = f"challenger QLIKE {number(record['challenger_qlike'])}"
    if record["champion_qlike"] is not None:
        scores += f" vs champion {number(record['champion_qlike'])}"
    forecast = f"forecast vol {percent(record['vol'])} for {record['origin']} +{record['horizon']}d"
    if status == "unchanged":
        return (
            f"{ticker}: unchanged — this data was already processed, nothing retrained or "
            f"issued (then: {record['decision']}, {scores}; {forecast}) ({seconds} s)"
        )
    if record.get("dm_pvalue") is not None:
        scores += f", one-sided DM p {record['dm_pvalue']:.3g}"
    return f"{ticker}: ok, {record['decision']} ({scores}); {forecast} ({seconds} s)"


def _universe_line(summary: dict[str, Any]) -> str:
    """One line on a --universal night's universe step."""
    if summary["error"] is not None:
        kept = f"; still serving {summary['version']}" if summary["version"] else ""
        return f"refit failed — {summary['error']}{kept}"
    if summary["refit"]:
        return (
            f"refit ({summary['reason']}): {summary['version']} fit in {summary['seconds']} s, "
            f"test period from {summary['cut']}"
        )
    return (
        f"{summary['version']} (fit on data to {summary['fitted_on']}); next refit in "
        f"{summary['next_refit']} weekdays"
    )


def _nightly_table(report: Any) -> str:
    counts = report.counts()
    lines = [
        f"nightly run as of {report.as_of or 'latest data'} (source {report.source}, "
        f"{report.fan_out}): {len(report.records)} tickers in {report.seconds:.1f} s — "
        f"{counts['ok']} ok, {counts['unchanged']} unchanged, {counts['failed']} failed",
        *([f"universe: {_universe_line(report.universe)}"] if report.universe else []),
        f"{'ticker':<8} {'status':<9} {'decision':<8} {'chall QLIKE':>11} {'champ QLIKE':>11} "
        f"{'origin':<10} {'h':>2} {'vol':>7}  champion",
    ]
    for record in report.records:
        lines.append(
            f"{record['ticker']:<8} {record['status']:<9} {record['decision'] or '-':<8} "
            f"{number(record['challenger_qlike']):>11} {number(record['champion_qlike']):>11} "
            f"{record['origin'] or '-':<10} {record['horizon'] or '-':>2} "
            f"{percent(record['vol']):>7}  {record['champion_version'] or '-'}"
        )
    for record in report.records:
        if record["status"] == "ok" and record.get("risk") is not None:
            lines.append(f"{record['ticker']} {_risk_cells(record['risk'], record['horizon'])}")
    for record in report.failed:
        lines.append(f"{record['ticker']} failed: {record['error']}")
    return "\n".join(lines)


def _risk_cells(risk: dict[str, Any], horizon: int) -> str:
    """VaR/ES of one issued forecast (as % log returns), or why there are none."""
    return risk_text({**risk, "horizon": horizon})


@click.command()
@click.option(
    "--tickers",
    type=TICKERS,
    help="Comma-separated symbols, e.g. SPY,QQQ (with --panel, 'all': every ticker of the file).",
)
@click.option(
    "--universe",
    type=click.Path(exists=True, dir_okay=False),
    help="File with one ticker per line (# starts a comment).",
)
@click.option(
    "--source",
    type=SOURCE_CHOICE,
    default="auto",
    show_default=True,
    help="auto: fresh cache, else Yahoo; never the sample as a fallback here.",
)
@click.option(
    "--csv-dir",
    type=click.Path(file_okay=False),
    help="With --source csv: folder holding <TICKER>.csv for each ticker.",
)
@click.option(
    "--panel",
    "panel_path",
    type=click.Path(dir_okay=False),
    help="Long-format file of many tickers as the price source (--tickers default: all).",
)
@click.option(
    "--as-of",
    type=DATE,
    help="Run as if today were this date (YYYY-MM-DD); later data is hidden.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    help="Run tickers on a local Dask cluster of N worker processes.",
)
@click.option(
    "--scheduler",
    help="Run tickers on an existing Dask cluster, e.g. tcp://host:8786 or tls://host:8786.",
)
@click.option(
    "--scheduler-timeout",
    type=click.FloatRange(0.1, 600),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="With --scheduler: most seconds to connect and get the scheduler's Dask handshake.",
)
@click.option(
    "--tls-ca",
    metavar="PEM",
    help="With a tls:// scheduler: the CA certificate [env FORECAST_TLS_CA].",
)
@click.option(
    "--tls-cert",
    metavar="PEM",
    help="With a tls:// scheduler: this client's certificate [env FORECAST_TLS_CERT].",
)
@click.option(
    "--tls-key",
    metavar="PEM",
    help="With a tls:// scheduler: this client's private key [env FORECAST_TLS_KEY].",
)
@click.option(
    "--window-days",
    type=click.IntRange(2, MAX_REFIT_DAYS),
    default=63,
    show_default=True,
    help="Recent labeled origins on which challenger and champion are compared.",
)
@click.option(
    "--universal",
    is_flag=True,
    help="Serve the book from one universal model fit on all its tickers: refit every "
    "--universe-refit weekdays (and when there is none or the book changed); on a refit night "
    "each ticker's challenger is its view of the new model or its fine-tune, on the other "
    "nights the champions only issue.",
)
@click.option(
    "--universe-refit",
    type=click.IntRange(1, 10_000),
    metavar="N",
    help="With --universal: weekdays between refits of the universal model [default: 20].",
)
@click.option(
    "--fine-tune/--no-fine-tune",
    default=True,
    show_default=True,
    help="With --universal, on a refit night: also fine-tune each ticker from the new model "
    "and use the fine-tune where it scores better on the validation rows.",
)
@click.option(
    "--promotion-level",
    type=click.FloatRange(0.0, 0.5, min_open=True, max_open=True),
    default=0.01,  # = jobs.nightly.DEFAULT_PROMOTION_LEVEL (the CLI imports the job lazily)
    show_default=True,
    metavar="ALPHA",
    help="A challenger replaces the champion only if a one-sided Diebold-Mariano test of "
    "their QLIKE losses on the window rejects equal accuracy at this level (the test is "
    "oversized: at 0.01 a seed-only twin was promoted on about 5% of nights, at 0.05 on "
    "11-13%; bench/promotion.md).",
)
@click.option(
    "--min-scored",
    type=click.IntRange(3, MAX_REFIT_DAYS),
    default=40,
    show_default=True,
    help="Window origins forecast by both models needed before any promotion (at least "
    "2h+1 for horizon h).",
)
@keep_option(
    "After the run, prune each ticker that did not fail to this many unprotected versions "
    "(the champion, the previous champion and versions with forecasts still pending are "
    "always kept; see `forecast models prune`). With --report, reports/ also keeps this "
    "many night pages.",
    default=str(DEFAULT_NIGHTLY_KEEP),
)
@risk_options
@click.option(
    "--report",
    "html_report",
    is_flag=True,
    help="Then write the morning report, reports/<as-of>.html under the home.",
)
@format_option("table", "json")
@pass_app
def nightly(
    app: AppContext,
    tickers,
    universe,
    source,
    csv_dir,
    panel_path,
    as_of,
    workers,
    scheduler,
    scheduler_timeout,
    tls_ca,
    tls_cert,
    tls_key,
    window_days,
    universal,
    universe_refit,
    fine_tune,
    promotion_level,
    min_scored,
    distribution,
    var_levels,
    html_report,
    fmt,
    keep,
) -> None:
    """Retrain, compare, promote and forecast for each ticker (the scheduled job).

    Per ticker: update the price cache, train a challenger with the champion's
    settings, score both on the same recent window (the last --window-days
    realized origins), promote the challenger only if it is significantly
    better (one-sided Diebold-Mariano at --promotion-level on at least
    --min-scored origins; the figures and the reason are in the history and the
    report), and record the champion's next forecast in the forecast history. A ticker
    without a champion gets its first one. A night already completed on the
    same data is skipped. One ticker's failure never stops the others; the
    exit code is 1 if any failed. A lock keeps two runs from overlapping.
    The issued forecast is stored with its VaR and ES (--dist, --var-levels;
    t and fhs are fit on the issuing model's training returns), or with the
    reason there are none. Last, still under the lock, each ticker that did
    not fail is pruned to --keep versions besides the protected ones (every
    night adds a version per ticker; 5 leave a week of losing challengers to
    inspect), with what was deleted and the bytes freed on stderr. --report
    then writes the morning report (see `forecast report`), failures included,
    and prunes reports/ to the --keep newest night pages.

    With --workers or --scheduler, Dask workers train and forecast; they need
    the package but no data home: this process sends them prices and champions
    and alone writes the cache, the models and the history.

    \b
    Example:
      forecast nightly --tickers SPY,QQQ --source sample --as-of 2018-06-01
      forecast nightly --tickers SPY,QQQ --report
      forecast nightly --universe universe.txt --workers 2
      forecast nightly --universe universe.txt --scheduler tls://10.0.0.5:8786 \\
        --tls-ca ca.pem --tls-cert client.pem --tls-key client-key.pem
      forecast nightly --tickers AAPL,MSFT --source csv --csv-dir ./prices
      forecast nightly --panel stocks.parquet --tickers AAPL,MSFT
    """
    from forecaster.data.sources import ticker_list
    from forecaster.errors import ConfigError
    from forecaster.evaluation.risk import check_distribution, parse_levels
    from forecaster.jobs.nightly import read_universe, run_nightly

    distribution = check_distribution(distribution)
    levels = parse_levels(var_levels)

    if tickers and universe:
        raise ConfigError("--tickers and --universe were both given; use one of them")
    if panel_path is not None and not universe:
        from forecaster.data.panel import resolve_tickers

        names = resolve_tickers(panel_path, tickers)
    elif not tickers and not universe:
        raise ConfigError(
            "no tickers given; pass --tickers SPY,QQQ, --universe FILE or --panel PATH"
        )
    else:
        names = read_universe(universe) if universe else ticker_list(tickers)
    total = len(names)  # SPY,spy,SPY counts once, as it runs once
    done: list[str] = []

    def progress(record: dict[str, Any]) -> None:
        done.append(record["ticker"])
        click.echo(f"[{len(done)}/{total}] {_progress_line(record)}", err=True)
        if record.get("traceback"):
            click.echo(record["traceback"].rstrip(), err=True)

    def universe_progress(summary: dict[str, Any]) -> None:
        click.echo(f"universe: {_universe_line(summary)}", err=True)

    report = run_nightly(
        names,
        settings=app.settings,
        source=source,
        csv_dir=csv_dir,
        panel_path=panel_path,
        as_of=as_of,
        workers=workers,
        scheduler=scheduler,
        scheduler_timeout=scheduler_timeout,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        window_days=window_days,
        universal=universal,
        universe_refit=universe_refit,
        fine_tune=fine_tune,
        on_universe=universe_progress,
        promotion_level=promotion_level,
        min_scored=min_scored,
        on_record=progress,
        distribution=distribution,
        levels=levels,
        keep=keep,
    )
    for note in report.recovered:
        click.echo(f"warning: recovered: {note}", err=True)
    for line in prune_lines(report.pruned):
        click.echo(f"retention: {line}", err=True)
    if fmt == "json":
        echo_json(report.to_dict())
    else:
        click.echo(_nightly_table(report))
    if html_report:
        from forecaster.cli.report import write_report

        write_report(app, as_of=report.as_of, keep=keep)
    if report.failed:
        failed = report.failed
        names = summarize([record["ticker"] for record in failed])
        click.echo(
            f"error: {len(failed)} of {len(report.records)} tickers failed: {names}; "
            "their champions are unchanged (each error is shown above)",
            err=True,
        )
        click.get_current_context().exit(1)


def _history_table(histories: list[Any], with_score: bool, where: str) -> str:
    lines: list[str] = []
    for entry in histories:
        realized = len(entry.realized())
        lines.append(
            f"{entry.ticker}: {len(entry.forecasts)} forecasts issued, {realized} realized"
        )
        lines.append(
            f"  {'origin':<10} {'h':>2} {'vol':>7} {'realized':>8} {'init':<9} "
            f"{'estimator':<15} model_version"
        )
        for row in entry.forecasts:
            realized_var = row["realized_var"]
            realized_vol = None if realized_var is None else annualized_vol(realized_var)
            lines.append(
                f"  {row['origin']:<10} {row['horizon']:>2} {percent(row['vol']):>7} "
                f"{percent(realized_vol):>8} {row['init'] or '-':<9} {row['estimator']:<15} "
                f"{row['model_version']}"
            )
        if with_score:
            score = entry.score()
            if score["n"]:
                lines.append(
                    f"  live score over {score['n']} realized ({score['n_pending']} pending): "
                    f"QLIKE {score['qlike']:.4f}  MSE {score['mse']:.3e}  "
                    f"MAE vol {score['mae_vol']:.2%}  bias {score['bias']:+.2%} (annualized vol)"
                )
            else:
                lines.append(
                    f"  live score: nothing realized yet ({score['n_pending']} pending); "
                    "a forecast is scored once the prices of its horizon are in the cache"
                )
            lines.extend(_risk_score_lines(score["risk"]))
    if not lines:
        return f"no forecasts{where}; run `forecast nightly` to issue some"
    return "\n".join(lines)


def _risk_score_lines(risk: dict[str, Any]) -> list[str]:
    """The live VaR backtest of one ticker, a line per level."""
    lines = []
    if risk["n_without_var"]:
        lines.append(
            f"  VaR: {risk['n_without_var']} forecast(s) stored without VaR, latest because: "
            f"{risk['reason']}"
        )
    if not risk["levels"]:
        lines.append("  VaR backtest: no forecast with a stored VaR yet")
    for key, entry in risk["levels"].items():
        reasons = entry["unavailable"]
        head = f"  VaR {float(key) * 100:g}%: "
        if entry["breaches"] is None:
            lines.append(head + f"{entry['n_pending']} pending — {reasons['breaches']}")
            continue
        kupiec = entry["kupiec"]
        kupiec_text = (
            f"Kupiec p {kupiec['p_value']:.3f}" if kupiec else f"Kupiec n/a ({reasons['kupiec']})"
        )
        line = (
            f"{head}{entry['breaches']} breaches in {entry['n']} realized "
            f"(rate {entry['breach_rate']:.2%}, expected {entry['level'] * 100:g}%; "
            f"{entry['n_pending']} pending); {kupiec_text}"
        )
        light = entry["traffic_light"]
        if light is not None:
            line += (
                f"; traffic light {light['zone']} ({light['breaches']} breaches "
                f"{light['start']}..{light['end']})"
            )
        elif "traffic_light" in reasons and "only" not in reasons["traffic_light"]:
            line += f"; traffic light n/a ({reasons['traffic_light']})"
        lines.append(line)
    return lines


def _history_csv(histories: list[Any]) -> str:
    columns = (
        "ticker",
        "origin",
        "horizon",
        "model_version",
        "init",
        "estimator",
        "variance",
        "vol",
        "realized_var",
        "created_at",
    )
    from forecaster.jobs.history import forecast_risk_payload

    risks = [
        [forecast_risk_payload(row.get("risk_rows") or []) for row in entry.forecasts]
        for entry in histories
    ]
    levels = sorted(
        {
            key
            for rows in risks
            for risk in rows
            if risk and risk["levels"]
            for key in risk["levels"]
        },
        key=float,
    )
    header = [*columns, "realized_return", "distribution"]
    header += [f"{kind}_{key}" for key in levels for kind in ("var", "es")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for entry, rows in zip(histories, risks, strict=True):
        for row, risk in zip(entry.forecasts, rows, strict=True):
            cells = [row[name] for name in columns] + [row.get("realized_return")]
            cells.append(risk["distribution"] if risk else None)
            stored = (risk or {}).get("levels") or {}
            for key in levels:
                cells += [stored.get(key, {}).get("var"), stored.get(key, {}).get("es")]
            writer.writerow(["" if cell is None else cell for cell in cells])
    return buffer.getvalue()


@click.command()
@click.option(
    "--ticker",
    "-t",
    type=TICKER,
    help="Only this ticker (default: every ticker in the history).",
)
@click.option(
    "--score", "with_score", is_flag=True, help="Score every forecast whose period is realized."
)
@click.option(
    "--as-of",
    type=DATE,
    help="The history as it stood at this close (YYYY-MM-DD): later forecasts are left out "
    "and later prices unused, so only what was realized by then is scored.",
)
@format_option("table", "json", "csv")
@output_option("Write to FILE instead of stdout (CSV: the score still goes to stderr).")
@pass_app
def history(app: AppContext, ticker, with_score, as_of, fmt, output) -> None:
    """List issued forecasts and, with --score, their live track record.

    A forecast made at the close of ORIGIN for horizon h is realized once the
    price cache holds the h trading days after it; its realized variance uses
    the estimator of the model that issued it. --score gives QLIKE, MSE, MAE
    (annualized vol) and bias over the realized ones: the live record, not a
    backtest. JSON is {"schema", "tickers": [{"ticker", "forecasts", "score"}]}
    (score null without --score; with --ticker, that one ticker, even with no
    forecasts). CSV prints the score to stderr.

    \b
    Example:
      forecast history --ticker SPY --score
      forecast history --score --format json
      forecast history --ticker SPY --score --as-of 2018-06-04 -o spy.txt
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.jobs.history import load_history

    check_destinations(output)
    settings = app.settings
    name = normalize_ticker(ticker) if ticker else None
    histories = load_history(settings.forecasts_db, settings.prices_dir, name, as_of=as_of)
    where = f" for {name}" if name else ""
    where += f" in {settings.forecasts_db}"
    if as_of is not None:
        where += f" as of {as_of}"
    if fmt == "json":
        if name is not None and not histories:
            from forecaster.jobs.history import TickerHistory

            histories = [TickerHistory(name)]
        entries = [{"score": None, **entry.to_dict(with_score)} for entry in histories]
        payload = {"schema": schema_id("history"), "tickers": entries}
        write_output(json_text(payload, indent=2) + "\n", output)
    elif fmt == "csv":
        write_output(_history_csv(histories), output)
        if with_score:
            for entry in histories:
                click.echo(f"{entry.ticker}: {json.dumps(entry.score())}", err=True)
    else:
        write_output(_history_table(histories, with_score, where) + "\n", output)
