"""``forecast models``: list, inspect, promote and prune saved model versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from forecaster.cli.app import AppContext, ForecastGroup, pass_app
from forecaster.cli.options import (
    TICKER,
    format_option,
    keep_option,
    output_option,
    version_argument,
)
from forecaster.cli.output import (
    check_destinations,
    echo_json,
    json_text,
    shown_path,
    summarize,
    write_output,
)

if TYPE_CHECKING:
    from forecaster.models.registry import ModelVersion


@click.group(cls=ForecastGroup)
def models() -> None:
    """List, inspect, promote and prune saved model versions.

    \b
    Example:
      forecast models list --ticker SPY
      forecast models promote 20261125T021530-encoder-a1b2
      forecast models prune --keep 5 --dry-run
    """


@models.command("list")
@click.option("--ticker", "-t", type=TICKER, help="Only this ticker.")
@format_option("table", "json")
@output_option("Write the list to FILE instead of stdout.")
@pass_app
def models_list(app: AppContext, ticker, fmt, output) -> None:
    """List saved versions, newest last; * marks each ticker's champion.

    A corrupt champion pointer is reported as a warning and the versions are
    still listed, so one of them can be promoted to repair it. A version
    whose files fail their check is listed as corrupt, with the reason in JSON.

    \b
    Example:
      forecast models list --ticker SPY
      forecast models list --format json -o models.json
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import RegistryError

    check_destinations(output)
    registry = app.registry
    tickers = [normalize_ticker(ticker)] if ticker else registry.tickers()
    rows: list[dict[str, Any]] = []
    for name in tickers:
        versions = registry.version_ids(name)
        try:  # a broken pointer must not hide the versions that can repair it
            champion = registry.champion_id(name)
        except RegistryError as exc:
            champion = None
            click.echo(f"warning: {exc}", err=True)
        if champion is not None and champion not in versions:
            click.echo(
                f"warning: the champion pointer of {name} names version {champion}, which is "
                f"not in the registry; choose one with `forecast models promote VERSION "
                f"--ticker {name}`",
                err=True,
            )
        for version_id in versions:
            row: dict[str, Any] = {"ticker": name, "version": version_id}
            row["champion"] = version_id == champion
            try:
                found = registry.get(name, version_id)
                record = found.record
            except RegistryError as exc:
                row.update(dict.fromkeys(("init", "horizon", "estimator", "data_end")))
                row.update(validation_qlike=None, manifest=None, error=str(exc))
            else:
                row.update(init=record.init, horizon=record.horizon, estimator=record.estimator)
                row["data_end"] = record.data.end
                row["validation_qlike"] = record.metrics.get("validation", {}).get("qlike")
                row["manifest"] = found.verified  # False: saved before manifests, unchecked
                row["error"] = None
            rows.append(row)
    if fmt == "json":
        write_output(json_text(rows, indent=2) + "\n", output)
        return
    if not rows:
        where = f" for {tickers[0]}" if ticker else ""
        write_output(
            f"no models{where} under {registry.models_dir}; train one with `forecast train`\n",
            output,
        )
        return
    lines = [
        f"  {'ticker':<8} {'version':<34} {'init':<9} {'h':>2} {'estimator':<15} {'data end':<10} {'val QLIKE':>9}"
    ]
    for row in rows:
        qlike = (
            f"{row['validation_qlike']:.4f}" if row["validation_qlike"] is not None else "corrupt"
        )
        lines.append(
            f"{'*' if row['champion'] else ' '} {row['ticker']:<8} {row['version']:<34} {row['init'] or '?':<9} "
            f"{row['horizon'] or '?':>2} {row['estimator'] or '?':<15} {row['data_end'] or '?':<10} {qlike:>9}"
        )
    write_output("\n".join(lines) + "\n", output)


def _resolve(app: AppContext, version: str, ticker: str | None) -> ModelVersion:
    """VERSION, looked up within --ticker when given."""
    from forecaster.data.sources import normalize_ticker

    return app.registry.resolve(normalize_ticker(ticker) if ticker else None, version)


@models.command("show")
@version_argument
@pass_app
def models_show(app: AppContext, version, ticker) -> None:
    """Print a version's metadata (JSON).

    \b
    Example:
      forecast models show 20261125T021530-encoder-a1b2
    """
    echo_json(_resolve(app, version, ticker).meta, sort_keys=True)


