"""Fan-out on a Dask LocalCluster gives the same results as the sequential run.

Night 1 runs once (sequentially) and its data home is copied, so both runs of
night 2 start from identical champions; night 2 then runs sequentially in one
copy and on a 2-worker LocalCluster in the other. Worker processes are spawned
and import TensorFlow themselves (about 10 s each on this machine).
"""

from __future__ import annotations

import shutil

import pytest

from forecaster.errors import ConfigError
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.nightly import run_nightly
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import TINY, make_prices, write_csv

pytest.importorskip("distributed")

COMPARED = (
    "ticker",
    "status",
    "decision",
    "challenger_qlike",
    "champion_qlike",
    "challenger_bias",
    "champion_bias",
    "window_start",
    "window_end",
    "window_rows",
    "origin",
    "horizon",
    "variance",
    "vol",
    "fingerprint",
)


def _night(settings, csv_dir, as_of, **fan_out):
    return run_nightly(
        ["AAA", "BBB"],
        settings=settings,
        source="csv",
        csv_dir=csv_dir,
        as_of=as_of,
        default_options=TINY,
        window_days=40,
        **fan_out,
    )


@pytest.mark.slow
def test_local_cluster_equals_sequential(tmp_path):
    first_home = tmp_path / "sequential"
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for seed, ticker in enumerate(("AAA", "BBB"), start=1):
        write_csv(csv_dir / f"{ticker}.csv", make_prices(400, seed=seed))
    nights = [f"{day:%Y-%m-%d}" for day in make_prices(400, seed=1).index[-2:]]
    sequential = Settings.resolve(first_home)
    assert _night(sequential, csv_dir, nights[0]).exit_code == 0
    shutil.copytree(first_home, tmp_path / "dask")
    on_dask = Settings.resolve(tmp_path / "dask")

    expected = _night(sequential, csv_dir, nights[1])
    seen: list[str] = []
    report = _night(
        on_dask, csv_dir, nights[1], workers=2, on_record=lambda r: seen.append(r["ticker"])
    )

    assert report.fan_out == "dask local, 2 workers"
    assert sorted(seen) == ["AAA", "BBB"]
    assert [r["ticker"] for r in report.records] == ["AAA", "BBB"]  # the order asked
    assert all(r["status"] == "ok" for r in report.records), [r["error"] for r in report.records]
    for got, want in zip(report.records, expected.records, strict=True):
        assert {k: got[k] for k in COMPARED} == {k: want[k] for k in COMPARED}
    # The driver stored the models the workers sent and wrote the history.
    for ticker, record in zip(("AAA", "BBB"), report.records, strict=True):
        registry = ModelRegistry(on_dask.models_dir)
        assert record["challenger_version"] in registry.version_ids(ticker)
        assert registry.champion_id(ticker) == record["champion_version"]
        issued = ForecastHistory(on_dask.forecasts_db).forecasts(ticker)
        assert [row["variance"] for row in issued] == [
            row["variance"] for row in ForecastHistory(sequential.forecasts_db).forecasts(ticker)
        ]


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    import dask

    settings = Settings.resolve(tmp_path)
    with pytest.raises(
        ConfigError, match=r"cannot reach the Dask scheduler at 'tcp://127\.0\.0\.1:9'"
    ):
        with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
            run_nightly(["AAA"], settings=settings, source="sample", scheduler="tcp://127.0.0.1:9")
