"""``--bars PATH`` as a price source wherever ``--csv`` is: the daily frame the loader makes
from intraday bars (checked against an independent groupby), and the CLI chain
fetch -> train -> predict -> evaluate on it, with one error line per conflicting option."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from forecaster.data.loader import load_prices
from forecaster.errors import ConfigError
from tests.data.test_intraday import NY, make_bars

TINY = ["--units", "4", "--lookback", "10", "--context", "42", "--epochs", "2",
        "--ensemble", "1", "--patience", "1", "--threads", "1"]  # fmt: skip


def trading_days(count: int) -> list[str]:
    return [f"{day:%Y-%m-%d}" for day in pd.bdate_range("2019-01-07", periods=count)]


def write(path, frame: pd.DataFrame):
    frame.assign(timestamp=frame["timestamp"].dt.tz_localize(NY)).to_csv(path, index=False)
    return path


def test_loader_gives_session_ohlc_returns_and_measures_and_drops_partial_days(home, tmp_path):
    days = trading_days(6)
    bars = make_bars(days, seed=3, close_at={days[2]: "13:00"})  # day 3 is a half day
    path = write(tmp_path / "spy_5min.csv", bars)
    data = load_prices("SPY", bars_path=path, estimator="rv5")
    assert data.source == "bars" and data.repairs == {
        "partial day(s) dropped (never trained on or scored as full days)": 1
    }
    kept = [day for day in days if day != days[2]]
    assert [f"{d:%Y-%m-%d}" for d in data.prices.index] == kept
    # An independent computation from the raw bars: per local day, first open, extremes, last
    # close; the close-to-close return of the day after the dropped half day is still one day's.
    by_day = bars.groupby(bars["timestamp"].dt.strftime("%Y-%m-%d"))
    expected = pd.DataFrame(
        {
            "open": by_day["open"].first(),
            "high": by_day["high"].max(),
            "low": by_day["low"].min(),
            "close": by_day["close"].last(),
            "volume": by_day["volume"].sum(),
        }
    )
    expected["ret"] = np.log(expected["close"] / expected["close"].shift(1))
    expected = expected.loc[kept]
    got = data.prices[expected.columns].set_axis(kept)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, check_names=False)
    day = bars[bars["timestamp"].dt.strftime("%Y-%m-%d") == days[4]]
    returns = np.diff(np.log(np.r_[day["open"].iloc[0], day["close"].to_numpy()]))
    assert math.isclose(data.prices["rv5"].iloc[3], float(np.sum(returns**2)), rel_tol=1e-12)
    assert {"rv5", "rv5-ss", "bv", "rsv-pos", "rsv-neg", "rq"} <= set(data.prices.columns)
    # garman-klass works on bars too: it reads the session OHLC.
    assert load_prices("SPY", bars_path=path, estimator="garman-klass").prices.shape[0] == 5


@pytest.mark.parametrize(
    "options,message",
    [
        ({"csv_path": "x.csv"}, "--bars and --csv both name the prices; pass one of them"),
        ({"panel_path": "x.parquet"}, "--bars and --panel both name the prices; pass one"),
        ({"source": "yahoo"}, "--bars was given with --source yahoo; drop --source"),
    ],
)
def test_loader_refuses_bars_with_another_source(home, tmp_path, options, message):
    path = write(tmp_path / "spy.csv", make_bars(trading_days(2)))
    with pytest.raises(ConfigError, match=message):
        load_prices("SPY", bars_path=path, **options)


def test_loader_needs_the_file_for_source_bars_and_bars_for_tz(home):
    with pytest.raises(ConfigError, match=r"^--source bars needs --bars PATH"):
        load_prices("SPY", source="bars")
    with pytest.raises(ConfigError, match=r"^--tz is the time zone of --bars timestamps"):
        load_prices("SPY", source="sample", tz=NY)


@pytest.mark.slow
def test_cli_fetch_train_predict_evaluate_on_bars(run, tmp_path):
    days = trading_days(170)
    naive = make_bars(days, seed=1, close_at={days[40]: "13:00"})
    path = tmp_path / "iwm_5min.csv"
    naive.to_csv(path, index=False)  # naive New York times: needs --tz
    bars = ("--bars", str(path), "--tz", NY)

    fetched = run("fetch", *bars, "--format", "json")
    assert fetched.exit_code == 0, fetched.output
    [entry] = json.loads(fetched.stdout)["tickers"]
    assert entry["ticker"] == "IWM" and entry["source"] == "bars" and entry["rows"] == 169

    trained = run("train", *bars, "--estimator", "rv5", "--test-start", days[140], "--format",
                  "json", *TINY)  # fmt: skip
    assert trained.exit_code == 0, trained.output
    record = json.loads(trained.stdout)
    assert record["tickers"] == ["IWM"] and record["estimator"] == "rv5"
    assert "note: IWM: 1 partial day(s) dropped" in trained.stderr

    predicted = run("predict", *bars, "--format", "json")
    assert predicted.exit_code == 0, predicted.output
    [forecast] = json.loads(predicted.stdout)["forecasts"]
    assert forecast["ticker"] == "IWM" and forecast["origin"] == days[-1]
    assert forecast["model_version"] == record["version"]

    # evaluate finds the bars file the model was trained on (the zone is still needed) ...
    scored = run("evaluate", "--ticker", "IWM", "--tz", NY, "--baselines", "har,harq",
                 "--format", "json")  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert f"the bars file model {record['version']} was trained on" in scored.stderr
    names = set(json.loads(scored.stdout)["results"][0]["models"])
    assert {"lstm", "har", "harq"} <= names
    clash = run("evaluate", "--ticker", "IWM", *bars, "--source", "sample")
    assert clash.exit_code == 1 and clash.stderr.startswith(
        "error: --bars was given with --source sample; drop --source"
    )
    # ... and, the file gone, scores on the prices cached from it, with a warning.
    path.unlink()
    cached = run("evaluate", "--ticker", "IWM", "--baselines", "har", "--format", "json")
    assert cached.exit_code == 0, cached.output
    assert "warning: IWM: the bars file model" in cached.stderr and "is gone" in cached.stderr


@pytest.mark.parametrize(
    "command,extra,message",
    [
        (("train",), ("--csv", "x.csv"), "error: --bars and --csv both name the prices"),
        (("train",), ("--tickers", "SPY,QQQ"), "error: --bars reads one ticker; drop --tickers"),
        (("predict",), ("--tickers", "SPY,QQQ"), "error: --bars reads one ticker; drop --tickers"),
        (("fetch",), ("--panel", "x.parquet"), "error: --bars and --panel both name the prices"),
    ],
)
def test_cli_conflicts_with_bars_are_one_error_line(run, tmp_path, command, extra, message):
    path = write(tmp_path / "spy.csv", make_bars(trading_days(2)))
    result = run(*command, "--bars", str(path), *extra)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
