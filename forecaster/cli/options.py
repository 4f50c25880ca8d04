"""Options shared by several commands, as decorators, and the choices they offer.

The names of price sources, estimators, initial-state strategies and baselines
come from the library's registries, loaded on first use (:class:`LazyChoice`,
:class:`NamesOption`): the registries are the single source of names, and
building the command tree (``forecast --help``) imports neither pandas nor
TensorFlow.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from forecaster.evaluation.defaults import DISTRIBUTIONS, REGIME_QUANTILE

if TYPE_CHECKING:
    from forecaster.cli.app import AppContext
    from forecaster.data.loader import PriceData
    from forecaster.models.config import LSTMConfig

Command = TypeVar("Command", bound=Callable[..., Any])
Decorator = Callable[[Command], Command]


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose choices ``load()`` returns, called on first use.

    Parameters
    ----------
    load
        Returns the valid names, e.g. the keys of a registry. It may import
        heavy modules: it runs only when a value is checked or help is shown.
    case_sensitive
        As for :class:`click.Choice`.
    """

    def __init__(self, load: Callable[[], Iterable[str]], case_sensitive: bool = True) -> None:
        self._load = load
        self.case_sensitive = case_sensitive

    @functools.cached_property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._load())


class NamesOption(click.Option):
    """A comma-separated list of names whose default is all of them, named on first use.

    Pass ``cls=NamesOption, names=loader`` to :func:`click.option`. The default
    joins ``loader()`` with commas (shown as such by ``show_default``), and
    ``{names}`` in the help text becomes the names joined with ", ".
    """

    def __init__(self, *args: Any, names: Callable[[], Iterable[str]], **kwargs: Any) -> None:
        self._names = names
        super().__init__(*args, default=self.joined, **kwargs)

    def joined(self, separator: str = ",") -> str:
        """The names, joined by ``separator``."""
        return separator.join(self._names())

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        if "default" in extra:
            extra["default"] = self.joined()
        return extra

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        spec, text = record
        return spec, text.replace("{names}", self.joined(", "))


class ChoiceNamesOption(click.Option):
    """An option whose help may say ``{names}``: its (lazy) choices joined by ", ".

    The names are read from the option's :class:`LazyChoice` when help is shown,
    so the help lists what the registry holds, with no copy to keep in step.
    """

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or not isinstance(self.type, click.Choice):
            return record
        spec, text = record
        return spec, text.replace("{names}", ", ".join(self.type.choices))


class BaselinesCommand(click.Command):
    """A command whose help text may say ``{baselines}``: the registered baselines.

    Filled in when the command's own help is shown (``forecast CMD -h``); the
    one-line summary in ``forecast --help`` should not use it (that would load
    the baseline registry to list the commands).
    """

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        original = self.help
        if original and "{baselines}" in original:
            self.help = original.replace("{baselines}", ", ".join(baseline_names()))
        try:
            super().format_help_text(ctx, formatter)
        finally:
            self.help = original


