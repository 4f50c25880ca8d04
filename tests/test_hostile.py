"""Hostile inputs and destinations (issue 11, inputs and outputs): one clean outcome each.

Each test drives the CLI with what a careless or hostile user could type and
checks the contract of README's "Error contract": exit code 1 and exactly one
``error:`` line (2 and click's usage error for a malformed command line), no
traceback, nothing changed on disk, nothing written outside the home.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import click
import pandas as pd
import pytest

from forecaster.cli import cli
from forecaster.cli.output import write_files
from forecaster.data.loader import parse_date
from forecaster.data.validation import today
from forecaster.errors import ConfigError
from forecaster.models.config import LSTMConfig
from tests.conftest import TINY, make_prices, write_csv

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = [
    "--units",
    str(TINY.units),
    "--lookback",
    str(TINY.lookback),
    "--context",
    str(TINY.context),
    "--epochs",
    str(TINY.epochs),
    "--patience",
    str(TINY.patience),
]
REALIZED = ["realized", "--ticker", "SPY", "--source", "sample", "--last", "3"]


def one_error(result, exit_code: int = 1, *fragments: str) -> str:
    """The single ``error:`` line of a failed run, after checking the contract."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert "\x1b" not in result.stderr
    if exit_code == 2:  # click's usage error: Usage/Try lines, then one Error: line
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.stderr
        line = errors[0]
    else:
        assert result.stderr.count("\n") == 1, result.stderr
        line = result.stderr.rstrip("\n")
        assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: kind and content (links by their target)."""
    entries: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        key = str(path.relative_to(folder))
        if stat.S_ISLNK(info.st_mode):
            entries[key] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            entries[key] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), info.st_mode)
        else:
            entries[key] = (stat.S_IFMT(info.st_mode), info.st_rdev)
    return entries


@pytest.fixture
def csv_file(tmp_path) -> str:
    path = tmp_path / "prices.csv"
    write_csv(path, make_prices(420, seed=3))
    return str(path)


def device(path: Path, minor: int) -> Path:
    """A character device node of the mem driver (3 = null, 7 = full) at ``path``, or skip.

    The tests never aim at the real /dev nodes: if the policy regressed, only
    this copy would be replaced.
    """
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create a device node here ({exc})")
    return path


# --- 1. output paths --------------------------------------------------------


def test_write_error_on_a_character_device_is_one_line_and_keeps_the_node(run, tmp_path):
    full = device(tmp_path / "full", 7)
    result = run(*REALIZED, "-o", str(full))
    one_error(result, 1, repr(str(full)), "No space left on device")
    assert stat.S_ISCHR(full.lstat().st_mode)


def test_character_device_is_streamed_to(run, tmp_path):
    null = device(tmp_path / "null", 3)
    result = run(*REALIZED, "-o", str(null))
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".null")]  # no temp file


def test_symlink_is_followed_and_its_target_replaced(run, tmp_path):
    (tmp_path / "reports").mkdir()
    target = tmp_path / "reports" / "spy.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "latest.txt"
    link.symlink_to(Path("reports") / "spy.txt")
    dangling = tmp_path / "new.txt"
    dangling.symlink_to(tmp_path / "reports" / "created.txt")

    assert run(*REALIZED, "-o", str(link)).exit_code == 0
    assert run(*REALIZED, "--format", "csv", "-o", str(dangling)).exit_code == 0

    assert link.is_symlink() and os.readlink(link) == str(Path("reports") / "spy.txt")
    assert target.read_text().startswith("date") and "SPY garman-klass" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file keeps its permissions
    assert dangling.is_symlink()
    assert (tmp_path / "reports" / "created.txt").read_text().startswith("date,vol")


def test_fifo_is_written_to_not_replaced(run, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run(*REALIZED, "--format", "csv", "-o", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received and received[0].startswith(b"date,vol\n")


@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_dash_and_dev_stdout_write_to_stdout(run, home, name):
    result = run(*REALIZED, "--format", "csv", "-o", name)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("date,vol\n") and result.stdout.count("\n") == 4
    assert not (Path.cwd() / "-").exists()


@pytest.fixture
def out(tmp_path) -> Path:
    """A folder for outputs, apart from the home (whose price cache the commands fill)."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep\n")
    return folder


