"""The ``forecast`` command: parse, call the library, render. Nothing else.

Every :class:`~forecaster.errors.ForecasterError` becomes one ``error: ...``
line on stderr and exit code 1 (``--debug`` shows the traceback instead).
TensorFlow is imported only by commands that build or load a model.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from forecaster import __version__
from forecaster.errors import ForecasterError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ForecastGroup(click.Group):
    """A click group that turns domain errors into one clean line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ForecasterError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _settings(ctx: click.Context):
    from forecaster.settings import Settings

    return Settings.resolve(ctx.find_root().params.get("home"))


def interactive() -> bool:
    """True when stdout is a terminal (progress is shown only then)."""
    return sys.stdout.isatty()


def write_output(text: str, output: str | None) -> None:
    """Print ``text``, or write it atomically to ``output``."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    from forecaster.data.store import atomic_write_bytes

    atomic_write_bytes(Path(output), text.encode())
    click.echo(f"wrote {output}", err=True)


def price_options(command: Callable) -> Callable:
    """--ticker, --source, --csv, --start, --end."""

    @click.option(
        "--ticker", "-t", default="SPY", show_default=True, help="Symbol, e.g. SPY, QQQ, ^GSPC."
    )
    @click.option(
        "--source",
        type=click.Choice(["auto", "yahoo", "csv", "sample"]),
        default="auto",
        show_default=True,
        help="auto: fresh cache, else Yahoo, else (SPY/QQQ) the bundled sample.",
    )
    @click.option(
        "--csv", "csv_path", type=click.Path(dir_okay=False), help="CSV file for --source csv."
    )
    @click.option("--start", help="First date (YYYY-MM-DD).")
    @click.option("--end", help="Last date (YYYY-MM-DD), inclusive.")
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(*args, **kwargs)

    return wrapper


def load_from_options(ctx: click.Context, ticker, source, csv_path, start, end, **extra):
    """Prices for the shared price options; warnings go to stderr."""
    from forecaster.data.loader import load_prices, parse_date

    data = load_prices(
        ticker,
        source=source,
        csv_path=csv_path,
        start=parse_date(start, "--start"),
        end=parse_date(end, "--end"),
        settings=_settings(ctx),
        **extra,
    )
    for warning in data.warnings:
        click.echo(warning, err=True)
    if data.repairs:
        fixed = ", ".join(f"{count} × {what}" for what, count in data.repairs.items())
        click.echo(f"note: repaired tiny OHLC inconsistencies: {fixed}", err=True)
    return data


@click.group(cls=ForecastGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="FORECAST_HOME",
    help="Folder holding data/ and models/ (default: $FORECAST_HOME or the current folder).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="forecast")
def cli(home: str | None, debug: bool) -> None:
    """Forecast realized volatility with LSTMs whose initial state is pluggable.

    \b
    Example:
      forecast fetch --ticker SPY
      forecast realized --ticker SPY --estimator yang-zhang --format csv
    """


@cli.command()
@price_options
@click.option("--refresh", is_flag=True, help="Ignore the cache and fetch the whole history again.")
@click.pass_context
def fetch(ctx, ticker, source, csv_path, start, end, refresh) -> None:
    """Fill or update the price cache and say what it holds.

    \b
    Example:
      forecast fetch --ticker SPY --source sample
      forecast fetch --ticker AAPL --source csv --csv aapl.csv
    """
    data = load_from_options(ctx, ticker, source, csv_path, start, end, refresh=refresh)
    click.echo(
        f"{data.ticker}: {len(data.prices)} rows, {data.start:%Y-%m-%d} to {data.end:%Y-%m-%d}"
    )
    click.echo(f"source: {data.source} ({data.description})")
    state = (
        "used as is (fresh)"
        if data.from_cache
        else f"{data.added} rows added, {data.revised} revised"
    )
    click.echo(f"cache: {data.cache_path} — {state}")


@cli.command()
@price_options
@click.option(
    "--estimator",
    type=click.Choice(
        ["close-to-close", "parkinson", "garman-klass", "rogers-satchell", "yang-zhang"]
    ),
    default="garman-klass",
    show_default=True,
    help="Daily realized-variance estimator (DESIGN.md §3).",
)
@click.option(
    "--window", type=click.IntRange(min=2), default=22, show_default=True, help="Days per estimate."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--last", type=click.IntRange(min=1), help="Only the last N rows.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout."
)
@click.pass_context
def realized(
    ctx, ticker, source, csv_path, start, end, estimator, window, fmt, last, output
) -> None:
    """Annualized realized volatility, one row per day with a full window.

    vol_t = sqrt(252 * mean daily variance over the WINDOW days ending at t)
    (yang-zhang: sqrt(252 * its window estimate)).

    \b
    Example:
      forecast realized --ticker SPY --source sample --estimator yang-zhang --format csv
    """
    from forecaster.data.volatility import realized_vol

    data = load_from_options(ctx, ticker, source, csv_path, start, end)
    vol = realized_vol(data.prices, estimator=estimator, window=window)
    if last is not None:
        vol = vol.iloc[-last:]
    if vol.empty:
        from forecaster.errors import DataError

        raise DataError(
            f"{data.ticker}: {len(data.prices)} rows give no full {window}-day window; "
            "fetch a longer history or lower --window"
        )
    dates = vol.index.strftime("%Y-%m-%d")
    if fmt == "csv":
        lines = ["date,vol", *(f"{d},{v:.10g}" for d, v in zip(dates, vol.to_numpy(), strict=True))]
        text = "\n".join(lines) + "\n"
    elif fmt == "json":
        payload = {
            "ticker": data.ticker,
            "estimator": estimator,
            "window": window,
            "source": data.source,
            "description": data.description,
            "series": [{"date": d, "vol": float(v)} for d, v in zip(dates, vol.to_numpy(), strict=True)],
        }
        text = json.dumps(payload, indent=2) + "\n"
    else:
        lines = [f"{'date':<10}  {'vol':>7}"]
        lines += [f"{d:<10}  {v:>7.2%}" for d, v in zip(dates, vol.to_numpy(), strict=True)]
        lines.append(
            f"{data.ticker} {estimator} {window}-day annualized vol over {len(vol)} days "
            f"({dates[0]} to {dates[-1]}, {data.source}): mean {vol.mean():.2%}, "
            f"min {vol.min():.2%}, max {vol.max():.2%}, last {vol.iloc[-1]:.2%}"
        )
        text = "\n".join(lines) + "\n"
    write_output(text, output)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="forecast")


if __name__ == "__main__":
    main()
