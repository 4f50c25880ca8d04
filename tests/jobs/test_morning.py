"""The morning report (issue 13): `forecast report` and `forecast nightly --report`.

The history here is written directly (forecasts with normal VaR/ES on a cached
random walk, and run rows), so no model is trained. Numbers in the page are
parsed back from the visible cells and the embedded JSON and compared with
`forecast history --score --format json` and with values computed here.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from forecaster.data.store import PriceStore
from forecaster.data.volatility import VARIANCE_FLOOR, daily_variance, log_returns
from forecaster.jobs import protocol
from forecaster.jobs.history import ForecastHistory
from forecaster.models.baselines import HAR
from forecaster.settings import Settings
from tests.conftest import make_prices, run_cli, stand_in_challenge, write_csv
from tests.contract import checked
from tests.jobs.test_promotion import WINDOW, stand_in

FIRST, DAYS = 200, 300
SWITCH = 250  # v2 issues the forecasts from this position on


def _risk(variance: float) -> dict:
    values = {}
    for level in (0.01, 0.05):
        z = stats.norm.ppf(level)
        sigma = math.sqrt(variance)
        values[f"{level:g}"] = {"var": sigma * z, "es": -sigma * stats.norm.pdf(z) / level}
    return {"distribution": "normal", "levels": values, "reason": None, "fit": {"n": 0}}


def _run(ticker: str, night: str, **fields) -> dict:
    return {"ticker": ticker, "as_of": night, "data_end": night, "status": "ok", **fields}


def _fill(home: Path) -> None:
    """SPY: forecasts by v1 then v2 (the last one pending) and a run per night; QQQ: a run only."""
    settings = Settings.resolve(home)
    prices = make_prices(DAYS, seed=7)
    PriceStore(settings.prices_dir).write("SPY", "sample", prices, "test prices")
    history = ForecastHistory(settings.forecasts_db)
    squared = np.diff(np.log(prices["close"].to_numpy())) ** 2
    rng = np.random.default_rng(5)
    with history.transaction() as connection:  # one transaction: a second, not one per row
        for position in range(FIRST, DAYS):
            night = f"{prices.index[position]:%Y-%m-%d}"
            variance = float(squared[position - 20 : position].mean() * rng.uniform(0.5, 1.5))
            version = "v1" if position < SWITCH else "v2"
            row = {
                "ticker": "SPY",
                "origin": night,
                "horizon": 1,
                "model_version": version,
                "init": "zeros",
                "estimator": "garman-klass",
                "estimator_window": 22,
                "source": "sample",
                "variance": variance,
                "vol": math.sqrt(252 * variance),
            }
            assert history.insert_forecast(connection, row)
            history.insert_risk(connection, row, _risk(variance))
            decision = "first" if position == FIRST else "promoted" if position == SWITCH else "kept"
            history.insert_run(
                connection,
                _run(
                    "SPY",
                    night,
                    decision=decision,
                    champion_version=version,
                    challenger_version=f"c{position}",
                    challenger_qlike=None if decision == "first" else 0.5,
                    champion_qlike=None
                    if decision == "first"
                    else 0.5
                    if decision == "promoted"
                    else 0.4,
                ),
            )
        last = f"{prices.index[-1]:%Y-%m-%d}"
        history.insert_run(
            connection, _run("QQQ", last, decision="kept", challenger_qlike=0.7, champion_qlike=0.6)
        )


@pytest.fixture(scope="module")
def filled_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("filled")
    _fill(home)
    return home


@pytest.fixture
def filled(filled_home, tmp_path, monkeypatch):
    """A private copy of the filled home (tests may change it); FORECAST_HOME points at it."""
    home = tmp_path / "home"
    shutil.copytree(filled_home, home)
    monkeypatch.setenv("FORECAST_HOME", str(home))
    settings = Settings.resolve(home)
    prices = make_prices(DAYS, seed=7)
    return settings, prices, ForecastHistory(settings.forecasts_db), f"{prices.index[-1]:%Y-%m-%d}"


class _Page(HTMLParser):
    """The summary cells (by ticker and data-key), the score paragraphs and the embedded JSON."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], dict] = {}
        self.scores: list[dict] = []
        self.ids: set[str] = set()
        self._ticker = self._cell = None
        self._script = False
        self.blob = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "tr" and "data-ticker" in attrs:
            self._ticker = attrs["data-ticker"]
        if tag == "td" and "data-key" in attrs and self._ticker:
            self._cell = {"value": attrs.get("data-value"), "text": ""}
            self.cells[(self._ticker, attrs["data-key"])] = self._cell
        if tag == "p" and attrs.get("class") == "score":
            self.scores.append(attrs)
        self._script = tag == "script" and attrs.get("id") == "report-data"

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        if tag == "tr":
            self._ticker = None
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._script:
            self.blob += data


