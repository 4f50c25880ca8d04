"""The registry owns promotion and its rollback; nightly issues through it.

``ModelRegistry.promoting`` is tested on a registry of stand-in versions (no
TensorFlow). The nightly tests swap the challenge step — the only step that
touches the model layer — for a stand-in, so they run the real load, decide and
issue steps in well under a second.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest

from forecaster.errors import RegistryError
from forecaster.jobs import protocol
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.nightly import run_nightly
from forecaster.models.registry import ModelRegistry, new_version_id
from forecaster.settings import Settings
from tests.conftest import fake_record, make_prices, stand_in_challenge, write_csv

WINDOW = 40


def stand_in(registry: ModelRegistry, ticker: str = "AAA") -> str:
    """Save a version with placeholder files (enough for the registry to accept it)."""
    version = new_version_id("zeros")
    record = fake_record(ticker, version)
    registry.save(record, lambda path: path.write_bytes(b"stand-in"), False)
    return version


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def pointer(registry: ModelRegistry, ticker: str = "AAA"):
    return registry.models_dir / ticker / "champion.json"


# --- ModelRegistry.promoting ---------------------------------------------------------


def test_promoting_moves_the_pointer_for_the_body_and_keeps_it(registry):
    old, new = stand_in(registry), stand_in(registry)
    registry.promote("AAA", old)
    with registry.promoting("AAA", new, reason="nightly: test"):
        assert registry.champion_id("AAA") == new
    assert registry.champion_id("AAA") == new
    assert json.loads(pointer(registry).read_text())["reason"] == "nightly: test"


@pytest.mark.parametrize("failure", [RuntimeError("commit failed"), KeyboardInterrupt()])
def test_a_failing_body_puts_the_previous_pointer_back_byte_for_byte(registry, failure):
    old, new = stand_in(registry), stand_in(registry)
    registry.promote("AAA", old, reason="manual")
    before = pointer(registry).read_bytes()
    with pytest.raises(type(failure)):
        with registry.promoting("AAA", new, reason="nightly"):
            assert registry.champion_id("AAA") == new
            raise failure
    assert pointer(registry).read_bytes() == before
    assert sorted(p.name for p in pointer(registry).parent.iterdir()) == sorted(
        [old, new, "champion.json"]
    )


def test_a_failing_body_leaves_no_pointer_when_there_was_none(registry):
    new = stand_in(registry)
    with pytest.raises(RuntimeError, match="commit failed"):
        with registry.promoting("AAA", new, reason="nightly"):
            assert pointer(registry).exists()
            raise RuntimeError("commit failed")
    assert not pointer(registry).exists()
    assert registry.champion_id("AAA") is None


def test_promoting_a_version_that_does_not_load_changes_nothing(registry):
    old = stand_in(registry)
    registry.promote("AAA", old)
    before = pointer(registry).read_bytes()
    with pytest.raises(RegistryError, match=r"model version 'missing' of AAA not found"):
        with registry.promoting("AAA", "missing", reason="nightly"):
            pytest.fail("the body must not run")
    assert pointer(registry).read_bytes() == before


# --- nightly with a stand-in challenge step -------------------------------------------


@pytest.fixture
def settings(home) -> Settings:
    return Settings.resolve(home)


@pytest.fixture
def csv_dir(home):
    folder = home / "csv"
    folder.mkdir()
    write_csv(folder / "AAA.csv", make_prices(200, seed=1))
    return folder


@pytest.fixture
def dates():
    return [f"{day:%Y-%m-%d}" for day in make_prices(200, seed=1).index[-2:]]


@pytest.fixture
def perfect_challenger(monkeypatch):
    """Replace the challenge step: a new stand-in version that forecasts the target exactly,
    against a champion that forecasts twice the target (so the challenger is promoted)."""

    challenge_step = stand_in_challenge(WINDOW, stand_in)

    monkeypatch.setattr(protocol, "challenge_step", challenge_step)


@pytest.fixture
def fail_next_commit(monkeypatch):
    """Calling it makes the next history transaction fail at its commit, after its body ran."""
    real = ForecastHistory.transaction
    armed: list[Exception] = []

    @contextlib.contextmanager
    def transaction(self):
        with real(self) as connection:
            yield connection
            if armed:
                raise armed.pop()

    monkeypatch.setattr(ForecastHistory, "transaction", transaction)
    return lambda: armed.append(sqlite3.OperationalError("disk I/O error"))


def run(settings, csv_dir, as_of):
    (record,) = run_nightly(
        ["AAA"], settings=settings, source="csv", csv_dir=csv_dir, as_of=as_of, window_days=WINDOW
    ).records
    return record


def test_nightly_promotes_through_the_registry(settings, csv_dir, dates, perfect_challenger):
    first = run(settings, csv_dir, dates[0])
    assert (first["status"], first["decision"]) == ("ok", "first")
    second = run(settings, csv_dir, dates[1])
    assert (second["status"], second["decision"]) == ("ok", "promoted")
    assert second["challenger_qlike"] == 0.0 and second["champion_qlike"] > 0
    registry = ModelRegistry(settings.models_dir)
    assert registry.champion_id("AAA") == second["champion_version"] == second["challenger_version"]
    assert json.loads(pointer(registry).read_text())["reason"] == (
        f"nightly: challenger qlike 0.000000 vs champion {second['champion_qlike']:.6f} on "
        f"{WINDOW} origins; one-sided DM -inf, p 0.0000 < 0.01 "
        f"({second['window_start']}..{second['window_end']})"
    )
    assert second["dm_stat"] is None and second["dm_pvalue"] == 0.0 and second["decision_reason"] == json.loads(
        pointer(registry).read_text()
    )["reason"]
    history = ForecastHistory(settings.forecasts_db)
    assert [row["model_version"] for row in history.forecasts("AAA")] == [
        first["champion_version"],
        second["champion_version"],
    ]


def test_a_failed_commit_leaves_no_first_champion(
    settings, csv_dir, dates, perfect_challenger, fail_next_commit
):
    fail_next_commit()
    record = run(settings, csv_dir, dates[0])
    assert record["status"] == "failed" and record["decision"] is None
    assert record["champion_version"] is None and record["previous_champion"] is None
    assert record["error"] == "OperationalError: disk I/O error"
    assert not pointer(ModelRegistry(settings.models_dir)).exists()
    history = ForecastHistory(settings.forecasts_db)
    assert history.forecasts() == []
    assert [run["status"] for run in history.runs()] == ["failed"]


def test_a_failed_commit_puts_the_champion_back(
    settings, csv_dir, dates, perfect_challenger, fail_next_commit
):
    champion = run(settings, csv_dir, dates[0])["champion_version"]
    registry = ModelRegistry(settings.models_dir)
    before = pointer(registry).read_bytes()
    history = ForecastHistory(settings.forecasts_db)
    forecasts_before = history.forecasts()

    fail_next_commit()
    record = run(settings, csv_dir, dates[1])
    assert (record["status"], record["decision"]) == ("failed", None)
    assert record["champion_version"] == record["previous_champion"] == champion
    assert record["error"] == "OperationalError: disk I/O error"
    assert pointer(registry).read_bytes() == before
    assert history.forecasts() == forecasts_before
    assert [run["status"] for run in history.runs()] == ["ok", "failed"]
    assert record["challenger_version"] in registry.version_ids("AAA")  # kept for the record
