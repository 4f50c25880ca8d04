"""Papercuts of issue 20: duplicate tickers, long ticker lists and long error cells.

No model is trained: the nightly runs use the stand-in challenge of
tests/conftest.py, and predict fails each ticker before loading a model.
"""

from __future__ import annotations

from forecaster.cli.output import MAX_CELL, cell, summarize
from forecaster.jobs import nightly, protocol
from forecaster.models.registry import ModelRegistry
from tests.conftest import fake_record, make_prices, run_cli, stand_in_challenge, write_csv
from tests.contract import checked


def test_summarize_lists_the_first_names_and_counts_the_rest():
    names = [f"T{number}" for number in range(500)]
    assert summarize(names[:3]) == "T0, T1, T2"
    text = summarize(names)
    assert text.endswith("T9 and 490 more") and len(text) < 80


def test_cell_cuts_long_text_to_one_bounded_line():
    assert cell("short") == "short"
    long = cell("x" * 500 + "\nline two")
    assert len(long) == MAX_CELL and long.endswith("…") and "\n" not in long


def test_nightly_counts_duplicate_tickers_once(home, monkeypatch):
    """``--tickers AAA,aaa,AAA,BBB`` runs two tickers and counts [1/2], [2/2]."""
    csv_dir = home / "csv"
    csv_dir.mkdir()
    prices = make_prices(200, seed=1)
    for ticker in ("AAA", "BBB"):
        write_csv(csv_dir / f"{ticker}.csv", prices)
    saved: list[str] = []

    def stand_in(registry: ModelRegistry, ticker: str) -> str:
        version = f"20260101T0000{len(saved):02d}-zeros-{len(saved):06x}"
        registry.save(fake_record(ticker, version), lambda path: path.write_bytes(b"w"), False)
        saved.append(version)
        return version

    monkeypatch.setattr(protocol, "challenge_step", stand_in_challenge(40, stand_in))
    result = run_cli(
        "--home", str(home), "nightly", "--tickers", "AAA,aaa,AAA,BBB", "--source", "csv",
        "--csv-dir", str(csv_dir), "--window-days", "40", "--dist", "normal",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[1/2] AAA" in result.stderr and "[2/2] BBB" in result.stderr
    assert "/4]" not in result.stderr
    assert "2 tickers in" in result.stdout


def test_many_failed_tickers_are_summarized_in_the_error_line(home):
    """30 tickers without a CSV file fail fast; the closing error line names 10 of them."""
    csv_dir = home / "csv"
    csv_dir.mkdir()
    names = [f"T{number:03d}" for number in range(30)]
    result = run_cli(
        "--home", str(home), "nightly", "--tickers", ",".join(names), "--source", "csv",
        "--csv-dir", str(csv_dir), "--dist", "normal",
    )  # fmt: skip
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 30 of 30 tickers failed: T000, T001")
    assert "T009 and 20 more" in last and "T029" not in last


def test_predict_batch_table_keeps_columns_bounded_and_json_keeps_the_full_error(home):
    names = [f"T{number:03d}" for number in range(30)]
    args = ("--home", str(home), "predict", "--tickers", ",".join(names))
    table = run_cli(*args)
    assert table.exit_code == 1
    assert max(len(line) for line in table.stdout.splitlines()) <= 100
    assert "T009 and 20 more" in table.stderr and "T029" not in table.stderr
    document = checked(run_cli(*args, "--format", "json").stdout, "predict")
    rows = document["forecasts"]
    assert document["failed"] == names and len(rows) == 30 and all(len(row["error"]) > MAX_CELL for row in rows)


def test_an_empty_output_path_is_named_as_empty_not_a_folder(home):
    result = run_cli("--home", str(home), "report", "--html", "")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: cannot write '': the path is empty; give a file name")
    assert "folder" not in result.stderr


def test_a_local_dask_cluster_keeps_its_scratch_space_under_the_home(home):
    """``nightly --workers`` passes local_directory=<home>/data/cache/dask to LocalCluster
    (a stand-in ``distributed`` records it; no worker is started)."""
    from forecaster.settings import Settings

    seen: dict = {}

    class Cluster:
        def __init__(self, **options):
            seen.update(options)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class ClusterClient(Cluster):
        def __init__(self, cluster):
            pass

    class Distributed:
        LocalCluster = Cluster
        Client = ClusterClient

    settings = Settings.resolve(home)
    with nightly._dask_client(Distributed, 2, None, local_directory=settings.dask_dir):
        pass
    assert seen["local_directory"] == str(home / "data" / "cache" / "dask")
    assert seen["n_workers"] == 2
