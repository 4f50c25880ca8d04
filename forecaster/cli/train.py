"""``forecast train`` and ``forecast compare``: fit LSTM forecasters.

``train`` saves one model version; ``compare`` fits every strategy over several
seeds and saves nothing. Both take the same model options and import
TensorFlow only when they run.
"""

from __future__ import annotations

import sys
import time

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.options import (
    BASELINES,
    FINE_TUNE_OPTIONS,
    INIT_CHOICE,
    MAX_SEED,
    MAX_SEEDS,
    MAX_STATE_STDDEV,
    STRATEGIES,
    HintedCommand,
    NamesOption,
    baseline_names,
    exog_inputs,
    exog_options,
    format_option,
    given,
    init_option,
    init_options,
    int_option,
    load_from_settings,
    load_many,
    lstm_config,
    model_options,
    output_option,
    pooled_options,
    pooled_tickers,
    price_options,
    reference_option,
    regime_quantile_option,
    split_options,
    strategy_names,
)
from forecaster.cli.output import check_destinations, echo_json, write_output
from forecaster.cli.schemas import schema_id


def _test_start(test_start: str | None, test_fraction: float):
    """The parsed --test-start; giving it with --test-fraction is an error."""
    from forecaster.data.loader import parse_date
    from forecaster.errors import ConfigError

    if test_start and given("test_fraction"):
        raise ConfigError(
            f"--test-start {test_start} and --test-fraction {test_fraction} both choose the test "
            "period; pass only one of them"
        )
    return parse_date(test_start, "--test-start")


