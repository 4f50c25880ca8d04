"""``forecast models``: list, inspect and promote saved model versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from forecaster.cli.app import AppContext, ForecastGroup, pass_app
from forecaster.cli.options import format_option, version_argument
from forecaster.cli.output import echo_json

if TYPE_CHECKING:
    from forecaster.models.registry import ModelVersion


@click.group(cls=ForecastGroup)
def models() -> None:
    """List, inspect and promote saved model versions.

    \b
    Example:
      forecast models list --ticker SPY
      forecast models promote 20261125T021530-encoder-a1b2
    """


@models.command("list")
@click.option("--ticker", "-t", help="Only this ticker.")
@format_option("table", "json")
@pass_app
def models_list(app: AppContext, ticker, fmt) -> None:
    """List saved versions, newest last; * marks each ticker's champion.

    A corrupt champion pointer is reported as a warning and the versions are
    still listed, so one of them can be promoted to repair it. A version
    whose files fail their check is listed as corrupt, with the reason in JSON.

    \b
    Example:
      forecast models list --ticker SPY
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import RegistryError

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
        echo_json(rows)
        return
    if not rows:
        where = f" for {tickers[0]}" if ticker else ""
        click.echo(f"no models{where} under {registry.models_dir}; train one with `forecast train`")
        return
    click.echo(
        f"  {'ticker':<8} {'version':<34} {'init':<9} {'h':>2} {'estimator':<15} {'data end':<10} {'val QLIKE':>9}"
    )
    for row in rows:
        qlike = (
            f"{row['validation_qlike']:.4f}" if row["validation_qlike"] is not None else "corrupt"
        )
        click.echo(
            f"{'*' if row['champion'] else ' '} {row['ticker']:<8} {row['version']:<34} {row['init'] or '?':<9} "
            f"{row['horizon'] or '?':>2} {row['estimator'] or '?':<15} {row['data_end'] or '?':<10} {qlike:>9}"
        )


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