class HintedCommand(click.Command):
    """A command that answers an option it lacks but a sibling has with a pointed usage error.

    Pass ``cls=HintedCommand, hints={"--seed": "..."}`` to :func:`click.command`.
    Click's own guess (``Did you mean one of: '--end', '--ensemble', '--seeds'?``)
    does not say that ``compare --seeds`` is a count where ``train --seed`` is a
    value; the hint does. Still click's usage error (exit 2).
    """

    def __init__(self, *args: Any, hints: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hints = hints or {}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            hint = self.hints.get(error.option_name)
            if hint is None:
                raise
            raise click.NoSuchOption(
                error.option_name, f"No such option {error.option_name!r}. {hint}", ctx=ctx
            ) from None


class StrategyOptionsOption(click.Option):
    """``--init-option NAME=VALUE`` (repeatable); its help lists every strategy's options.

    The list is read from the strategy registry when help is shown, so a newly
    registered strategy's options appear with no edit here.
    """

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        from forecaster.models.initial_state import STRATEGIES

        listed = "; ".join(
            f"{name}: " + ", ".join(f"{key}={value!r}" for key, value in cls.defaults.items())
            for name, cls in STRATEGIES.items()
            if cls.defaults
        )
        spec, text = record
        return spec, text.replace("{options}", listed or "none")


class CheckedText(click.ParamType):
    """Text checked by a library function when the command line is parsed.

    ``check(value, option)`` raises :class:`forecaster.errors.ConfigError` for a
    malformed value; that becomes click's usage error (exit 2) quoting the
    library's message, before any work starts. The value itself is passed on
    unchanged (the library checks it again, for its own callers).

    Parameters
    ----------
    name
        The metavar shown in ``-h`` (TICKER, DATE, ...).
    check
        Called with the value and the option's name (``--start``); imports what
        it needs, so building the command tree stays light.
    bad_example
        A malformed value (tests feed it to every option of this type).
    """

    def __init__(
        self, name: str, check: Callable[[str, str], object], bad_example: str
    ) -> None:
        self.name = name
        self._check = check
        self.bad_example = bad_example

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.name.upper()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return None
        from forecaster.errors import ConfigError

        option = param.opts[0] if param is not None and param.opts else self.name
        try:
            self._check(value, option)
        except ConfigError as error:
            self.fail(str(error), param, ctx)
        return value


def _check_ticker(value: str, option: str) -> None:
    from forecaster.data.sources import normalize_ticker

    normalize_ticker(value)


def _check_tickers(value: str, option: str) -> None:
    """A comma-separated list of tickers, or ``all`` (every ticker of a --panel file)."""
    from forecaster.data.sources import ticker_list

    if value.strip().lower() != "all":
        ticker_list(value, option)


def _check_date(value: str, option: str) -> None:
    from forecaster.data.loader import parse_date

    parse_date(value, option)


def _check_baselines(value: str, option: str) -> None:
    from forecaster.models.baselines import parse_baselines

    parse_baselines(value)


def _check_strategies(value: str, option: str) -> None:
    from forecaster.errors import ConfigError

    valid = strategy_names()
    chosen = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in valid]
    if unknown or not chosen:
        raise ConfigError(
            f"{option} {value!r} has unknown strategies {', '.join(unknown) or '(none given)'}; "
            f"expected a comma-separated subset of {', '.join(valid)}"
        )


def _check_init_option(value: str, option: str) -> None:
    """NAME=VALUE naming an option of some registered strategy, with a value of its type.

    Whether the option belongs to the chosen --init is checked when the command
    runs (it depends on another option).
    """
    from forecaster.errors import ConfigError
    from forecaster.models.initial_state import STRATEGIES, parse_option

    name, sep, _ = value.partition("=")
    name = name.strip().replace("-", "_")
    accepted = {
        key: strategy for strategy, cls in STRATEGIES.items() for key in cls.defaults
    }
    if not sep or not name:
        raise ConfigError(
            f"{option} expects NAME=VALUE; received {value!r} (options: "
            f"{', '.join(sorted(accepted)) or 'none'})"
        )
    if name not in accepted:
        raise ConfigError(
            f"{option} {value!r}: no strategy has an option {name!r}; the options are "
            f"{', '.join(sorted(accepted)) or 'none'} (see -h)"
        )
    strategy = accepted[name]
    key, typed = parse_option(strategy, value)
    STRATEGIES[strategy](units=1, seed=0, **{key: typed})  # its range check (e.g. 1..1024)


def _check_exog(value: str, option: str) -> None:
    from forecaster.data.exog import parse_exog_option

    parse_exog_option((value,))


def _check_zone(value: str, option: str) -> None:
    from forecaster.data.intraday import _zone

    _zone(value)


TICKER = CheckedText("ticker", _check_ticker, "B/B")
TICKERS = CheckedText("tickers", _check_tickers, "SPY,B/B")
DATE = CheckedText("date", _check_date, "06/01/2018")
BASELINES = CheckedText("names", _check_baselines, "bogus")
STRATEGIES = CheckedText("names", _check_strategies, "bogus")
INIT_OPTION = CheckedText("name=value", _check_init_option, "bogus")
EXOG = CheckedText("name=path", _check_exog, "bogus")
TIME_ZONE = CheckedText("zone", _check_zone, "Mars/Olympus")


