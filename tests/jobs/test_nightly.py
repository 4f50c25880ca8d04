"""The nightly job end to end, offline (CSV and sample sources, tiny models).

Each nightly ticker trains one tiny LSTM (a few seconds). Champions are seeded
with tiny options, or first champions come from ``default_options=TINY``, so
every retrain stays small.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from forecaster.data.features import build_dataset
from forecaster.data.loader import load_prices
from forecaster.data.store import PriceStore
from forecaster.errors import ConfigError
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.lock import nightly_lock
from forecaster.jobs.nightly import decide, read_universe, run_nightly
from forecaster.models.lstm_forecaster import load_forecaster, train
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import TINY, make_prices, write_csv
from tests.contract import checked

#: Champions seeded on the full sample (about 4,900 days): one epoch of large batches.
TINY_SAMPLE = dataclasses.replace(TINY, epochs=1, batch_size=256)
WINDOW = 40


@pytest.fixture
def settings(home) -> Settings:
    return Settings.resolve(home)


@pytest.fixture
def csv_dir(home):
    folder = home / "csv"
    folder.mkdir()
    for seed, ticker in enumerate(("AAA", "BBB"), start=1):
        write_csv(folder / f"{ticker}.csv", make_prices(400, seed=seed))
    return folder


@pytest.fixture
def dates():
    """The last trading days of the CSV files: nights to replay."""
    return [f"{day:%Y-%m-%d}" for day in make_prices(400, seed=1).index[-3:]]


@pytest.fixture
def invoke(run):
    return run


def nightly(settings, csv_dir, as_of, tickers=("AAA", "BBB"), **options):
    return run_nightly(
        list(tickers),
        settings=settings,
        source="csv",
        csv_dir=csv_dir,
        as_of=as_of,
        default_options=TINY,
        window_days=WINDOW,
        **options,
    )


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def reference_qlike(target, forecast) -> float:
    ratio = np.asarray(target) / np.asarray(forecast)
    return float(np.mean(ratio - np.log(ratio) - 1.0))


def garman_klass(prices) -> np.ndarray:
    high, low = prices["high"].to_numpy(), prices["low"].to_numpy()
    open_, close = prices["open"].to_numpy(), prices["close"].to_numpy()
    return 0.5 * np.log(high / low) ** 2 - (2 * math.log(2) - 1) * np.log(close / open_) ** 2


def window_rows(dataset, days: int = WINDOW) -> np.ndarray:
    return np.flatnonzero(~np.isnan(dataset.target))[-days:]


def first_night_prices(settings, csv_dir, dates):
    """AAA's prices as the first replayed night sees them."""
    return load_prices(
        "AAA",
        source="csv",
        csv_path=csv_dir / "AAA.csv",
        end=pd.Timestamp(dates[0]),
        settings=settings,
    )


