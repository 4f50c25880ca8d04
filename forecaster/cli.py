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
# Literal copies of the library's names so that `forecast --help` needs no pandas;
# tests/test_cli.py checks they match forecaster.data.sources.SOURCES / volatility.ESTIMATORS.
SOURCE_CHOICE = click.Choice(["auto", "yahoo", "csv", "sample"])
ESTIMATOR_CHOICE = click.Choice(
    ["close-to-close", "parkinson", "garman-klass", "rogers-satchell", "yang-zhang"]
)
FRACTION = click.FloatRange(0, 1, min_open=True, max_open=True)


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


def write_files(files: list[tuple[str, bytes]]) -> None:
    """Write each (path, payload) atomically; check every destination before writing any.

    An unwritable destination is a ConfigError naming it, and nothing is written.
    """
    import os

    from forecaster.data.store import atomic_write_bytes
    from forecaster.errors import ConfigError

    for name, _ in files:
        path = Path(name).expanduser()
        folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
        if path.is_dir() or folder is None or not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ConfigError(
                f"cannot write {name!r}: {'it is a folder' if path.is_dir() else 'its folder is not writable'}; "
                "choose a file path in a writable folder"
            )
    for name, payload in files:
        try:
            atomic_write_bytes(Path(name).expanduser(), payload)
        except OSError as exc:
            raise ConfigError(
                f"cannot write {name!r} ({exc.strerror or exc}); choose a file path in a writable folder"
            ) from None
        click.echo(f"wrote {name}", err=True)


