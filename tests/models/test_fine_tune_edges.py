"""Fine-tuning from a pooled model (issue 20): the asked ticker's copy only, the parent's cut
inherited, a refusal that names the first test start that works, an honest error text.

Models are tiny (4 units, 1-2 epochs, one member): a few seconds each.
"""

from __future__ import annotations

import pytest

from forecaster.data.features import build_dataset
from forecaster.errors import ConfigError, EvaluationError
from forecaster.evaluation.backtest import check_out_of_sample
from forecaster.models.lstm_forecaster import fine_tune_config, train, train_pooled
from forecaster.models.registry import ModelRegistry
from tests.conftest import TINY, write_csv
from tests.models.test_pooled import price_data, series_prices

pytestmark = pytest.mark.usefixtures("tf_configured")


@pytest.fixture(scope="module")
def pooled_home(tmp_path_factory):
    """A home with a tiny model pooled over AAA and BBB (cut at AAA's 300th origin)."""
    home = tmp_path_factory.mktemp("pooled")
    prices = series_prices()
    folder = home / "csv"
    folder.mkdir()
    for ticker, frame in prices.items():
        write_csv(folder / f"{ticker}.csv", frame)
    datas = [price_data(ticker, prices[ticker]) for ticker in ("AAA", "BBB")]
    cut = build_dataset(prices["AAA"], TINY.feature_spec()).origins[300]
    parent = train_pooled(datas, TINY, ModelRegistry(home / "models"), test_start=cut, threads=1)
    return home, parent, f"{cut:%Y-%m-%d}", prices


@pytest.fixture
def home(pooled_home, tmp_path):
    import shutil

    source, parent, cut, prices = pooled_home
    copy = tmp_path / "home"
    shutil.copytree(source, copy)
    return copy, parent, cut, prices


def run(home, *args):
    from tests.conftest import run_cli

    return run_cli("--home", str(home), *args)


def fine_tune(home, ticker, version, *extra):
    return run(
        home, "train", "--ticker", ticker, "--source", "csv", "--csv",
        str(home / "csv" / f"{ticker}.csv"), "--from", version, "--epochs", "1", *extra,
    )  # fmt: skip


def test_fine_tuning_without_test_start_inherits_the_parents_cut(home):
    """Before: a 20% test period inside what the parent saw, refused later by evaluate."""
    home, parent, cut, prices = home
    result = fine_tune(home, "CCC", parent.version)
    assert result.exit_code == 0, result.output
    assert f"note: --test-start {cut} inherited from {parent.version}" in result.stderr
    child = result.stdout.split()[1]
    record = ModelRegistry(home / "models").get("CCC", child).record
    assert record.split["test_start"] == cut
    check_out_of_sample(record)  # evaluate accepts it


def test_an_explicit_early_test_period_warns_at_training_time(home):
    home, parent, cut, prices = home
    result = fine_tune(home, "CCC", parent.version, "--test-fraction", "0.5")
    assert result.exit_code == 0, result.output
    assert "warning: the test period from" in result.stderr
    assert f"retrain with --test-start {cut} or later" in result.stderr


def test_the_refusal_names_the_first_test_start_that_works(home):
    home, parent, cut, prices = home
    registry = ModelRegistry(home / "models")
    config = fine_tune_config(parent.versions["AAA"].record, epochs=1)
    data = price_data("CCC", prices["CCC"])
    origins = build_dataset(prices["CCC"], TINY.feature_spec()).origins
    early = train(data, config, registry, test_start=origins[200], threads=1, promote=False,
                  parent=parent.versions["AAA"])
    with pytest.raises(EvaluationError, match=r"--test-start (\S+) or later") as refused:
        check_out_of_sample(early.record)
    first = str(refused.value).split("--test-start ")[1].split()[0]
    exact = train(data, config, registry, test_start=first, threads=1, promote=False,
                  parent=parent.versions["AAA"])
    check_out_of_sample(exact.record)  # the date named works


def test_fine_tuning_from_a_pooled_version_reads_only_the_asked_tickers_copy(home):
    home, parent, cut, prices = home
    meta = home / "models" / "AAA" / parent.version / "meta.json"
    meta.write_text(meta.read_text() + " ")  # AAA's copy no longer matches its manifest
    result = fine_tune(home, "BBB", parent.version, "--test-start", cut)
    assert result.exit_code == 0, result.output  # BBB's own copy is intact
    damaged = fine_tune(home, "AAA", parent.version, "--test-start", cut)
    assert damaged.exit_code == 1 and "AAA" in damaged.stderr and "BBB" not in damaged.stderr


def test_the_fine_tune_error_names_only_options_that_exist(pooled_home):
    _, parent, _, _ = pooled_home
    with pytest.raises(ConfigError) as refused:
        fine_tune_config(parent.versions["AAA"].record, units=8)
    text = str(refused.value)
    assert "cannot change units" in text
    assert "--epochs, --patience, --seed, --batch-size and --epoch-fraction" in text
    assert "--learning-rate" not in text and "seed, learning_rate may differ" not in text