def test_missing_parent_folder_is_an_error_and_nothing_is_created(run, home, out):
    before = snapshot(out)
    result = run(*REALIZED, "-o", str(out / "a" / "b" / "out.txt"))
    one_error(result, 1, "folder", repr(str(out / "a" / "b")), "does not exist")
    assert snapshot(out) == before
    assert not (home / "data").exists()  # checked before any work: not even the price cache


def test_folder_as_output_is_a_usage_error_naming_it(run, out):
    before = snapshot(out)
    one_error(run(*REALIZED, "-o", str(out)), 2, str(out), "is a directory")
    assert snapshot(out) == before


def test_every_destination_is_checked_before_any_is_written(tmp_path):
    """--predictions, --plot and -o share write_files: one bad path, nothing written."""
    good = tmp_path / "predictions.csv"
    with pytest.raises(ConfigError, match=r"cannot write .*missing.*does not exist"):
        write_files([(str(good), b"a,b\n"), (str(tmp_path / "missing" / "plot.png"), b"png")])
    assert not good.exists() and not (tmp_path / "missing").exists()


# --- 3. tracebacks instead of one error line ---------------------------------


@pytest.mark.parametrize("length", [300, 5000])
def test_overlong_ticker_is_one_error(run, home, csv_file, length):
    before = snapshot(home)
    result = run("fetch", "--source", "csv", "--csv", csv_file, "--ticker", "A" * length)
    line = one_error(result, 2, "is not usable", f"({length} characters)", "1 to 20 characters")
    assert len(line) < 300
    assert snapshot(home) == before


@pytest.mark.parametrize(
    "args",
    [
        ["fetch", "--source", "sample", "--end", "9999-12-31"],
        ["realized", "--source", "sample", "--end", "9999-12-31"],
        ["fetch", "--source", "sample", "--start", "0001-01-01"],
        ["nightly", "--tickers", "SPY", "--source", "sample", "--as-of", "9999-12-31"],
    ],
)
def test_dates_outside_the_supported_range_are_one_error(run, home, args):
    before = snapshot(home)
    option, value = args[-2:]
    # a malformed command line is click's usage error (exit 2), for every command
    one_error(run(*args), 2, f"{option} {value} is outside 1800-01-01 to today")
    assert snapshot(home) == before


@pytest.mark.parametrize("folder", ["/proc/self/forecast", "/dev/null/x", "/dev/null"])
def test_unusable_home_is_one_error(run, monkeypatch, folder):
    monkeypatch.setenv("FORECAST_HOME", folder)
    one_error(run("fetch", "--source", "sample"), 1, f"data home {folder!r} ($FORECAST_HOME)")


@pytest.mark.parametrize("seed", [str(2**32), str(2**64)])
def test_seed_beyond_32_bits_is_a_usage_error(run, home, csv_file, seed):
    result = run("train", "--ticker", "T", "--source", "csv", "--csv", csv_file, "--seed", seed)
    one_error(result, 2, seed, "0<=x<=4294967295")
    assert not (home / "models").exists()
    with pytest.raises(ConfigError, match=r"seed must be at most 2\*\*32 - 1"):
        LSTMConfig(seed=2**32)


def test_huge_network_is_refused_before_building_it(run, home, csv_file):
    result = run(
        "train", "--ticker", "T", "--source", "csv", "--csv", csv_file, "--units", "100000"
    )
    one_error(result, 2, "100000", "1<=x<=1024")
    with pytest.raises(ConfigError, match=r"encoder_units must be an integer <= 1024"):
        LSTMConfig(init="encoder", init_options={"encoder_units": 100_000})
    assert not (home / "models").exists()


# --- 5. degenerate data --------------------------------------------------------


def test_constant_prices_are_refused_not_trained(run, home, tmp_path):
    prices = make_prices(420, seed=3)
    prices[["open", "high", "low", "close"]] = 100.0
    write_csv(tmp_path / "flat.csv", prices)
    result = run(
        "train",
        "--ticker",
        "FLAT",
        "--source",
        "csv",
        "--csv",
        str(tmp_path / "flat.csv"),
        *TINY_ARGS,
    )
    one_error(result, 1, "daily variance is zero on all", "2015-01-05 to 2016-08-11")
    assert not (home / "models").exists()


