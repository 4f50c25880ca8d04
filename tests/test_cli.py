"""The CLI through click's CliRunner: exit codes, output, one-line errors, help."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
import pytest
import yfinance as yf
from curl_cffi.requests.exceptions import DNSError

from forecaster import __version__
from forecaster.cli import cli
from forecaster.cli.options import LazyChoice
from forecaster.errors import DataError
from tests.conftest import make_prices, write_csv


@pytest.fixture
def offline(monkeypatch):
    def history(self, *args, **kwargs):
        raise DNSError("Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(yf.Ticker, "history", history)


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_every_command_has_help_text(run):
    commands = list(all_commands(cli))
    assert ("models", "list") in dict(commands), "subcommands are walked too"
    for path, command in commands:
        assert command.help and command.help.strip(), f"{' '.join(path)} has no help text"
        result = run(*path, "-h")
        assert result.exit_code == 0 and "Usage:" in result.output


def help_text(run, *path: str) -> str:
    """``forecast PATH -h`` with its line wrapping undone (also inside hyphenated words)."""
    result = run(*path, "-h")
    assert result.exit_code == 0, result.output
    return " ".join(re.sub(r"-\n\s*", "-", result.output).split())


def test_help_lists_the_registries_and_stands_on_its_own(run):
    from forecaster.data.volatility import ESTIMATORS
    from forecaster.models.baselines import BASELINES

    evaluate = help_text(run, "evaluate")
    names = ", ".join(BASELINES)
    assert "gbm" in names and "har-pooled" in names and "harx" in names
    assert f"The baselines are {names} (all by default; --baselines picks some)." in evaluate
    assert "vs the --reference model" in help_text(run, "compare")
    assert "vs HAR" not in help_text(run, "compare")
    realized = help_text(run, "realized")
    assert f"Daily realized-variance estimator, one of {', '.join(ESTIMATORS)}." in realized
    for path, command in all_commands(cli):
        if isinstance(command, click.Group):
            continue
        assert "DESIGN" not in help_text(run, *path), f"{' '.join(path)} cites a design document"
        for param in command.params:
            if param.name == "fmt":  # every --format says what each format prints
                assert param.help, f"{' '.join(path)} --format has no help text"
                for choice in param.type.choices:
                    assert f"{choice} (" in param.help, (path, choice)


def test_fetch_sample_reports_rows_range_source(run, home):
    result = run("fetch", "--ticker", "SPY", "--source", "sample")
    assert result.exit_code == 0
    assert "SPY: 5031 rows, 1999-01-04 to 2018-12-31" in result.output
    assert (
        "source: sample (S&P 500 index (arch sample data, 1999-2018) standing in for SPY)"
        in result.output
    )
    assert (home / "data" / "prices" / "SPY.sample.parquet").exists()


def test_fetch_auto_offline_warns_and_uses_sample(run, offline):
    result = run("fetch", "--ticker", "QQQ")
    assert result.exit_code == 0
    assert "warning: Yahoo unreachable; using offline sample data instead: NASDAQ" in result.stderr
    assert "source: sample" in result.stdout


def test_realized_yang_zhang_csv_contract(run):
    result = run(
        "realized",
        "--ticker",
        "SPY",
        "--source",
        "sample",
        "--estimator",
        "yang-zhang",
        "--window",
        "22",
        "--format",
        "csv",
    )
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "date,vol"
    assert lines[1].startswith("1999-02-")
    assert lines[-1].startswith("2018-12-31,")
    assert len(lines) - 1 == 5031 - 22


def test_realized_table_ends_with_summary_and_json(run, tmp_path):
    path = tmp_path / "p.csv"
    prices = make_prices(60)
    write_csv(path, prices)
    table = run(
        "realized", "--ticker", "MINE", "--source", "csv", "--csv", str(path), "--window", "10"
    )
    assert table.exit_code == 0
    last = table.stdout.strip().splitlines()[-1]
    assert (
        last.startswith("MINE garman-klass 10-day annualized vol over 51 days") and "last" in last
    )
    out = tmp_path / "vol.json"
    result = run(
        "realized",
        "--ticker",
        "MINE",
        "--source",
        "csv",
        "--csv",
        str(path),
        "--format",
        "json",
        "-o",
        str(out),
    )
    payload = json.loads(out.read_text())
    assert (
        result.exit_code == 0
        and payload["estimator"] == "garman-klass"
        and len(payload["series"]) == 60 - 21
    )
    assert payload["series"][0]["date"] == prices.index[21].strftime("%Y-%m-%d")


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ("fetch", "--ticker", "AAPL", "--source", "sample"),
            "error: the offline sample has no data for 'AAPL'",
        ),
        (("fetch", "--ticker", "AAPL"), "error: could not reach Yahoo for AAPL (DNSError"),
        (("fetch", "--source", "csv"), "error: --source csv needs --csv PATH"),
        (
            ("fetch", "--source", "csv", "--csv", "missing.csv"),
            "error: CSV file 'missing.csv' does not exist",
        ),
        (
            ("realized", "--source", "sample", "--end", "1999-01-20"),
            "error: realized volatility with estimator 'garman-klass' and window 22 needs at least 22 rows of prices, received 12",
        ),
    ],
)
def test_user_errors_are_one_line_exit_1(run, offline, args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_csv_row_names_date_and_leaves_no_cache(run, home, tmp_path):
    path = tmp_path / "p.csv"
    prices = make_prices(30)
    prices.iloc[5, prices.columns.get_loc("close")] = -3
    write_csv(path, prices)
    result = run("fetch", "--ticker", "MINE", "--source", "csv", "--csv", str(path))
    assert result.exit_code == 1
    assert prices.index[5].strftime("%Y-%m-%d") in result.stderr
    assert not (home / "data" / "prices").exists() or not any((home / "data" / "prices").iterdir())


def test_usage_error_exits_2(run):
    result = run("realized", "--estimator", "bogus")
    assert result.exit_code == 2


def test_debug_lets_the_domain_error_propagate(run):
    args = ("fetch", "--ticker", "AAPL", "--source", "sample")
    with pytest.raises(DataError, match="the offline sample has no data for 'AAPL'"):
        run("--debug", *args)
    result = run(*args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: the offline sample has no data for 'AAPL'")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_data_commands_never_import_tensorflow(home):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from forecaster.cli import cli\n"
        "r = CliRunner()\n"
        "assert r.invoke(cli, ['--help']).exit_code == 0\n"
        "assert r.invoke(cli, ['fetch', '--source', 'sample']).exit_code == 0\n"
        "assert r.invoke(cli, ['realized', '--source', 'sample', '--last', '3']).exit_code == 0\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=home)


def test_home_option_overrides_environment(run, tmp_path):
    other = tmp_path / "elsewhere"
    result = run("--home", str(other), "fetch", "--source", "sample", "--end", "2000-01-31")
    assert result.exit_code == 0
    assert (other / "data" / "prices" / "SPY.sample.parquet").exists()
    assert pd.Timestamp("2000-01-31").strftime("%Y-%m-%d") in result.stdout


def test_unwritable_output_is_one_error_line(run, tmp_path):
    not_a_folder = tmp_path / "afile"
    not_a_folder.write_text("x")
    result = run(
        "realized", "--source", "sample", "--last", "3", "--output", str(not_a_folder / "x.csv")
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot write") and result.stderr.count("\n") == 1
    assert not_a_folder.read_text() == "x"


def param(path: tuple[str, ...], name: str) -> click.Parameter:
    command: click.Command = cli
    for part in path:
        command = command.commands[part]
    return next(p for p in command.params if p.name == name)


def test_choices_and_name_lists_come_from_the_registries(home):
    from forecaster.data.sources import SOURCES
    from forecaster.data.volatility import ESTIMATORS
    from forecaster.models.baselines import BASELINES
    from forecaster.models.initial_state import available_strategies

    for path in [("fetch",), ("realized",), ("train",), ("evaluate",), ("nightly",)]:
        assert param(path, "source").type.choices == SOURCES, path
    for path in [("realized",), ("train",), ("compare",)]:
        assert param(path, "estimator").type.choices == tuple(ESTIMATORS), path
    assert param(("train",), "init").type.choices == tuple(available_strategies())
    ctx = click.Context(cli)
    assert param(("compare",), "inits").get_default(ctx) == ",".join(available_strategies())
    baselines = param(("evaluate",), "baselines")
    assert baselines.get_default(ctx) == ",".join(BASELINES)
    assert f"({', '.join(BASELINES)}; 'none')" in baselines.get_help_record(ctx)[1]
    assert f"[default: {','.join(BASELINES)}]" in baselines.get_help_record(ctx)[1]


def test_lazy_choice_loads_its_names_on_first_use_only():
    calls = []

    def load():
        calls.append(1)
        return ["a", "b"]

    choice = LazyChoice(load)
    assert calls == []
    assert choice.convert("b", None, None) == "b"
    with pytest.raises(click.BadParameter, match="'c' is not one of 'a', 'b'"):
        choice.convert("c", None, None)
    assert calls == [1]


def test_help_imports_neither_pandas_nor_tensorflow(home):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from forecaster.cli import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
        "bad = [m for m in ('pandas', 'numpy', 'tensorflow', 'keras', 'plotly') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=home)


def test_python_m_forecaster_cli_runs_the_cli(home):
    result = subprocess.run(
        [sys.executable, "-m", "forecaster.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=home,
    )
    assert result.stdout == f"forecast, version {__version__}\n"


def test_root_help_shows_the_workflow(run):
    result = run("--help")
    assert result.exit_code == 0
    workflow = result.stdout.split("Workflow:")[1]
    commands = [line.split()[1] for line in workflow.strip().splitlines()]
    assert commands == ["fetch", "train", "predict", "evaluate", "nightly", "history"]


def test_paths_are_shown_relative_to_the_current_folder(tmp_path, monkeypatch):
    from forecaster.cli.output import shown_path

    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "data" / "x.parquet") == str(Path("data") / "x.parquet")
    assert shown_path("relative/y.csv") == "relative/y.csv"
    outside = tmp_path.parent / "elsewhere.csv"
    assert shown_path(outside) == str(outside)


#: Options whose value is free text (a version id, an address, a file a library opens):
#: nothing to check on the command line. A new option must get a checking type or be
#: listed here with its reason.
FREE_TEXT = {
    "--model": "a version id: whether it exists is a runtime question",
    "--from": "a version id",
    "--scheduler": "a Dask address: reachability is a runtime question",
    "--tls-ca": "a certificate file Dask reads",
    "--tls-cert": "a certificate file Dask reads",
    "--tls-key": "a key file Dask reads",
}
#: Positional values that must be valid for the option under test to be reached.
ARGUMENTS = {("models", "show"): ["v1"], ("models", "promote"): ["v1"]}


def bad_value(param: click.Parameter, tmp_path: Path) -> str | None:
    """A malformed value for ``param`` (None: free text, nothing to check)."""
    from forecaster.cli.options import CheckedText, KeepType, VarLevels

    kind = param.type
    if isinstance(kind, CheckedText):
        return kind.bad_example
    if isinstance(kind, click.Choice):
        return "bogus-value"
    if isinstance(kind, click.types._NumberParamTypeBase):
        return "not-a-number"
    if isinstance(kind, VarLevels):
        return "0.7"
    if isinstance(kind, KeepType):
        return "-3"
    if isinstance(kind, click.Path):
        if not kind.dir_okay:
            return str(tmp_path)  # a folder where a file is expected
        if not kind.file_okay:
            (tmp_path / "a-file").write_text("x")
            return str(tmp_path / "a-file")
    return None


def test_every_malformed_option_value_is_a_usage_error(run, tmp_path):
    """Walks the command tree: every option that takes a value, given a malformed one,
    exits 2 with click's usage error naming it, before any work starts."""
    checked_options = 0
    for path, command in all_commands(cli):
        if isinstance(command, click.Group):
            continue
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or param.count:
                continue
            name = max(param.opts, key=len)
            value = bad_value(param, tmp_path)
            if value is None:
                assert name in FREE_TEXT, (
                    f"{' '.join(path)} {name} takes text nobody checks when the command line "
                    "is parsed: give it a checking type (forecaster.cli.options.CheckedText)"
                )
                continue
            result = run(*path, *ARGUMENTS.get(path, []), name, value)
            shown = f"forecast {' '.join(path)} {name} {value!r}"
            assert result.exit_code == 2, (shown, result.output)
            assert "Usage:" in result.stderr and "Invalid value for" in result.stderr, shown
            assert name in result.stderr, shown
            checked_options += 1
    assert checked_options > 100  # the walk reached the options


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--inits", "zeros,bogus"], "has unknown strategies bogus"),
        (["evaluate", "--baselines", "har,bogus"], "bogus"),
        (["predict", "--dist", "cauchy"], "'cauchy' is not one of 'normal', 't', 'fhs'"),
        (["train", "--init-option", "encoder_units"], "expects NAME=VALUE"),
        (["train", "--init-option", "nope=1"], "no strategy has an option 'nope'"),
        (["train", "--init-option", "encoder_units=many"], "expected a int value"),
        (["fetch", "--ticker", "B/B"], "ticker 'B/B' is not usable"),
        (["predict", "--tickers", "SPY, ,QQQ,a b"], "ticker 'a b' is not usable"),
        (["fetch", "--start", "06/01/2018"], "--start '06/01/2018' is not a date"),
        (["fetch", "--source", "sample", "--start", "soon"], "--start 'soon' is not a date"),
        (["train", "--exog", "VIX"], "is not NAME=PATH"),
        (["realized", "--tz", "Mars/Olympus"], "is not a time zone"),
    ],
)
def test_value_errors_say_what_is_expected(run, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--seed", "5"], "No such option '--seed'. compare trains every strategy "
         "with seeds 0..N-1: pass --seeds N, how many seeds; --seed VALUE (one seed) is "
         "`forecast train`'s."),
        (["compare", "--seed=5"], "No such option '--seed'. compare trains every strategy"),
        (["train", "--seeds", "3"], "No such option '--seeds'. train fits one model: pass "
         "--seed VALUE, its random seed"),
        (["compare", "--init", "zeros"], "No such option '--init'. compare trains several "
         "strategies: pass --inits NAMES"),
        (["train", "--inits", "zeros"], "No such option '--inits'. train fits one strategy: "
         "pass --init NAME"),
    ],
)  # fmt: skip
def test_the_option_of_the_sibling_command_is_a_usage_error_naming_the_right_one(
    run, args, message
):
    """--seed (a value, train) and --seeds (a count, compare) are easy to swap; click's own
    guess listed three near names without saying which means what."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Usage: ") and message in result.stderr


def test_seed_and_seeds_help_says_value_or_count(run):
    train = " ".join(run("train", "-h").stdout.split())
    compare = " ".join(run("compare", "-h").stdout.split())
    assert "--seed INTEGER RANGE Random seed, one value: same seed, same forecasts (not a " \
        "count: `forecast compare --seeds N` trains seeds 0..N-1)." in train
    assert "--seeds INTEGER RANGE How many seeds per strategy, a count N: each strategy is " \
        "trained with seeds 0..N-1 (not a seed value, which is `forecast train --seed`)." in compare
