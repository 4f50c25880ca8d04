"""``forecast predict``: a saved model's forecast as of the last date in the data.

One ticker (``--ticker``) or many in one process (``--tickers``, ``--all``).
Saved networks run with a NumPy forward pass when they can (no TensorFlow
import; :func:`forecaster.models.lstm_forecaster.load_forecaster`), with Keras
otherwise — the forecasts are the same either way.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Any

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.options import (
    TICKERS,
    bars_label,
    exog_inputs,
    format_option,
    given,
    load_from_options,
    output_option,
    panel_tickers,
    price_options,
    risk_options,
)
from forecaster.cli.output import (
    annualized_vol,
    cell,
    check_destinations,
    json_text,
    risk_text,
    summarize,
    write_output,
)
from forecaster.cli.schemas import schema_id
from forecaster.errors import ConfigError, ForecasterError, ModelError, RegistryError
from forecaster.tables import text_table

#: --engine choices (the names of lstm_forecaster.ENGINES; listed here so -h imports no pandas).
ENGINE_CHOICES = ("auto", "numpy", "keras")


@click.command()
@price_options
@click.option(
    "--tickers",
    type=TICKERS,
    help="Forecast each of these comma-separated tickers (SPY,QQQ); with --panel, or all.",
)
@click.option("--all", "all_tickers", is_flag=True, help="Forecast every ticker with a champion.")
@click.option(
    "--csv-dir",
    type=click.Path(file_okay=False),
    help="With --source csv and --tickers/--all: read DIR/<TICKER>.csv.",
)
@click.option("--model", "model_version", help="Model version (default: the ticker's champion).")
@click.option(
    "--engine",
    type=click.Choice(ENGINE_CHOICES),
    default="auto",
    show_default=True,
    help="auto: NumPy on the saved weights (no TensorFlow), Keras if the model has a layer "
    "NumPy does not know; numpy: that or an error; keras: always TensorFlow.",
)
@format_option("table", "json", "jsonl", "csv")
@output_option("Write the forecasts to FILE instead of stdout.")
@risk_options
@pass_app
def predict(
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
    all_tickers,
    csv_dir,
    model_version,
    engine,
    fmt,
    output,
    distribution,
    var_levels,
) -> None:
    """Forecast the next HORIZON days' volatility as of the last date in the data.

    Also reports VaR and ES of the next HORIZON days' log close-to-close
    return (--dist, --var-levels); t and fhs are fit on the model's
    standardized returns over its training and validation period.

    With --tickers or --all, every ticker is forecast by its champion in one
    process, one row (table, csv) or line (jsonl) per ticker. JSON is always
    {"schema", "forecasts": [one record per ticker], "failed": [tickers]}. A
    ticker that fails (no prices, a corrupt model) gets status "error" and the
    reason in its row, the others are still forecast, and the command exits
    with status 1 at the end if any failed.

    \b
    Example:
      forecast predict --ticker SPY
      forecast predict --ticker SPY --format json --dist fhs --var-levels 0.01
      forecast predict --ticker IBM --model VERSION --source csv --csv ibm.csv
      forecast predict --tickers SPY,QQQ
      forecast predict --all --format csv --output forecasts.csv
      forecast predict --panel stocks.parquet --model VERSION   # one universal model, every ticker
    """
    from forecaster.evaluation import risk as risks

    distribution = risks.check_distribution(distribution)
    levels = risks.parse_levels(var_levels)
    check_destinations(output)
    batch = _batch_tickers(
        app, ticker, tickers, all_tickers, csv_path, csv_dir, model_version, panel_path
    )
    if batch is None:
        if csv_dir is not None:
            raise ConfigError("--csv-dir reads several tickers; use it with --tickers or --all")
        payload = _forecast(
            app, ticker, model_version, (source, csv_path, start, end, panel_path, bars_path, tz),
            engine,
            distribution, levels,
        )
        if fmt == "table":
            write_output(_table_single(payload) + "\n", output)
        else:
            _render_batch([_row(payload)], fmt, output)
        return
    if csv_dir is not None and source not in ("csv", "auto"):
        raise ConfigError(f"--csv-dir reads CSV files; use it with --source csv, not {source}")
    if source == "csv" and csv_dir is None:
        raise ConfigError(
            "--source csv with --tickers/--all needs --csv-dir DIR holding <TICKER>.csv"
        )
    rows = []
    for name in batch:
        path = str(Path(csv_dir) / f"{name}.csv") if csv_dir is not None else None
        prices = (source if csv_dir is None else "csv", path, start, end, panel_path, None, None)
        try:
            if path is not None and not Path(path).is_file():
                raise ConfigError(
                    f"--csv-dir {csv_dir} has no {name}.csv; add the file or leave {name} out"
                )
            rows.append(
                _row(
                    _forecast(
                        app, name, model_version, prices, engine, distribution, levels, named=True
                    )
                )
            )
        except Exception as exc:  # one ticker's failure never stops the others
            message = (
                str(exc) if isinstance(exc, ForecasterError) else f"{type(exc).__name__}: {exc}"
            )
            rows.append(_error_row(name, message))
    _render_batch(rows, fmt, output)
    failed = [row["ticker"] for row in rows if row["status"] != "ok"]
    if failed:
        raise ModelError(
            f"{len(failed)} of {len(rows)} tickers failed ({summarize(failed)}); their rows say "
            "why — fix those and run again (the other forecasts were printed)"
        )


def _batch_tickers(
    app: AppContext,
    ticker: str,
    tickers: str | None,
    all_tickers: bool,
    csv_path: str | None,
    csv_dir: str | None,
    model_version: str | None,
    panel_path: str | None = None,
) -> list[str] | None:
    """The tickers of a batch (None for one ticker); conflicting options are one error."""
    from forecaster.data.sources import ticker_list

    if panel_path is not None and not all_tickers and (tickers is not None or not given("ticker")):
        if csv_path is not None or csv_dir is not None:
            raise ConfigError("--panel holds the prices; drop --csv/--csv-dir")
        return panel_tickers(panel_path, tickers)
    if tickers is None and not all_tickers:
        return None
    option = "--tickers" if tickers is not None else "--all"
    if tickers is not None and all_tickers:
        raise ConfigError("--tickers and --all both choose the tickers; pass one of them")
    if given("ticker"):
        raise ConfigError(f"--ticker and {option} both choose the tickers; pass one of them")
    if model_version is not None:
        raise ConfigError(
            f"--model names one version; {option} forecasts each ticker with its champion "
            "(drop --model, or use --ticker T --model VERSION)"
        )
    if csv_path is not None:
        raise ConfigError(f"--csv reads one ticker; with {option} use --csv-dir DIR")
    if click.get_current_context().params.get("bars_path") is not None:
        raise ConfigError(f"--bars reads one ticker; drop {option} (or drop --bars)")
    if tickers is not None:
        return ticker_list(tickers)
    names = app.registry.tickers_with_champion()
    if not names:
        raise RegistryError(
            f"--all found no ticker with a champion under {str(app.settings.models_dir)!r}; "
            "train one with `forecast train --ticker SPY`"
        )
    return names


def _forecast(
    app: AppContext,
    ticker: str,
    model_version: str | None,
    prices: tuple[str, str | None, str | None, str | None, str | None, str | None, str | None],
    engine: str,
    distribution: str,
    levels: list[float],
    named: bool = False,
) -> dict[str, Any]:
    """One ticker's forecast and VaR/ES (raises the ticker's error).

    ``named``: ``ticker`` is the one to forecast even with ``model_version`` (a batch).
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.evaluation import serving as served

    source, csv_path, start, end, panel_path, bars_path, tz = prices
    if bars_path is not None:
        ticker, named = bars_label(ticker, bars_path), True  # the bars' ticker
    explicit = named or given("ticker") or model_version is None
    chosen = normalize_ticker(ticker) if explicit else None
    version = _serving_version(app, chosen, model_version)
    serving = chosen or version.ticker
    data = load_from_options(
        app, serving, source, csv_path, start, end, panel_path=panel_path, bars_path=bars_path,
        tz=tz,
    )
    exog = exog_inputs(app, version.record.config, panel_path, source, end)
    if exog is not None:
        data = dataclasses.replace(data, exog=exog)
    if serving not in version.record.tickers:
        click.echo(
            f"note: model {version.version} was trained on {', '.join(version.record.tickers)}; "
            f"{serving} is standardized by its own rows up to the model's cut "
            f"{version.record.split['test_start']}",
            err=True,
        )
    issued = served.serve(version, _loaded(version, engine), data, serving)
    cache = served.fit_cache(
        app.settings.risk_cache_dir, version, serving, issued.forecaster, data, issued.dataset
    )
    return {
        "ticker": serving,
        "origin": f"{issued.origin:%Y-%m-%d}",
        "horizon": version.record.horizon,
        "vol": annualized_vol(issued.variance),
        "variance": issued.variance,
        "model_version": version.version,
        "init": version.record.init,
        "risk": served.serve_risk(
            version, issued.forecaster, issued.dataset, issued.variance, distribution, levels,
            cache=cache,
        ),
        # internal: the row shows the engine; the table the source
        "_engine": issued.engine,
        "_source": data.source,
    }