def init_options(init: str, pairs: Iterable[str]) -> dict[str, Any]:
    """``--init-option`` values parsed and typed by the strategy named ``init``."""
    from forecaster.models.initial_state import parse_option

    return dict(parse_option(init, pair) for pair in pairs)


def source_names() -> tuple[str, ...]:
    """Price sources: :data:`forecaster.data.sources.SOURCES`."""
    from forecaster.data.sources import SOURCES

    return SOURCES


def estimator_names() -> list[str]:
    """Realized-variance estimators: :data:`forecaster.data.volatility.ESTIMATORS`."""
    from forecaster.data.volatility import ESTIMATORS

    return list(ESTIMATORS)


def strategy_names() -> list[str]:
    """Registered initial-state strategies, in registration order."""
    from forecaster.models.initial_state import available_strategies

    return available_strategies()


def baseline_names() -> list[str]:
    """Baselines: the keys of :data:`forecaster.models.baselines.BASELINES`."""
    from forecaster.models.baselines import BASELINES

    return list(BASELINES)


SOURCE_CHOICE = LazyChoice(source_names)
ESTIMATOR_CHOICE = LazyChoice(estimator_names, case_sensitive=False)
INIT_CHOICE = LazyChoice(strategy_names)
FRACTION = click.FloatRange(0, 1, min_open=True, max_open=True)

# Upper bounds of the numeric options, shown in `-h`: far above any sensible value, low enough
# that a typo cannot exhaust memory or run for days.
MAX_HORIZON = 252  # a year of trading days
MAX_WINDOW = 1260  # five years
MAX_LOOKBACK = 252
MAX_CONTEXT = 5040  # twenty years
MAX_UNITS = 1024
MAX_EPOCHS = 10_000
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit
MAX_SEEDS = 100
MAX_ROWS = 100_000  # --last: ~400 years of trading days
MAX_REFIT_DAYS = 2520  # ten years
MAX_WORKERS = 256
MAX_STATE_STDDEV = 10.0
#: Every --keep: far above any registry or reports/ folder a person would page through.
MAX_KEEP = 100_000
#: TensorFlow threads: four per core (64 when the core count is unknown).
MAX_THREADS = 4 * os.cpu_count() if os.cpu_count() else 64


def bundle(*options: Decorator) -> Decorator:
    """One decorator applying ``options`` in the order listed (as if stacked in that order)."""

    def apply(command: Command) -> Command:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


#: --tz: the zone of a --bars file's timestamps.
tz_option = click.option(
    "--tz",
    type=TIME_ZONE,
    help="With --bars: the exchange's time zone, e.g. America/New_York; naive timestamps "
    "are read in it, zone-aware ones converted to it.",
)

#: --ticker, --source, --csv, --start, --end: where the prices come from.
price_options = bundle(
    click.option(
        "--ticker",
        "-t",
        type=TICKER,
        default="SPY",
        show_default=True,
        help="Symbol, e.g. SPY, QQQ, ^GSPC.",
    ),
    click.option(
        "--source",
        type=SOURCE_CHOICE,
        default="auto",
        show_default=True,
        help="auto: fresh cache, else Yahoo, else (SPY/QQQ) the bundled sample.",
    ),
    click.option(
        "--csv", "csv_path", type=click.Path(dir_okay=False), help="CSV file for --source csv."
    ),
    click.option("--start", type=DATE, help="First date (YYYY-MM-DD)."),
    click.option("--end", type=DATE, help="Last date (YYYY-MM-DD), inclusive."),
    click.option(
        "--panel",
        "panel_path",
        type=click.Path(dir_okay=False),
        help="Long-format CSV/Parquet file of many tickers (ticker, date, open, high, low, "
        "close[, volume]); the price source of every ticker it holds.",
    ),
    click.option(
        "--bars",
        "bars_path",
        type=click.Path(dir_okay=False),
        help="Intraday bars of one ticker (CSV or Parquet, 1- or 5-minute bars, timestamp = "
        "bar start): each session day's OHLC and measures rv5, rv5-ss, bv, rsv-pos, rsv-neg, "
        "rq (--estimator rv5 ...); partial days dropped. Ticker: --ticker or the file name.",
    ),
    tz_option,
)