def set_scale(version, scale: float) -> None:
    """Change a saved model's bias-correction scale (to make it better or worse).

    The version's manifest is updated too: an edit it does not vouch for is an error.
    """
    path = version.path / "meta.json"
    meta = json.loads(path.read_text())
    meta["bias_correction"]["scale"] = scale
    path.write_text(json.dumps(meta))
    manifest = json.loads((version.path / "manifest.json").read_text())
    manifest["files"]["meta.json"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (version.path / "manifest.json").write_text(json.dumps(manifest))


# --- the decision rule and the inputs -----------------------------------------------


def test_decision_rule_promotes_only_a_significantly_better_challenger():
    rng = np.random.default_rng(0)
    champion = rng.gamma(2.0, 0.2, 63)
    assert decide(champion, None, 1).decision == "first"
    assert decide(champion, champion, 1).decision == "kept"  # no worse is not enough now
    assert decide(champion * 0.5, champion, 1).decision == "promoted"
    assert decide(champion * 1.5, champion, 1).decision == "kept"


def test_universe_file_has_one_ticker_per_line_and_comments(tmp_path):
    path = tmp_path / "universe.txt"
    path.write_text("# large caps\nspy\n\nQQQ  # nasdaq\nSPY\n  aapl,msft\n")
    assert read_universe(path) == ["SPY", "QQQ", "AAPL", "MSFT"]
    path.write_text("# nothing here\n\n")
    with pytest.raises(ConfigError, match=r"universe file .* lists no tickers; expected one"):
        read_universe(path)


@pytest.mark.parametrize(
    ("tickers", "message"),
    [
        ("all", r"^--tickers all means every ticker of a --panel file; pass --panel PATH"),
        (["SPY", "B/B"], r"^--tickers: ticker 'B/B' is not usable; expected 1 to 20"),
        (" , ", r"^--tickers names no ticker; expected symbols such as SPY,QQQ"),
    ],
)
def test_run_nightly_reads_its_tickers_with_the_one_ticker_list_parser(
    settings, tickers, message
):
    """The library call reads a ticker list as every --tickers does (same errors); "all"
    used to run a ticker named ALL."""
    with pytest.raises(ConfigError, match=message):
        run_nightly(tickers, settings=settings, source="sample")
    assert not settings.models_dir.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tickers", "SPY", "--workers", "2", "--scheduler", "tcp://x:8786"],
            "--workers and --scheduler were both given",
        ),
        (
            ["--tickers", "SPY", "--csv-dir", "."],
            r"--csv-dir was given with --source auto; use --source csv --csv-dir DIR",
        ),
        (["--tickers", "SPY", "--source", "csv"], r"--source csv needs --csv-dir DIR"),
        ([], r"no tickers given; pass --tickers SPY,QQQ, --universe FILE or --panel PATH"),
    ],
)
def test_bad_option_combinations_are_one_line_errors(invoke, home, args, message):
    result = invoke("nightly", *args)
    assert result.exit_code == 1
    assert re.search(f"^error: {message}", result.stderr)
    assert not (home / "models").exists()


def test_a_malformed_as_of_is_a_usage_error(invoke, home):
    result = invoke("nightly", "--tickers", "SPY", "--as-of", "last friday")
    assert result.exit_code == 2 and "'last friday' is not a date" in result.stderr
    assert not (home / "models").exists()


def test_tickers_and_universe_together_are_refused(invoke, tmp_path):
    universe = tmp_path / "universe.txt"
    universe.write_text("SPY\n")
    result = invoke("nightly", "--tickers", "SPY", "--universe", str(universe))
    assert result.exit_code == 1
    assert "error: --tickers and --universe were both given; use one of them" in result.stderr


# --- replay, promotion, failure, idempotency, lock ----------------------------------


