"""Shared-nothing nightly: the task needs no data home; the driver alone writes.

The task (:func:`run_challenge`) is run here on a pickled job while the
driver's home is renamed away and ``Settings.resolve`` refuses to run, in an
empty working folder. The registry's ``add_files`` (how the driver stores a
challenger a worker trained) and the TLS options are tested without
TensorFlow; the TLS round trip uses an in-process Dask cluster on ``tls://``
with certificates made by ``openssl``.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import types

import pytest

from forecaster.errors import ConfigError, RegistryError
from forecaster.jobs import nightly, protocol
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.nightly import (
    TickerTask,
    commit_step,
    prepare_job,
    run_challenge,
    run_nightly,
    tls_security,
)
from forecaster.jobs.record import RunRecord
from forecaster.models.registry import ModelRegistry, new_version_id
from forecaster.settings import Settings
from tests.conftest import fake_record, make_prices, stand_in_challenge, write_csv

WINDOW = 40


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def stand_in(registry: ModelRegistry, ticker: str = "AAA") -> str:
    version = new_version_id("zeros")
    registry.save(fake_record(ticker, version), lambda path: path.write_bytes(b"weights"), False)
    return version


# --- the task -------------------------------------------------------------------------


def test_the_task_runs_without_the_data_home_and_the_driver_commits(tmp_path, monkeypatch):
    """With the stand-in challenge step (no TensorFlow); the slow test in test_cluster.py
    trains real models on workers that have no home."""
    monkeypatch.setattr(protocol, "challenge_step", stand_in_challenge(WINDOW, stand_in))
    home, csv_dir = tmp_path / "home", tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "AAA.csv", make_prices(200, seed=1))
    nights = [f"{day:%Y-%m-%d}" for day in make_prices(200, seed=1).index[-2:]]
    settings = Settings.resolve(home)
    (first,) = run_nightly(
        ["AAA"],
        settings=settings,
        source="csv",
        csv_dir=csv_dir,
        as_of=nights[0],
        window_days=WINDOW,
    ).records
    assert first["status"] == "ok", first["error"]

    # Night 2, by hand: the driver prepares the job (prices + champion files as bytes).
    registry, history = ModelRegistry(settings.models_dir), ForecastHistory(settings.forecasts_db)
    task = TickerTask(
        "AAA", source="csv", csv_path=str(csv_dir / "AAA.csv"), as_of=nights[1], window_days=WINDOW
    )
    job = prepare_job(task, settings, registry, history, RunRecord("AAA", as_of=nights[1]))
    assert job.champion.version == first["champion_version"]
    assert job.data.cache_path is None
    travelled = pickle.loads(pickle.dumps(job))  # what a Dask worker receives

    # The task somewhere else: no home, no CSV, an empty working folder.
    before = snapshot(home)
    hidden = tmp_path / "hidden"
    home.rename(hidden)
    csv_dir.rename(tmp_path / "csv-hidden")
    worker = tmp_path / "worker"
    worker.mkdir()
    monkeypatch.chdir(worker)
    monkeypatch.setenv("FORECAST_HOME", str(tmp_path / "absent"))

    def no_settings(*args, **kwargs):
        raise AssertionError("the task resolved a data home")

    monkeypatch.setattr(Settings, "resolve", no_settings)
    result = run_challenge(travelled)
    assert result.succeeded, result.record.error
    assert not home.exists() and not (tmp_path / "absent").exists()
    assert list(worker.iterdir()) == []
    hidden.rename(home)
    assert snapshot(home) == before  # the task wrote nothing of the driver's

    record = result.record
    assert record.previous_champion == first["champion_version"]
    assert set(result.challenger) == {"model.keras", "meta.json", "manifest.json"}
    assert record.challenger_version not in registry.version_ids("AAA")  # not stored yet

    committed = commit_step(task, result, registry, history, lambda: 1.0)
    assert (committed.status, committed.decision) == ("ok", "promoted")
    assert registry.get("AAA", record.challenger_version).verified
    assert registry.champion_id("AAA") == committed.champion_version
    issued = history.forecasts("AAA")
    assert [row["origin"] for row in issued] == nights
    assert issued[-1]["variance"] == committed.variance
    assert [run["status"] for run in history.runs("AAA")] == ["ok", "ok"]


def test_a_task_failure_is_recorded_by_the_driver_and_changes_nothing(tmp_path, monkeypatch):
    settings = Settings.resolve(tmp_path / "home")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "AAA.csv", make_prices(200, seed=1))

    def broken(task, data, registry, record):
        raise RuntimeError("the worker's disk is full")

    monkeypatch.setattr(protocol, "challenge_step", broken)
    (record,) = run_nightly(
        ["AAA"], settings=settings, source="csv", csv_dir=csv_dir, window_days=WINDOW
    ).records
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: the worker's disk is full"
    assert not settings.models_dir.exists()
    (run,) = ForecastHistory(settings.forecasts_db).runs("AAA")
    assert run["status"] == "failed" and run["error"] == record["error"]


def test_a_task_lost_with_its_workers_fails_cleanly(tmp_path, monkeypatch):
    """What the driver does when Dask gives up on a task (KilledWorker): a failed record
    that says why, recorded in the history; the champion and the registry untouched."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(protocol, "challenge_step", stand_in_challenge(WINDOW, stand_in))
    settings = Settings.resolve(tmp_path / "home")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "AAA.csv", make_prices(200, seed=1))
    nights = [f"{day:%Y-%m-%d}" for day in make_prices(200, seed=1).index[-2:]]
    options = {"settings": settings, "source": "csv", "csv_dir": csv_dir, "window_days": WINDOW}
    (first,) = run_nightly(["AAA"], as_of=nights[0], **options).records
    models_before = snapshot(settings.models_dir)

    class LosesEveryTask(nightly._InProcess):
        def results(self):
            for index, _ in super().results():
                yield index, self.lost

        @staticmethod
        def lost():
            last = types.SimpleNamespace(address="tcp://10.0.0.7:4000")
            raise distributed.KilledWorker("nightly-AAA-0", last, 1)

    monkeypatch.setattr(nightly, "_InProcess", LosesEveryTask)
    (record,) = run_nightly(["AAA"], as_of=nights[1], **options).records
    assert record["status"] == "failed" and record["decision"] is None
    assert record["error"] == (
        "the Dask workers running AAA's task died while running it, and it was re-run as often "
        "as the scheduler allows (distributed.scheduler.allowed-failures = 1; last worker "
        "tcp://10.0.0.7:4000); check the workers' memory and logs. Nothing was written for this "
        "ticker"
    )
    assert record["champion_version"] == record["previous_champion"] == first["champion_version"]
    assert snapshot(settings.models_dir) == models_before
    history = ForecastHistory(settings.forecasts_db)
    assert [run["status"] for run in history.runs("AAA")] == ["ok", "failed"]
    assert len(history.forecasts("AAA")) == 1


