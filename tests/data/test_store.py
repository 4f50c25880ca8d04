"""Price cache: incremental update appends only new rows; writes are atomic."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from forecaster import files as files_module
from forecaster.data.loader import load_prices
from forecaster.data.store import PriceStore, merge_prices
from forecaster.errors import DataError
from forecaster.settings import Settings
from tests.conftest import make_prices


def test_round_trip_keeps_values_and_metadata(tmp_path):
    prices = make_prices(50)
    cache = PriceStore(tmp_path)
    cache.write("SPY", "csv", prices, "my file")
    entry = cache.read("SPY", "csv")
    pd.testing.assert_frame_equal(entry.prices, prices, check_freq=False)
    assert entry.source == "csv" and entry.description == "my file"


def test_merge_appends_new_rows_and_counts_revisions():
    prices = make_prices(50)
    old, new = prices.iloc[:40], prices.iloc[35:].copy()
    new.iloc[0, new.columns.get_loc("close")] *= 1.01  # a vendor revision inside the overlap
    merged = merge_prices(old, new)
    assert merged.added == 10 and merged.revised == 1
    assert len(merged.prices) == 50 and merged.prices.index.is_monotonic_increasing


def test_incremental_sample_update_appends_only_new_rows(tmp_path):
    settings = Settings.resolve(tmp_path)
    first = load_prices("SPY", source="sample", end=pd.Timestamp("2018-06-01"), settings=settings)
    second = load_prices("SPY", source="sample", end=pd.Timestamp("2018-06-08"), settings=settings)
    assert first.end == pd.Timestamp("2018-06-01") and second.end == pd.Timestamp("2018-06-08")
    assert second.added == 5 and second.revised == 0
    cached = PriceStore(settings.prices_dir).read("SPY", "sample").prices
    assert cached.index[-1] == pd.Timestamp("2018-06-08") and len(cached) == len(second.prices)
    again = load_prices("SPY", source="sample", end=pd.Timestamp("2018-06-08"), settings=settings)
    assert again.added == 0
    earlier = load_prices("SPY", source="sample", end=pd.Timestamp("2018-01-02"), settings=settings)
    assert earlier.end == pd.Timestamp("2018-01-02")  # later rows are invisible, cache untouched
    assert PriceStore(settings.prices_dir).read("SPY", "sample").prices.index[-1] == pd.Timestamp(
        "2018-06-08"
    )


def test_interrupted_write_leaves_old_cache_intact(tmp_path, monkeypatch):
    cache = PriceStore(tmp_path)
    old = make_prices(30)
    path = cache.write("SPY", "csv", old, "old")
    before = path.read_bytes()

    def crash(source, destination):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(files_module.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.write("SPY", "csv", make_prices(60), "new")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_corrupt_cache_names_the_file(tmp_path):
    cache = PriceStore(tmp_path)
    path = cache.path("SPY", "yahoo")
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=rf"price cache '{path}' is unreadable.*delete it"):
        cache.read("SPY", "yahoo")


def test_atomic_write_uses_same_folder(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(source, destination):
        seen.append((os.path.dirname(source), os.path.dirname(destination)))
        return real(source, destination)

    monkeypatch.setattr(files_module.os, "replace", spy)
    PriceStore(tmp_path).write("SPY", "csv", make_prices(5), "x")
    assert seen and seen[0][0] == seen[0][1]


def test_damaged_cached_rows_are_caught_on_read(tmp_path):
    cache = PriceStore(tmp_path)
    prices = make_prices(40)
    prices.iloc[10, prices.columns.get_loc("close")] = -5.0  # written behind the program's back
    path = cache.write("SPY", "sample", prices, "x")
    day = prices.index[10].strftime("%Y-%m-%d")
    with pytest.raises(
        DataError,
        match=rf"price cache '{path}': 1 date\(s\) with .*non-positive prices: {day}.*delete it",
    ):
        cache.read("SPY", "sample")


def test_cache_without_metadata_or_columns_is_unreadable(tmp_path):
    cache = PriceStore(tmp_path)
    path = cache.path("SPY", "sample")
    make_prices(5).drop(columns="high").to_parquet(path)
    with pytest.raises(
        DataError,
        match=rf"price cache '{path}' is unreadable \(KeyError\); rebuild it with "
        r"`forecast fetch --ticker SPY --source sample --refresh` or delete it",
    ):
        cache.read("SPY", "sample")


def test_cache_files_get_the_usual_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        path = PriceStore(tmp_path).write("SPY", "csv", make_prices(5), "x")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # mkstemp alone would give 0600


def tamper(path, column: str, row: int, factor: float) -> None:
    """Change one cached value behind the program's back, keeping the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    frame = table.to_pandas()
    frame.iloc[row, frame.columns.get_loc(column)] *= factor
    changed = pa.Table.from_pandas(frame, preserve_index=True)
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), path)


def test_a_cache_changed_behind_the_programs_back_fails_its_fingerprint(tmp_path):
    cache = PriceStore(tmp_path)
    path = cache.write("SPY", "yahoo", make_prices(40), "x")
    tamper(path, "high", 20, 1.5)  # still a valid OHLC row: only the fingerprint sees it
    with pytest.raises(
        DataError,
        match=rf"price cache '{path}' does not match its fingerprint \(recorded \w{{16}}, its "
        r"rows give \w{16}\): it was changed after it was written; rebuild it with "
        r"`forecast fetch --ticker SPY --source yahoo --refresh` or delete it$",
    ):
        cache.read("SPY", "yahoo")


def test_refresh_rebuilds_a_damaged_cache(tmp_path):
    settings = Settings.resolve(tmp_path)
    end = pd.Timestamp("2018-06-01")
    first = load_prices("SPY", source="sample", end=end, settings=settings)
    tamper(first.cache_path, "high", -3, 1.5)
    with pytest.raises(DataError, match="does not match its fingerprint"):
        load_prices("SPY", source="sample", end=end, settings=settings)
    again = load_prices("SPY", source="sample", end=end, settings=settings, refresh=True)
    pd.testing.assert_frame_equal(again.prices, first.prices)
    assert PriceStore(settings.prices_dir).read("SPY", "sample") is not None


def test_stale_temporaries_are_removed_live_ones_kept(tmp_path):
    import subprocess

    gone = subprocess.Popen(["true"])  # a pid that is no longer running
    gone.wait()
    host = files_module.socket.gethostname()
    stale_file = tmp_path / f".tmp-SPY.csv.parquet-abc123-{gone.pid}@{host}"
    stale_file.write_bytes(b"half")
    stale_folder = tmp_path / f".tmp-20260101T000000-zeros-a1b2c3-9f8e7d-{gone.pid}@{host}"
    (stale_folder / "inside").mkdir(parents=True)
    old_release = tmp_path / ".tmp-20260101T000000-zeros-a1b2c3-9f8e7d"  # release 0.1 name
    old_release.mkdir()
    os.utime(old_release, (0, files_module._STARTED - 10))  # older than this process
    live = tmp_path / files_module.temporary_name("SPY.csv.parquet", "def456")  # this process
    live.write_bytes(b"being written")
    foreign = tmp_path / f".tmp-x-abc-{gone.pid}@another-host"  # young, owner unknown: kept
    foreign.write_bytes(b"")
    user_file = tmp_path / ".notes"
    user_file.write_text("mine")
    PriceStore(tmp_path).write("SPY", "csv", make_prices(5), "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, foreign.name, user_file.name, "SPY.csv.parquet"]
    )