@models.command("promote")
@version_argument
@pass_app
def models_promote(app: AppContext, version, ticker) -> None:
    """Make VERSION its ticker's champion.

    \b
    Example:
      forecast models promote 20261125T021530-encoder-a1b2
    """
    from forecaster.errors import RegistryError

    registry = app.registry
    found = _resolve(app, version, ticker)
    try:
        previous = registry.champion_id(found.ticker) or "none"
    except RegistryError:  # the pointer this command repairs
        previous = "a corrupt champion pointer"
    registry.promote(found.ticker, found.version, reason="manual")
    click.echo(f"{found.ticker}: champion is now {found.version} (was {previous})")


def _size(count: int) -> str:
    """Bytes as people read them (decimal units), with the exact count."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit} ({count:,} bytes)"
    return f"{count:,} bytes"


def prune_lines(outcomes: list[dict[str, Any]], dry_run: bool = False) -> list[str]:
    """One summary line per ticker (plus one per deleted version) of a prune."""
    verb = "would delete" if dry_run else "deleted"
    lines: list[str] = []
    for outcome in outcomes:
        ticker = outcome["ticker"]
        if outcome.get("error"):
            lines.append(f"{ticker}: not pruned — {outcome['error']}")
            continue
        deleted = outcome["deleted"]
        protected = ", ".join(
            f"{version} ({' + '.join(reasons)})"
            for version, reasons in outcome["protected"].items()
        )
        lines.append(
            f"{ticker}: {verb} {len(deleted)} version{'' if len(deleted) == 1 else 's'}, "
            f"{_size(outcome['bytes_freed'])} {'to free' if dry_run else 'freed'}; kept "
            f"{len(outcome['kept'])} newest other{'' if len(outcome['kept']) == 1 else 's'} "
            f"(--keep {outcome['keep']}) and protected: {protected or 'none'}"
        )
        lines.extend(f"  {verb} {entry['version']}  {_size(entry['bytes'])}" for entry in deleted)
    return lines


@models.command("prune")
@click.option(
    "--ticker",
    "-t",
    type=TICKER,
    help="Only this ticker (default: every ticker in the registry).",
)
@keep_option(
    "How many of the newest unprotected versions to keep per ticker (0: only the protected "
    "ones).",
    required=True,
    allow_all=False,
)
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@format_option("table", "json")
@pass_app
def models_prune(app: AppContext, ticker, keep, dry_run, fmt) -> None:
    """Delete old losing challengers, keeping every version still needed.

    Per ticker, never deleted: the champion, the previous champion (the one
    the current champion replaced: what to promote back), and every version
    that issued a forecast still being scored (its horizon not yet in the
    price cache). Of the other versions, the --keep newest are kept and the
    rest deleted, oldest first; each deletion is one rename out of the
    registry, so an interrupted prune leaves whole versions only. Takes the
    nightly lock: it refuses to run while a nightly run is in progress.
    Prints what was deleted and the bytes freed.

    \b
    Example:
      forecast models prune --keep 5 --dry-run
      forecast models prune --ticker SPY --keep 0
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import RegistryError
    from forecaster.jobs.lock import nightly_lock, shared_lock
    from forecaster.jobs.retention import prune

    settings = app.settings
    tickers = None
    if ticker:
        name = normalize_ticker(ticker)
        if not app.registry.version_ids(name):
            known = summarize(app.registry.tickers()) or "none"
            raise RegistryError(
                f"no model versions of {name} under {shown_path(app.registry.models_dir)!r} "
                f"(tickers with versions: {known}); see `forecast models list`"
            )
        tickers = [name]
    # a dry run deletes nothing: it needs no write access (no lock file is created)
    lock = (
        shared_lock(settings.lock_path)
        if dry_run
        else nightly_lock(
            settings.lock_path,
            "forecast models prune",
            " (--dry-run only reads: it needs no write access)",
        )
    )
    with lock:
        outcomes = [entry.to_dict() for entry in prune(settings, tickers, keep, dry_run)]
    if fmt == "json":
        echo_json(outcomes)
        return
    if not outcomes:
        click.echo(f"no models under {shown_path(app.registry.models_dir)}; nothing to prune")
        return
    for line in prune_lines(outcomes, dry_run):
        click.echo(line)
    if len(outcomes) > 1:
        total = sum(outcome["bytes_freed"] for outcome in outcomes)
        count = sum(len(outcome["deleted"]) for outcome in outcomes)
        click.echo(
            f"total: {'would delete' if dry_run else 'deleted'} {count} versions, "
            f"{_size(total)} {'to free' if dry_run else 'freed'}"
        )