def test_replay_of_sample_nights_grows_the_cache_and_scores_the_history(invoke, settings):
    """The issue's offline scenario: nightly --as-of replays on the sample, then history --score."""
    seed_data = load_prices(
        "SPY", source="sample", end=pd.Timestamp("2018-05-31"), settings=settings
    )
    seeded = train(seed_data, TINY_SAMPLE, ModelRegistry(settings.models_dir)).version.version
    cache = PriceStore(settings.prices_dir).path("SPY", "sample")
    rows = [pq.read_metadata(cache).num_rows]
    nights = ["2018-06-01", "2018-06-04", "2018-06-05"]
    for night in nights:
        result = invoke("nightly", "--tickers", "SPY", "--source", "sample", "--as-of", night)
        assert result.exit_code == 0, result.output
        assert re.search(
            rf"^SPY\s+ok\s+(promoted|kept)\s+\d\.\d{{4}}\s+\d\.\d{{4}}\s+{night}",
            result.stdout,
            re.M,
        )
        assert "[1/1] SPY: ok" in result.stderr
        rows.append(pq.read_metadata(cache).num_rows)
    assert rows == [rows[0], rows[0] + 1, rows[0] + 2, rows[0] + 3]  # one new day per night

    result = invoke("history", "--ticker", "SPY", "--score", "--format", "json")
    assert result.exit_code == 0
    (payload,) = checked(result.stdout, "history")["tickers"]
    forecasts = payload["forecasts"]
    assert [row["origin"] for row in forecasts] == nights
    runs = ForecastHistory(settings.forecasts_db).runs("SPY")
    assert [run["previous_champion"] for run in runs][0] == seeded
    assert [row["model_version"] for row in forecasts] == [run["champion_version"] for run in runs]

    prices = load_prices(
        "SPY", source="sample", end=pd.Timestamp("2018-06-05"), settings=settings
    ).prices
    variance = garman_klass(prices)
    after = [prices.index.get_loc(pd.Timestamp(night)) + 1 for night in nights[:2]]
    realized = [float(variance[position]) for position in after]
    assert [row["realized_var"] for row in forecasts[:2]] == pytest.approx(realized, rel=1e-12)
    assert forecasts[2]["realized_var"] is None

    # --as-of: the history as it stood at the second night's close (nothing later seen)
    earlier = invoke(
        "history", "-t", "SPY", "--score", "--as-of", nights[1], "--format", "json"
    )
    (then,) = checked(earlier.stdout, "history")["tickers"]
    assert [row["origin"] for row in then["forecasts"]] == nights[:2]
    assert then["forecasts"][0]["realized_var"] == forecasts[0]["realized_var"]
    assert then["forecasts"][1]["realized_var"] is None and then["score"]["n"] == 1
    # -o: the same document in a file, ending with a newline
    target = settings.home / "history.json"
    written = invoke("history", "-t", "SPY", "--score", "--format", "json", "-o", str(target))
    assert written.exit_code == 0 and written.stdout == ""
    assert target.read_text() == result.stdout and result.stdout.endswith("}\n")
    score = payload["score"]
    assert score["n"] == 2 and score["n_pending"] == 1
    expected = reference_qlike(realized, [row["variance"] for row in forecasts[:2]])
    assert score["qlike"] == pytest.approx(expected, rel=1e-10)

    table = invoke("history", "--score")
    assert "SPY: 3 forecasts issued, 2 realized" in table.stdout
    assert f"live score over 2 realized (1 pending): QLIKE {expected:.4f}" in table.stdout
    csv_text = invoke("history", "--ticker", "SPY", "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("ticker,origin,horizon,model_version")
    assert len(csv_text.splitlines()) == 4


def test_worse_champion_is_replaced_and_scores_are_recorded(settings, csv_dir, dates):
    registry = ModelRegistry(settings.models_dir)
    data = first_night_prices(settings, csv_dir, dates)
    bad = train(data, TINY, registry).version
    set_scale(bad, bad.meta["bias_correction"]["scale"] * 50)  # forecasts 50x too high

    (record,) = nightly(settings, csv_dir, dates[0], tickers=["AAA"]).records
    assert record["status"] == "ok" and record["decision"] == "promoted"
    assert registry.champion_id("AAA") == record["challenger_version"] == record["champion_version"]
    assert record["previous_champion"] == bad.version

    dataset = build_dataset(data.prices, TINY.feature_spec())
    rows = window_rows(dataset)
    target = np.maximum(dataset.target[rows], 1e-10)
    bad_forecast = load_forecaster(registry.get("AAA", bad.version)).predict(dataset)[rows]
    assert record["champion_qlike"] == pytest.approx(
        reference_qlike(target, bad_forecast), rel=1e-9
    )
    challenger = load_forecaster(registry.get("AAA", record["challenger_version"]))
    challenger_forecast = challenger.predict(dataset)
    assert record["challenger_qlike"] == pytest.approx(
        reference_qlike(target, challenger_forecast[rows]), rel=1e-9
    )
    assert record["challenger_qlike"] < record["champion_qlike"]
    assert record["window_start"] == f"{dataset.origins[rows[0]]:%Y-%m-%d}"
    assert record["window_rows"] == WINDOW
    assert record["origin"] == dates[0]
    assert record["variance"] == pytest.approx(challenger_forecast[-1], rel=1e-9)

    pointer = json.loads((settings.models_dir / "AAA" / "champion.json").read_text())
    assert pointer["reason"].startswith(
        f"nightly: challenger qlike {record['challenger_qlike']:.6f} vs champion "
        f"{record['champion_qlike']:.6f} on {WINDOW} origins; one-sided DM "
    )
    assert record["dm_pvalue"] < 0.01 and record["decision_reason"] == pointer["reason"]
    (forecast,) = ForecastHistory(settings.forecasts_db).forecasts("AAA")
    assert forecast["model_version"] == record["challenger_version"]
    assert forecast["origin"] == dates[0] and forecast["estimator"] == "garman-klass"


def test_better_champion_is_kept_and_issues_the_forecast(settings, csv_dir, dates):
    """The champion is the challenger's exact twin with the window-optimal scale: no worse."""
    registry = ModelRegistry(settings.models_dir)
    data = first_night_prices(settings, csv_dir, dates)
    dataset = build_dataset(data.prices, TINY.feature_spec())
    rows = window_rows(dataset)
    champion = train(data, TINY, registry, test_start=dataset.origins[rows[0]]).version
    forecast = load_forecaster(champion).predict(dataset)
    target = np.maximum(dataset.target[rows], 1e-10)
    optimal = float(np.mean(target / forecast[rows]))  # argmin_c QLIKE(y, c f)
    set_scale(champion, champion.meta["bias_correction"]["scale"] * optimal)
    pointer_before = (settings.models_dir / "AAA" / "champion.json").read_bytes()

    (record,) = nightly(settings, csv_dir, dates[0], tickers=["AAA"]).records
    assert record["status"] == "ok" and record["decision"] == "kept"
    assert record["challenger_qlike"] == pytest.approx(
        reference_qlike(target, forecast[rows]), rel=1e-6
    )
    assert record["champion_qlike"] == pytest.approx(
        reference_qlike(target, optimal * forecast[rows]), rel=1e-6
    )
    assert record["champion_qlike"] < record["challenger_qlike"]
    assert registry.champion_id("AAA") == champion.version == record["champion_version"]
    assert (settings.models_dir / "AAA" / "champion.json").read_bytes() == pointer_before
    assert record["challenger_version"] in registry.version_ids("AAA")  # kept for the record
    assert record["variance"] == pytest.approx(optimal * forecast[-1], rel=1e-6)
    (issued,) = ForecastHistory(settings.forecasts_db).forecasts("AAA")
    assert issued["model_version"] == champion.version


def test_corrupt_ticker_fails_alone_and_its_champion_is_untouched(invoke, settings, csv_dir, dates):
    first = nightly(settings, csv_dir, dates[0])
    assert [r["decision"] for r in first.records] == ["first", "first"] and first.exit_code == 0
    before = snapshot(settings.models_dir / "BBB")
    text = (csv_dir / "BBB.csv").read_text().splitlines()
    date, *values = text[300].split(",")
    text[300] = ",".join([date, values[0], values[1], values[2], "-1.0", *values[4:]])
    (csv_dir / "BBB.csv").write_text("\n".join(text) + "\n")

    result = invoke(
        "nightly",
        "--tickers",
        "AAA,BBB",
        "--source",
        "csv",
        "--csv-dir",
        str(csv_dir),
        "--as-of",
        dates[1],
    )
    assert result.exit_code == 1
    assert re.search(rf"^AAA\s+ok\s+(promoted|kept)\s.*{dates[1]}", result.stdout, re.M)
    assert re.search(r"^BBB\s+failed\s+-", result.stdout, re.M)
    assert re.search(rf"^BBB failed: CSV file .*BBB\.csv.*{date}", result.stdout, re.M)
    assert re.search(
        r"^error: 1 of 2 tickers failed: BBB; their champions are unchanged", result.stderr, re.M
    )
    assert snapshot(settings.models_dir / "BBB") == before  # pointer and every model file
    history = ForecastHistory(settings.forecasts_db)
    assert [f["origin"] for f in history.forecasts("AAA")] == dates[:2]
    assert [f["origin"] for f in history.forecasts("BBB")] == dates[:1]
    failed = history.runs("BBB")[-1]
    assert failed["status"] == "failed" and date in failed["error"]


def test_rerunning_a_completed_night_is_a_no_op(invoke, settings, csv_dir, dates):
    nightly(settings, csv_dir, dates[0], tickers=["AAA"])
    models_before = snapshot(settings.models_dir)
    history = ForecastHistory(settings.forecasts_db)
    forecasts_before = history.forecasts()

    result = invoke(
        "nightly",
        "--tickers",
        "AAA",
        "--source",
        "csv",
        "--csv-dir",
        str(csv_dir),
        "--as-of",
        dates[0],
        "--format",
        "json",
    )
    assert result.exit_code == 0
    (record,) = json.loads(result.stdout)["tickers"]
    assert record["status"] == "unchanged" and record["decision"] == "first"
    assert record["origin"] == dates[0]
    assert snapshot(settings.models_dir) == models_before
    assert history.forecasts() == forecasts_before
    assert [run["status"] for run in history.runs()] == ["ok"]


def test_a_second_concurrent_run_is_refused_by_the_lock(invoke, settings, csv_dir, tmp_path):
    universe = tmp_path / "universe.txt"
    universe.write_text("# the test universe\nAAA\nBBB  # second\n")
    with nightly_lock(settings.lock_path) as holder:
        result = invoke(
            "nightly", "--universe", str(universe), "--source", "csv", "--csv-dir", str(csv_dir)
        )
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: another nightly run holds {settings.lock_path} (pid {holder.pid} on {holder.host}"
    )
    assert not settings.models_dir.exists() and not settings.forecasts_db.exists()


def test_history_of_a_ticker_without_forecasts(invoke, settings):
    result = invoke("history", "--ticker", "spy")
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        f"no forecasts for SPY in {settings.forecasts_db}; run `forecast nightly` to issue some"
    )
    document = invoke("history", "--ticker", "SPY", "--score", "--format", "json").stdout
    (payload,) = checked(document, "history")["tickers"]
    assert payload == {
        "ticker": "SPY",
        "forecasts": [],
        "score": {
            "n": 0,
            "n_pending": 0,
            "qlike": None,
            "mse": None,
            "mae_vol": None,
            "bias": None,
            "risk": {
                "return": "log close-to-close return over the h trading days after the origin",
                "distributions": [],
                "n_without_var": 0,
                "reason": None,
                "levels": {},
            },
        },
    }
    assert checked(invoke("history", "--format", "json").stdout, "history")["tickers"] == []
    (entry,) = checked(invoke("history", "-t", "spy", "--format", "json").stdout, "history")["tickers"]
    assert entry == {"ticker": "SPY", "forecasts": [], "score": None}  # null without --score