#: --test-start | --test-fraction: where the held-out test period begins.
split_options = bundle(
    click.option(
        "--test-start", type=DATE, help="First date of the held-out test period (YYYY-MM-DD)."
    ),
    click.option(
        "--test-fraction",
        type=FRACTION,
        default=0.2,
        show_default=True,
        help="Held-out share of the history when --test-start is not given.",
    ),
)

regime_quantile_option = click.option(
    "--regime-quantile",
    type=FRACTION,
    default=REGIME_QUANTILE,
    show_default=True,
    help="Training quantile above which volatility is 'high'.",
)


def estimator_option(help: str | None = None) -> Decorator:
    """--estimator: the daily realized-variance estimator (default garman-klass)."""
    return click.option(
        "--estimator",
        cls=ChoiceNamesOption,
        type=ESTIMATOR_CHOICE,
        default="garman-klass",
        show_default=True,
        help=help,
    )


def int_option(name: str, minimum: int, default: int, help: str, *, maximum: int) -> Decorator:
    """An integer option with both bounds (shown in ``-h``) and a shown default.

    Every numeric option has an upper bound: far above any sensible value, low
    enough that a typo cannot exhaust memory or run for days.
    """
    return click.option(
        name,
        type=click.IntRange(minimum, maximum),
        default=default,
        show_default=True,
        help=help,
    )


#: The LSTM's settings (one type and default each), shared by `train` and `compare`.
model_options = bundle(
    int_option(
        "--horizon",
        1,
        1,
        "Forecast the mean daily variance of the next N days (1, 5, 22).",
        maximum=MAX_HORIZON,
    ),
    estimator_option("Daily realized-variance estimator (inputs and target)."),
    int_option("--window", 2, 22, "Window of the yang-zhang estimator.", maximum=MAX_WINDOW),
    int_option("--units", 1, 32, "LSTM units.", maximum=MAX_UNITS),
    int_option("--lookback", 2, 22, "Days in the input sequence.", maximum=MAX_LOOKBACK),
    int_option(
        "--context",
        21,
        252,
        "Days of long history for the encoder (multiple of 21).",
        maximum=MAX_CONTEXT,
    ),
    int_option(
        "--epochs",
        1,
        60,
        "Most epochs (early stopping usually ends sooner).",
        maximum=MAX_EPOCHS,
    ),
    int_option(
        "--patience",
        0,
        6,
        "Epochs without validation improvement before stopping.",
        maximum=MAX_EPOCHS,
    ),
    click.option(
        "--loss",
        type=click.Choice(["mse", "qlike"]),
        default="mse",
        show_default=True,
        help="Training loss (both on log variance, see README).",
    ),
    click.option(
        "--threads",
        type=click.IntRange(1, MAX_THREADS),
        help="TensorFlow threads (default: all cores).",
    ),
    click.option(
        "--ensemble",
        type=click.IntRange(1, 16),
        default=3,
        show_default=True,
        help="Seed-ensemble members trained together; forecasts averaged in log variance.",
    ),
    int_option(
        "--batch-size",
        1,
        64,
        "Rows per training step (a panel of many tickers trains faster with 256).",
        maximum=65536,
    ),
    click.option(
        "--epoch-fraction",
        type=click.FloatRange(0, 1, min_open=True),
        default=1.0,
        show_default=True,
        help="Share of the training rows each epoch draws (fresh each epoch); below 1 early "
        "stopping looks more often (long horizons on big panels).",
    ),
    click.option(
        "--anchor",
        type=click.Choice(["none", "har"]),
        default="none",
        show_default=True,
        help="har: learn a correction to the log-HAR forecast (HAR fit on training rows).",
    ),
)
_SETTINGS = ("horizon", "estimator", "window", "units", "lookback", "context", "epochs")
_SETTINGS += ("patience", "loss", "init", "init_options", "seed", "ensemble", "anchor")
_SETTINGS += ("batch_size", "epoch_fraction")


