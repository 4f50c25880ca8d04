"""``forecast train`` and ``forecast compare``: fit LSTM forecasters.

``train`` saves one model version; ``compare`` fits every strategy over several
seeds and saves nothing. Both import TensorFlow only when they run.
"""

from __future__ import annotations

import sys

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.options import (
    INIT_CHOICE,
    NamesOption,
    epochs_option,
    estimator_option,
    format_option,
    given,
    horizon_option,
    init_option,
    init_options,
    load_from_options,
    output_option,
    price_options,
    reference_option,
    regime_quantile_option,
    split_options,
    strategy_names,
    units_option,
)
from forecaster.cli.output import write_output


@click.command()
@price_options
@click.option(
    "--init",
    type=INIT_CHOICE,
    default="encoder",
    show_default=True,
    help="Initial-state strategy of the LSTM.",
)
@init_option
@horizon_option("Forecast the mean daily variance of the next N days (1, 5, 22).")
@estimator_option("Daily realized-variance estimator (inputs and target).")
@click.option(
    "--window",
    type=click.IntRange(min=2),
    default=22,
    show_default=True,
    help="Window of the yang-zhang estimator.",
)
@units_option
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
@epochs_option("Most epochs (early stopping usually ends sooner).")
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
    help="Stddev of the random initial state (same as --init-option state_stddev=X).",
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
@pass_app
def train(
    app: AppContext,
    ticker,
    source,
    csv_path,
    start,
    end,
    init,
    init_option,
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
      forecast train --ticker SPY --init encoder --init-option encoder_units=8
    """
    from forecaster.data.loader import parse_date
    from forecaster.errors import ConfigError
    from forecaster.models.config import LSTMConfig
    from forecaster.models.lstm_forecaster import train as train_model

    if test_start and given("test_fraction"):
        raise ConfigError(
            f"--test-start {test_start} and --test-fraction {test_fraction} both choose the test "
            "period; pass only one of them"
        )
    parsed_test_start = parse_date(test_start, "--test-start")
    chosen_options = init_options(init, init_option)
    if state_stddev is not None and init == "random":
        chosen_options.setdefault("state_stddev", state_stddev)
    config = LSTMConfig(
        init=init,
        init_options=chosen_options,
        horizon=horizon,
        estimator=estimator,
        window=window,
        lookback=lookback,
        context=context,
        units=units,
        epochs=epochs,
        patience=patience,
        loss=loss,
        seed=seed,
    )
    data = load_from_options(app, ticker, source, csv_path, start, end)
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
        config,
        app.registry,
        test_start=parsed_test_start,
        test_fraction=test_fraction,
        threads=threads,
        promote=not no_promote,
        on_epoch=progress if show_progress else None,
    )
    record = outcome.record
    split = record.split
    validation = record.metrics["validation"]
    training = record.training
    click.echo(f"version: {outcome.version.version}{' (champion)' if outcome.promoted else ''}")
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


@click.command()
@price_options
@click.option(
    "--inits",
    cls=NamesOption,
    names=strategy_names,
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
@horizon_option("Forecast horizon in days.")
@estimator_option()
@epochs_option("Most epochs per fit.")
@units_option
@split_options
@regime_quantile_option
@reference_option("Baseline fit on the same pre-test data, shown for reference.")
@format_option("table", "json", "markdown")
@output_option("Write the report to this file.")
@pass_app
def compare(
    app: AppContext,
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
    reference,
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
    from forecaster.models.config import LSTMConfig

    valid = strategy_names()
    chosen = [name.strip() for name in inits.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in valid]
    if unknown or not chosen:
        raise ConfigError(
            f"--inits {inits!r} has unknown strategies {', '.join(unknown) or '(none given)'}; "
            f"expected a comma-separated subset of {', '.join(valid)}"
        )
    parsed = parse_date(test_start, "--test-start")
    config = LSTMConfig(horizon=horizon, estimator=estimator, epochs=epochs, units=units)
    data = load_from_options(app, ticker, source, csv_path, start, end)

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
        on_progress=progress if sys.stderr.isatty() else None,
    )
    if fmt == "json":
        text = render_json([result])
    elif fmt == "markdown":
        text = render_compare_markdown(result)
    else:
        text = render_compare_table(result)
    write_output(text, output)
