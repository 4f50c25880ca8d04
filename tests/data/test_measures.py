"""Files of precomputed daily measures as a source (--panel, --source csv --csv).

Real excerpts of the Oxford-Man realized library (``../shared/data``) where they
help; every expected number is recomputed here from the file itself.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.data.features import FeatureSpec, build_dataset
from forecaster.data.loader import load_prices
from forecaster.data.store import fingerprint
from forecaster.data.volatility import (
    ESTIMATORS,
    MEASURES,
    available_estimators,
    daily_variance,
    get_estimator,
    log_returns,
)
from forecaster.errors import DataError
from forecaster.settings import Settings
from tests.conftest import make_prices

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
LIBRARY = SHARED / "realized_library.parquet"
SPX_FULL = SHARED / "realized_library_spx_full.csv.gz"
needs_shared = pytest.mark.skipif(not LIBRARY.exists(), reason="../shared/data not present")


def library_excerpt(tmp_path: Path, symbols=(".SPX", ".FTSE"), rows: int = 400) -> Path:
    table = pd.read_parquet(LIBRARY)
    table = table[table["symbol"].isin(symbols)].groupby("symbol").tail(rows)
    path = tmp_path / "library.parquet"
    table.to_parquet(path)
    return path


def measures_csv(tmp_path: Path, n: int = 400, seed: int = 0, **edits) -> Path:
    """A one-ticker CSV of measures: Date, RV5 (upper case), BV, ret; ``edits`` row -> value."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=n)
    rv5 = 1e-4 * np.exp(rng.normal(0, 0.5, n))
    frame = pd.DataFrame(
        {
            "Date": dates.strftime("%Y-%m-%d"),
            "RV5": rv5,
            "bv": 0.9 * rv5,
            "ret": rng.normal(0, 0.01, n),
        }
    )
    for column_row, value in edits.items():
        column, row = column_row.rsplit("_", 1)
        frame.loc[int(row), column] = value
    path = tmp_path / "measures.csv"
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ the registry


def test_the_registry_holds_ohlc_estimators_and_measures():
    assert get_estimator("garman-klass").kind == "ohlc"
    assert get_estimator("rv5").kind == "measure"
    for name in ("rv5", "bv", "rk_parzen", "rsv", "rsv-neg", "medrv"):
        assert name in MEASURES and ESTIMATORS[name].kind == "measure"
    assert get_estimator("RK_PARZEN").name == "rk_parzen"  # measures match in any case
    assert "rq" not in ESTIMATORS  # quarticity is not a variance: never a target


def test_ohlc_frames_support_only_the_ohlc_estimators():
    prices = make_prices(60)
    assert available_estimators(prices) == [
        "close-to-close", "parkinson", "garman-klass", "rogers-satchell", "yang-zhang"
    ]


# ---------------------------------------------------------------------- CSV files


def test_a_csv_of_measures_is_read_validated_and_cached(tmp_path):
    path = measures_csv(tmp_path)
    raw = pd.read_csv(path)
    settings = Settings(tmp_path / "home")
    data = load_prices("IDX", source="csv", csv_path=path, settings=settings)
    assert list(data.prices.columns) == ["ret", "rv5", "bv"]
    np.testing.assert_array_equal(data.prices["rv5"].to_numpy(), raw["RV5"].to_numpy())
    assert available_estimators(data.prices) == ["close-to-close", "rv5", "bv"]
    # The target is the file's measure, the returns its ret column.
    dataset = build_dataset(data.prices, FeatureSpec(estimator="rv5", context=63))
    np.testing.assert_array_equal(dataset.variance.to_numpy(), raw["RV5"].to_numpy())
    np.testing.assert_array_equal(dataset.returns.to_numpy(), raw["ret"].to_numpy())
    position = dataset.positions[0]
    assert dataset.target[0] == pytest.approx(raw["RV5"].iloc[position + 1], rel=1e-15)
    # close-to-close from ret: r_t^2.
    np.testing.assert_allclose(
        daily_variance(data.prices, "close-to-close").variance.to_numpy(), raw["ret"] ** 2
    )
    # The cache gives the same frame back, under the same fingerprint.
    again = load_prices("IDX", source="csv", csv_path=path, settings=settings)
    pd.testing.assert_frame_equal(again.prices, data.prices)
    assert again.fingerprint == data.fingerprint and (again.added, again.revised) == (0, 0)


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"RV5_37": np.nan}, r"measure rv5 is missing or not a finite number on 1 date\(s\): 2015-02-24"),
        ({"bv_5": -1e-5}, r"measure bv is negative on 1 date\(s\): 2015-01-09"),
        ({"ret_9": np.nan}, r"1 date\(s\) with a missing or non-finite ret: 2015-01-15"),
    ],
)
def test_a_missing_or_negative_value_is_one_error_and_nothing_is_cached(tmp_path, edit, message):
    path = measures_csv(tmp_path, **edit)
    settings = Settings(tmp_path / "home")
    with pytest.raises(DataError, match=message):
        load_prices("IDX", source="csv", csv_path=path, settings=settings)
    assert not list(settings.prices_dir.glob("*.parquet")) if settings.prices_dir.exists() else True


