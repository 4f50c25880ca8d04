"""Intraday bars -> daily measures: every measure against a loop-by-loop reference, the
partial-day policy, a DST week, one clear error per bad input, the CLI, and the real file."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.data.intraday import (
    DAILY_COLUMNS,
    daily_measures,
    prepare_bars,
    read_bars,
    target_measure,
)
from forecaster.errors import ConfigError, DataError

NY = "America/New_York"
REAL_BARS = Path(__file__).resolve().parents[3] / "shared/data/intraday/spy_5min_2018_2020.parquet"
HALF_DAYS = [
    "2018-07-03", "2018-11-23", "2018-12-24", "2019-07-03",
    "2019-11-29", "2019-12-24", "2020-11-27", "2020-12-24",
]  # fmt: skip


def make_bars(
    days: list[str],
    spacing: int = 5,
    seed: int = 0,
    close_at: dict[str, str] | None = None,
    start_at: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Bars from 09:30 to 16:00 local NY time (naive), a seeded random walk with tiny spreads.

    ``close_at``/``start_at`` end or start given days early/late (half-days, missing hours).
    """
    rng = np.random.default_rng(seed)
    rows = []
    price = 100.0
    for day in days:
        first = pd.Timestamp(f"{day} {(start_at or {}).get(day, '09:30')}")
        end = pd.Timestamp(f"{day} {(close_at or {}).get(day, '16:00')}")
        price *= math.exp(rng.normal(0, 0.004))  # overnight move
        for stamp in pd.date_range(first, end, freq=f"{spacing}min", inclusive="left"):
            open_ = price * math.exp(rng.normal(0, 0.0002))
            close = open_ * math.exp(rng.normal(0, 0.001 * math.sqrt(spacing)))
            if rng.random() < 0.05:
                close = open_  # some zero returns
            high, low = max(open_, close) * 1.0003, min(open_, close) * 0.9997
            rows.append((stamp, open_, high, low, close, 1000.0))
            price = close
    return pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])


