"""``forecast fetch`` and ``forecast realized``: the price cache and realized volatility.

Neither command imports TensorFlow.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.daily import check_daily_options, daily_option, realized_bars, realized_daily
from forecaster.cli.options import (
    MAX_ROWS,
    MAX_WINDOW,
    TICKERS,
    estimator_option,
    format_option,
    given,
    int_option,
    load_from_options,
    load_many,
    output_option,
    panel_tickers,
    price_options,
)
from forecaster.cli.output import check_destinations, echo_json, shown_path, write_output
from forecaster.cli.schemas import schema_id

if TYPE_CHECKING:
    import pandas as pd

    from forecaster.data.loader import PriceData


@click.command()
@price_options
@click.option(
    "--tickers",
    type=TICKERS,
    help="With --panel: comma-separated tickers to fetch, or all (the default).",
)
@click.option("--refresh", is_flag=True, help="Ignore the cache and fetch the whole history again.")
@format_option("table", "json")
@pass_app
def fetch(
    app: AppContext,
    ticker,
    source,
    csv_path,
    start,
    end,
    panel_path,
    bars_path,
    tz,
    tickers,
    refresh,
    fmt,
) -> None:
    """Fill or update the price cache and say what it holds.

    --format json: {"schema", "tickers": [{"ticker", "rows", "start", "end",
    "source", "description", "cache", "from_cache", "added", "revised",
    "removed"}], "skipped": [tickers of a --panel that failed]}.

    \b
    Example:
      forecast fetch --ticker SPY --source sample
      forecast fetch --ticker AAPL --source csv --csv aapl.csv
      forecast fetch --panel stocks.parquet            # every ticker of a long-format file
      forecast fetch --bars spy_5min.parquet           # intraday bars: one row per session day
      forecast fetch --ticker SPY --source sample --format json
    """
    if tickers is not None and panel_path is None:
        from forecaster.errors import ConfigError

        raise ConfigError("--tickers chooses tickers of a --panel file; pass --panel PATH")
    if panel_path is not None and (tickers is not None or not given("ticker")):
        names = panel_tickers(panel_path, tickers)

        def load(name: str) -> PriceData:
            return load_from_options(
                app, name, source, csv_path, start, end, refresh=refresh, panel_path=panel_path
            )

        loaded = load_many(app, names, load, "fetching")
        if fmt == "json":
            fetched = {data.ticker for data in loaded}
            _echo_fetched(loaded, [name for name in names if name not in fetched])
            return
        for data in loaded:
            click.echo(
                f"{data.ticker}: {len(data.prices)} rows, {data.start:%Y-%m-%d} to "
                f"{data.end:%Y-%m-%d}; cache: {shown_path(data.cache_path)}"
            )
        click.echo(
            f"panel {shown_path(loaded[0].location)}: {len(loaded)} of {len(names)} tickers "
            f"cached, {len(names) - len(loaded)} skipped"
        )
        return
    data = load_from_options(
        app, ticker, source, csv_path, start, end, refresh=refresh, panel_path=panel_path,
        bars_path=bars_path, tz=tz,
    )
    if fmt == "json":
        _echo_fetched([data], [])
        return
    click.echo(
        f"{data.ticker}: {len(data.prices)} rows, {data.start:%Y-%m-%d} to {data.end:%Y-%m-%d}"
    )
    click.echo(f"source: {data.source} ({data.description})")
    state = (
        "used as is (fresh)"
        if data.from_cache
        else f"{data.added} rows added, {data.revised} revised"
        + (f", {data.removed} no longer in the source removed" if data.removed else "")
    )
    click.echo(f"cache: {shown_path(data.cache_path)} — {state}")


def _echo_fetched(loaded: list[PriceData], skipped: list[str]) -> None:
    """``forecast fetch --format json`` (schema ``forecaster.fetch/1``)."""
    records = [
        {
            "ticker": data.ticker,
            "rows": len(data.prices),
            "start": f"{data.start:%Y-%m-%d}",
            "end": f"{data.end:%Y-%m-%d}",
            "source": data.source,
            "description": data.description,
            "cache": None if data.cache_path is None else str(shown_path(data.cache_path)),
            "from_cache": bool(data.from_cache),
            "added": int(data.added),
            "revised": int(data.revised),
            "removed": int(data.removed),
        }
        for data in loaded
    ]
    echo_json({"schema": schema_id("fetch"), "tickers": records, "skipped": skipped})


@click.command()
@price_options
@estimator_option(
    "Daily realized-variance estimator, one of {names}. close-to-close: the squared "
    "daily log return; parkinson: the high-low range; garman-klass, rogers-satchell: "
    "open, high, low and close; yang-zhang: those and the overnight gap, over --window days. "
    "rv5, bv, rk_parzen, ...: a daily measure a --csv/--panel file provides as a column."
)
@int_option("--window", 2, 22, "Days per estimate.", maximum=MAX_WINDOW)
@format_option("table", "csv", "json")
@click.option("--last", type=click.IntRange(1, MAX_ROWS), help="Only the last N rows.")
@output_option("Write to this file instead of stdout.")
@daily_option
@pass_app
def realized(
    app: AppContext,
    ticker,
    source,
    csv_path,
    start,
    end,
    panel_path,
    bars_path,
    tz,
    estimator,
    window,
    fmt,
    last,
    output,
    daily,
) -> None:
    """Annualized realized volatility, one row per day with a full window.

    vol_t = sqrt(252 * mean daily variance over the WINDOW days ending at t)
    (yang-zhang: sqrt(252 * its window estimate)).

    --daily: the estimator's daily variance, one row per day. --bars PATH: daily
    realized measures from intraday bars (see README, "Intraday data").

    \b
    Example:
      forecast realized --ticker SPY --source sample --estimator yang-zhang --format csv
      forecast realized --ticker AAPL --panel stocks.parquet
      forecast realized --bars spy_5min.parquet --daily --format csv
    """
    from forecaster.data.volatility import realized_vol

    check_destinations(output)
    check_daily_options(bars_path, tz, csv_path)
    if bars_path is not None:
        if panel_path is not None:
            from forecaster.errors import ConfigError

            raise ConfigError("--bars and --panel both name the data; pass one of them")
        write_output(realized_bars(ticker, bars_path, tz, start, end, fmt, last), output)
        return
    data = load_from_options(
        app, ticker, source, csv_path, start, end, panel_path=panel_path, estimator=estimator
    )
    if daily:
        write_output(realized_daily(data, estimator, window, fmt, last), output)
        return
    vol = realized_vol(data.prices, estimator=estimator, window=window)
    if last is not None:
        vol = vol.iloc[-last:]
    if vol.empty:
        from forecaster.errors import DataError

        raise DataError(
            f"{data.ticker}: {len(data.prices)} rows give no full {window}-day window; "
            "fetch a longer history or lower --window"
        )
    write_output(_render_realized(vol, data, estimator, window, fmt), output)


def _render_realized(vol: pd.Series, data: PriceData, estimator: str, window: int, fmt: str) -> str:
    """The realized series as CSV, JSON or a table ending with a one-line summary."""
    dates = vol.index.strftime("%Y-%m-%d")
    rows = list(zip(dates, vol.to_numpy(), strict=True))
    if fmt == "csv":
        lines = ["date,vol", *(f"{d},{v:.10g}" for d, v in rows)]
        return "\n".join(lines) + "\n"
    if fmt == "json":
        payload = {
            "ticker": data.ticker,
            "estimator": estimator,
            "window": window,
            "source": data.source,
            "description": data.description,
            "series": [{"date": d, "vol": float(v)} for d, v in rows],
        }
        return json.dumps(payload, indent=2) + "\n"
    lines = [f"{'date':<10}  {'vol':>7}"]
    lines += [f"{d:<10}  {v:>7.2%}" for d, v in rows]
    lines.append(
        f"{data.ticker} {estimator} {window}-day annualized vol over {len(vol)} days "
        f"({dates[0]} to {dates[-1]}, {data.source}): mean {vol.mean():.2%}, "
        f"min {vol.min():.2%}, max {vol.max():.2%}, last {vol.iloc[-1]:.2%}"
    )
    return "\n".join(lines) + "\n"
