"""`forecast nightly --universal`: one universal model refit on a schedule for a book.

Three synthetic tickers and a broken one in a panel file, a tiny universal model
(one epoch) and a one-epoch fine-tune, so a refit night takes seconds.
"""

from __future__ import annotations

import json

import pytest

from forecaster.errors import ConfigError
from forecaster.jobs.history import ForecastHistory
from forecaster.jobs.nightly import run_nightly
from forecaster.jobs.retention import prune
from forecaster.jobs.universe import read_pointer, refit_reason, weekdays_between
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings
from tests.conftest import TINY, make_prices
from tests.data.test_panel import long_format

WINDOW = 40
TICKERS = ["AAA", "BBB", "CCC", "BAD"]


@pytest.fixture
def settings(home) -> Settings:
    return Settings.resolve(home)


@pytest.fixture
def panel(tmp_path):
    broken = make_prices(400, seed=5)
    broken.iloc[30, broken.columns.get_loc("open")] = float("nan")
    frames = {name: make_prices(400, seed=seed) for seed, name in enumerate(TICKERS[:3], 1)}
    frames["BAD"] = broken
    path = tmp_path / "panel.parquet"
    long_format(frames).to_parquet(path)
    return path


@pytest.fixture
def nights():
    return [f"{day:%Y-%m-%d}" for day in make_prices(400, seed=1).index[-3:]]


def night(settings, panel, as_of, **options):
    options = {
        "universal_options": TINY.replace(epochs=1, batch_size=64),
        "fine_tune": {"epochs": 1},
        **options,
    }
    return run_nightly(
        TICKERS, settings=settings, panel_path=panel, as_of=as_of, window_days=WINDOW,
        universal=True, **options,
    )


def test_a_universe_night_refits_once_then_serves_until_the_next_refit(settings, panel, nights):
    registry = ModelRegistry(settings.models_dir)

    first = night(settings, panel, nights[0])
    universe = first.universe
    assert universe["refit"] and universe["reason"] == "no universal model yet"
    assert universe["error"] is None and universe["seconds"] > 0
    version = universe["version"]
    pointer = read_pointer(settings)
    assert pointer.version == version and pointer.fitted == ("AAA", "BBB", "CCC")
    assert pointer.tickers == tuple(TICKERS) and pointer.data_end == nights[0]
    by_ticker = {record["ticker"]: record for record in first.records}
    assert by_ticker["BAD"]["status"] == "failed"  # isolated, as in any night
    for ticker in ("AAA", "BBB", "CCC"):
        record = by_ticker[ticker]
        assert record["status"] == "ok" and record["decision"] == "first"
        assert version in registry.version_ids(ticker)  # stored under every fitted ticker
        # the challenger is the universal view or its fine-tune, and the reason says which
        assert "validation qlike fine-tuned" in record["decision_reason"]
        champion = registry.get(ticker, registry.champion_id(ticker))
        if record["champion_version"] == version:
            assert "challenger: universal" in record["decision_reason"]
        else:
            assert champion.record.parent == {"ticker": ticker, "version": version}
            assert f"challenger: fine-tuned {champion.version}" in record["decision_reason"]
        # the universal test period starts at the comparison window: no look-ahead
        assert registry.get(ticker, version).record.split["test_start"] == pointer.cut
        assert pointer.cut == record["window_start"]

    counts = {t: len(registry.version_ids(t)) for t in ("AAA", "BBB", "CCC")}
    second = night(settings, panel, nights[1])
    assert not second.universe["refit"] and second.universe["next_refit"] == 19
    for record in second.records[:3]:
        assert record["status"] == "ok" and record["decision"] == "kept"
        assert record["challenger_version"] is None  # nothing trained
        assert record["decision_reason"].startswith("nightly: no universal refit tonight")
        assert record["origin"] == nights[1] and record["champion_qlike"] is not None
    assert counts == {t: len(registry.version_ids(t)) for t in ("AAA", "BBB", "CCC")}

    third = night(settings, panel, nights[2], universe_refit=1)
    assert third.universe["refit"] and third.universe["reason"].startswith("2 weekdays since")
    assert third.universe["version"] != version
    for record in third.records[:3]:
        assert record["status"] == "ok" and record["decision"] in ("promoted", "kept")
        assert record["dm_pvalue"] is not None  # the rule decided, not "no worse"
        assert len(registry.version_ids(record["ticker"])) > counts[record["ticker"]]
    history = ForecastHistory(settings.forecasts_db)
    assert len(history.forecasts("AAA")) == 3

    # pruning never deletes the universal version the next nights serve
    current = read_pointer(settings).version
    prune(settings, ["AAA"], keep=0)
    assert current in registry.version_ids("AAA")


def test_universe_options_are_checked_before_any_work(settings, panel, nights):
    with pytest.raises(ConfigError, match="--universe-refit needs --universal"):
        run_nightly(["AAA"], settings=settings, panel_path=panel, universe_refit=5)
    with pytest.raises(ConfigError, match="reads only each ticker's own prices"):
        night(settings, panel, nights[0], universal_options=TINY.replace(market="SPY"))
    assert not settings.models_dir.exists()


def test_refit_rule(settings):
    registry = ModelRegistry(settings.models_dir)
    assert refit_reason(None, ["AAA"], "2020-01-10", 5, registry) == "no universal model yet"
    assert weekdays_between("2020-01-03", "2020-01-10") == 5  # Friday to Friday
    assert weekdays_between("2020-01-10", "2020-01-10") == 0


@pytest.mark.slow
def test_the_cli_runs_a_universe_night(run, settings, panel, nights):
    result = run(
        "nightly", "--panel", str(panel), "--tickers", "AAA,BBB", "--as-of", nights[0],
        "--universal", "--no-fine-tune", "--window-days", str(WINDOW), "--format", "json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["universe"]["refit"] is True
    assert "universe: refit (no universal model yet)" in result.stderr
