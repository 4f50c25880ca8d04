"""A real Dask cluster on 127.0.0.1: `dask scheduler` and two `dask worker` processes.

Each worker runs in its own empty folder, with its own HOME and FORECAST_HOME
naming a folder that does not exist: it cannot see the driver's data home.
Night 1 runs two tickers through ``--scheduler``; during night 2 one worker is
killed (SIGKILL) while it runs a ticker, whose task the scheduler re-runs on the
other worker (``allowed-failures`` 1, as the README recommends). The test
checks the records, champions, registry and history, and that the workers
wrote nothing of the data home. Every process started here is stopped in a
``finally``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.nightly import run_nightly
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import TINY, make_prices, write_csv

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).parent / "dask"
WINDOW = 40
TICKERS = ("AAA", "BBB")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(**changes: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("FORECAST_HOME", "KERAS_HOME", "MPLCONFIGDIR")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"
    env.update(changes)
    return env


@contextlib.contextmanager
def cluster(tmp_path):
    """Yield (address, {name: (process, folder)}); stop every process on exit."""
    if not DASK.exists():
        pytest.skip(f"no dask command beside {sys.executable}")
    processes: list[subprocess.Popen] = []

    def start(args: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen:
        log = (folder / "log.txt").open("wb")
        process = subprocess.Popen(
            [str(DASK), *args], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        processes.append(process)
        return process

    try:
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        scheduler_dir = tmp_path / "scheduler"
        scheduler_dir.mkdir()
        start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            scheduler_dir,
            environment(HOME=str(scheduler_dir)),
        )
        workers = {}
        for name in ("w1", "w2"):
            folder = tmp_path / name
            folder.mkdir()
            args = [
                "worker", address, "--name", name, "--nthreads", "1", "--no-nanny",
                "--no-dashboard", "--host", "127.0.0.1", "--local-directory", "scratch",
            ]  # fmt: skip
            env = environment(
                HOME=str(tmp_path / f"{name}-home"), FORECAST_HOME=str(folder / "no-such-home")
            )
            workers[name] = (start(args, folder, env), folder)
        yield address, workers
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait(timeout=30)


def night(settings, csv_dir, as_of, address):
    return run_nightly(
        list(TICKERS),
        settings=settings,
        source="csv",
        csv_dir=csv_dir,
        as_of=as_of,
        scheduler=address,
        default_options=TINY,
        window_days=WINDOW,
    )


@pytest.mark.slow
def test_a_two_worker_cluster_with_a_worker_killed_mid_run(tmp_path):
    home, csv_dir = tmp_path / "driver-home", tmp_path / "csv"
    csv_dir.mkdir()
    for seed, ticker in enumerate(TICKERS, start=1):
        write_csv(csv_dir / f"{ticker}.csv", make_prices(300, seed=seed))
    nights = [f"{day:%Y-%m-%d}" for day in make_prices(300, seed=1).index[-2:]]
    settings = Settings.resolve(home)
    registry, history = ModelRegistry(settings.models_dir), ForecastHistory(settings.forecasts_db)

    with cluster(tmp_path) as (address, workers):
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            names = {info["name"]: key for key, info in client.scheduler_info()["workers"].items()}

            first = night(settings, csv_dir, nights[0], address)
            assert first.fan_out == f"dask {address}"
            for record in first.records:
                assert (record["status"], record["decision"]) == ("ok", "first"), record["error"]
                assert record["worker"] in names.values()

            # Night 2: kill the first worker seen running a nightly task.
            outcome: dict[str, object] = {}
            driver = threading.Thread(
                target=lambda: outcome.update(report=night(settings, csv_dir, nights[1], address))
            )
            driver.start()
            victim, killed_keys = None, []
            deadline = time.monotonic() + 120
            while victim is None and driver.is_alive() and time.monotonic() < deadline:
                for worker, keys in client.processing().items():
                    nightly_keys = [key for key in keys if str(key).startswith("nightly-")]
                    if nightly_keys:
                        victim, killed_keys = worker, nightly_keys
                        break
                else:
                    time.sleep(0.05)
            assert victim is not None, "no worker was seen running a task"
            (victim_name,) = [name for name, key in names.items() if key == victim]
            workers[victim_name][0].send_signal(signal.SIGKILL)
            driver.join(timeout=180)
            assert not driver.is_alive()

    report = outcome["report"]
    killed = {str(key).split("-")[1] for key in killed_keys}
    assert killed <= set(TICKERS) and killed
    (survivor,) = [key for key in names.values() if key != victim]
    for record in report.records:
        assert record["status"] == "ok", record["error"]  # retried on the other worker
        if record["ticker"] in killed:
            assert record["worker"] == survivor
    for ticker, before, after in zip(TICKERS, first.records, report.records, strict=True):
        assert registry.champion_id(ticker) == after["champion_version"]
        # Two challengers: one per night; the killed attempt sent nothing.
        assert registry.version_ids(ticker) == sorted(
            [before["challenger_version"], after["challenger_version"]]
        )
        assert not [p for p in (settings.models_dir / ticker).iterdir() if p.name.startswith(".")]
        issued = history.forecasts(ticker)
        assert [row["origin"] for row in issued] == nights
        assert [row["model_version"] for row in issued] == [
            before["champion_version"],
            after["champion_version"],
        ]
        assert [run["status"] for run in history.runs(ticker)] == ["ok", "ok"]
        assert history.pending_promotions() == []
    # The workers never saw a data home: their working folders hold only the log and Dask's
    # scratch space (their HOME, elsewhere, only libraries' caches such as matplotlib's).
    for name, (_, folder) in workers.items():
        assert not (folder / "no-such-home").exists()
        assert sorted(p.name for p in folder.iterdir()) == ["log.txt", "scratch"]
        for place in (folder, tmp_path / f"{name}-home"):
            assert not [p for p in place.rglob("*") if p.name in ("models", "data", "prices")]