def lstm_config(**values: Any) -> LSTMConfig:
    """The LSTM settings among command ``values`` (``threads`` is a run setting, not kept)."""
    from forecaster.models.config import LSTMConfig

    return LSTMConfig(**{name: value for name, value in values.items() if name in _SETTINGS})


# Output options.


#: VERSION [--ticker T]: the model version a `models` subcommand acts on.
version_argument = bundle(
    click.argument("version"),
    click.option("--ticker", "-t", type=TICKER, help="Ticker (if the version id is ambiguous)."),
)

#: --init-option NAME=VALUE, repeatable: the chosen strategy's own options.
init_option = click.option(
    "--init-option",
    "init_option",
    cls=StrategyOptionsOption,
    type=INIT_OPTION,
    multiple=True,
    metavar="NAME=VALUE",
    help="An option of the --init strategy (repeatable). Options and defaults: {options}.",
)


def reference_option(help: str) -> Decorator:
    """--reference NAME: the baseline other models are tested against."""
    return click.option(
        "--reference",
        type=LazyChoice(baseline_names),
        default="har",
        show_default=True,
        help=help,
    )


#: What each ``--format`` value prints (the help of :func:`format_option`).
FORMATS = {
    "table": "aligned text for the terminal",
    "json": "one JSON document",
    "jsonl": "one JSON object per line",
    "csv": "comma-separated values with a header row",
    "markdown": "Markdown tables",
}


def format_option(*formats: str) -> Decorator:
    """--format FMT among ``formats`` (default table), passed as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(formats),
        default="table",
        show_default=True,
        help="Output format: " + "; ".join(f"{name} ({FORMATS[name]})" for name in formats) + ".",
    )


def output_option(help: str) -> Decorator:
    """-o/--output FILE: write there instead of stdout (``-`` is stdout)."""
    return click.option(
        "--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), help=help
    )


def given(name: str) -> bool:
    """True when the current command's parameter ``name`` did not come from its default."""
    source = click.get_current_context().get_parameter_source(name)
    return source is not ParameterSource.DEFAULT


PRICE_OPTIONS = ("ticker", "source", "csv_path", "start", "end")
#: Price options passed to :func:`load_from_options` by name.
PRICE_KEYWORDS = ("panel_path", "bars_path", "tz", "estimator")


def load_from_settings(app: AppContext, values: dict[str, Any]) -> PriceData:
    """:func:`load_from_options` on the price options among a command's ``values``."""
    positional = (values.get(name) for name in PRICE_OPTIONS)
    keywords = {name: values.get(name) for name in PRICE_KEYWORDS}
    return load_from_options(app, *positional, **keywords)


def bars_label(ticker: str, bars_path: str) -> str:
    """The ticker of a bars file: --ticker if given, else the file name's first word.

    ``spy_5min_2018.parquet`` is SPY; a file name that is no ticker gives the
    neutral label ``BARS``.
    """
    import re
    from pathlib import Path

    from forecaster.data.sources import normalize_ticker
    from forecaster.errors import ConfigError

    if given("ticker"):
        return normalize_ticker(ticker)
    word = re.split(r"[^A-Za-z0-9^=-]", Path(bars_path).name, maxsplit=1)[0]
    try:
        return normalize_ticker(word)
    except ConfigError:  # a file name that is no ticker: a neutral label
        return "BARS"


def load_from_options(
    app: AppContext,
    ticker: str,
    source: str,
    csv_path: str | None,
    start: str | None,
    end: str | None,
    **extra: Any,
) -> PriceData:
    """Prices for the shared price options; warnings and repairs go to stderr.

    With ``bars_path`` (``--bars``) the ticker is :func:`bars_label`'s.
    """
    from forecaster.data.loader import load_prices, parse_date

    if extra.get("bars_path") is not None:
        ticker = bars_label(ticker, extra["bars_path"])
    data = load_prices(
        ticker,
        source=source,
        csv_path=csv_path,
        start=parse_date(start, "--start"),
        end=parse_date(end, "--end"),
        settings=app.settings,
        **extra,
    )
    for warning in data.warnings:
        click.echo(warning, err=True)
    dropped = {what: count for what, count in data.repairs.items() if "dropped" in what}
    repairs = {what: count for what, count in data.repairs.items() if what not in dropped}
    for what, count in dropped.items():
        click.echo(f"note: {data.ticker}: {count} {what}", err=True)
    if repairs:
        fixed = ", ".join(f"{count} × {what}" for what, count in repairs.items())
        click.echo(f"note: {data.ticker}: repaired OHLC prices: {fixed}", err=True)
    return data