def reference(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Every measure, one day and one return at a time (no vectorized code), from naive NY bars."""
    spacing = int(
        round((frame["timestamp"].iloc[1] - frame["timestamp"].iloc[0]).total_seconds() / 60)
    )
    by_day: dict[str, list] = {}
    for row in frame.itertuples(index=False):
        by_day.setdefault(row.timestamp.strftime("%Y-%m-%d"), []).append(row)
    out: dict[str, dict[str, float]] = {}
    previous_close = None
    for day, bars in by_day.items():
        open_time = pd.Timestamp(f"{day} 09:30")

        def grid_prices(offset: int, bars=bars, open_time=open_time) -> list[float]:
            prices = [bars[0].open]
            for k, bar in enumerate(bars):
                end = (bar.timestamp - open_time).total_seconds() / 60 + spacing
                if round(end - offset) % 5 == 0 or k == len(bars) - 1:
                    prices.append(bar.close)
            return prices

        def returns_of(prices: list[float]) -> list[float]:
            return [math.log(prices[i] / prices[i - 1]) for i in range(1, len(prices))]

        r = returns_of(grid_prices(0))
        n = len(r)
        rv = sum(x * x for x in r)
        bv = 0.0
        for i in range(1, n):
            bv += abs(r[i]) * abs(r[i - 1])
        bv *= math.pi / 2
        pos = sum(x * x for x in r if x > 0)
        neg = sum(x * x for x in r if x < 0)
        rq = n / 3 * sum(x**4 for x in r)
        if spacing == 5:
            ss = rv
        else:
            ss = sum(sum(x * x for x in returns_of(grid_prices(o))) for o in range(5)) / 5
        out[day] = {
            "rv5": rv,
            "rv5-ss": ss,
            "bv": bv,
            "rsv-pos": pos,
            "rsv-neg": neg,
            "rq": rq,
            "open-to-close": math.log(bars[-1].close / bars[0].open),
            "overnight": math.nan
            if previous_close is None
            else math.log(bars[0].open / previous_close),
            "bars": len(bars),
        }
        previous_close = bars[-1].close
    return out


def assert_matches(daily: pd.DataFrame, expected: dict[str, dict[str, float]]) -> None:
    assert list(daily.index.strftime("%Y-%m-%d")) == list(expected)
    for day, values in expected.items():
        row = daily.loc[day]
        for name, value in values.items():
            if math.isnan(value):
                assert math.isnan(row[name]), (day, name)
            else:
                assert row[name] == pytest.approx(value, rel=1e-12, abs=0), (day, name)


DAYS = ["2019-06-03", "2019-06-04", "2019-06-05"]


def test_every_measure_on_full_5_minute_days_matches_a_loop_reference():
    frame = make_bars(DAYS)
    daily = daily_measures(prepare_bars(frame, tz=NY))
    assert daily.spacing == 5 and daily.expected_bars == 78 and daily.tz == NY
    assert list(daily.frame.columns) == list(DAILY_COLUMNS)
    assert_matches(daily.frame, reference(frame))
    assert not daily.frame["partial"].any() and (daily.frame["bars"] == 78).all()
    # 5-minute bars give one grid: the subsampled RV is rv5 itself.
    assert (daily.frame["rv5-ss"] == daily.frame["rv5"]).all()
    # 78 returns from the first open to the last close: they add up to open-to-close.
    assert daily.frame["rv5"].gt(0).all() and daily.frame["bv"].gt(0).all()


def test_one_minute_bars_subsample_five_grids_and_rv5_equals_5_minute_aggregation():
    frame = make_bars(DAYS[:2], spacing=1, seed=3)
    daily = daily_measures(prepare_bars(frame, tz=NY)).frame
    assert_matches(daily, reference(frame))
    assert (daily["bars"] == 390).all()
    assert not np.allclose(daily["rv5-ss"], daily["rv5"], rtol=1e-6)
    # rv5 from 1-minute bars = rv5 from the 5-minute bars built from them.
    indexed = frame.set_index("timestamp")
    five = indexed.resample("5min").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    five = five.dropna().reset_index()
    from_five = daily_measures(prepare_bars(five, tz=NY)).frame
    np.testing.assert_allclose(from_five["rv5"], daily["rv5"], rtol=1e-12)
    np.testing.assert_allclose(from_five["bv"], daily["bv"], rtol=1e-12)


def test_semivariances_add_up_to_rv5_exactly():
    daily = daily_measures(prepare_bars(make_bars(DAYS, seed=7), tz=NY)).frame
    assert (daily["rsv-pos"] + daily["rsv-neg"] == daily["rv5"]).all()
    assert (daily["rsv-pos"] > 0).all() and (daily["rsv-neg"] > 0).all()


def test_half_day_and_missing_first_hour_are_partial_unscaled_and_not_targets():
    days = ["2019-11-26", "2019-11-27", "2019-11-29", "2019-12-02", "2019-12-03"]
    frame = make_bars(days, close_at={"2019-11-29": "13:00"}, start_at={"2019-12-02": "10:30"})
    daily = daily_measures(prepare_bars(frame, tz=NY))
    table = daily.frame
    assert daily.expected_bars == 78 and daily.n_partial == 2
    assert table["bars"].to_dict() == {
        pd.Timestamp(d): n for d, n in zip(days, [78, 78, 42, 66, 78], strict=True)
    }
    assert table["partial"].tolist() == [False, False, True, True, False]
    # Measures of a partial day come from the bars present, unscaled.
    assert_matches(table, reference(frame))
    target = target_measure(daily, "rv5")
    assert target.isna().tolist() == [False, False, True, True, False]
    assert target["2019-11-26"] == table.loc["2019-11-26", "rv5"]
    with pytest.raises(ConfigError, match="unknown measure 'rv'; expected one of rv5, rv5-ss"):
        target_measure(daily, "rv")


def test_a_dst_week_keeps_the_local_session_and_utc_files_convert():
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2018-03-07", "2018-03-14")]
    frame = make_bars(days, seed=11)  # 2018-03-11: clocks go forward in New York
    naive = daily_measures(prepare_bars(frame, tz=NY)).frame
    assert not naive["partial"].any() and (naive["bars"] == 78).all()
    assert_matches(naive, reference(frame))
    in_utc = frame.assign(timestamp=frame["timestamp"].dt.tz_localize(NY).dt.tz_convert("UTC"))
    # 09:30 NY is 14:30 UTC before the change and 13:30 after it.
    assert set(in_utc["timestamp"].dt.strftime("%H:%M").iloc[[0, -78]]) == {"14:30", "13:30"}
    # Read in its own zone (UTC), the usual day does not run 09:30-16:00.
    with pytest.raises(DataError, match=r"the usual day's bars run 13:30-20:00 UTC; .*pass --tz"):
        daily_measures(prepare_bars(in_utc))
    converted = daily_measures(prepare_bars(in_utc, tz=NY)).frame
    pd.testing.assert_frame_equal(converted, naive)
    as_text = in_utc.assign(timestamp=in_utc["timestamp"].dt.tz_convert(NY).astype(str))
    from_text = daily_measures(prepare_bars(as_text, tz=NY)).frame  # offsets -05:00 and -04:00
    pd.testing.assert_frame_equal(from_text, naive)


def test_extended_hours_bars_are_counted_and_ignored():
    regular = make_bars(DAYS, seed=5)
    early = make_bars(
        DAYS, seed=6, start_at=dict.fromkeys(DAYS, "04:00"), close_at=dict.fromkeys(DAYS, "09:30")
    )
    late = make_bars(
        DAYS, seed=8, start_at=dict.fromkeys(DAYS, "16:00"), close_at=dict.fromkeys(DAYS, "20:00")
    )
    every = pd.concat([early, regular, late]).sort_values("timestamp").reset_index(drop=True)
    daily = daily_measures(prepare_bars(every, tz=NY))
    assert daily.outside_session == len(early) + len(late) == 3 * (66 + 48)
    expected = daily_measures(prepare_bars(regular, tz=NY)).frame
    pd.testing.assert_frame_equal(daily.frame, expected)


def test_forecast_realized_bars_never_imports_tensorflow(tmp_path):
    path = write_bars(tmp_path / "spy.csv", make_bars(DAYS))
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from forecaster.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['realized', '--bars', {str(path)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


@pytest.mark.parametrize(
    "mutate,tz,message",
    [
        (
            lambda f: pd.concat([f.iloc[:5], f.iloc[4:]]).reset_index(drop=True),
            NY,
            r"^bars: 1 duplicate timestamps \(first: 2019-06-03 09:50:00-04:00\); expected one "
            r"bar per start time; remove the duplicate bars$",
        ),
        (
            lambda f: f.iloc[[0, 2, 1, *range(3, len(f))]].reset_index(drop=True),
            NY,
            r"^bars: timestamps are not in increasing order \(1 times; first: row 3, "
            r"2019-06-03 09:35:00-04:00 after 2019-06-03 09:40:00-04:00\); expected bars sorted "
            r"by start time; sort the file by timestamp$",
        ),
        (
            lambda f: f.assign(timestamp=f["timestamp"] + pd.Timedelta(hours=5)),
            NY,
            r"^bars: on 3 of 3 days bars fall outside 04:00-20:00 America/New_York .*the time "
            r"zone looks wrong; pass --tz with the exchange's zone",
        ),
        (
            lambda f: f.assign(timestamp=f["timestamp"] - pd.Timedelta(hours=1)),
            NY,
            r"^bars: the usual day's bars run 08:30-15:00 America/New_York; expected "
            r"the session 09:30-16:00 America/New_York on most days; if the timestamps are in "
            r"another zone, pass --tz",
        ),
        (
            lambda f: f.assign(timestamp=f["timestamp"] + pd.Timedelta(minutes=5)),
            NY,
            r"the usual day's bars run 09:35-16:05 .* the timestamps look like bar "
            r"ends: shift them back one bar to the bar starts$",
        ),
        (
            lambda f: f.drop(columns="close"),
            NY,
            r"^bars is missing column\(s\) close; received columns \['timestamp', 'open', "
            r"'high', 'low', 'volume'\], expected timestamp, open, high, low, close\[, volume\] "
            r"\(any case\); rename the columns$",
        ),
        (
            lambda f: f.rename(columns={"timestamp": "when"}),
            NY,
            r"^bars has no time column; received columns \['when', .*expected timestamp \(or "
            r"datetime, or date and time\)",
        ),
        (
            lambda f: f,
            None,
            r"^bars: timestamps have no time zone \(first: 2019-06-03 09:30:00\); expected "
            r"zone-aware timestamps, or the zone they were written in; pass --tz ZONE",
        ),
        (
            lambda f: f.iloc[::3].reset_index(drop=True),
            NY,
            r"^bars: bars are 15 min apart \(the most common gap between two bars of one day\); "
            r"expected 1-minute or 5-minute bars; resample",
        ),
        (
            lambda f: f.assign(timestamp=f["timestamp"] + pd.Timedelta(minutes=2)),
            NY,
            r"^bars: 234 bars do not start on the 5-minute grid \(first: 2019-06-03 "
            r"09:32:00-04:00\)",
        ),
        (
            lambda f: f.assign(close=f["close"].where(f.index != 7, 0.0)),
            NY,
            r"^bars: 1 bars have close <= 0 \(first: 2019-06-03 10:05:00-04:00, close = 0\); "
            r"expected positive prices",
        ),
        (
            lambda f: f.assign(open=f["open"].astype(object).where(f.index != 2, "n/a")),
            NY,
            r"^bars: 1 bars have a missing, non-numeric or infinite open \(first: 2019-06-03 "
            r"09:40:00-04:00, open = 'n/a'\)",
        ),
        (
            lambda f: f.assign(timestamp=f["timestamp"].astype(str).where(f.index != 4, "soon")),
            NY,
            r"^bars: 1 timestamps are missing or not date-times \(first: row 5, 'soon'\)",
        ),
    ],
    ids=[
        "duplicate",
        "unsorted",
        "wrong-zone-utc",
        "wrong-zone-one-hour",
        "bar-end-labels",
        "missing-column",
        "no-time-column",
        "naive-without-tz",
        "15-minute",
        "off-grid",
        "non-positive",
        "non-numeric",
        "bad-timestamp",
    ],
)
def test_each_bad_input_is_one_clear_error(mutate, tz, message):
    frame = mutate(make_bars(DAYS))
    with pytest.raises(DataError, match=message) as caught:
        daily_measures(prepare_bars(frame, tz=tz))
    assert "\n" not in str(caught.value)


def test_bad_zone_name_and_mixed_offsets_without_tz():
    frame = make_bars(DAYS)
    with pytest.raises(ConfigError, match=r"^--tz 'Mars/Olympus' is not a time zone; expected"):
        prepare_bars(frame, tz="Mars/Olympus")
    dst = make_bars(["2018-03-09", "2018-03-12"])
    text = dst.assign(timestamp=dst["timestamp"].dt.tz_localize(NY).astype(str))
    with pytest.raises(DataError, match=r"carry different UTC offsets .* pass --tz ZONE"):
        prepare_bars(text)


def test_read_bars_csv_gzip_parquet_and_date_time_columns(tmp_path):
    frame = make_bars(DAYS[:2])
    expected = daily_measures(prepare_bars(frame, tz=NY)).frame
    aware = frame.assign(timestamp=frame["timestamp"].dt.tz_localize(NY))
    aware.to_parquet(tmp_path / "bars.data")  # Parquet recognised by content, not by name
    aware.rename(columns=str.upper).to_csv(tmp_path / "bars.csv.gz", index=False)
    split = frame.assign(
        Date=frame["timestamp"].dt.strftime("%Y-%m-%d"),
        Time=frame["timestamp"].dt.strftime("%H:%M"),
    ).drop(columns="timestamp")
    split.to_csv(tmp_path / "split.csv", index=False)
    for path, tz in [("bars.data", None), ("bars.csv.gz", None), ("split.csv", NY)]:
        got = daily_measures(read_bars(tmp_path / path, tz=tz)).frame
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    with pytest.raises(DataError, match=r"^bars file '.*nothing.csv' does not exist; expected"):
        read_bars(tmp_path / "nothing.csv")


def write_bars(path: Path, frame: pd.DataFrame) -> Path:
    frame.assign(timestamp=frame["timestamp"].dt.tz_localize(NY)).to_csv(path, index=False)
    return path


def test_cli_bars_daily_csv_parses_back_to_the_library_frame(run, tmp_path):
    days = ["2019-11-27", "2019-11-29", "2019-12-02"]
    frame = make_bars(days, close_at={"2019-11-29": "13:00"})
    path = write_bars(tmp_path / "qqq_5min.csv", frame)
    result = run("realized", "--bars", str(path), "--daily", "--format", "csv")
    assert result.exit_code == 0, result.output
    parsed = pd.read_csv(io.StringIO(result.stdout), index_col="date", parse_dates=["date"])
    assert list(parsed.columns) == list(DAILY_COLUMNS)
    expected = daily_measures(read_bars(path)).frame
    assert parsed["partial"].tolist() == [False, True, False] == expected["partial"].tolist()
    assert parsed["bars"].tolist() == [78, 42, 78]
    numeric = [c for c in DAILY_COLUMNS if c not in ("partial", "bars")]
    np.testing.assert_allclose(parsed[numeric], expected[numeric], rtol=1e-11)
    assert math.isnan(parsed["overnight"].iloc[0])
    assert "note: 1 of 3 days have fewer than 78 bars: partial=true" in result.stderr


def test_cli_bars_json_table_and_naive_file_with_tz(run, tmp_path):
    frame = make_bars(DAYS)
    frame.to_csv(tmp_path / "qqq-1m.csv", index=False)  # naive NY times
    result = run("realized", "--bars", str(tmp_path / "qqq-1m.csv"), "--tz", NY, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ticker"] == "QQQ-1M" and payload["spacing_minutes"] == 5
    assert payload["expected_bars"] == 78 and payload["tz"] == NY
    assert [row["date"] for row in payload["series"]] == DAYS
    assert payload["series"][0]["overnight"] is None and payload["series"][0]["partial"] is False
    table = run("realized", "--bars", str(tmp_path / "qqq-1m.csv"), "--tz", NY, "-t", "MINE")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[-1].startswith(
        "MINE bars (5-minute, America/New_York): 3 days (2019-06-03 to 2019-06-05), 3 full "
        "(78 bars), 0 partial; full days: mean rv5 "
    )


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--csv", "x.csv"), "error: --bars and --csv both name the data to read; pass one"),
        (("--source", "sample"), "error: --bars reads its own file and was given with --source"),
        (("--estimator", "parkinson"), "error: --estimator applies to daily OHLC prices, not to"),
        (
            ("--start", "2020-01-01"),
            "error: bars file '{path}': no days from 2020-01-01 onwards; the bars cover "
            "2019-06-03 to 2019-06-05; choose dates inside that range",
        ),
    ],
)
def test_cli_bars_conflicts_are_one_error_line(run, tmp_path, extra, message):
    path = write_bars(tmp_path / "spy.csv", make_bars(DAYS))
    result = run("realized", "--bars", str(path), *extra)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(message.format(path=path)) and result.stderr.count("\n") == 1


def test_cli_malformed_bars_options_are_usage_errors(run, tmp_path):
    path = write_bars(tmp_path / "spy.csv", make_bars(DAYS))
    for extra, message in [
        (("--start", "2030-01-01"), "--start 2030-01-01 is outside 1800-01-01 to today"),
        (("--tz", "Mars/Olympus"), "--tz 'Mars/Olympus' is not a time zone"),
    ]:
        result = run("realized", "--bars", str(path), *extra)
        assert result.exit_code == 2 and result.stdout == ""
        assert f"Invalid value for '{extra[0]}': {message}" in result.stderr


def test_cli_tz_without_bars_and_daily_ohlc(run):
    result = run("realized", "--tz", NY, "--source", "sample")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --tz is the time zone of --bars timestamps")
    daily = run(
        "realized", "--source", "sample", "--daily", "--estimator", "parkinson", "--format", "csv"
    )
    assert daily.exit_code == 0
    lines = daily.stdout.splitlines()
    assert lines[0] == "date,parkinson" and len(lines) == 1 + 5031
    date, value = lines[-1].split(",")
    assert date == "2018-12-31" and float(value) > 0


#: The weeks when US and European daylight saving differ: the file lacks 09:30-10:25 there.
FIRST_HOUR_MISSING = [
    ("2018-03-12", "2018-03-23"), ("2018-10-29", "2018-11-02"), ("2019-03-11", "2019-03-29"),
    ("2019-10-28", "2019-11-01"), ("2020-03-09", "2020-03-27"), ("2020-10-26", "2020-10-30"),
]  # fmt: skip


@pytest.mark.skipif(not REAL_BARS.is_file(), reason=f"real SPY bars not found at {REAL_BARS}")
def test_real_spy_bars_full_half_and_first_hour_missing_days():
    daily = daily_measures(read_bars(REAL_BARS))  # 58,020 bars: well under a second
    table = daily.frame
    assert daily.spacing == 5 and daily.expected_bars == 78 and daily.outside_session == 0
    assert len(table) == 756 and (table["bars"] == 78).sum() == 693
    assert not table.loc[table["bars"] == 78, "partial"].any()
    half = table.index[table["bars"] == 42].strftime("%Y-%m-%d")
    assert list(half) == HALF_DAYS
    late = table.index[table["bars"] == 66]
    weeks = pd.DatetimeIndex(
        [d for first, last in FIRST_HOUR_MISSING for d in pd.bdate_range(first, last)]
    )
    assert len(late) == 55 and late.equals(weeks)
    assert table["partial"].sum() == 8 + 55 and table.loc[late, "partial"].all()
    assert table.loc[pd.DatetimeIndex(HALF_DAYS), "partial"].all()
    assert target_measure(daily)[table["partial"]].isna().all()