def write_output(text: str, output: str | None) -> None:
    """Print ``text``, or write it atomically to ``output``."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_files([(output, text.encode())])


def price_options(command: Callable) -> Callable:
    """--ticker, --source, --csv, --start, --end."""

    @click.option(
        "--ticker", "-t", default="SPY", show_default=True, help="Symbol, e.g. SPY, QQQ, ^GSPC."
    )
    @click.option(
        "--source",
        type=SOURCE_CHOICE,
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


def split_options(command: Callable) -> Callable:
    """--test-start | --test-fraction: where the held-out test period begins."""
    command = click.option(
        "--test-fraction",
        type=FRACTION,
        default=0.2,
        show_default=True,
        help="Held-out share of the history when --test-start is not given.",
    )(command)
    return click.option(
        "--test-start", help="First date of the held-out test period (YYYY-MM-DD)."
    )(command)


regime_quantile_option = click.option(
    "--regime-quantile",
    type=FRACTION,
    default=0.8,
    show_default=True,
    help="Training quantile above which volatility is 'high'.",
)


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
        + (f", {data.removed} no longer in the source removed" if data.removed else "")
    )
    click.echo(f"cache: {data.cache_path} — {state}")


@cli.command()
@price_options
@click.option(
    "--estimator",
    type=ESTIMATOR_CHOICE,
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
            "series": [
                {"date": d, "vol": float(v)} for d, v in zip(dates, vol.to_numpy(), strict=True)
            ],
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


def _registry(ctx: click.Context):
    from forecaster.models.registry import ModelRegistry

    return ModelRegistry(_settings(ctx).models_dir)


def _init_choices() -> list[str]:
    from forecaster.models.initial_state import available_strategies

    return available_strategies()


def _vol(variance: float) -> float:
    from forecaster.units import to_vol

    return float(to_vol(variance))


@cli.command()
@price_options
@click.option(
    "--init",
    type=click.Choice(_init_choices()),
    default="encoder",
    show_default=True,
    help="Initial-state strategy of the LSTM.",
)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Forecast the mean daily variance of the next N days (1, 5, 22).",
)
@click.option(
    "--estimator",
    type=ESTIMATOR_CHOICE,
    default="garman-klass",
    show_default=True,
    help="Daily realized-variance estimator (inputs and target).",
)
@click.option(
    "--window",
    type=click.IntRange(min=2),
    default=22,
    show_default=True,
    help="Window of the yang-zhang estimator.",
)
@click.option(
    "--units", type=click.IntRange(min=1), default=32, show_default=True, help="LSTM units."
)
@click.option(
    "--lookback",
    type=click.IntRange(min=2),
    default=22,
    show_default=True,
    help="Days in the input sequence.",
)
@click.option(
    "--context",
    type=click.IntRange(min=21),
    default=252,
    show_default=True,
    help="Days of long history for the encoder (multiple of 21).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Most epochs (early stopping usually ends sooner).",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=6,
    show_default=True,
    help="Epochs without validation improvement before stopping.",
)
@click.option(
    "--loss",
    type=click.Choice(["mse", "qlike"]),
    default="mse",
    show_default=True,
    help="Training loss (both on log variance, see README).",
)
@click.option(
    "--state-stddev",
    type=click.FloatRange(min=0, min_open=True),
    default=0.1,
    show_default=True,
    help="Stddev of the random initial state.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed: same seed, same forecasts.",
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="TensorFlow threads (default: all cores)."
)
@split_options
@click.option("--no-promote", is_flag=True, help="Save the model without making it the champion.")
@click.pass_context
def train(
    ctx,
    ticker,
    source,
    csv_path,
    start,
    end,
    init,
    horizon,
    estimator,
    window,
    units,
    lookback,
    context,
    epochs,
    patience,
    loss,
    state_stddev,
    seed,
    threads,
    test_start,
    test_fraction,
    no_promote,
) -> None:
    """Train an LSTM forecaster and save it as a new model version.

    The data is split in time: train, validation (the last 15% before the test
    period: early stopping and bias correction) and a held-out test period
    that only `forecast evaluate` looks at. The new version becomes the
    ticker's champion unless --no-promote.

    \b
    Example:
      forecast train --ticker SPY
      forecast train --ticker SPY --init learned --horizon 5 --seed 3
    """
    from forecaster.data.loader import parse_date
    from forecaster.models.pipeline import TrainOptions
    from forecaster.models.pipeline import train as train_model

    if (
        test_start
        and ctx.get_parameter_source("test_fraction") is not click.core.ParameterSource.DEFAULT
    ):
        from forecaster.errors import ConfigError

        raise ConfigError(
            f"--test-start {test_start} and --test-fraction {test_fraction} both choose the test "
            "period; pass only one of them"
        )
    parsed_test_start = parse_date(test_start, "--test-start")
    options = TrainOptions(
        init=init,
        horizon=horizon,
        estimator=estimator,
        window=window,
        lookback=lookback,
        context=context,
        units=units,
        epochs=epochs,
        patience=patience,
        loss=loss,
        state_stddev=state_stddev,
        seed=seed,
        threads=threads,
        test_start=None if parsed_test_start is None else f"{parsed_test_start:%Y-%m-%d}",
        test_fraction=test_fraction,
    )
    data = load_from_options(ctx, ticker, source, csv_path, start, end)
    show_progress = sys.stderr.isatty()
    if show_progress:
        click.echo(
            f"training {init} LSTM for {data.ticker}: {len(data.prices)} days "
            f"{data.start:%Y-%m-%d}..{data.end:%Y-%m-%d} ({data.source}), horizon {horizon}, {estimator}",
            err=True,
        )

    def progress(epoch: int, train_loss: float, val_loss: float) -> None:
        click.echo(
            f"  epoch {epoch:>3}/{epochs}  loss {train_loss:.4f}  val_loss {val_loss:.4f}", err=True
        )

    outcome = train_model(
        data,
        options,
        _registry(ctx),
        promote=not no_promote,
        on_epoch=progress if show_progress else None,
    )
    meta = outcome.meta
    split = meta["split"]
    validation = meta["metrics"]["validation"]
    click.echo(f"version: {outcome.version.version}{' (champion)' if outcome.promoted else ''}")
    click.echo(
        f"split: train {split['train_start']}..{split['train_end']} ({split['n_train']}), "
        f"validation {split['validation_start']}..{split['validation_end']} ({split['n_validation']}), "
        f"test {split['test_start']}..{split['test_end']} ({split['n_test']}, held out)"
    )
    click.echo(
        f"epochs: {outcome.epochs_run} (best {outcome.best_epoch}) in {outcome.seconds:.1f}s; "
        f"bias correction x{meta['bias_correction']['scale']:.3f}"
    )
    click.echo(
        f"validation: QLIKE {validation['qlike']:.4f}  MSE {validation['mse']:.3e}  "
        f"bias {validation['bias']:+.2%} (annualized vol)"
    )


@cli.command()
@price_options
@click.option("--model", "model_version", help="Model version (default: the ticker's champion).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def predict(ctx, ticker, source, csv_path, start, end, model_version, fmt) -> None:
    """Forecast the next HORIZON days' volatility as of the last date in the data.

    \b
    Example:
      forecast predict --ticker SPY
      forecast predict --ticker SPY --format json
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.models.pipeline import LoadedModel

    ticker_given = ctx.get_parameter_source("ticker") is not click.core.ParameterSource.DEFAULT
    chosen = normalize_ticker(ticker) if ticker_given or model_version is None else None
    version = _registry(ctx).resolve(chosen, model_version)
    data = load_from_options(ctx, version.ticker, source, csv_path, start, end)
    loaded = LoadedModel(version)
    dataset = loaded.dataset(data.prices)
    variance = float(loaded.predict(dataset)[-1])
    horizon = loaded.horizon
    payload = {
        "ticker": version.ticker,
        "origin": f"{dataset.origins[-1]:%Y-%m-%d}",
        "horizon": horizon,
        "vol": _vol(variance),
        "variance": variance,
        "model_version": version.version,
        "init": loaded.init,
    }
    if fmt == "json":
        click.echo(json.dumps(payload, indent=2))
        return
    days = "next trading day" if horizon == 1 else f"next {horizon} trading days"
    click.echo(
        f"{payload['ticker']} as of {payload['origin']} close, {days}: "
        f"vol {payload['vol']:.2%} annualized (daily variance {variance:.3e})"
    )
    click.echo(f"model {version.version} (init {payload['init']}, data {data.source})")


