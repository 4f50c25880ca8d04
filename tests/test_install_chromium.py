"""``scripts/install-chromium`` (issue 20): installs only what is missing, never upgrades an
installed package, says one line, and never lets CI pass without the browser.

The script runs against stand-in ``apt-get`` and ``id`` commands on a private PATH (so
nothing is installed): the stand-in logs its arguments and answers ``apt-get install -s``
with the plan given by the test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-chromium"
NEW = (
    "Inst libogg0 (1.3.5-3 Debian:12.15/oldstable [amd64])\n"
    "Inst chromium (143.0-1~deb12u1 Debian-Security:12/oldstable [amd64])\n"
)
UPGRADE = "Inst perl [5.36.0-7+deb12u2] (5.36.0-7+deb12u3 Debian:12.15/oldstable [amd64]) []\n"


def run(tmp_path, plan: str = NEW, uid: str = "0", ci: str | None = None, browser=False):
    """Run the script; returns (result, the stand-in apt-get's calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("awk", "grep", "mktemp", "rm", "cat", "tr", "dirname"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    calls = tmp_path / "calls.txt"
    (tmp_path / "plan.txt").write_text(plan)
    fake_apt = (
        "#!/bin/bash\n"
        f'echo "$*" >> {calls}\n'
        'case " $* " in *" -s "*) cat ' + str(tmp_path / "plan.txt") + " ;; esac\n"
        'echo "lots of apt output"\n'
    )
    (bin_dir / "apt-get").write_text(fake_apt)
    (bin_dir / "id").write_text(f"#!/bin/bash\necho {uid}\n")
    if browser:
        (bin_dir / "chromium").write_text("#!/bin/bash\n")
    for tool in ("apt-get", "id", "chromium"):
        if (bin_dir / tool).exists():
            (bin_dir / tool).chmod(0o755)
    env = {"PATH": str(bin_dir), "TMPDIR": str(tmp_path)}
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [shutil.which("bash"), str(SCRIPT)], capture_output=True, text=True, env=env, timeout=30
    )
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_installs_only_what_is_missing_without_upgrades_in_one_line(tmp_path):
    result, calls = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "installing chromium for the report's browser test: 2 new Debian packages, no upgrades\n"
    )
    installs = [call for call in calls if call.startswith("install") and " -s " not in f" {call} "]
    assert len(installs) == 1
    assert "--no-upgrade" in installs[0] and "--no-install-recommends" in installs[0]
    assert not any("upgrade" in call.split()[0] for call in calls)  # no apt-get (dist-)upgrade
    assert not list(tmp_path.glob("install-chromium.*"))  # the log is removed after success


@pytest.mark.parametrize("ci", [None, "true"])
def test_a_plan_that_upgrades_an_installed_package_is_refused(tmp_path, ci):
    result, calls = run(tmp_path, plan=NEW + UPGRADE, ci=ci)
    assert not [call for call in calls if call.startswith("install -y")]  # nothing installed
    assert result.stderr.count("\n") == 1 and "would upgrade installed packages (perl)" in result.stderr
    if ci is None:
        assert result.returncode == 0 and result.stderr.startswith("note: ")
    else:
        assert result.returncode == 1 and result.stderr.startswith("error: ")


@pytest.mark.parametrize(("ci", "code"), [(None, 0), ("1", 1)])
def test_without_root_it_skips_but_ci_fails(tmp_path, ci, code):
    result, calls = run(tmp_path, uid="1000", ci=ci)
    assert result.returncode == code and calls == []
    assert result.stderr.count("\n") == 1 and "needs root and apt-get" in result.stderr


def test_a_browser_already_there_means_nothing_is_done(tmp_path):
    result, calls = run(tmp_path, browser=True)
    assert result.returncode == 0 and result.stderr == "" and calls == []


@pytest.mark.parametrize("ci", [None, "true"])
def test_the_browser_test_skips_without_chromium_but_fails_under_ci(monkeypatch, ci):
    from tests import browser

    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.skip.Exception, match="scripts/install-chromium"):
            browser.require_chromium()
    else:
        monkeypatch.setenv("CI", ci)
        with pytest.raises(pytest.fail.Exception, match="CI is set"):
            browser.require_chromium()