# --- the registry takes a version as bytes ---------------------------------------------


def test_add_files_stores_a_version_sent_as_bytes(tmp_path):
    worker, driver = ModelRegistry(tmp_path / "worker"), ModelRegistry(tmp_path / "driver")
    version = stand_in(worker)
    files = worker.version_files("AAA", version)
    saved = driver.add_files("AAA", version, files)
    assert saved.verified and driver.version_ids("AAA") == [version]
    assert driver.version_files("AAA", version) == files
    with pytest.raises(RegistryError, match=r"already exists; retry to get a new id"):
        driver.add_files("AAA", version, files)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model.keras": b"weights, damaged"}, r"model file .* does not match the manifest"),
        ({"manifest.json": None}, r"arrived with files \['meta.json', 'model.keras'\]; expected"),
    ],
)
def test_add_files_refuses_damaged_files_and_leaves_nothing(tmp_path, change, message):
    worker, driver = ModelRegistry(tmp_path / "worker"), ModelRegistry(tmp_path / "driver")
    version = stand_in(worker)
    files = worker.version_files("AAA", version) | change
    files = {name: payload for name, payload in files.items() if payload is not None}
    with pytest.raises(RegistryError, match=message):
        driver.add_files("AAA", version, files)
    leftovers = list((tmp_path / "driver").rglob("*"))
    assert all(path.is_dir() for path in leftovers)  # at most the empty ticker folder


def test_add_files_under_another_version_id_is_refused(tmp_path):
    worker, driver = ModelRegistry(tmp_path / "worker"), ModelRegistry(tmp_path / "driver")
    version = stand_in(worker)
    with pytest.raises(RegistryError, match=r"belongs to AAA version .*: the folder was copied"):
        driver.add_files(
            "AAA", "20260101T000000-zeros-000000", worker.version_files("AAA", version)
        )