def test_a_measure_the_file_lacks_is_one_error_and_nothing_is_cached(tmp_path):
    path = measures_csv(tmp_path)
    settings = Settings(tmp_path / "home")
    with pytest.raises(
        DataError,
        match=r"provides no OHLC prices and the measure\(s\) rv5, bv, so --estimator rk_parzen "
        r"cannot be used \(expected one of close-to-close, rv5, bv\); the source holds no column "
        r"'rk_parzen'; add it to the file .* or pass --estimator rv5",
    ):
        load_prices("IDX", source="csv", csv_path=path, settings=settings, estimator="rk_parzen")
    with pytest.raises(DataError, match=r"'garman-klass' needs the price column\(s\) open, high"):
        load_prices("IDX", source="csv", csv_path=path, settings=settings, estimator="garman-klass")
    assert not settings.prices_dir.exists() or not list(settings.prices_dir.iterdir())
    # The same check when the frame is used directly.
    frame = load_prices("IDX", source="csv", csv_path=path, settings=settings).prices
    with pytest.raises(DataError, match="--estimator parkinson cannot be used"):
        build_dataset(frame, FeatureSpec(estimator="parkinson", context=63))


def test_a_file_of_measures_without_returns_is_one_error(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"date": ["2020-01-02", "2020-01-03"], "rv5": [1e-4, 2e-4]}).to_csv(path)
    with pytest.raises(DataError, match=r"holds the measure\(s\) rv5 but no daily returns.*"
                       r"expected a column ret .* or close \(or close_price\)"):
        load_prices("IDX", source="csv", csv_path=path, settings=Settings(tmp_path / "h"))


def test_ohlc_fingerprints_do_not_change():
    """A frame of OHLC prices hashes as before measures existed (recorded models stay valid)."""
    import hashlib

    prices = make_prices(30)
    digest = hashlib.sha256()
    digest.update(prices.index.strftime("%Y-%m-%d").str.cat(sep=",").encode())
    digest.update(prices[["open", "high", "low", "close"]].to_numpy(dtype="float64").tobytes())
    assert fingerprint(prices) == digest.hexdigest()[:16]
    changed = prices.assign(rv5=1e-4)
    assert fingerprint(changed) != fingerprint(prices)


@needs_shared
def test_the_full_spx_record_with_close_price_and_every_measure(tmp_path):
    with gzip.open(SPX_FULL, "rt") as stream:
        raw = pd.read_csv(stream).iloc[:600]
    path = tmp_path / "spx.csv"
    raw.to_csv(path, index=False)
    data = load_prices("SPX", source="csv", csv_path=path, settings=Settings(tmp_path / "h"))
    assert "close" in data.prices and "open" not in data.prices  # close_price, no full OHLC
    for name in ("rv5", "bv", "rk_parzen", "rsv", "medrv", "rv10_ss"):
        np.testing.assert_array_equal(data.prices[name].to_numpy(), raw[name].to_numpy())
    close = raw["close_price"].to_numpy()
    expected = np.concatenate([[np.nan], np.log(close[1:] / close[:-1])])
    np.testing.assert_allclose(log_returns(data.prices).to_numpy(), expected, rtol=1e-13)
    dataset = build_dataset(data.prices, FeatureSpec(estimator="rk_parzen", context=63))
    np.testing.assert_array_equal(dataset.variance.to_numpy(), raw["rk_parzen"].to_numpy())


# ---------------------------------------------------------------------- panels


@needs_shared
def test_a_panel_of_measures_the_oxford_man_layout(tmp_path):
    path = library_excerpt(tmp_path)
    table = pd.read_parquet(path)
    settings = Settings(tmp_path / "home")
    data = load_prices("SPX", panel_path=path, settings=settings)  # .SPX: the dot is dropped
    rows = table[table["symbol"] == ".SPX"]
    assert list(data.prices.columns) == ["ret", "rv5"]
    np.testing.assert_array_equal(data.prices["rv5"].to_numpy(), rows["rv5"].to_numpy())
    np.testing.assert_array_equal(data.prices["ret"].to_numpy(), rows["ret"].to_numpy())
    assert (settings.prices_dir / "SPX.panel.parquet").exists()
    from forecaster.data.panel import resolve_tickers

    assert resolve_tickers(path, "all") == ["FTSE", "SPX"]
    assert resolve_tickers(path, ".SPX") == ["SPX"]


@needs_shared
def test_a_panel_ticker_with_a_negative_measure_is_not_cached(tmp_path):
    table = pd.read_parquet(library_excerpt(tmp_path))
    table.loc[table.index[10], "rv5"] = -1e-6  # a .FTSE row
    path = tmp_path / "broken.parquet"
    table.to_parquet(path)
    settings = Settings(tmp_path / "home")
    with pytest.raises(DataError, match=r"FTSE in panel .*measure rv5 is negative on 1 date"):
        load_prices("FTSE", panel_path=path, settings=settings)
    load_prices("SPX", panel_path=path, settings=settings)
    assert sorted(p.name for p in settings.prices_dir.glob("*.parquet")) == ["SPX.panel.parquet"]