def load_many(
    app: AppContext,
    tickers: list[str],
    load: Callable[[str], PriceData],
    what: str = "loading",
) -> list[PriceData]:
    """Load ``tickers`` one by one with ``load``; a ticker that fails is skipped, not fatal.

    Each skipped ticker gets a ``warning: skipped T: reason`` line on stderr; a
    progress bar with an ETA shows on a terminal. No ticker loaded is an error.
    """
    import sys

    from forecaster.data.panel import load_panel
    from forecaster.errors import DataError

    bar = None
    if sys.stderr.isatty() and len(tickers) > 1:
        bar = click.progressbar(
            length=len(tickers), label=f"{what} {len(tickers)} tickers", file=sys.stderr,
            show_eta=True, show_pos=True,
        )
        bar.__enter__()

    def on_ticker(i: int, ticker: str, error: str | None) -> None:
        if bar is not None:
            bar.update(1)

    try:
        result = load_panel(tickers, load, on_ticker)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for ticker, reason in result.failed.items():
        click.echo(f"warning: skipped {ticker}: {reason}", err=True)
    if not result.loaded:
        raise DataError(
            f"none of the {len(tickers)} tickers could be loaded ({result.summary()}); fix the "
            "data or choose other tickers"
        )
    if result.failed:
        click.echo(
            f"warning: {len(result.failed)} of {len(tickers)} tickers skipped (reasons above); "
            f"going on with {len(result.loaded)}",
            err=True,
        )
    return result.loaded


def panel_tickers(panel_path: str, tickers: str | None) -> list[str]:
    """The tickers of ``--panel`` that ``--tickers`` chooses (``all``, the default: every one)."""
    from forecaster.data.panel import resolve_tickers

    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.params.get("bars_path") is not None:
        from forecaster.errors import ConfigError

        raise ConfigError("--bars and --panel both name the prices; pass one of them")

    return resolve_tickers(panel_path, tickers)


#: --market, --exog: extra inputs of a model (train); recorded, found again at predict time.
exog_options = bundle(
    click.option(
        "--market",
        type=TICKER,
        help="Add this market series' daily variance as an input of every series (from the "
        "--panel if it holds it, else the --source).",
    ),
    click.option(
        "--exog",
        "exog_pairs",
        type=EXOG,
        multiple=True,
        help="Add a daily series (date,value CSV or a CBOE history, e.g. VIX) as an input; "
        "repeatable.",
    ),
)


