"""Hostile state (issue 11): tampered files, kills mid-run, broken pointers, leftovers.

One test per finding, each checking the clean outcome (exit code, exactly one
``error:`` line, no traceback, nothing changed on disk), and the crash-injection
test: a nightly run (and a save) is killed with ``os._exit`` at every
persistence step in turn, in a forked child, and the next run must leave the
champion pointer and the history in agreement, with no half-written version.
The nightly runs use a stand-in challenge step (no TensorFlow); one tiny LSTM is
trained per module for the tests that forecast.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from forecaster.errors import ModelError
from forecaster.jobs import protocol, recovery
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.nightly import Challenge, run_nightly
from forecaster.models.registry import ModelRegistry, new_version_id
from forecaster.settings import Settings
from tests.conftest import TINY, fake_record, make_prices, run_cli, stand_in_challenge, write_csv
from tests.contract import checked

FIXTURES = Path(__file__).parent / "fixtures" / "models_0_1"
WINDOW = 40
KILLED = 86  # exit status of a child killed by the kill switch


# --- helpers --------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: content hash and modification time."""
    return {
        str(path.relative_to(root)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_one_error(result, *parts: str) -> str:
    """Exit 1, nothing on stdout, exactly one ``error:`` line holding every part."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


#: Called before and after each stand-in model write: the kill switch hooks in here.
_step = lambda: None  # noqa: E731


def write_stand_in(path: Path) -> None:
    _step()
    path.write_bytes(b"stand-in weights")
    _step()


def stand_in(registry: ModelRegistry, ticker: str) -> str:
    version = new_version_id("zeros")
    registry.save(fake_record(ticker, version), write_stand_in, False)
    return version


@pytest.fixture
def perfect_challenger(monkeypatch):
    """The challenge step replaced: a stand-in version forecasting the target exactly, against
    a champion forecasting twice the target, so the challenger is promoted (no TensorFlow)."""

    challenge_step = stand_in_challenge(WINDOW, stand_in)

    monkeypatch.setattr(protocol, "challenge_step", challenge_step)
    monkeypatch.setattr(protocol, "_clear_session", lambda: None)  # no Keras in forked children


def nightly_home(root: Path) -> tuple[Settings, Path, list[str]]:
    """A data home with AAA's prices as a CSV; the last two dates to replay."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "csv").mkdir(exist_ok=True)
    prices = make_prices(200, seed=1)
    write_csv(root / "csv" / "AAA.csv", prices)
    return Settings.resolve(root), root / "csv", [f"{day:%Y-%m-%d}" for day in prices.index[-2:]]


def run_night(settings: Settings, csv_dir: Path, as_of: str):
    return run_nightly(
        ["AAA"], settings=settings, source="csv", csv_dir=csv_dir, as_of=as_of, window_days=WINDOW
    )


# --- the kill switch ------------------------------------------------------------------


def _install_kill_switch(at: int) -> None:
    """In a forked child: die (``os._exit``, no cleanup of any kind) at the ``at``-th step.

    The steps are before and after every ``os.replace`` (each atomic file write and the
    rename of a saved version), every history commit and every model-file write.
    """
    global _step
    count = iter(range(1, 1_000_000))

    def step() -> None:
        if next(count) == at:
            os._exit(KILLED)

    real_replace = os.replace

    def replace(source, destination, **kwargs):
        step()
        real_replace(source, destination, **kwargs)
        step()

    real_transaction = ForecastHistory.transaction

    @contextlib.contextmanager
    def transaction(self):
        with real_transaction(self) as connection:
            yield connection
            step()  # the body is written, not committed
        step()  # committed

    os.replace = replace
    ForecastHistory.transaction = transaction
    _step = step


def killed_at(step: int, action) -> bool:
    """Run ``action`` in a forked child killed at its ``step``-th persistence step.

    Returns True if the child was killed there, False if ``action`` finished first.
    """
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 0
        try:
            _install_kill_switch(step)
            action()
        except BaseException:  # noqa: BLE001 - reported through the exit status
            code = 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the child killed at step {step} hung")
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, KILLED), f"the child run at step {step} failed (exit {code})"
    return code == KILLED


def history_runs(settings: Settings) -> list[dict]:
    return ForecastHistory(settings.forecasts_db).runs("AAA")


def pointer_version(settings: Settings) -> str | None:
    return ModelRegistry(settings.models_dir).champion_id("AAA")


def leftovers(settings: Settings) -> list[str]:
    folders = [settings.prices_dir, *settings.models_dir.glob("*/")]
    return [
        entry.name
        for folder in folders
        if folder.is_dir()
        for entry in folder.iterdir()
        if entry.name.startswith(".tmp-") or entry.name.endswith(".tmp")
    ]


def assert_no_partial_version(settings: Settings, ticker: str = "AAA") -> None:
    """Every visible version is complete and passes its manifest."""
    registry = ModelRegistry(settings.models_dir)
    for version in registry.version_ids(ticker):
        assert registry.get(ticker, version).verified


def assert_agree(settings: Settings, ticker: str = "AAA") -> None:
    """Champion pointer and history agree, nothing is pending, nothing is left over."""
    registry = ModelRegistry(settings.models_dir)
    history = ForecastHistory(settings.forecasts_db)
    assert history.pending_promotions() == []
    assert leftovers(settings) == []
    assert_no_partial_version(settings, ticker)
    champion = registry.champion_id(ticker)
    ok = [run for run in history.runs(ticker) if run["status"] == "ok"]
    promotions = [run for run in ok if run["decision"] in ("first", "promoted")]
    if champion is None:
        assert promotions == []
    else:  # the pointer is the latest committed promotion, and the latest run's champion
        assert registry.get(ticker, champion).verified
        assert promotions and promotions[-1]["champion_version"] == champion
        assert ok[-1]["champion_version"] == champion
    # every committed run issued its forecast, and no forecast lacks its run
    issued = {(row["origin"], row["model_version"]) for row in history.forecasts(ticker)}
    assert issued == {(run["origin"], run["champion_version"]) for run in ok}


# --- finding 4: a kill at any point of nightly or a save ---------------------------------


@pytest.mark.parametrize("scenario", ["first champion", "promotion"])
def test_a_kill_at_every_persistence_step_is_reconciled_by_the_next_run(
    tmp_path, perfect_challenger, scenario
):
    template, csv_dir, dates = nightly_home(tmp_path / "template")
    if scenario == "promotion":
        assert run_night(template, csv_dir, dates[0]).records[0]["decision"] == "first"
        assert_agree(template)
    as_of = dates[-1]
    step = 0
    while True:
        step += 1
        home = tmp_path / f"step{step}"
        shutil.copytree(template.home, home)
        settings = Settings.resolve(home)
        before = ModelRegistry(settings.models_dir).pointer_bytes("AAA")
        if not killed_at(step, functools.partial(run_night, settings, home / "csv", as_of)):
            break  # the run finished: every step before this one was a kill point
        assert_no_partial_version(settings)
        # The next start reconciles: the pointer is back as it was, or the run committed.
        recovery.reconcile(settings)
        assert_agree(settings)
        committed = [run for run in history_runs(settings) if run["as_of"] == as_of]
        assert [run["status"] for run in committed] in ([], ["ok"], ["failed"])
        if committed != [] and committed[0]["status"] == "ok":
            assert pointer_version(settings) == committed[0]["champion_version"]
        else:
            assert ModelRegistry(settings.models_dir).pointer_bytes("AAA") == before
        # ... and the run itself goes through (or is skipped: it had committed).
        (record,) = run_night(settings, home / "csv", as_of).records
        done = bool(committed) and committed[0]["status"] == "ok"
        assert record["status"] == ("unchanged" if done else "ok"), record["error"]
        assert_agree(settings)
        shutil.rmtree(home)
    # the uninterrupted run (the last child) completed
    assert [run["status"] for run in history_runs(settings) if run["as_of"] == as_of] == ["ok"]
    assert_agree(settings)
    assert step > 10  # cache write, version save (3 files + rename), intent, pointer, commit


def test_a_kill_between_the_champion_move_and_the_commit_is_rolled_back(
    tmp_path, perfect_challenger
):
    """The probe: champion.json moved, the history transaction not committed."""
    settings, csv_dir, dates = nightly_home(tmp_path)
    first = run_night(settings, csv_dir, dates[0]).records[0]["champion_version"]
    pointer = settings.models_dir / "AAA" / "champion.json"

    def kill_after_the_move():
        real = ModelRegistry.promote

        def promote(self, *args, **kwargs):
            real(self, *args, **kwargs)
            os._exit(KILLED)  # the pointer moved; the runs/forecasts rows are not committed

        ModelRegistry.promote = promote
        run_night(settings, csv_dir, dates[1])

    assert killed_at(10**6, kill_after_the_move)
    assert json.loads(pointer.read_bytes())["version"] != first  # the inconsistent state
    (interrupted,) = ForecastHistory(settings.forecasts_db).pending_promotions()

    report = run_night(settings, csv_dir, dates[1])
    (note,) = report.recovered
    assert note.startswith("AAA: a nightly run (as of ") and "was rolled back" in note
    runs = ForecastHistory(settings.forecasts_db).runs("AAA")
    assert [(run["status"], run["decision"]) for run in runs] == [
        ("ok", "first"),
        ("failed", None),  # the interrupted run, recorded as such
        ("ok", "promoted"),  # the next run did it again, properly
    ]
    assert runs[1]["challenger_version"] == interrupted["version"]
    assert "interrupted before its history commit" in runs[1]["error"]
    assert runs[2]["previous_champion"] == first  # it started from the rolled-back pointer
    assert_agree(settings)


def test_a_kill_at_every_step_of_a_save_leaves_a_complete_version_or_none(tmp_path):
    """What ``forecast train`` writes: the version folder, then the pointer."""
    template = ModelRegistry(tmp_path / "template" / "models")
    template.save(fake_record("AAA", "v1"), write_stand_in, promote=True)
    step = 0
    while True:
        step += 1
        home = tmp_path / f"step{step}"
        shutil.copytree(template.models_dir, home / "models")
        registry = ModelRegistry(home / "models")
        save = functools.partial(registry.save, fake_record("AAA", "v2"), write_stand_in, True)
        if not killed_at(step, save):
            break
        assert_no_partial_version(Settings.resolve(home))
        assert registry.version_ids("AAA") in (["v1"], ["v1", "v2"])
        champion = registry.champion("AAA")  # the pointer always names a complete version
        assert champion.version in registry.version_ids("AAA") and champion.verified
        registry.save(fake_record("AAA", "v3"), write_stand_in, promote=False)  # the next save
        assert leftovers(Settings.resolve(home)) == []
        shutil.rmtree(home)
    assert registry.champion("AAA").version == "v2"
    assert step > 8  # model write, meta, manifest, rename, pointer: before and after each


# --- finding 2: tampered files are errors ---------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A home holding one tiny LSTM trained on SPY prices from a CSV (once per module)."""
    from forecaster.data.loader import load_prices
    from forecaster.models.lstm_forecaster import train

    root = tmp_path_factory.mktemp("trained")
    write_csv(root / "spy.csv", make_prices(400))
    settings = Settings.resolve(root)
    data = load_prices("SPY", source="csv", csv_path=root / "spy.csv", settings=settings)
    outcome = train(data, TINY, ModelRegistry(settings.models_dir))
    return root, outcome.version.version


@pytest.fixture
def model_home(trained, home) -> tuple[Path, str]:
    """A copy of the trained home as this test's data home."""
    root, version = trained
    shutil.copytree(root, home, dirs_exist_ok=True)
    return home, version


def tamper_cache(path: Path, column: str, row: int, factor: float) -> None:
    """Change one cached value behind the program's back, keeping the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    frame = table.to_pandas()
    frame.iloc[row, frame.columns.get_loc(column)] *= factor
    changed = pa.Table.from_pandas(frame, preserve_index=True)
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), path)


def predict_csv(home: Path, *extra: str):
    return run_cli(
        "predict", "--ticker", "SPY", "--source", "csv", "--csv", str(home / "spy.csv"), *extra
    )


def edit_meta(folder: Path, change) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _scale(factor):
    def change(meta):
        meta["bias_correction"]["scale"] *= factor

    return change


def _horizon(meta):
    meta["config"]["horizon"] = 22


def _swap_model(folder: Path) -> None:
    other = next((FIXTURES / "SPY").iterdir())
    shutil.copyfile(other / "model.keras", folder / "model.keras")


TAMPERING = {
    "scale x100": (lambda folder: edit_meta(folder, _scale(100)), "meta.json", "does not match"),
    "scale NaN": (
        lambda folder: edit_meta(folder, _scale(math.nan)),
        "meta.json",
        "does not match",
    ),
    "horizon 1 -> 22": (lambda folder: edit_meta(folder, _horizon), "meta.json", "does not match"),
    "model.keras swapped": (_swap_model, "model.keras", "does not match"),
    "manifest deleted": (
        lambda folder: (folder / "manifest.json").unlink(),
        "manifest.json",
        "is missing, although",
    ),
}


def test_the_untampered_model_forecasts(model_home):
    home, version = model_home
    result = predict_csv(home, "--format", "json")
    assert result.exit_code == 0, result.output
    (payload,) = checked(result.stdout, "predict")["forecasts"]
    assert payload["model_version"] == version and 0 < payload["vol"] < 1


@pytest.mark.parametrize("how", list(TAMPERING))
def test_a_tampered_model_version_is_one_error_naming_the_file(model_home, how):
    home, version = model_home
    tamper, file_name, what = TAMPERING[how]
    folder = home / "models" / "SPY" / version
    tamper(folder)
    before = snapshot(home)
    result = predict_csv(home)
    assert_one_error(
        result,
        f"'{folder / file_name}' {what}",
        f"delete '{folder}'",
        "`forecast models promote VERSION --ticker SPY`",
        "`forecast train --ticker SPY`",
    )
    assert snapshot(home) == before
    listed = run_cli("models", "list", "--format", "json")  # still visible, flagged corrupt
    (row,) = json.loads(listed.stdout)
    assert row["version"] == version and row["champion"] and file_name in row["error"]


def test_a_tampered_price_cache_is_one_error_and_its_repair_works(model_home):
    home, _ = model_home
    assert run_cli("fetch", "--ticker", "SPY", "--source", "sample").exit_code == 0
    reference = run_cli("predict", "--ticker", "SPY", "--source", "sample", "--format", "json")
    assert reference.exit_code == 0, reference.output
    cache = home / "data" / "prices" / "SPY.sample.parquet"
    tamper_cache(cache, "high", -5, 1.5)  # one high x1.5: a valid row, a different forecast
    before = snapshot(home)
    result = run_cli("predict", "--ticker", "SPY", "--source", "sample")
    assert_one_error(
        result,
        f"price cache '{cache}' does not match its fingerprint",
        "`forecast fetch --ticker SPY --source sample --refresh`",
    )
    assert snapshot(home) == before
    repaired = run_cli("fetch", "--ticker", "SPY", "--source", "sample", "--refresh")
    assert repaired.exit_code == 0, repaired.output
    again = run_cli("predict", "--ticker", "SPY", "--source", "sample", "--format", "json")
    assert json.loads(again.stdout) == json.loads(reference.stdout)


def test_a_forecast_that_is_not_finite_is_never_printed(model_home, monkeypatch):
    from forecaster.models.lstm_forecaster import LSTMForecaster

    home, version = model_home
    monkeypatch.setattr(
        LSTMForecaster, "_predict", lambda self, dataset, rows: np.full(len(rows), np.nan)
    )
    assert_one_error(
        predict_csv(home), f"model {version} gave no usable forecast", "(daily variance nan)"
    )


def test_a_forecast_that_is_not_finite_is_never_stored(tmp_path):
    history = ForecastHistory(tmp_path / "forecasts.sqlite")
    row = {
        "ticker": "SPY",
        "origin": "2018-06-01",
        "horizon": 1,
        "model_version": "v1",
        "estimator": "garman-klass",
        "estimator_window": 22,
        "source": "csv",
    }
    for variance in (math.nan, math.inf, -1e-4, 0.0):
        with pytest.raises(ModelError, match=r"has variance .*; expected a finite number > 0"):
            with history.transaction() as connection:
                history.insert_forecast(connection, {**row, "variance": variance, "vol": 0.2})
    with pytest.raises(ModelError, match=r"has vol nan"):
        with history.transaction() as connection:
            history.insert_forecast(connection, {**row, "variance": 1e-4, "vol": math.nan})
    assert history.forecasts() == []


def test_nightly_never_issues_a_forecast_that_is_not_finite(
    tmp_path, perfect_challenger, monkeypatch
):
    settings, csv_dir, dates = nightly_home(tmp_path)
    real = protocol.challenge_step

    def nan_at_the_end(task, data, registry, record):
        challenge = real(task, data, registry, record)
        forecasts = challenge.challenger_forecasts.copy()
        forecasts.iloc[-1] = np.nan
        return Challenge(**{**challenge.__dict__, "challenger_forecasts": forecasts})

    monkeypatch.setattr(protocol, "challenge_step", nan_at_the_end)
    (record,) = run_night(settings, csv_dir, dates[0]).records
    assert record["status"] == "failed" and "gave no usable forecast" in record["error"]
    assert ForecastHistory(settings.forecasts_db).forecasts() == []
    assert ModelRegistry(settings.models_dir).champion_id("AAA") is None


def test_versions_saved_before_manifests_still_load_unchecked(home, run):
    shutil.copytree(FIXTURES, home / "models")
    registry = ModelRegistry(home / "models")
    for version in registry.version_ids("SPY"):
        loaded = registry.get("SPY", version)
        assert not loaded.verified and loaded.record.format == 1
    result = run("models", "list", "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    assert [row["manifest"] for row in json.loads(result.stdout)] == [False, False]


# --- finding 6: a corrupt champion.json can be seen and repaired ---------------------


def test_a_corrupt_champion_pointer_is_listed_and_promote_repairs_it(home, run):
    registry = ModelRegistry(home / "models")
    registry.save(fake_record("SPY", "v1"), write_stand_in, promote=True)
    registry.save(fake_record("SPY", "v2"), write_stand_in, promote=False)
    pointer = home / "models" / "SPY" / "champion.json"
    pointer.write_text('{"version": ')  # a torn write by some other tool
    before = snapshot(home)

    advice = assert_one_error(
        run("predict", "--ticker", "SPY"),
        f"champion pointer '{pointer}' is corrupt (JSONDecodeError)",
        "repair it with `forecast models promote VERSION --ticker SPY`",
        "`forecast models list --ticker SPY`",
    )
    assert snapshot(home) == before

    listed = run("models", "list", "--ticker", "SPY")
    assert listed.exit_code == 0
    assert [line.split()[:2] for line in listed.stdout.splitlines()[1:]] == [
        ["SPY", "v1"],
        ["SPY", "v2"],
    ]  # both versions, no champion marked
    assert listed.stderr == f"warning: {advice.removeprefix('error: ')}\n"
    assert snapshot(home) == before

    repaired = run("models", "promote", "v2", "--ticker", "SPY")
    assert repaired.exit_code == 0, repaired.output
    assert repaired.stdout == "SPY: champion is now v2 (was a corrupt champion pointer)\n"
    listed = run("models", "list", "--ticker", "SPY")
    assert listed.stderr == "" and listed.stdout.splitlines()[2].startswith("* SPY      v2")
    assert registry.champion("SPY").version == "v2"


# --- finding 8: leftovers of a killed save are removed by the next one -----------------


def test_a_killed_save_leaves_a_staging_folder_that_the_next_save_removes(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    registry.save(fake_record("SPY", "v1"), write_stand_in, promote=True)
    folder = registry.models_dir / "SPY"
    # killed after the model file is written, inside the staging folder
    assert killed_at(2, lambda: registry.save(fake_record("SPY", "v2"), write_stand_in, True))
    (stale,) = [p for p in folder.iterdir() if p.name.startswith(".tmp-v2-")]
    assert (stale / "model.keras").exists() and registry.version_ids("SPY") == ["v1"]
    old_release = folder / ".tmp-20260101T000000-zeros-a1b2c3-d4e5f6"  # 0.1's naming
    old_release.mkdir()
    os.utime(old_release, (0, 0))
    from forecaster.files import temporary_name

    live = folder / temporary_name("v9", "abcdef")  # a save in progress in this process
    live.mkdir()

    registry.save(fake_record("SPY", "v3"), write_stand_in, promote=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [live.name, "champion.json", "v1", "v3"]
    )
    assert registry.champion("SPY").version == "v3"