# --- TLS ------------------------------------------------------------------------------


def test_a_tls_scheduler_needs_all_three_files(run, tmp_path, monkeypatch):
    for name in ("FORECAST_TLS_CA", "FORECAST_TLS_CERT", "FORECAST_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = run(
        "nightly", "--tickers", "AAA", "--scheduler", "tls://127.0.0.1:1", "--tls-ca", "ca.pem"
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: --scheduler tls://127.0.0.1:1 needs --tls-cert ($FORECAST_TLS_CERT), --tls-key "
        "($FORECAST_TLS_KEY): the CA certificate that signed the scheduler's, and this client's "
        "certificate and private key (PEM files)\n"
    )
    monkeypatch.setenv("FORECAST_TLS_CERT", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("FORECAST_TLS_KEY", str(tmp_path / "key.pem"))
    with pytest.raises(ConfigError, match=r"--tls-ca 'ca.pem' is not a readable file"):
        tls_security("tls://127.0.0.1:1", tls_ca="ca.pem")
    with pytest.raises(
        ConfigError,
        match=r"--tls-cert, --tls-key \(or \$FORECAST_TLS_\*\) given "
        r"with --scheduler tcp://h:8786; certificates are used only with a tls://",
    ):
        tls_security("tcp://h:8786")
    with pytest.raises(ConfigError, match=r"given with a local cluster; certificates are used"):
        tls_security(None)
    monkeypatch.delenv("FORECAST_TLS_CERT")
    monkeypatch.delenv("FORECAST_TLS_KEY")
    assert tls_security(None) is None and tls_security("tcp://h:8786") is None


def make_certificates(folder) -> dict[str, str]:
    """A throw-away CA and one certificate it signed (for scheduler, worker and client)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, request = folder / "cert.pem", folder / "key.pem", folder / "cert.csr"
    extensions = folder / "extensions.cnf"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1\nauthorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    for command in (
        f"req -x509 -newkey rsa:2048 -nodes -keyout {ca_key} -out {ca} -days 2 -subj /CN=test-ca "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        f"req -newkey rsa:2048 -nodes -keyout {key} -out {request} -subj /CN=127.0.0.1",
        f"x509 -req -in {request} -CA {ca} -CAkey {ca_key} -CAcreateserial -out {cert} -days 2 "
        f"-extfile {extensions}",
    ):
        subprocess.run(["openssl", *command.split()], check=True, capture_output=True)
    return {"ca": str(ca), "cert": str(cert), "key": str(key)}


def test_a_nightly_run_over_tls(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    files = make_certificates(tmp_path)
    settings = Settings.resolve(tmp_path / "home")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "AAA.csv", make_prices(200, seed=1))
    # In-process workers (threads) see the stand-in challenge step: no TensorFlow.
    monkeypatch.setattr(protocol, "challenge_step", stand_in_challenge(WINDOW, stand_in))
    security = distributed.Security(
        tls_ca_file=files["ca"],
        tls_scheduler_cert=files["cert"],
        tls_scheduler_key=files["key"],
        tls_worker_cert=files["cert"],
        tls_worker_key=files["key"],
        tls_client_cert=files["cert"],
        tls_client_key=files["key"],
        require_encryption=True,
    )
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tls",
        security=security,
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        report = run_nightly(
            ["AAA"],
            settings=settings,
            source="csv",
            csv_dir=csv_dir,
            window_days=WINDOW,
            scheduler=address,
            tls_ca=files["ca"],
            tls_cert=files["cert"],
            tls_key=files["key"],
            isolate=False,  # the stand-in step lives in this process; a child would not see it
        )
    (record,) = report.records
    assert report.fan_out == f"dask {address}"
    assert record["status"] == "ok" and record["decision"] == "first", record["error"]
    assert record["worker"].startswith("tls://127.0.0.1:")
    registry = ModelRegistry(settings.models_dir)
    assert registry.champion_id("AAA") == record["champion_version"]
    pointer = json.loads((settings.models_dir / "AAA" / "champion.json").read_text())
    assert pointer["reason"].startswith("nightly: first champion")
    assert [row["model_version"] for row in ForecastHistory(settings.forecasts_db).forecasts()] == [
        record["champion_version"]
    ]