def exog_inputs(
    app: AppContext,
    config: LSTMConfig,
    panel_path: str | None,
    source: str,
    end: str | None,
    overrides: dict[str, str] | None = None,
) -> Any:
    """The exogenous inputs ``config`` needs (None if none): its market series and files.

    The market series comes from the panel when it holds it, else from
    ``source`` (``auto``: cache, Yahoo, the sample for SPY/QQQ). Files are read
    from the paths recorded in the config unless ``overrides`` (``--exog``)
    names them. A missing input is one error saying what to pass.
    """
    from pathlib import Path

    from forecaster.data.exog import build_exog
    from forecaster.data.loader import load_cached
    from forecaster.data.panel import read_panel
    from forecaster.errors import DataError

    if not config.market and not config.exog:
        return None
    files = {**config.exog, **(overrides or {})}
    key = (config.market, tuple(sorted(files.items())), panel_path, source, end, config.estimator,
           config.window, str(app.settings.home))
    if key in _EXOG:  # many tickers served by one model share its inputs: build them once
        return _EXOG[key]
    for name, path in files.items():
        if not Path(path).expanduser().is_file():
            raise DataError(
                f"the model reads the exogenous series {name} from {path!r}, which does not "
                f"exist; pass --exog {name}=PATH with that series"
            )
    market_prices = None
    if config.market:
        in_panel = panel_path is not None and config.market in read_panel(panel_path).frames
        market_source = "panel" if in_panel else ("auto" if source in ("panel", "csv") else source)
        cached = None if in_panel else load_cached(config.market, "panel", settings=app.settings)
        try:
            if cached is not None:  # a panel this home loaded before held the market series
                click.echo(
                    f"note: market series {config.market} from the prices cached from "
                    f"{cached.description}, up to {cached.end:%Y-%m-%d}",
                    err=True,
                )
                market = cached
            else:
                market = load_from_options(
                    app, config.market, market_source, None, None, end,
                    panel_path=panel_path if in_panel else None,
                )
        except DataError as exc:
            raise DataError(
                f"the model reads the market series {config.market}, which could not be "
                f"loaded ({exc}); add it to the --panel or make it available from --source"
            ) from None
        market_prices = market.prices
    _EXOG.clear()
    _EXOG[key] = build_exog(market_prices, config.estimator, config.window, files)
    return _EXOG[key]


_EXOG: dict[tuple, Any] = {}


class VarLevels(click.ParamType):
    """``--var-levels 0.01,0.05``: tail probabilities, checked when the command line is parsed.

    The value becomes a sorted tuple of unique levels; a level outside the one
    valid range (:data:`forecaster.evaluation.risk.LEVEL_RANGE`) or a word that is
    not a number is a click usage error (exit 2), before any work starts.
    """

    name = "levels"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        from forecaster.errors import ConfigError
        from forecaster.evaluation.risk import parse_levels

        try:
            return parse_levels(value)
        except ConfigError as error:
            self.fail(str(error), param, ctx)


#: --dist, --var-levels: how a variance forecast becomes VaR and ES (the risk view).
risk_options = bundle(
    click.option(
        "--dist",
        "distribution",
        type=click.Choice(DISTRIBUTIONS),
        default="t",
        show_default=True,
        help="Return distribution of VaR/ES: normal, t (fit on training returns) or fhs "
        "(filtered historical simulation).",
    ),
    click.option(
        "--var-levels",
        type=VarLevels(),
        default="0.01,0.05",
        show_default=True,
        help="Comma-separated VaR/ES tail probabilities, each in [0.0001, 0.5).",
    ),
)


class KeepType(click.ParamType):
    """--keep: the one rule of every ``--keep`` (nightly, models prune, report).

    A whole number from 0 to :data:`MAX_KEEP`, or ``all`` (keep everything:
    None) where keeping everything means something (``allow_all``). A number
    above :data:`MAX_KEEP`, which ``nightly --keep`` took until this rule, still
    works with a one-line deprecation warning on stderr.
    """

    def __init__(self, allow_all: bool = True) -> None:
        self.allow_all = allow_all
        self.name = "N|all" if allow_all else "N"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.name

    def expected(self) -> str:
        """What a --keep of this kind takes, for help texts and errors."""
        words = f"a whole number from 0 to {MAX_KEEP}"
        return words + (", or all (keep every one)" if self.allow_all else "")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        text = str(value).strip().lower()
        if text == "all":
            if self.allow_all:
                return None
            self.fail(
                f"{value!r} would keep every version, so there is nothing to prune; expected "
                f"{self.expected()} (e.g. --keep 5; 0 keeps only the protected versions)",
                param,
                ctx,
            )
        try:
            count = int(text)
        except ValueError:
            count = -1
        if count < 0:
            self.fail(f"{value!r} is not a count; expected {self.expected()}", param, ctx)
        if count > MAX_KEEP:
            instead = "--keep all to keep everything" if self.allow_all else f"--keep {MAX_KEEP}"
            click.echo(
                f"warning: --keep {count} is above {MAX_KEEP}, the most --keep takes; it still "
                f"works but will become an error: pass {instead}",
                err=True,
            )
        return count