def _report(path: Path, *args: str) -> tuple[_Page, dict, str]:
    """The page, the full payload it was made from, and its text.

    The page embeds the payload's summary (``_embedded``: no per-night rows); the full
    payload is rebuilt here for the same night and checked to be the one embedded.
    """
    import os

    from forecaster.evaluation.html_report import _embedded
    from forecaster.jobs.morning import build_report

    result = run_cli("report", "--html", str(path), *args)
    assert result.exit_code == 0, result.stderr
    text = path.read_text(encoding="utf-8")
    page = _Page(text)
    embedded = json.loads(page.blob)
    full = build_report(Settings.resolve(os.environ["FORECAST_HOME"]), embedded["as_of"])
    expected = json.loads(json.dumps(_embedded(full)))
    assert {**embedded, "generated_at": None} == {**expected, "generated_at": None}
    assert "history" not in embedded and all("series" not in t for t in embedded["tickers"])
    return page, full, text


def _spy_from_the_database(settings: Settings, prices) -> dict:
    """SPY's forecasts and VaR read with sqlite3, scored here from the prices by hand.

    Realized variance: the next day's Garman–Klass variance (floored), written out
    here; realized return: the next day's log close-to-close return.
    """
    with contextlib.closing(sqlite3.connect(settings.forecasts_db)) as db:
        forecasts = db.execute(
            "SELECT origin, variance, vol FROM forecasts WHERE ticker = 'SPY' ORDER BY origin"
        ).fetchall()
        risk = db.execute(
            "SELECT origin, level, var, es FROM forecast_risk "
            "WHERE ticker = 'SPY' AND level IS NOT NULL"
        ).fetchall()
    high, low = prices["high"].to_numpy(), prices["low"].to_numpy()
    open_, close = prices["open"].to_numpy(), prices["close"].to_numpy()
    gk = 0.5 * np.log(high / low) ** 2 - (2 * math.log(2) - 1) * np.log(close / open_) ** 2
    gk = np.maximum(gk, VARIANCE_FLOOR)
    dates = [f"{day:%Y-%m-%d}" for day in prices.index]
    realized = [(o, v) for o, v, _ in forecasts if dates.index(o) + 1 < len(dates)]
    y = np.array([gk[dates.index(origin) + 1] for origin, _ in realized])
    f = np.array([variance for _, variance in realized])
    vol_y, vol_f = np.sqrt(252 * y), np.sqrt(252 * f)
    levels = {}
    for level in (0.01, 0.05):
        rows = [
            (o, var) for o, lv, var, _ in risk if lv == level and dates.index(o) + 1 < len(dates)
        ]
        hits = [
            math.log(close[dates.index(o) + 1] / close[dates.index(o)]) <= var for o, var in rows
        ]
        levels[f"{level:g}"] = {"n": len(rows), "breaches": int(sum(hits))}
    latest = {(o, lv): (var, es) for o, lv, var, es in risk if o == forecasts[-1][0]}
    return {
        "vols": [vol for _, _, vol in forecasts],
        "latest_origin": forecasts[-1][0],
        "latest_risk": latest,
        "score": {
            "n": len(realized),
            "n_pending": len(forecasts) - len(realized),
            "qlike": float(np.mean(y / f - np.log(y / f) - 1)),
            "mse": float(np.mean((y - f) ** 2)),
            "mae_vol": float(np.mean(np.abs(vol_f - vol_y))),
            "bias": float(np.mean(vol_f - vol_y)),
        },
        "levels": levels,
    }