def test_too_short_history_is_an_error(run, home, tmp_path):
    write_csv(tmp_path / "short.csv", make_prices(100, seed=3))
    result = run(
        "train",
        "--ticker",
        "SHORT",
        "--source",
        "csv",
        "--csv",
        str(tmp_path / "short.csv"),
        *TINY_ARGS,
    )
    one_error(result, 1, "too little price history: received 100 rows", "need at least 103")
    assert not (home / "models").exists()


def test_rows_dated_after_today_are_an_error_naming_them(run, home, tmp_path):
    prices = make_prices(421, seed=3)
    prices.index = pd.DatetimeIndex([*prices.index[:-1], pd.Timestamp("2099-01-02")], name="date")
    write_csv(tmp_path / "future.csv", prices)
    result = run("fetch", "--ticker", "F", "--source", "csv", "--csv", str(tmp_path / "future.csv"))
    one_error(result, 1, "1 date(s) after today", "2099-01-02")
    assert not (home / "data" / "prices").exists()


def test_literal_today_in_the_data_is_not_a_date(run, home, tmp_path):
    path = tmp_path / "today.csv"
    write_csv(path, make_prices(421, seed=3))
    lines = path.read_text().splitlines()
    lines[-1] = "today," + lines[-1].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    result = run("fetch", "--ticker", "T", "--source", "csv", "--csv", str(path))
    one_error(result, 1, "row 421 ('today')", "'today' and 'now' are not dates")
    assert not (home / "data" / "prices").exists()


@pytest.mark.parametrize("value", ["06/01/2018", "2018-6-1", "20180601", "today", "2018-02-30"])
def test_command_line_dates_are_iso_only(run, home, value):
    one_error(run("fetch", "--source", "sample", "--end", value), 2, "expected YYYY-MM-DD")
    assert parse_date("2018-06-01", "--end") == pd.Timestamp("2018-06-01")
    assert parse_date(f"{today():%Y-%m-%d}", "--end") == today()


# --- 7. upper bounds -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--threads", "100000"],
        ["compare", "--seeds", "1000000000"],
        ["train", "--epochs", "10001"],
        ["train", "--horizon", "253"],
        ["train", "--context", "5061"],
        ["evaluate", "--refit-every", "100000"],
        ["nightly", "--tickers", "SPY", "--workers", "257"],
        ["nightly", "--tickers", "SPY", "--window-days", "100000"],
        ["realized", "--window", "100000"],
    ],
)
def test_numbers_beyond_their_bound_are_usage_errors(run, home, args):
    before = snapshot(home)
    one_error(run(*args), 2, args[-2], "is not in the range")
    assert snapshot(home) == before


def test_every_numeric_option_states_its_upper_bound_in_help(run):
    def commands(group: click.Group):
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from commands(command)

    checked = 0
    for command in commands(cli):
        for param in command.params:
            if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                assert isinstance(param.type, click.types._NumberRangeBase), (
                    command.name,
                    param.name,
                )
                assert param.type.max is not None, f"{command.name} {param.name} has no upper bound"
                checked += 1
    assert checked >= 15
    assert "[default: 32; 1<=x<=1024]" in " ".join(run("train", "-h").output.split())


# --- 9. smaller contract breaks ------------------------------------------------


@pytest.mark.parametrize("ticker", ["SPY\nrm -rf", "A\x1b[31mB", "A B", "../X", ".X", "É", ""])
def test_ticker_outside_the_character_set_is_one_escaped_line(run, home, ticker):
    before = snapshot(home)
    for args in (["fetch", "--source", "sample"], ["realized", "--source", "sample"]):
        one_error(run(*args, "--ticker", ticker), 2, f"ticker {ticker!r} is not usable")
    assert snapshot(home) == before