@cli.group(cls=ForecastGroup)
def models() -> None:
    """List, inspect and promote saved model versions.

    \b
    Example:
      forecast models list --ticker SPY
      forecast models promote 20261125T021530-encoder-a1b2
    """


@models.command("list")
@click.option("--ticker", "-t", help="Only this ticker.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def models_list(ctx, ticker, fmt) -> None:
    """List saved versions, newest last; * marks each ticker's champion.

    \b
    Example:
      forecast models list --ticker SPY
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import RegistryError

    registry = _registry(ctx)
    tickers = [normalize_ticker(ticker)] if ticker else registry.tickers()
    rows = []
    for name in tickers:
        champion = registry.champion_id(name)
        for version_id in registry.version_ids(name):
            try:
                meta = registry.get(name, version_id).meta
            except RegistryError as exc:
                meta = {"error": str(exc)}
            validation = meta.get("metrics", {}).get("validation", {})
            rows.append(
                {
                    "ticker": name,
                    "version": version_id,
                    "champion": version_id == champion,
                    "init": meta.get("init"),
                    "horizon": meta.get("horizon"),
                    "estimator": meta.get("estimator"),
                    "data_end": meta.get("data", {}).get("end"),
                    "validation_qlike": validation.get("qlike"),
                    "error": meta.get("error"),
                }
            )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
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


@models.command("show")
@click.argument("version")
@click.option("--ticker", "-t", help="Ticker (if the version id is ambiguous).")
@click.pass_context
def models_show(ctx, version, ticker) -> None:
    """Print a version's metadata (JSON).

    \b
    Example:
      forecast models show 20261125T021530-encoder-a1b2
    """
    from forecaster.data.sources import normalize_ticker

    found = _registry(ctx).resolve(normalize_ticker(ticker) if ticker else None, version)
    click.echo(json.dumps(found.meta, indent=2, sort_keys=True))


@models.command("promote")
@click.argument("version")
@click.option("--ticker", "-t", help="Ticker (if the version id is ambiguous).")
@click.pass_context
def models_promote(ctx, version, ticker) -> None:
    """Make VERSION its ticker's champion.

    \b
    Example:
      forecast models promote 20261125T021530-encoder-a1b2
    """
    from forecaster.data.sources import normalize_ticker

    registry = _registry(ctx)
    found = registry.resolve(normalize_ticker(ticker) if ticker else None, version)
    previous = registry.champion_id(found.ticker)
    registry.promote(found.ticker, found.version, reason="manual")
    click.echo(f"{found.ticker}: champion is now {found.version} (was {previous or 'none'})")


def _training_source(version, source: str | None, csv_path: str | None) -> tuple[str, str | None]:
    """The price source to score a model on: the user's choice, else the model's own."""
    from forecaster.errors import ConfigError

    if source is not None:
        return source, csv_path
    recorded = version.meta.get("data", {})
    trained_on = recorded.get("source", "auto")
    if trained_on == "csv" and csv_path is None:
        raise ConfigError(
            f"{version.ticker} model {version.version} was trained on {recorded.get('description', 'a CSV file')}; "
            "pass --csv PATH (and --source csv) to evaluate it on that file"
        )
    if csv_path is not None:
        return "csv", csv_path
    return trained_on, None


@cli.command()
@click.option("--ticker", "-t", help="Ticker (default: every ticker with a champion).")
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
    "--baselines",
    default="har,garch,gjr,ewma,naive",
    show_default=True,
    help="Comma-separated baselines (har, garch, gjr, ewma, naive; 'none').",
)
@regime_quantile_option
@click.option(
    "--walk-forward",
    is_flag=True,
    help="Refit every model on an expanding window over the test period.",
)
@click.option(
    "--refit-every",
    type=click.IntRange(min=1),
    default=63,
    show_default=True,
    help="Trading days between walk-forward refits.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
)
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
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the report to this file instead of stdout.",
)
@click.pass_context
def evaluate(
    ctx,
    ticker,
    model_version,
    source,
    csv_path,
    baselines,
    regime_quantile,
    walk_forward,
    refit_every,
    fmt,
    plot_path,
    predictions_path,
    output,
) -> None:
    """Score the LSTM against HAR, GARCH, GJR, EWMA and naive on held-out data.

    Reports QLIKE, MSE, MAE of vol, bias overall / low / high-volatility regime
    (ex-ante and ex-post), Mincer-Zarnowitz and Diebold-Mariano against HAR.
    Regime thresholds and baseline parameters come from pre-test data only.

    \b
    Example:
      forecast evaluate
      forecast evaluate --ticker SPY --format json --plot spy.png --predictions spy.csv
      forecast evaluate --ticker SPY --walk-forward --refit-every 63
    """
    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import EvaluationError
    from forecaster.evaluation import backtest as backtests
    from forecaster.evaluation import report
    from forecaster.models.baselines import parse_baselines

    names = parse_baselines(baselines)
    registry = _registry(ctx)
    if ticker is None and model_version is None:
        tickers = registry.tickers_with_champion()
        if not tickers:
            raise EvaluationError(
                f"no champion model under {registry.models_dir}; run `forecast train --ticker SPY` first "
                "(or pass --home to the folder holding your models/)"
            )
        versions = [registry.champion(name) for name in tickers]
    else:
        versions = [registry.resolve(normalize_ticker(ticker) if ticker else None, model_version)]
    if (plot_path or predictions_path) and len(versions) > 1:
        raise EvaluationError(
            f"--plot/--predictions write one ticker's file but {len(versions)} tickers have champions "
            f"({', '.join(v.ticker for v in versions)}); add --ticker"
        )
    results, runs = [], []
    for version in versions:
        data = load_from_options(
            ctx, version.ticker, *_training_source(version, source, csv_path), None, None
        )
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
            )
        else:
            run = backtests.held_out(version, data, names, regime_quantile)
        runs.append(run)
        results.append(backtests.summarize(run))
    files = []
    if predictions_path:
        files.append((predictions_path, backtests.predictions_csv(runs[0]).encode()))
    if plot_path:
        files.append((plot_path, report.plot_png(runs[0].predictions, results[0])))
    write_files(files)
    if fmt == "json":
        text = report.render_json(results)
    elif fmt == "markdown":
        text = "\n".join(report.render_markdown(r) for r in results)
    else:
        color = output is None and sys.stdout.isatty()
        text = "\n\n".join(report.render_table(r, color=color) for r in results) + "\n"
    write_output(text, output)


@cli.command()
@price_options
@click.option(
    "--inits",
    default=",".join(_init_choices()),
    show_default=True,
    help="Comma-separated strategies to compare.",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Seeds per strategy (0..N-1).",
)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Forecast horizon in days.",
)
@click.option("--estimator", type=ESTIMATOR_CHOICE, default="garman-klass", show_default=True)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Most epochs per fit.",
)
@click.option(
    "--units", type=click.IntRange(min=1), default=32, show_default=True, help="LSTM units."
)
@split_options
@regime_quantile_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write the report to this file."
)
@click.pass_context
def compare(
    ctx,
    ticker,
    source,
    csv_path,
    start,
    end,
    inits,
    seeds,
    horizon,
    estimator,
    epochs,
    units,
    test_start,
    test_fraction,
    regime_quantile,
    fmt,
    output,
) -> None:
    """Which initial state should I use? Each strategy x N seeds on one split, vs HAR.

    Trains every strategy with seeds 0..N-1 on the same train/validation rows
    and reports mean ± std of QLIKE, MSE and the three biases on the test
    period. Nothing is saved to the registry.

    \b
    Example:
      forecast compare --ticker SPY --seeds 2
      forecast compare --ticker SPY --inits zeros,encoder --horizon 5 --format markdown
    """
    from forecaster.data.loader import parse_date
    from forecaster.errors import ConfigError
    from forecaster.evaluation.compare import compare as run_compare
    from forecaster.evaluation.compare import render_compare_markdown, render_compare_table
    from forecaster.evaluation.report import render_json
    from forecaster.models.pipeline import TrainOptions

    valid = _init_choices()
    chosen = [name.strip() for name in inits.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in valid]
    if unknown or not chosen:
        raise ConfigError(
            f"--inits {inits!r} has unknown strategies {', '.join(unknown) or '(none given)'}; "
            f"expected a comma-separated subset of {', '.join(valid)}"
        )
    parsed = parse_date(test_start, "--test-start")
    options = TrainOptions(
        horizon=horizon,
        estimator=estimator,
        epochs=epochs,
        units=units,
        test_start=None if parsed is None else f"{parsed:%Y-%m-%d}",
        test_fraction=test_fraction,
    )
    data = load_from_options(ctx, ticker, source, csv_path, start, end)

    def progress(init, seed):
        click.echo(f"  training {init} seed {seed}", err=True)

    result = run_compare(
        data,
        chosen,
        seeds,
        options,
        regime_quantile,
        on_progress=progress if sys.stderr.isatty() else None,
    )
    if fmt == "json":
        text = render_json([result])
    elif fmt == "markdown":
        text = render_compare_markdown(result)
    else:
        text = render_compare_table(result)
    write_output(text, output)


from forecaster.cli_jobs import register_job_commands  # noqa: E402

register_job_commands(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="forecast")


if __name__ == "__main__":
    main()
