"""Registry retention: ``forecast models prune`` and ``forecast nightly --keep``.

Versions are stand-ins with placeholder files (no TensorFlow); the nightly test
swaps the challenge step as tests/jobs/test_promotion.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from forecaster.data.store import PriceStore
from forecaster.errors import ConfigError
from forecaster.jobs import protocol
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.lock import nightly_lock
from forecaster.jobs.nightly import run_nightly
from forecaster.jobs.retention import prune, prune_ticker
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import fake_record, make_prices, stand_in_challenge, write_csv

PRICES = make_prices(60, seed=3)


def version_id(number: int) -> str:
    return f"20260101T0000{number:02d}-zeros-{number:06x}"


def save(registry: ModelRegistry, number: int, ticker: str = "AAA", size: int = 1000) -> str:
    version = version_id(number)
    registry.save(
        fake_record(ticker, version), lambda path: path.write_bytes(b"w" * size), False
    )
    return version


def on_disk(path) -> int:
    """Bytes of the files under ``path``, counted independently of the code under test."""
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )


def forecast(version: str, origin: str, ticker: str = "AAA") -> dict:
    return {
        "ticker": ticker,
        "origin": origin,
        "horizon": 1,
        "model_version": version,
        "init": "zeros",
        "estimator": "garman-klass",
        "estimator_window": 22,
        "source": "csv",
        "variance": 1e-4,
        "vol": 0.16,
    }


@pytest.fixture
def settings(home) -> Settings:
    return Settings.resolve(home)


@pytest.fixture
def registry(settings) -> ModelRegistry:
    """Eight versions of AAA (1..8, oldest first): champion 5, promoted over 3; version 2 has
    a forecast still pending (its origin is the last cached day), version 1 a realized one."""
    registry = ModelRegistry(settings.models_dir)
    for number in range(1, 9):
        save(registry, number, size=1000 * number)
    registry.promote("AAA", version_id(3))
    registry.promote("AAA", version_id(5))
    PriceStore(settings.prices_dir).write("AAA", "csv", PRICES, "test prices")
    history = ForecastHistory(settings.forecasts_db)
    with history.transaction() as connection:
        for number, day in ((1, PRICES.index[-10]), (2, PRICES.index[-1])):
            history.insert_forecast(connection, forecast(version_id(number), f"{day:%Y-%m-%d}"))
    return registry


def test_prune_keeps_the_protected_and_the_newest_and_reports_the_bytes(settings, registry):
    folder = registry.models_dir / "AAA"
    doomed = [version_id(number) for number in (1, 4, 6)]
    expected_bytes = {version: on_disk(folder / version) for version in doomed}

    (outcome,) = prune(settings, None, keep=2)

    assert [entry["version"] for entry in outcome.deleted] == doomed  # oldest first
    assert {entry["version"]: entry["bytes"] for entry in outcome.deleted} == expected_bytes
    assert outcome.bytes_freed == sum(expected_bytes.values())
    assert outcome.protected == {
        version_id(2): ["forecast pending"],
        version_id(3): ["previous champion"],
        version_id(5): ["champion"],
    }
    assert outcome.kept == [version_id(7), version_id(8)]
    assert registry.version_ids("AAA") == [version_id(n) for n in (2, 3, 5, 7, 8)]
    assert [entry.name for entry in folder.iterdir() if entry.name.startswith(".")] == []
    for version in registry.version_ids("AAA"):  # every survivor still matches its manifest
        registry.get("AAA", version)
    assert registry.champion_id("AAA") == version_id(5)


def test_keep_zero_leaves_only_the_protected_versions(settings, registry):
    cached = [
        settings.risk_cache_dir / served / f"{version_id(number)}.t.numpy.json"
        for number, served in ((4, "AAA"), (4, "BBB"), (5, "AAA"))
    ]
    for path in cached:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    prune(settings, ["AAA"], keep=0)
    assert registry.version_ids("AAA") == [version_id(n) for n in (2, 3, 5)]
    # The deleted version's cached risk fits go with it (for every ticker it served).
    assert [path.exists() for path in cached] == [False, False, True]


def test_a_dry_run_deletes_nothing_and_reports_what_a_real_run_deletes(settings, registry):
    before = sorted(path.name for path in (registry.models_dir / "AAA").iterdir())
    (dry,) = prune(settings, None, keep=1, dry_run=True)
    assert sorted(path.name for path in (registry.models_dir / "AAA").iterdir()) == before
    (real,) = prune(settings, None, keep=1)
    assert dry.to_dict() == {**real.to_dict(), "dry_run": True}
    assert len(real.deleted) == 4


def test_the_previous_champion_is_also_found_in_the_run_history(settings, registry):
    """A pointer written before pointers named their predecessor: the nightly run that
    promoted the champion names it."""
    pointer = registry.models_dir / "AAA" / "champion.json"
    pointer.write_text(json.dumps({"version": version_id(5), "reason": "nightly"}))
    ForecastHistory(settings.forecasts_db).record_run(
        {
            "ticker": "AAA",
            "status": "ok",
            "decision": "promoted",
            "champion_version": version_id(5),
            "previous_champion": version_id(4),
            "challenger_version": version_id(5),
        }
    )
    (outcome,) = prune(settings, None, keep=0)
    assert outcome.protected[version_id(4)] == ["previous champion"]
    assert registry.version_ids("AAA") == [version_id(n) for n in (2, 4, 5)]


def test_a_scored_forecast_no_longer_protects_its_version(settings, registry):
    longer = make_prices(61, seed=3)  # one more day: version 2's forecast is realized
    PriceStore(settings.prices_dir).write("AAA", "csv", longer, "test prices")
    (outcome,) = prune(settings, None, keep=0)
    assert version_id(2) in [entry["version"] for entry in outcome.deleted]


def test_a_negative_keep_is_refused():
    with pytest.raises(ConfigError, match=r"--keep must be a whole number of versions >= 0"):
        prune_ticker(Settings.resolve("."), "AAA", keep=-1)


def test_a_killed_prune_leaves_whole_versions_and_the_next_prune_finishes(settings, registry):
    """The prune process is killed (SIGKILL) after its first version left the registry
    and before that folder was removed."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        from forecaster.models import registry
        from forecaster.jobs.retention import prune
        from forecaster.settings import Settings

        registry._remove_tree = lambda path: os.kill(os.getpid(), signal.SIGKILL)
        prune(Settings.resolve(sys.argv[1]), None, keep=0)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script, str(settings.home)], check=False)
    assert killed.returncode == -9

    folder = registry.models_dir / "AAA"
    leftovers = [entry.name for entry in folder.iterdir() if entry.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and version_id(1) in leftovers[0]
    # The registry holds whole versions only: each of them passes its manifest check.
    assert registry.version_ids("AAA") == [version_id(n) for n in (2, 3, 4, 5, 6, 7, 8)]
    for version in registry.version_ids("AAA"):
        registry.get("AAA", version)
    assert registry.champion("AAA").version == version_id(5)

    (outcome,) = prune(settings, None, keep=0)
    assert [entry["version"] for entry in outcome.deleted] == [version_id(n) for n in (4, 6, 7, 8)]
    assert sorted(entry.name for entry in folder.iterdir()) == sorted(
        [version_id(2), version_id(3), version_id(5), "champion.json"]
    )


# --- the command ------------------------------------------------------------------


def test_cli_prune_prints_the_deletions_and_the_bytes_freed(run, registry):
    size = on_disk(registry.models_dir / "AAA" / version_id(1))
    result = run("models", "prune", "--keep", "4", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        f"AAA: would delete 1 version, {size / 1000:.1f} kB ({size:,} bytes) to free; kept 4 "
        f"newest others (--keep 4) and protected: {version_id(2)} (forecast pending), "
        f"{version_id(3)} (previous champion), {version_id(5)} (champion)"
    )
    assert lines[1] == f"  would delete {version_id(1)}  {size / 1000:.1f} kB ({size:,} bytes)"
    assert registry.version_ids("AAA")[0] == version_id(1)

    result = run("models", "prune", "--ticker", "aaa", "--keep", "4", "--format", "json")
    assert result.exit_code == 0, result.output
    (payload,) = json.loads(result.output)
    assert payload["deleted"] == [{"version": version_id(1), "bytes": size}]
    assert payload["bytes_freed"] == size and payload["dry_run"] is False
    assert registry.version_ids("AAA")[0] == version_id(2)


def test_cli_prune_errors_are_one_line(run, registry, settings):
    result = run("models", "prune", "--ticker", "ZZZ", "--keep", "1")
    assert result.exit_code == 1
    assert result.output.startswith("error: no model versions of ZZZ under ")
    assert "see `forecast models list`" in result.output
    assert len(result.output.strip().splitlines()) == 1

    with nightly_lock(settings.lock_path):
        result = run("models", "prune", "--keep", "1")
    assert result.exit_code == 1
    assert result.output.startswith("error: another nightly run holds ")
    assert len(registry.version_ids("AAA")) == 8

    result = run("models", "prune", "--keep", "-1")
    assert result.exit_code == 2
    assert "'-1' is not a count; expected a whole number from 0 to 100000" in result.output


def test_a_corrupt_champion_pointer_anywhere_deletes_nothing(run, registry):
    save(registry, 1, "BBB")
    save(registry, 2, "BBB")
    (registry.models_dir / "BBB" / "champion.json").write_text("{not json")
    result = run("models", "prune", "--keep", "0")
    assert result.exit_code == 1
    assert result.output.startswith("error: champion pointer ")
    assert "is corrupt" in result.output and len(result.output.strip().splitlines()) == 1
    assert len(registry.version_ids("AAA")) == 8 and len(registry.version_ids("BBB")) == 2


def test_nightly_keep_takes_a_number_or_all(run):
    result = run("nightly", "--tickers", "AAA", "--keep", "many")
    assert result.exit_code == 2
    assert "'many' is not a count; expected a whole number from 0 to 100000, or all" in (
        result.output
    )


KEEPS = {
    "nightly": ("nightly", "--tickers", "AAA"),
    "models prune": ("models", "prune"),
    "report": ("report",),
}


@pytest.mark.parametrize("value", ["-3", "many", "1.5", ""])
@pytest.mark.parametrize("command", list(KEEPS))
def test_every_keep_refuses_a_bad_count_with_the_same_message(run, command, value):
    """nightly, models prune and report --keep: one type, one rule, one message (they were
    "N|all" unbounded, an integer 0-100000 and an integer 1-100000, each worded its own way)."""
    result = run(*KEEPS[command], "--keep", value)
    assert result.exit_code == 2, result.output
    assert (
        f"Error: Invalid value for '--keep': {value!r} is not a count; expected a whole "
        "number from 0 to 100000"
    ) in result.stderr


def test_models_prune_keep_all_is_a_usage_error_saying_why(run, registry):
    result = run("models", "prune", "--keep", "all")
    assert result.exit_code == 2
    assert "'all' would keep every version, so there is nothing to prune" in result.stderr
    assert len(registry.version_ids("AAA")) == 8


def test_a_keep_above_the_bound_still_works_with_a_deprecation_warning(run, registry):
    """nightly --keep took any count; above 100000 it still works, with a warning."""
    result = run("models", "prune", "--keep", "200000", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "warning: --keep 200000 is above 100000, the most --keep takes; it still works but "
        "will become an error: pass --keep 100000\n"
    )
    assert "would delete 0 versions" in result.stdout
    # nightly parses it too (then stops at the missing --csv-dir: exit 1, not a usage error)
    result = run("nightly", "--tickers", "AAA", "--source", "csv", "--keep", "200000")
    assert result.exit_code == 1
    assert "pass --keep all to keep everything" in result.stderr.splitlines()[0]


def test_nightly_keep_default_matches_the_library():
    from forecaster.cli.jobs import DEFAULT_NIGHTLY_KEEP
    from forecaster.jobs.retention import DEFAULT_NIGHTLY_KEEP as LIBRARY_DEFAULT

    assert DEFAULT_NIGHTLY_KEEP == LIBRARY_DEFAULT


# --- nightly --keep -------------------------------------------------------------------


def test_nightly_keep_prunes_the_tickers_it_ran_at_the_end_of_each_run(home, monkeypatch):
    """Four nights, each promoting a new challenger, with keep=0: from the third night on
    the oldest version goes; the champion, the previous one and the pending forecast stay."""
    settings = Settings.resolve(home)
    csv_dir = home / "csv"
    csv_dir.mkdir()
    prices = make_prices(200, seed=1)
    write_csv(csv_dir / "AAA.csv", prices)
    registry = ModelRegistry(settings.models_dir)
    saved: list[str] = []

    def stand_in(registry: ModelRegistry, ticker: str) -> str:
        saved.append(save(registry, len(saved) + 1, ticker))
        return saved[-1]

    monkeypatch.setattr(protocol, "challenge_step", stand_in_challenge(40, stand_in))
    other = save(registry, 90, "BBB")  # a ticker the run does not touch is never pruned
    reports = []
    for day in prices.index[-4:]:
        reports.append(
            run_nightly(
                ["AAA"],
                settings=settings,
                source="csv",
                csv_dir=csv_dir,
                as_of=f"{day:%Y-%m-%d}",
                window_days=40,
                keep=0,
            )
        )
        assert reports[-1].records[0]["status"] == "ok"
    deleted = [[entry["version"] for entry in r.pruned[0]["deleted"]] for r in reports]
    assert deleted == [[], [], [saved[0]], [saved[1]]]
    assert registry.version_ids("AAA") == saved[2:]
    assert reports[-1].pruned[0]["protected"] == {
        saved[2]: ["previous champion"],
        saved[3]: ["champion", "forecast pending"],
    }
    assert reports[-1].to_dict()["pruned"] == reports[-1].pruned
    assert registry.version_ids("BBB") == [other]