def test_nightly_checks_every_ticker_before_running(run, home, tmp_path):
    universe = tmp_path / "universe.txt"
    universe.write_text("SPY\nA\x1b[31mB\n")
    before = snapshot(home)
    # a malformed --tickers is click's usage error (exit 2); a bad line in the --universe file
    # is found when the job checks its inputs (exit 1); neither touches the home
    for args, code in ((["--tickers", "SPY,A\nB"], 2), (["--universe", str(universe)], 1)):
        one_error(run("nightly", *args, "--source", "sample"), code, "is not usable")
    assert snapshot(home) == before


def test_ticker_character_set_accepts_real_symbols():
    from forecaster.data.sources import normalize_ticker

    for symbol in ("SPY", "^GSPC", "brk-b", "EURUSD=X", "RDS.A", "BTC-USD", "A" * 20, "X_1"):
        assert normalize_ticker(symbol) == symbol.upper()


def test_empty_home_is_an_error_not_the_current_folder(run, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORECAST_HOME", "")
    one_error(run("fetch", "--source", "sample"), 1, "$FORECAST_HOME is empty")
    one_error(run("--home", "", "fetch", "--source", "sample"), 1, "--home is empty")
    assert list(tmp_path.iterdir()) == []


def _isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment whose ~ does not exist and with no library folders chosen."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_HOME", "MPLCONFIGDIR")}
    env.update(
        HOME=str(tmp_path / "no-such-home"),
        XDG_CONFIG_HOME=str(tmp_path / "no-such-home" / ".config"),
        XDG_CACHE_HOME=str(tmp_path / "no-such-home" / ".cache"),
        FORECAST_HOME=str(tmp_path / "home"),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        **extra,
    )
    return env


def test_matplotlib_writes_under_the_home_not_in_home_directory(tmp_path):
    # Any command exports the library folders; matplotlib, imported later in the same
    # process (evaluate --plot, or arch), then keeps its files there.
    code = textwrap.dedent(
        """
        import sys
        from forecaster.cli import cli
        from click.testing import CliRunner
        result = CliRunner().invoke(cli, ["realized", "--source", "sample", "--last", "1"])
        assert result.exit_code == 0, result.output
        import matplotlib
        print(matplotlib.get_configdir())
        print(result.stderr, file=sys.stderr)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_isolated_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    expected = tmp_path / "home" / "data" / "cache" / "matplotlib"
    assert Path(done.stdout.strip()) == expected.resolve()
    assert "Matplotlib" not in done.stderr  # no "created a temporary cache directory" warning
    assert not (tmp_path / "no-such-home").exists()

    user_dir = tmp_path / "mine"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_isolated_env(tmp_path, MPLCONFIGDIR=str(user_dir)),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == user_dir.resolve()  # the user's choice is kept


def test_keras_home_is_set_under_the_home_before_keras_is_imported(tmp_path):
    """A stand-in ``keras`` module records what it sees when import_tensorflow imports it."""
    fake = tmp_path / "fake"
    for name, body in {
        "keras": "import os\nSEEN = os.environ.get('KERAS_HOME')\n",
        "tensorflow": "import logging\ndef get_logger():\n    return logging.getLogger('tf')\n",
    }.items():
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(body)
    code = textwrap.dedent(
        """
        from forecaster.settings import Settings
        from forecaster.models.runtime import import_tensorflow
        Settings.resolve().export_library_dirs()   # what every CLI command does
        import_tensorflow()
        import keras
        print(keras.SEEN)
        """
    )
    env = _isolated_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(fake), env["PYTHONPATH"]])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "home" / "data" / "cache" / "keras"
    assert done.stdout.strip() == str(folder) and folder.is_dir()
    assert not (tmp_path / "no-such-home").exists()


@pytest.mark.slow
def test_real_keras_writes_its_config_under_the_home(tmp_path):
    code = (
        "from forecaster.settings import Settings\n"
        "from forecaster.models.runtime import import_tensorflow\n"
        "Settings.resolve().export_library_dirs()\n"
        "import_tensorflow()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_isolated_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / "data" / "cache" / "keras" / "keras.json").is_file()
    assert not (tmp_path / "no-such-home").exists()


def test_usage_errors_keep_exit_code_2(run):
    one_error(run("fetch", "--no-such-option"), 2, "No such option")