def test_auto_source_never_substitutes_the_sample(settings, monkeypatch):
    import yfinance as yf
    from curl_cffi.requests.exceptions import DNSError

    def offline(self, *args, **kwargs):
        raise DNSError("Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(yf.Ticker, "history", offline)
    report = run_nightly(["SPY"], settings=settings, source="auto")
    (record,) = report.records
    assert report.exit_code == 1 and record["status"] == "failed"
    assert "Yahoo" in record["error"] or "network" in record["error"].lower()
    assert not PriceStore(settings.prices_dir).path("SPY", "sample").exists()
    assert not settings.models_dir.exists()


def test_a_ticker_whose_yahoo_fetch_fails_once_still_runs_tonight(
    settings, monkeypatch, yahoo_pauses
):
    """A network error on the first attempt is retried after a pause; the night goes on."""
    from curl_cffi.requests.exceptions import DNSError

    from forecaster.jobs import protocol as job
    from tests.conftest import fake_record, stand_in_challenge
    from tests.data.test_sources import flaky_history, yahoo_history_frame

    calls = flaky_history(
        monkeypatch, [DNSError("Could not resolve host: query2.finance.yahoo.com")],
        yahoo_history_frame(200),
    )  # fmt: skip

    def stand_in(registry: ModelRegistry, ticker: str) -> str:
        version = "20260101T000000-zeros-000001"
        registry.save(fake_record(ticker, version), lambda path: path.write_bytes(b"w"), False)
        return version

    monkeypatch.setattr(job, "challenge_step", stand_in_challenge(WINDOW, stand_in))
    report = run_nightly(
        ["AAA"], settings=settings, source="yahoo", window_days=WINDOW, distribution="normal"
    )
    (record,) = report.records
    assert report.exit_code == 0 and record["status"] == "ok", record["error"]
    assert record["source"] == "yahoo" and record["rows"] == 200
    assert calls == ["AAA", "AAA"] and yahoo_pauses == [1.0]


def test_too_short_history_and_out_of_order_replay_fail_clearly(settings, csv_dir, dates):
    write_csv(csv_dir / "CCC.csv", make_prices(130, seed=3))
    registry = ModelRegistry(settings.models_dir)
    data = load_prices(
        "AAA",
        source="csv",
        csv_path=csv_dir / "AAA.csv",
        end=pd.Timestamp(dates[1]),
        settings=settings,
    )
    champion = train(data, TINY, registry).version.version

    report = nightly(settings, csv_dir, dates[0], tickers=["CCC", "AAA", "DDD"])
    short, early, missing = report.records
    assert missing["status"] == "failed"
    assert missing["error"].startswith(
        f"no CSV file for DDD: expected {csv_dir / 'DDD.csv'} (--csv-dir holds one file per ticker"
    )
    assert short["status"] == "failed"
    assert re.match(
        r"\d+ labeled origins before the 40-day comparison window \(data up to \d{4}-\d\d-\d\d\) "
        r"are too few to train and validate a challenger \(at least 50 training origins must "
        r"remain\); use a longer history or a smaller --window-days",
        short["error"],
    )
    assert early["status"] == "failed"
    assert early["error"] == (
        f"champion {champion} was chosen on data up to {dates[1]}, after this run's last date "
        f"{dates[0]}; replay nights in date order, or use a fresh --home for a backfill"
    )
    assert registry.champion_id("AAA") == champion and registry.version_ids("AAA") == [champion]


def test_nightly_reads_a_panel_and_isolates_its_bad_ticker(settings, dates, tmp_path):
    from tests.data.test_panel import long_format

    broken = make_prices(400, seed=5)
    broken.iloc[30, broken.columns.get_loc("open")] = float("nan")
    frames = {"AAA": make_prices(400, seed=1), "BAD": broken}
    panel = tmp_path / "panel.parquet"
    long_format(frames).to_parquet(panel)
    report = run_nightly(
        ["AAA", "BAD"], settings=settings, panel_path=panel, as_of=dates[0],
        default_options=TINY, window_days=WINDOW,
    )
    by_ticker = {record["ticker"]: record for record in report.records}
    assert by_ticker["AAA"]["status"] == "ok" and by_ticker["AAA"]["source"] == "panel"
    assert by_ticker["BAD"]["status"] == "failed"
    assert "non-positive prices" in by_ticker["BAD"]["error"]
    assert (settings.prices_dir / "AAA.panel.parquet").is_file()
    assert report.source == "panel" and report.exit_code == 1
    with pytest.raises(ConfigError, match="--panel holds the prices"):
        run_nightly(["AAA"], settings=settings, panel_path=panel, source="yahoo")


def test_a_promoting_night_leaves_predict_a_warm_var_fit(invoke, settings, csv_dir, dates, monkeypatch):
    (record,) = nightly(settings, csv_dir, dates[0], tickers=["AAA"]).records
    assert record["decision"] == "first"
    champion = record["champion_version"]
    cached = sorted(p.name for p in (settings.risk_cache_dir / "AAA").iterdir())
    assert cached == [f"{champion}.t.numpy.json"]  # predict's default engine and --dist

    from forecaster.evaluation import risk

    def refit(*args, **kwargs):
        raise AssertionError("predict fit the VaR distribution again")

    original = risk.in_sample_residuals
    monkeypatch.setattr(risk, "in_sample_residuals", refit)
    result = invoke(
        "predict", "--ticker", "AAA", "--source", "csv", "--csv", str(csv_dir / "AAA.csv"),
        "--end", dates[0], "--format", "json",
    )
    assert result.exit_code == 0, result.output
    (payload,) = json.loads(result.stdout)["forecasts"]
    assert payload["model_version"] == champion and payload["risk"]["levels"] is not None
    # the warm fit is the one predict would have made: same numbers after dropping the cache
    monkeypatch.setattr(risk, "in_sample_residuals", original)
    (settings.risk_cache_dir / "AAA" / cached[0]).unlink()
    (cold,) = json.loads(invoke(
        "predict", "--ticker", "AAA", "--source", "csv", "--csv", str(csv_dir / "AAA.csv"),
        "--end", dates[0], "--format", "json",
    ).stdout)["forecasts"]
    for level, values in payload["risk"]["levels"].items():
        assert cold["risk"]["levels"][level] == pytest.approx(values, rel=1e-9)
