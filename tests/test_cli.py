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
        (("fetch", "--source", "sample", "--start", "soon"), "error: --start 'soon' is not a date"),
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