def test_page_numbers_equal_values_computed_from_the_database(filled, tmp_path):
    settings, prices, _, last = filled
    page, payload, text = _report(tmp_path / "r.html")
    expected = _spy_from_the_database(settings, prices)
    assert payload["as_of"] == last and expected["latest_origin"] == last
    assert expected["score"]["n"] == DAYS - FIRST - 1 and expected["score"]["n_pending"] == 1
    # visible cells: shown text and raw value against the stored forecasts
    latest, previous = expected["vols"][-1], expected["vols"][-2]
    assert page.cells[("SPY", "vol")]["text"] == f"{latest:.2%}"
    assert json.loads(page.cells[("SPY", "vol")]["value"]) == pytest.approx(latest, rel=1e-12)
    assert page.cells[("SPY", "change")]["text"] == f"{latest - previous:+.2%}"
    for level in (0.01, 0.05):
        var, es = expected["latest_risk"][(last, level)]
        for kind, value in (("var", var), ("es", es)):
            cell = page.cells[("SPY", f"{kind}_{level:g}")]
            assert json.loads(cell["value"]) == pytest.approx(value, rel=1e-12)
            assert cell["text"] == f"{value:.2%}"
    # the live score paragraph against the score computed here
    (score_attrs,) = page.scores
    for key, value in expected["score"].items():
        assert json.loads(score_attrs[f"data-{key}"]) == pytest.approx(value, rel=1e-9), key
    for key, entry in expected["levels"].items():  # the live VaR backtest
        rate = entry["breaches"] / entry["n"]
        shown = f"VaR {float(key) * 100:g}%: {entry['breaches']} breaches in {entry['n']} "
        assert shown + f"({rate:.2%}, expected" in text
    # the embedded history is the one `forecast history --score --format json` prints
    result = run_cli("history", "--score", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert payload["history"] == checked(result.stdout, "history")["tickers"]
    # decisions: SPY's last night kept (with its reason), QQQ kept too, nothing failed
    assert page.cells[("SPY", "outcome")]["text"] == "kept"
    assert page.cells[("QQQ", "outcome")]["text"] == "kept"
    assert "failures" not in page.ids and payload["failures"] == []


def test_recent_scores_and_har_are_computed_at_each_origin_without_look_ahead(filled, tmp_path):
    settings, prices, _, _ = filled
    page, payload, _ = _report(tmp_path / "r.html")
    (spy,) = [item for item in payload["tickers"] if item["ticker"] == "SPY"]
    (history,) = [entry for entry in payload["history"] if entry["ticker"] == "SPY"]
    scored = [row for row in history["forecasts"] if row["realized_var"] is not None]
    variance = daily_variance(prices, "garman-klass", 22).variance
    returns = log_returns(prices)
    for days in (20, 60):
        rows = scored[-days:]
        target = np.maximum([row["realized_var"] for row in rows], VARIANCE_FLOOR)
        forecast = np.array([row["variance"] for row in rows])
        ratio = target / forecast
        model_qlike = float(np.mean(ratio - np.log(ratio) - 1))
        har = []
        for row in rows:  # a HAR fit on nothing after the origin's close
            origin = prices.index[prices.index.get_indexer([row["origin"]])[0]]
            seen = prices.loc[:origin]
            fitted = HAR().fit_series(
                daily_variance(seen, "garman-klass", 22).variance, log_returns(seen), 1, origin
            )
            har.append(float(fitted.predict_origins([origin])[0]))
            # the full-history fit at the same cut gives the same forecast: nothing later is used
            full = HAR().fit_series(variance, returns, 1, origin).predict_origins([origin])[0]
            assert full == pytest.approx(har[-1], rel=1e-9)
        ratio_har = target / np.array(har)
        har_qlike = float(np.mean(ratio_har - np.log(ratio_har) - 1))
        recent = spy["recent"][str(days)]
        assert recent["n"] == days and recent["end"] == rows[-1]["origin"]
        assert recent["model"]["qlike"] == pytest.approx(model_qlike, rel=1e-12)
        assert recent["har"]["qlike"] == pytest.approx(har_qlike, rel=1e-9)
        cell = page.cells[("SPY", f"qlike_ratio_{days}")]
        assert json.loads(cell["value"]) == recent["qlike_ratio"]
        assert cell["text"] == f"{model_qlike / har_qlike:.3f} ({days}d)"


def test_high_vol_means_what_it_means_in_evaluate(filled, tmp_path):
    """The page's regime threshold is the --regime-quantile default of `evaluate` (also
    fit_thresholds' default) of every trailing 22-day mean variance known at the origin."""
    from forecaster.cli.evaluate import evaluate
    from forecaster.evaluation.regimes import fit_thresholds

    settings, prices, _, last = filled
    (default,) = [param.default for param in evaluate.params if param.name == "regime_quantile"]
    _, payload, _ = _report(tmp_path / "r.html")
    (spy,) = [item for item in payload["tickers"] if item["ticker"] == "SPY"]
    assert payload["regime_quantile"] == default == spy["regime"]["quantile"]
    assert spy["regime"]["origin"] == last
    high, low = prices["high"].to_numpy(), prices["low"].to_numpy()
    open_, close = prices["open"].to_numpy(), prices["close"].to_numpy()
    gk = 0.5 * np.log(high / low) ** 2 - (2 * math.log(2) - 1) * np.log(close / open_) ** 2
    gk = np.maximum(gk, VARIANCE_FLOOR)
    known = np.array([gk[end - 21 : end + 1].mean() for end in range(21, len(gk))])
    thresholds = fit_thresholds(known, known)  # the library's default quantile
    assert thresholds.quantile == default
    assert spy["regime"]["threshold_vol"] == pytest.approx(thresholds.ex_ante_vol, rel=1e-9)
    assert spy["regime"]["trailing_vol"] == pytest.approx(math.sqrt(252 * known[-1]), rel=1e-9)


def test_as_of_hides_later_forecasts_runs_and_prices(filled, tmp_path):
    settings, prices, _, _ = filled
    night = f"{prices.index[260]:%Y-%m-%d}"
    _, before, _ = _report(tmp_path / "a.html", "--as-of", night)
    # rewrite every price after the night: the report as of that night must not change
    changed = prices.copy()
    changed.iloc[261:, :4] *= np.linspace(1.0, 1.5, DAYS - 261)[:, None]
    PriceStore(settings.prices_dir).write("SPY", "sample", changed, "test prices")
    _, after, _ = _report(tmp_path / "b.html", "--as-of", night)
    before.pop("generated_at"), after.pop("generated_at")
    assert before == after
    (spy,) = [item for item in after["tickers"] if item["ticker"] == "SPY"]
    assert spy["latest"]["origin"] == night and spy["decision"]["night"] == night
    assert spy["series"][-1]["realized_var"] is None  # realized only the next day


def test_failures_section_iff_the_latest_run_failed_and_strings_are_escaped(filled, tmp_path):
    settings, prices, history, last = filled
    error = "price cache <b>'QQQ'</b> & <script>alert(1)</script> is unreadable"
    history.record_run({"ticker": "QQQ", "as_of": last, "status": "failed", "error": error})
    page, payload, text = _report(tmp_path / "r.html")
    assert "failures" in page.ids
    assert payload["failures"] == [{"ticker": "QQQ", "night": last, "error": error}]
    assert "<script>alert(1)" not in text and "<b>'QQQ'</b>" not in text
    escaped = (
        "price cache &lt;b&gt;&#x27;QQQ&#x27;&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert f"<code>error: {escaped} is unreadable</code>" in text
    assert page.cells[("QQQ", "outcome")]["text"] == "failed"
    # a later successful run of QQQ: no failure left, no section
    history.record_run(_run("QQQ", last, decision="kept", challenger_qlike=0.7, champion_qlike=0.6))
    page, payload, _ = _report(tmp_path / "r.html")
    assert "failures" not in page.ids and payload["failures"] == []


def test_a_hostile_ticker_name_is_escaped_everywhere(filled):
    from forecaster.evaluation.html_report import render_html
    from forecaster.jobs.morning import build_report

    settings = filled[0]
    payload = build_report(settings)
    name = '"><img src=x onerror=alert(1)></script><script>alert(2)</script>'
    for item in (*payload["tickers"], *payload["history"]):
        item["ticker"] = name
    payload["failures"] = [{"ticker": name, "night": "2020-01-01", "error": name}]
    text = render_html(payload)
    assert "<img" not in text and "alert(2)</script>" not in text
    assert text.count("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") >= 3
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert json.loads(blob.group(1))["tickers"][0]["ticker"] == name


def test_default_path_under_the_home_and_atomic_write(filled, tmp_path, monkeypatch):
    settings, _, _, last = filled
    home = settings.home
    result = run_cli("report")
    assert result.exit_code == 0, result.stderr
    written = home / "reports" / f"{last}.html"
    assert 5_000 < written.stat().st_size < 60_000  # inline SVG charts, no charting library
    assert result.stderr == f"wrote {written}\n"  # the one line; absolute outside the cwd
    monkeypatch.chdir(home)
    result = run_cli("report")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"wrote reports/{last}.html\n"  # relative under the cwd
    # a failing run leaves the previous page as it was, with no temporary file beside it
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    target.write_text("previous report")
    result = run_cli("report", "--html", str(target), "--as-of", "2000-01-03")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the forecast history") and "--as-of" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert target.read_text() == "previous report"
    assert sorted(path.name for path in target.parent.iterdir()) == ["report.html"]


def test_an_empty_history_is_one_clear_error(home):
    result = run_cli("report")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the forecast history")
    assert "holds no forecast and no nightly run" in result.stderr
    assert "forecast nightly" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (home / "reports").exists()


def test_a_night_with_forecasts_but_nothing_scored_yet(home, tmp_path):
    settings = Settings.resolve(home)
    prices = make_prices(60, seed=2)
    PriceStore(settings.prices_dir).write("SPY", "sample", prices, "test prices")
    night = f"{prices.index[-1]:%Y-%m-%d}"
    forecast = {
        "ticker": "SPY",
        "origin": night,
        "horizon": 1,
        "model_version": "v1",
        "estimator": "garman-klass",
        "estimator_window": 22,
        "source": "sample",
        "variance": 1e-4,
        "vol": math.sqrt(252e-4),
    }
    history = ForecastHistory(settings.forecasts_db)
    with history.transaction() as connection:
        assert history.insert_forecast(connection, forecast)
        history.insert_risk(connection, forecast, _risk(1e-4))
    page, payload, text = _report(tmp_path / "r.html")
    assert "Nothing scored yet (1 pending)" in text
    assert page.cells[("SPY", "qlike_ratio_20")]["text"] == "not scored yet"
    assert page.cells[("SPY", "change")]["text"] == "–"


def test_nightly_report_writes_the_night_page_failures_included(home, monkeypatch):
    monkeypatch.setattr(protocol, "challenge_step", stand_in_challenge(WINDOW, stand_in))
    folder = home / "csv"
    folder.mkdir()
    prices = make_prices(200, seed=1)
    write_csv(folder / "AAA.csv", prices)  # BBB has no file: it fails every night
    nights = [f"{day:%Y-%m-%d}" for day in prices.index[-2:]]
    for night, cwd in zip(nights, (None, home), strict=True):
        if cwd is not None:
            monkeypatch.chdir(cwd)  # the second night runs from the home: a relative path
        result = run_cli(
            "nightly", "--tickers", "AAA,BBB", "--source", "csv", "--csv-dir", str(folder),
            "--as-of", night, "--window-days", str(WINDOW), "--report",
        )  # fmt: skip
        assert result.exit_code == 1, result.stderr
        shown = home / "reports" / f"{night}.html" if cwd is None else f"reports/{night}.html"
        # the page is written after every ticker and retention, before the failure summary
        *_, wrote, summary = result.stderr.splitlines()
        assert wrote == f"wrote {shown}"
        assert summary.startswith("error: 1 of 2 tickers failed: BBB")
        assert (home / "reports" / f"{night}.html").is_file()
    page = _Page((home / "reports" / f"{nights[-1]}.html").read_text(encoding="utf-8"))
    payload = json.loads(page.blob)
    history = checked(run_cli("history", "--score", "--format", "json").stdout, "history")
    history = history["tickers"]
    assert history[0]["score"]["n"] == 1
    assert [json.loads(score["data-n"]) for score in page.scores] == [1]
    assert page.cells[("AAA", "outcome")]["text"] == "promoted"
    assert page.cells[("BBB", "outcome")]["text"] == "failed" and "failures" in page.ids
    (failure,) = payload["failures"]
    assert failure["ticker"] == "BBB" and failure["error"].startswith("no CSV file for BBB")


@pytest.mark.slow
def test_the_page_renders_offline_in_headless_chromium(filled, tmp_path):
    """A real browser, network emulated offline: no console error, no request but the file,
    every chart drawn (inline SVG, laid out by the browser), and a screenshot."""
    from tests.browser import render, require_chromium

    require_chromium()  # skips without it, fails under CI
    page = tmp_path / "report.html"
    _, payload, _ = _report(page)
    charts = sum(1 for item in payload["tickers"] if item["series"])
    shot = tmp_path / "report.png"
    result = render(
        page,
        shot,
        check="Array.from(document.querySelectorAll('svg.chart'))"
        ".map(chart => Array.from(chart.querySelectorAll('polyline'))"
        ".filter(line => line.getBBox().width > 100).length)",
    )
    assert result.loaded
    assert result.errors == []
    assert result.requests == [page.resolve().as_uri()]
    assert len(result.check) == charts == 1 and all(traces >= 3 for traces in result.check)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_keep_prunes_old_night_pages_and_nothing_else(filled):
    settings, _, _, last = filled
    folder = settings.home / "reports"
    folder.mkdir()
    old = [folder / f"2001-01-0{day}.html" for day in range(1, 5)]
    for page in old:
        page.write_text("old page")
    (folder / "notes.html").write_text("the user's own file")
    result = run_cli("report", "--keep", "2")
    assert result.exit_code == 0, result.stderr
    kept = sorted(p.name for p in folder.iterdir())
    # the page just written is the newest night; one older page survives besides it
    assert kept == ["2001-01-04.html", f"{last}.html", "notes.html"]
    assert "retention: deleted 3 older report page(s) (2001-01-03.html" in result.stderr
    refused = run_cli("report", "--keep", "2", "--html", str(settings.home / "x.html"))
    assert refused.exit_code == 1 and "--keep prunes the home's reports/ folder" in refused.stderr


def test_report_keep_zero_keeps_only_the_page_just_written_and_all_keeps_every_page(filled):
    """report --keep follows the one --keep rule (0 to 100000, or all); it used to start at 1."""
    settings, _, _, last = filled
    folder = settings.home / "reports"
    folder.mkdir()
    for day in range(1, 4):
        (folder / f"2001-01-0{day}.html").write_text("old page")
    result = run_cli("report", "--keep", "all")
    assert result.exit_code == 0, result.stderr
    assert len(list(folder.iterdir())) == 4 and "retention:" not in result.stderr
    result = run_cli("report", "--keep", "0")
    assert result.exit_code == 0, result.stderr
    assert [page.name for page in folder.iterdir()] == [f"{last}.html"]
    assert (
        "retention: deleted 3 older report page(s) (2001-01-03.html, 2001-01-02.html, "
        "2001-01-01.html); reports/ keeps only the page just written"
    ) in result.stderr
