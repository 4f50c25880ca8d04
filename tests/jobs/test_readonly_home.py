"""A data home without write access (issue 20): one ``error:`` line, never a traceback.

The tests run as root, for whom permission bits do not stop a write, so the home
is made immutable with ``chattr -R +i`` (refused even to root: EPERM), and made
mutable again afterwards. Where chattr is not available the tests fall back to
``chmod a-w`` for a non-root user, and are skipped for root, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import fake_record, run_cli
from tests.jobs.test_morning import _fill


def _chattr(flag: str, path) -> bool:
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "-R", flag, str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def read_only():
    """``read_only(path)`` makes ``path`` and everything under it unwritable, even for root."""
    made: list = []

    def apply(path):
        if _chattr("+i", path):
            made.append(path)
        elif os.geteuid() != 0:
            subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)
        else:
            pytest.skip("running as root without a working chattr: no folder is read-only")
        probe = path / ".probe"
        with pytest.raises(OSError):  # the premise: nothing can be created here
            probe.write_text("x")
        return path

    yield apply
    for path in made:
        _chattr("-i", path)


@pytest.fixture
def filled_home(tmp_path):
    """A history with forecasts and runs (no model trained) and a registry with versions."""
    home = tmp_path / "home"
    home.mkdir()
    _fill(home)
    registry = ModelRegistry(Settings.resolve(home).models_dir)
    for number in range(1, 4):
        version = f"20260101T00000{number}-zeros-00000{number}"
        registry.save(fake_record("SPY", version), lambda path: path.write_bytes(b"w"), False)
    registry.promote("SPY", "20260101T000003-zeros-000003")
    return home


def one_error_line(result, *parts: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = result.stderr
    assert line.startswith("error: ") and line.count("\n") == 1, line
    for part in parts:
        assert part in line, line
    return line


def test_report_on_a_read_only_home_is_one_error_line(filled_home, read_only):
    read_only(filled_home)
    result = run_cli("--home", str(filled_home), "report")
    one_error_line(result, str(filled_home / "reports"), "write access", "--html")


def test_report_to_a_writable_file_needs_no_write_access_to_the_home(
    filled_home, read_only, tmp_path
):
    read_only(filled_home)
    page = tmp_path / "morning.html"
    result = run_cli("--home", str(filled_home), "report", "--html", str(page))
    assert result.exit_code == 0, result.output
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_nightly_on_a_read_only_home_is_one_error_line(filled_home, read_only):
    read_only(filled_home)
    result = run_cli(
        "--home", str(filled_home), "nightly", "--tickers", "SPY", "--source", "sample"
    )
    one_error_line(result, str(filled_home / "data"), "write access", "forecast nightly")


def test_nightly_on_a_home_that_cannot_be_created_is_one_error_line(tmp_path, read_only):
    """Already one line before issue 20 (Settings checks it); kept beside the others."""
    parent = tmp_path / "parent"
    parent.mkdir()
    read_only(parent)
    home = parent / "home"
    result = run_cli("--home", str(home), "nightly", "--tickers", "SPY", "--source", "sample")
    one_error_line(result, str(home), "cannot be created", "is not writable")


def test_prune_on_a_read_only_home_is_one_error_line(filled_home, read_only):
    read_only(filled_home)
    result = run_cli("--home", str(filled_home), "models", "prune", "--keep", "0")
    one_error_line(result, str(filled_home / "data"), "write access", "--dry-run")


def test_a_dry_run_prune_needs_no_write_access(filled_home, read_only):
    read_only(filled_home)
    result = run_cli("--home", str(filled_home), "models", "prune", "--keep", "0", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "SPY: would delete" in result.stdout
    assert not (filled_home / "data" / "nightly.lock").exists()