#: Networks loaded in this process, by (version, engine): a universal model serving many
#: tickers is read once (every ticker's copy of a version holds the same network).
_LOADED: dict[tuple[str, str], Any] = {}


def _loaded(version, engine: str):
    from forecaster.models.lstm_forecaster import load_forecaster

    key = (version.version, engine)
    if key not in _LOADED:
        if len(_LOADED) >= 8:  # a batch of many champions: don't keep them all
            _LOADED.clear()
        _LOADED[key] = load_forecaster(version, engine=engine)
    return _LOADED[key]


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if not key.startswith("_")}


def _table_single(payload: dict[str, Any]) -> str:
    horizon = payload["horizon"]
    days = "next trading day" if horizon == 1 else f"next {horizon} trading days"
    return "\n".join(
        [
            f"{payload['ticker']} as of {payload['origin']} close, {days}: "
            f"vol {payload['vol']:.2%} annualized (daily variance {payload['variance']:.3e})",
            f"model {payload['model_version']} (init {payload['init']}, data {payload['_source']})",
            _risk_line(payload["risk"]),
        ]
    )


def _row(payload: dict[str, Any]) -> dict[str, Any]:
    """A batch row: status first, the forecast, the engine that ran it."""
    row = {"ticker": payload["ticker"], "status": "ok"}
    row.update({k: v for k, v in _public(payload).items() if k != "ticker"})
    row["engine"] = payload["_engine"]
    row["error"] = None
    return row