def keep_option(
    help: str, *, default: str | None = None, required: bool = False, allow_all: bool = True
) -> Decorator:
    """--keep N|all with ``help`` and the one rule (:class:`KeepType`) spelled out after it."""
    kind = KeepType(allow_all)
    return click.option(
        "--keep",
        type=kind,
        default=default,
        required=required,
        show_default=default is not None,
        help=f"{help} --keep takes {kind.expected()}.",
    )


# Pooled models and fine-tuning (`train`).

#: Model options handed to `fine_tune_config` when given with `train --from` (it refuses
#: those a fine-tuned model cannot change: everything but epochs, patience and seed).
FINE_TUNE_OPTIONS = ("horizon", "estimator", "window", "units", "lookback", "context", "epochs",
                     "patience", "loss", "seed", "ensemble", "anchor", "batch_size",
                     "epoch_fraction")

#: --tickers | --universe [--csv-dir] and --from VERSION.
pooled_options = bundle(
    click.option(
        "--tickers",
        type=TICKERS,
        help="Train one pooled model on these comma-separated tickers (SPY,QQQ); with --panel "
        "the default is all, every ticker of the file.",
    ),
    click.option(
        "--universe",
        type=click.Path(dir_okay=False),
        help="Pool the tickers of this file (one per line, # comments).",
    ),
    click.option(
        "--csv-dir",
        type=click.Path(file_okay=False),
        help="With --source csv and several tickers: read DIR/<TICKER>.csv.",
    ),
    click.option(
        "--from",
        "parent_version",
        metavar="VERSION",
        help="Fine-tune: start from this model's weights and settings (e.g. a pooled one).",
    ),
)


def pooled_tickers(
    tickers: str | None,
    universe: str | None,
    csv_dir: str | None,
    parent_version: str | None,
    values: dict[str, Any],
) -> list[str]:
    """The tickers to pool (none for a single-ticker model); conflicting options are errors."""
    from forecaster.data.sources import read_ticker_file, ticker_list
    from forecaster.errors import ConfigError

    if tickers is not None and universe is not None:
        raise ConfigError("--tickers and --universe both name the tickers to pool; pass one")
    panel_path = values.get("panel_path")
    if panel_path is not None and (tickers is not None or not given("ticker")):
        if parent_version is not None:
            raise ConfigError(
                "--from fine-tunes a model on one ticker; with --panel pass --ticker T "
                "(not --tickers)"
            )
        if csv_dir is not None or values.get("csv_path") is not None:
            raise ConfigError("--panel holds the prices; drop --csv/--csv-dir")
        names = panel_tickers(panel_path, tickers)
        if universe is not None:
            names = [name for name in read_ticker_file(universe) if name in names] or names
        if len(names) < 2:
            raise ConfigError(
                f"the panel gives only {names[0]}; a pooled model needs at least two tickers "
                f"(for one, pass --ticker {names[0]})"
            )
        return names
    if tickers is None and universe is None:
        if csv_dir is not None:
            raise ConfigError("--csv-dir reads several tickers; use it with --tickers/--universe")
        return []
    option = "--tickers" if tickers is not None else "--universe"
    if given("ticker"):
        raise ConfigError(f"--ticker and {option} both choose the data; pass one of them")
    if parent_version is not None:
        raise ConfigError(
            f"--from fine-tunes a model on one ticker; drop {option} and pass --ticker"
        )
    if values.get("csv_path") is not None:
        raise ConfigError(f"--csv reads one ticker; with {option} use --csv-dir DIR")
    if values.get("bars_path") is not None:
        raise ConfigError(f"--bars reads one ticker; drop {option} (or drop --bars)")
    names = ticker_list(tickers) if tickers is not None else read_ticker_file(universe)
    if len(names) < 2:
        raise ConfigError(
            f"{option} names only {names[0]}; a pooled model needs at least two tickers "
            f"(for one, use --ticker {names[0]})"
        )
    if values.get("source") == "csv" and csv_dir is None:
        raise ConfigError(f"--source csv with {option} needs --csv-dir DIR holding <TICKER>.csv")
    return names