@click.command(
    cls=HintedCommand,
    hints={
        "--seeds": "train fits one model: pass --seed VALUE, its random seed; --seeds N (how "
        "many seeds per strategy) is `forecast compare`'s.",
        "--inits": "train fits one strategy: pass --init NAME; --inits NAMES (several, "
        "compared) is `forecast compare`'s.",
    },
)
@price_options
@click.option(
    "--init",
    type=INIT_CHOICE,
    default="encoder",
    show_default=True,
    help="Initial-state strategy of the LSTM.",
)
@init_option
@click.option(
    "--state-stddev",
    type=click.FloatRange(0, MAX_STATE_STDDEV, min_open=True),
    help="With --init random only: stddev of its random initial state, the same as "
    "--init-option state_stddev=X (give one of the two; with another --init it is an error).",
)
@int_option(
    "--seed",
    0,
    0,
    "Random seed, one value: same seed, same forecasts (not a count: `forecast compare "
    "--seeds N` trains seeds 0..N-1).",
    maximum=MAX_SEED,
)
@model_options
@split_options
@click.option("--no-promote", is_flag=True, help="Save the model without making it the champion.")
@pooled_options
@exog_options
@format_option("table", "json")
@pass_app
def train(
    app: AppContext,
    init,
    init_option,
    state_stddev,
    threads,
    test_start,
    test_fraction,
    no_promote,
    tickers,
    universe,
    csv_dir,
    parent_version,
    market,
    exog_pairs,
    fmt,
    **settings,
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
      forecast train --ticker SPY --init encoder --init-option encoder_units=8
      forecast train --ticker SPY --format json      # version, split, metrics, timings
      forecast train --bars spy_5min.parquet --estimator rv5   # intraday bars, target rv5

    A pooled model: one network on several tickers (each scaled by its own
    training rows, one test start for all), saved under every ticker; then
    fine-tuned on another ticker from the pooled version's weights:

    \b
      forecast train --tickers SPY,QQQ --test-start 2016-01-04
      forecast train --universe tickers.txt --source csv --csv-dir prices/
      forecast train --ticker IWM --from VERSION --epochs 10

    A universal model: one network on every ticker of a long-format panel file,
    with the S&P 500's daily variance and VIX as extra inputs of each series:

    \b
      forecast train --panel stocks.parquet --market SPY --exog VIX=VIX_History.csv \\
          --test-start 2014-01-02
    """
    from forecaster.models.lstm_forecaster import train as train_model

    started = time.monotonic()
    parsed_test_start = _test_start(test_start, test_fraction)
    if parent_version is None:
        chosen_options = _strategy_options(init, init_option, state_stddev)
    else:  # a fine-tune keeps its parent's strategy: _fine_tune_config refuses a change
        chosen_options = init_options(init, init_option)
    pooled = pooled_tickers(tickers, universe, csv_dir, parent_version, settings)
    if parent_version is not None:
        if market is not None or exog_pairs:
            from forecaster.errors import ConfigError

            raise ConfigError(
                "--market/--exog choose a model's inputs, which a fine-tuned model keeps from "
                f"its parent {parent_version}; drop them (the parent's are used)"
            )
        config, parent = _fine_tune_config(app, parent_version, init_options=chosen_options, **settings)
        if parsed_test_start is None and not given("test_fraction"):
            parsed_test_start = _inherited_test_start(parent)
    else:
        config = _with_exog(
            lstm_config(init=init, init_options=chosen_options, **settings), market, exog_pairs
        )
        parent = None
    exog = exog_inputs(
        app, config, settings.get("panel_path"), settings["source"], settings["end"]
    )
    if pooled:
        _train_pooled(app, pooled, config, csv_dir, parsed_test_start, test_fraction, threads,
                      not no_promote, settings, exog, fmt, started)
        return
    data = load_from_settings(app, settings)
    if exog is not None:
        import dataclasses

        data = dataclasses.replace(data, exog=exog)
    show_progress = sys.stderr.isatty()
    if show_progress:
        click.echo(
            f"training {init} LSTM for {data.ticker}: {len(data.prices)} days "
            f"{data.start:%Y-%m-%d}..{data.end:%Y-%m-%d} ({data.source}), "
            f"horizon {config.horizon}, {config.estimator}",
            err=True,
        )

    def progress(epoch: int, train_loss: float, val_loss: float) -> None:
        click.echo(
            f"  epoch {epoch:>3}/{config.epochs}  loss {train_loss:.4f}  val_loss {val_loss:.4f}",
            err=True,
        )

    loaded = time.monotonic()
    outcome = train_model(
        data,
        config,
        app.registry,
        test_start=parsed_test_start,
        test_fraction=test_fraction,
        threads=threads,
        promote=not no_promote,
        on_epoch=progress if show_progress else None,
        parent=parent,
    )
    record = outcome.record
    split = record.split
    if parent is not None:
        _warn_if_not_out_of_sample(record)
    if fmt == "json":
        timings = _timings(started, loaded)
        echo_json(
            _train_payload(outcome.version.version, outcome.promoted, record, [data.ticker],
                           parent, timings)
        )
        return
    validation = record.metrics["validation"]
    training = record.training
    click.echo(f"version: {outcome.version.version}{' (champion)' if outcome.promoted else ''}")
    if parent is not None:
        click.echo(f"fine-tuned from: {parent.version} ({', '.join(parent.record.tickers)})")
    click.echo(
        f"split: train {split['train_start']}..{split['train_end']} ({split['n_train']}), "
        f"validation {split['validation_start']}..{split['validation_end']} ({split['n_validation']}), "
        f"test {split['test_start']}..{split['test_end']} ({split['n_test']}, held out)"
    )
    click.echo(
        f"epochs: {training['epochs_run']} (best {training['best_epoch']}) in "
        f"{training['seconds']:.1f}s; bias correction x{record.scale:.3f}"
    )
    click.echo(
        f"validation: QLIKE {validation['qlike']:.4f}  MSE {validation['mse']:.3e}  "
        f"bias {validation['bias']:+.2%} (annualized vol)"
    )


def _strategy_options(init: str, pairs: tuple[str, ...], state_stddev: float | None) -> dict:
    """The --init strategy's options: the --init-option pairs, plus --state-stddev.

    --state-stddev is a shorthand for ``--init-option state_stddev=X``: with an
    --init that has no such option, or next to ``--init-option state_stddev=``
    (two values for one setting), it is one error line (it used to be ignored,
    or silently overridden).
    """
    from forecaster.errors import ConfigError
    from forecaster.models.initial_state import STRATEGIES

    chosen = init_options(init, pairs)
    if state_stddev is None:
        return chosen
    if "state_stddev" not in STRATEGIES[init].defaults:
        users = [name for name, cls in STRATEGIES.items() if "state_stddev" in cls.defaults]
        which = f"--init {init}" + ("" if given("init") else " (the default)")
        raise ConfigError(
            f"--state-stddev {state_stddev:g} sets the stddev of a random initial state, but "
            f"{which} draws none; pass --init {' or '.join(users)} with it, or drop "
            "--state-stddev"
        )
    if "state_stddev" in chosen:
        raise ConfigError(
            f"--state-stddev {state_stddev:g} and --init-option "
            f"state_stddev={chosen['state_stddev']:g} both set the random initial state's "
            "stddev; pass only one of them"
        )
    return {**chosen, "state_stddev": state_stddev}


def _with_exog(config, market: str | None, exog_pairs: tuple[str, ...]):
    """``config`` with the --market ticker and the --exog files (absolute paths) as inputs."""
    from pathlib import Path

    from forecaster.data.exog import parse_exog_option
    from forecaster.data.sources import normalize_ticker

    files = {
        name: str(Path(path).expanduser().resolve())
        for name, path in parse_exog_option(exog_pairs).items()
    }
    if market is None and not files:
        return config
    return config.replace(market=normalize_ticker(market) if market else None, exog=files)


def _inherited_test_start(parent):
    """The first test start out of sample for a model fine-tuned from ``parent`` (a note says so)."""
    import pandas as pd

    start = parent.record.first_clean_start()
    click.echo(
        f"note: --test-start {start} inherited from {parent.version}: the last day it (or its "
        "ancestors) saw in training or validation, so `forecast evaluate` accepts the model; "
        "pass --test-start or --test-fraction to choose another",
        err=True,
    )
    return pd.Timestamp(start)


def _warn_if_not_out_of_sample(record) -> None:
    """A warning when evaluate will refuse this fine-tuned model's test period."""
    if record.overlaps(record.split["test_start"], record.split["test_end"]):
        click.echo(
            f"warning: the test period from {record.split['test_start']} overlaps days the parent "
            f"model saw, so `forecast evaluate` will refuse it as a leak; retrain with "
            f"--test-start {record.first_clean_start()} or later",
            err=True,
        )


def _fine_tune_config(app: AppContext, parent_version: str, **settings):
    """The parent's config with the fine-tuning options the user gave; the parent version."""
    from forecaster.data.sources import normalize_ticker
    from forecaster.models.lstm_forecaster import fine_tune_config

    # a pooled parent is saved under every ticker: read this ticker's copy when it has one
    parent = app.registry.find(parent_version, prefer=normalize_ticker(settings["ticker"]))
    changes = {name: settings[name] for name in FINE_TUNE_OPTIONS if name in settings}
    changes = {name: value for name, value in changes.items() if given(name)}
    if given("init") or given("init_option") or given("state_stddev"):
        changes["init"] = "(--init / --init-option)"
    return fine_tune_config(parent.record, **changes), parent


def _timings(started: float, loaded: float) -> dict[str, float]:
    """Seconds spent loading the data, fitting (and saving), and in all."""
    now = time.monotonic()
    return {
        "load_seconds": round(loaded - started, 3),
        "fit_seconds": round(now - loaded, 3),
        "total_seconds": round(now - started, 3),
    }


def _train_payload(version, promoted, record, tickers, parent, timings) -> dict:
    """``forecast train --format json`` (schema ``forecaster.train/1``)."""
    series = record.series or {tickers[0]: {"split": record.split, "metrics": record.metrics}}
    training = record.training
    return {
        "schema": schema_id("train"),
        "version": version,
        "champion": bool(promoted),
        "tickers": list(tickers),
        "fine_tuned_from": parent.version if parent is not None else None,
        "init": record.init,
        "horizon": record.horizon,
        "estimator": record.estimator,
        "series": [
            {
                "ticker": ticker,
                "split": series[ticker]["split"],
                "validation": series[ticker]["metrics"]["validation"],
            }
            for ticker in tickers
        ],
        "training": {
            "epochs_run": training["epochs_run"],
            "best_epoch": training["best_epoch"],
            "seconds": training["seconds"],
        },
        "scale": record.scale,
        "timings": timings,
    }


def _train_pooled(
    app, tickers, config, csv_dir, test_start, test_fraction, threads, promote, settings, exog,
    fmt="table", started=None,
) -> None:
    """Load every ticker, fit one pooled model, save it under each and report."""
    import dataclasses
    from pathlib import Path

    from forecaster.cli.options import load_from_options
    from forecaster.models.lstm_forecaster import check_poolable, train_pooled

    check_poolable(config)  # before any data is loaded
    panel_path = settings.get("panel_path")

    def load(ticker: str):
        csv_path = str(Path(csv_dir) / f"{ticker}.csv") if csv_dir else None
        data = load_from_options(
            app, ticker, settings["source"], csv_path, settings["start"], settings["end"],
            panel_path=panel_path, estimator=settings.get("estimator"),
        )
        return data if exog is None else dataclasses.replace(data, exog=exog)

    if panel_path is not None:  # a ticker of the panel that fails is skipped, not fatal
        datas = load_many(app, tickers, load)
        tickers = [data.ticker for data in datas]
    else:
        datas = [load(ticker) for ticker in tickers]
    show_progress = sys.stderr.isatty()
    if show_progress:
        shown = ", ".join(tickers[:10]) + (f" and {len(tickers) - 10} more" if len(tickers) > 10 else "")
        click.echo(f"training one {config.init} LSTM on {len(tickers)} tickers: {shown}", err=True)
    loaded = time.monotonic()

    def progress(epoch: int, train_loss: float, val_loss: float) -> None:
        per_epoch = (time.monotonic() - loaded) / epoch
        left = per_epoch * (config.epochs - epoch)
        click.echo(
            f"  epoch {epoch:>3}/{config.epochs}  loss {train_loss:.4f}  val_loss {val_loss:.4f}"
            f"  {per_epoch:.1f} s/epoch, at most {_duration(left)} left (early stopping may end sooner)",
            err=True,
        )

    outcome = train_pooled(
        datas,
        config,
        app.registry,
        test_start=test_start,
        test_fraction=test_fraction,
        threads=threads,
        promote=promote,
        on_epoch=progress if show_progress else None,
    )
    record = outcome.record
    if fmt == "json":
        timings = _timings(loaded if started is None else started, loaded)
        echo_json(_train_payload(outcome.version, outcome.promoted, record, tickers, None, timings))
        return
    named = ", ".join(tickers) if len(tickers) <= 10 else f"{len(tickers)} tickers"
    champion = f" (champion of {named})" if outcome.promoted else ""
    click.echo(f"version: {outcome.version}{champion}")
    if config.market or config.exog:
        inputs = ([f"market {config.market}"] if config.market else []) + list(config.exog)
        click.echo(f"inputs: own series + {', '.join(inputs)}")
    for ticker in tickers:
        entry = record.series[ticker]
        split, validation = entry["split"], entry["metrics"]["validation"]
        click.echo(
            f"{ticker}: train {split['train_start']}..{split['train_end']} ({split['n_train']}), "
            f"validation {split['validation_start']}..{split['validation_end']} "
            f"({split['n_validation']}), test {split['test_start']}..{split['test_end']} "
            f"({split['n_test']}, held out); validation QLIKE {validation['qlike']:.4f}"
        )
    training = record.training
    click.echo(
        f"epochs: {training['epochs_run']} (best {training['best_epoch']}) in "
        f"{training['seconds']:.1f}s; bias correction x{record.scale:.3f} (pooled validation)"
    )


def _compare_init_options(chosen: list[str], pairs: tuple[str, ...]) -> dict[str, dict]:
    """``--init-option`` pairs given to each compared strategy that has the option."""
    from forecaster.errors import ConfigError
    from forecaster.models.initial_state import STRATEGIES, parse_option

    per_init: dict[str, dict] = {name: {} for name in chosen}
    for pair in pairs:
        name = pair.partition("=")[0].strip().replace("-", "_")
        owners = [init for init in chosen if name in STRATEGIES[init].defaults]
        if not owners:
            raise ConfigError(
                f"--init-option {pair!r} applies to none of the compared strategies "
                f"({', '.join(chosen)}); add its strategy to --inits, or drop it"
            )
        for init in owners:
            key, value = parse_option(init, pair)
            per_init[init][key] = value
    return per_init


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@click.command(
    cls=HintedCommand,
    hints={
        "--seed": "compare trains every strategy with seeds 0..N-1: pass --seeds N, how many "
        "seeds; --seed VALUE (one seed) is `forecast train`'s.",
        "--init": "compare trains several strategies: pass --inits NAMES (comma-separated, "
        "e.g. --inits zeros,encoder); --init NAME is `forecast train`'s.",
    },
)
@price_options
@click.option(
    "--inits",
    cls=NamesOption,
    names=strategy_names,
    type=STRATEGIES,
    show_default=True,
    help="Comma-separated strategies to compare.",
)
@init_option
@int_option(
    "--seeds",
    1,
    3,
    "How many seeds per strategy, a count N: each strategy is trained with seeds 0..N-1 "
    "(not a seed value, which is `forecast train --seed`).",
    maximum=MAX_SEEDS,
)
@model_options
@split_options
@regime_quantile_option
@reference_option("Baseline fit on the same pre-test data, shown for reference.")
@click.option(
    "--baselines",
    cls=NamesOption,
    names=baseline_names,
    type=BASELINES,
    show_default=True,
    help="Comma-separated baselines scored on the same rows ({names}; 'none').",
)
@format_option("table", "json", "markdown")
@output_option("Write the report to this file.")
@pass_app
def compare(
    app: AppContext,
    inits,
    init_option,
    seeds,
    threads,
    test_start,
    test_fraction,
    regime_quantile,
    reference,
    baselines,
    fmt,
    output,
    **settings,
) -> None:
    """Which initial state to use? Each strategy x N seeds on one split, vs the --reference model.

    Trains every strategy with seeds 0..N-1 on the same train/validation rows
    and reports mean ± std of QLIKE, MSE and the three biases on the test
    period. Nothing is saved to the registry.

    \b
    Example:
      forecast compare --ticker SPY --seeds 2
      forecast compare --ticker SPY --inits zeros,encoder --horizon 5 --format markdown
      forecast compare --ticker SPY --inits zeros,encoder --init-option encoder_units=8

    --init-option NAME=VALUE applies to each compared strategy that has option NAME.
    """
    from forecaster.evaluation.compare import compare as run_compare
    from forecaster.evaluation.compare import render_compare_markdown, render_compare_table
    from forecaster.evaluation.report import render_object
    from forecaster.models.baselines import parse_baselines

    chosen = [name.strip() for name in inits.split(",") if name.strip()]  # checked: STRATEGIES
    per_init = _compare_init_options(chosen, init_option)
    check_destinations(output)
    parsed = _test_start(test_start, test_fraction)
    config = lstm_config(**settings)
    data = load_from_settings(app, settings)

    def progress(init, seed):
        click.echo(f"  training {init} seed {seed}", err=True)

    result = run_compare(
        data,
        chosen,
        seeds,
        config,
        test_start=parsed,
        test_fraction=test_fraction,
        quantile=regime_quantile,
        reference=reference,
        baselines=parse_baselines(baselines),
        threads=threads,
        on_progress=progress if sys.stderr.isatty() else None,
        init_options=per_init,
    )
    if fmt == "json":
        text = render_object(result)
    elif fmt == "markdown":
        text = render_compare_markdown(result)
    else:
        text = render_compare_table(result)
    write_output(text, output)