#: Keys of every batch row, in order (a failed ticker's row has them too, null).
_ROW_KEYS = ("ticker", "status", "origin", "horizon", "vol", "variance", "model_version", "init")
_ROW_KEYS += ("risk", "engine", "error")


def _error_row(ticker: str, message: str) -> dict[str, Any]:
    return {**dict.fromkeys(_ROW_KEYS), "ticker": ticker, "status": "error", "error": message}


def _render_batch(rows: list[dict[str, Any]], fmt: str, output: str | None) -> None:
    if fmt == "jsonl":
        text = "".join(json_text(row) + "\n" for row in rows)
    elif fmt == "json":
        failed = [row["ticker"] for row in rows if row["status"] != "ok"]
        payload = {"schema": schema_id("predict"), "forecasts": rows, "failed": failed}
        text = json_text(payload, indent=2) + "\n"
    elif fmt == "csv":
        text = _csv(rows)
    else:
        text = _table(rows)
    write_output(text, output)


def _risk_keys(rows: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for key in (row.get("risk") or {}).get("levels") or {}:
            if key not in keys:
                keys.append(key)
    return keys


_CSV_FIELDS = ("ticker", "status", "origin", "horizon", "vol", "variance", "model_version", "init")


def _csv(rows: list[dict[str, Any]]) -> str:
    levels = _risk_keys(rows)
    fields = [*_CSV_FIELDS, "distribution"]
    for key in levels:
        fields += [f"var_{key}", f"es_{key}"]
    fields += ["engine", "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        risk = row.get("risk") or {}
        flat = {key: row.get(key) for key in fields if key in row}
        flat["distribution"] = risk.get("distribution")
        for key, values in (risk.get("levels") or {}).items():
            flat[f"var_{key}"], flat[f"es_{key}"] = values["var"], values["es"]
        writer.writerow(flat)
    return buffer.getvalue()


def _table(rows: list[dict[str, Any]]) -> str:
    levels = _risk_keys(rows)
    header = ["ticker", "origin", "h", "vol"]
    header += [f"{name} {float(key) * 100:g}%" for key in levels for name in ("VaR", "ES")]
    header += ["model", "status"]
    lines = []
    for row in rows:
        if row["status"] != "ok":
            cells = [row["ticker"], "-", "-", "-"] + ["-"] * (2 * len(levels))
            cells += ["-", cell(f"error: {row['error']}")]  # in full in --format json
        else:
            found = (row["risk"] or {}).get("levels") or {}
            cells = [row["ticker"], row["origin"], str(row["horizon"]), f"{row['vol']:.2%}"]
            for key in levels:
                values = found.get(key)
                cells += (
                    ["-", "-"]
                    if values is None
                    else [f"{values['var']:.2%}", f"{values['es']:.2%}"]
                )
            cells += [row["model_version"], "ok"]
        lines.append(cells)
    align = "llrr" + "rr" * len(levels) + "ll"
    return "\n".join(text_table(header, lines, align=align)) + "\n"


def _risk_line(risk: dict) -> str:
    """One line of VaR/ES (as % log returns) with the fit, or the reason there are none."""
    return risk_text(risk, detail=True)


def _serving_version(app: AppContext, ticker: str | None, model_version: str | None):
    """The version to forecast ``ticker`` with: ``--model`` even if saved under other tickers."""
    registry = app.registry
    if ticker and model_version and model_version not in registry.version_ids(ticker):
        return registry.find(model_version)  # a model forecasting a ticker it never saw
    return registry.resolve(ticker, model_version)
