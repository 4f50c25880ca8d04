"""``forecast predict``: a saved model's forecast as of the last date in the data."""

from __future__ import annotations

import math

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.options import (
    format_option,
    given,
    load_from_options,
    price_options,
    risk_options,
)
from forecaster.cli.output import annualized_vol, echo_json


@click.command()
@price_options
@click.option("--model", "model_version", help="Model version (default: the ticker's champion).")
@format_option("table", "json")
@risk_options
@pass_app
def predict(
    app: AppContext,
    ticker,
    source,
    csv_path,
    start,
    end,
    model_version,
    fmt,
    distribution,
    var_levels,
) -> None:
    """Forecast the next HORIZON days' volatility as of the last date in the data.

    Also reports VaR and ES of the next HORIZON days' log close-to-close
    return (--dist, --var-levels); t and fhs are fit on the model's
    standardized returns over its training and validation period.

    \b
    Example:
      forecast predict --ticker SPY
      forecast predict --ticker SPY --format json --dist fhs --var-levels 0.01
      forecast predict --ticker IBM --model VERSION --source csv --csv ibm.csv
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import ModelError
    from forecaster.evaluation import risk as risks
    from forecaster.models.lstm_forecaster import load_forecaster

    distribution = risks.check_distribution(distribution)
    levels = risks.parse_levels(var_levels)

    chosen = normalize_ticker(ticker) if given("ticker") or model_version is None else None
    version = _serving_version(app, chosen, model_version)
    serving = chosen or version.ticker
    data = load_from_options(app, serving, source, csv_path, start, end)
    forecaster = load_forecaster(version)
    dataset = forecaster.dataset(data.prices)
    if serving not in version.record.tickers:
        click.echo(
            f"note: model {version.version} was trained on {', '.join(version.record.tickers)}; "
            f"{serving} is standardized by its own rows up to the model's cut "
            f"{version.record.split['test_start']}",
            err=True,
        )
    forecaster = forecaster.for_ticker(serving, dataset)
    variance = float(forecaster.predict(dataset, [len(dataset) - 1])[0])
    if not (math.isfinite(variance) and variance > 0):  # never print a forecast that is not one
        raise ModelError(
            f"model {version.version} gave no usable forecast at {dataset.origins[-1]:%Y-%m-%d} "
            f"(daily variance {variance!r}); check the prices up to that date, or retrain with "
            f"`forecast train --ticker {version.ticker}`"
        )
    horizon = version.record.horizon
    payload = {
        "ticker": serving,
        "origin": f"{dataset.origins[-1]:%Y-%m-%d}",
        "horizon": horizon,
        "vol": annualized_vol(variance),
        "variance": variance,
        "model_version": version.version,
        "init": version.record.init,
        "risk": risks.forecast_risk(
            forecaster,
            dataset,
            variance,
            version.record.split["test_start"],
            distribution,
            levels,
        ),
    }
    if fmt == "json":
        echo_json(payload)
        return
    days = "next trading day" if horizon == 1 else f"next {horizon} trading days"
    click.echo(
        f"{payload['ticker']} as of {payload['origin']} close, {days}: "
        f"vol {payload['vol']:.2%} annualized (daily variance {variance:.3e})"
    )
    click.echo(f"model {version.version} (init {payload['init']}, data {data.source})")
    click.echo(_risk_line(payload["risk"]))


def _risk_line(risk: dict) -> str:
    """One line of VaR/ES (as % log returns) or the reason there are none."""
    days = "1-day" if risk["horizon"] == 1 else f"{risk['horizon']}-day"
    if risk["levels"] is None:
        return f"VaR/ES ({risk['distribution']}): n/a — {risk['reason']}"
    cells = ", ".join(
        f"VaR {float(key) * 100:g}% {values['var']:.2%}, ES {values['es']:.2%}"
        for key, values in risk["levels"].items()
    )
    params = risk["fit"]["params"] or {}
    fit = ""
    if risk["distribution"] == "t":
        fit = f"; dof {params['dof']:.1f}, scale {params['scale']:.2f}"
    if risk["distribution"] != "normal":
        fit += f", fit on {risk['fit']['n']} training days before {risk['fit']['before']}"
    return f"{days} log return {cells} ({risk['distribution']}{fit})"



def _serving_version(app: AppContext, ticker: str | None, model_version: str | None):
    """The version to forecast ``ticker`` with: ``--model`` even if saved under other tickers."""
    registry = app.registry
    if ticker and model_version and model_version not in registry.version_ids(ticker):
        return registry.find(model_version)  # a model forecasting a ticker it never saw
    return registry.resolve(ticker, model_version)
