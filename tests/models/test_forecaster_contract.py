"""The one forecaster contract: LSTM and baselines alike; records; strategy options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.data.features import build_dataset, split_dataset
from forecaster.data.loader import PriceData
from forecaster.errors import ConfigError, ModelError, RegistryError
from forecaster.models.base import Forecaster, fit_end_before
from forecaster.models.baselines import BASELINES, HAR, create_baseline
from forecaster.models.config import LSTMConfig
from forecaster.models.initial_state import STRATEGIES, InitialState, derive_seed, register
from forecaster.models.lstm_forecaster import LSTMForecaster, load_forecaster, train
from forecaster.models.record import FORMAT, ModelRecord
from forecaster.models.registry import ModelRegistry
from tests.conftest import TINY, make_prices

pytestmark = pytest.mark.usefixtures("tf_configured")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "models_0_1"


def price_data(prices: pd.DataFrame, ticker: str = "TEST") -> PriceData:
    return PriceData(
        ticker=ticker, prices=prices, source="csv", description="synthetic test prices"
    )


# ------------------------------------------------------------------ the contract, baselines


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in BASELINES
        if not getattr(BASELINES[name], "needs_exog", False)
        and not getattr(BASELINES[name], "needs_quarticity", False)  # tests/models/test_harq.py
    ],
)
def test_baseline_contract_equals_its_series_fit_before_the_cut(name):
    prices = make_prices(500, seed=2)
    dataset = build_dataset(prices, TINY.feature_spec())
    cut = dataset.origins[300]
    rows = np.arange(300, 340)
    forecaster = create_baseline(name)
    assert isinstance(forecaster, Forecaster) and not forecaster.is_fitted
    forecast = forecaster.fit(dataset, cut).predict(dataset, rows)
    fit_end = dataset.variance.index[dataset.positions[300] - 1]
    assert fit_end_before(dataset, cut) == fit_end
    by_series = create_baseline(name).fit_series(
        dataset.variance, dataset.returns, dataset.horizon, fit_end
    )
    np.testing.assert_array_equal(forecast, by_series.predict_origins(dataset.origins[rows]))
    assert forecaster.cut == cut
    assert type(forecaster).from_config(forecaster.config()).config() == forecaster.config()


def test_baseline_fit_sees_nothing_on_or_after_the_cut():
    prices = make_prices(500, seed=2)
    dataset = build_dataset(prices, TINY.feature_spec())
    cut = dataset.origins[300]
    shocked = prices.copy()
    shocked.loc[shocked.index >= cut, ["high"]] *= 1.5  # baselines stop the day before
    shocked_set = build_dataset(shocked, TINY.feature_spec())
    clean = HAR().fit(dataset, cut)
    later = HAR().fit(shocked_set, cut)
    np.testing.assert_array_equal(clean.coefficients, later.coefficients)


def test_predict_checks_fit_and_rows():
    dataset = build_dataset(make_prices(400, seed=1), TINY.feature_spec())
    with pytest.raises(ModelError, match="not fitted; call fit"):
        HAR().predict(dataset, np.arange(3))
    fitted = HAR().fit(dataset, dataset.origins[250])
    with pytest.raises(Exception, match=r"rows must lie in 0\.\.\d+"):
        fitted.predict(dataset, np.array([len(dataset)]))
    assert fitted.predict(dataset, np.array([], dtype=int)).shape == (0,)


def test_a_new_baseline_is_one_registered_class():
    from forecaster.models.baselines import Baseline, parse_baselines, register_baseline

    @register_baseline
    class Double(Baseline):
        """Twice the last day's variance (a test-only baseline)."""

        kind = "double-test"

        def _estimate(self) -> None:
            self._earliest = self._first_valid(self._variance)

        def _forecast(self, positions):
            return 2 * self._variance[positions]

        def _params(self):
            return {}

    try:
        assert parse_baselines("all")[-1] == "double-test"
        dataset = build_dataset(make_prices(400, seed=1), TINY.feature_spec())
        forecast = create_baseline("double-test").fit(dataset, dataset.origins[200])
        rows = np.arange(200, 210)
        expected = 2 * dataset.variance.to_numpy()[dataset.positions[rows]]
        np.testing.assert_allclose(forecast.predict(dataset, rows), expected)
    finally:
        del BASELINES["double-test"]


# ------------------------------------------------------------------------ LSTM config


def test_config_fills_in_and_validates_strategy_options():
    assert LSTMConfig(init="encoder").init_options == {"encoder_units": 16}
    assert LSTMConfig(init="random", init_options={"state_stddev": 0.3}).init_options == {
        "state_stddev": 0.3
    }
    with pytest.raises(ConfigError, match=r"strategy 'zeros' got unknown option\(s\) width"):
        LSTMConfig(init="zeros", init_options={"width": 3})
    with pytest.raises(ConfigError, match=r"encoder_units must be an integer >= 1; received 0"):
        LSTMConfig(init="encoder", init_options={"encoder_units": 0})
    # switching strategy drops the old strategy's options
    assert LSTMConfig(init="encoder").replace(init="learned").init_options == {}


def test_config_round_trips_and_rejects_unknown_keys():
    config = LSTMConfig(init="random", init_options={"state_stddev": 0.2}, horizon=5, seed=3)
    assert LSTMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match=r"unknown LSTM setting\(s\) dropout"):
        LSTMConfig.from_dict({**config.to_dict(), "dropout": 0.1})


# --------------------------------------------------------------- records of release 0.1.0


@pytest.mark.parametrize(
    ("version", "variance"),
    [
        ("20261126T011904-encoder-af07fd", 2.7713402966297023e-05),
        ("20261126T011922-stateful-153546", 2.7020888348419073e-05),
    ],
)
def test_models_saved_by_release_0_1_load_and_forecast_as_before(tmp_path, version, variance):
    from arch.data import sp500

    shutil.copytree(FIXTURES, tmp_path / "models")
    saved = ModelRegistry(tmp_path / "models").get("SPY", version)
    record = saved.record
    assert record.format == 1 and record.horizon == 1 and record.config.units == 4
    assert record.config.init_options == ({"encoder_units": 16} if "encoder" in version else {})
    raw = sp500.load()
    prices = raw.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]]
    prices = prices.loc["2010-01-01":"2014-12-31"].astype(float)
    prices.index = pd.DatetimeIndex(prices.index, name="date")
    forecaster = load_forecaster(saved)
    dataset = forecaster.dataset(prices)
    assert dataset.origins[-1] == pd.Timestamp("2014-12-31")
    last = forecaster.predict(dataset, np.array([len(dataset) - 1]))[0]
    assert last == pytest.approx(variance, rel=1e-6)
    # written back in today's format, it reads to the same record
    again = ModelRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again.format == FORMAT and again.config == record.config
    assert again.scale == record.scale and again.model_spec() == record.model_spec()


def test_a_record_that_contradicts_itself_is_an_error_naming_the_file(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "models")
    folder = tmp_path / "models" / "SPY" / "20261126T011904-encoder-af07fd"
    meta = json.loads((folder / "meta.json").read_text())
    meta["horizon"] = 22  # the options and feature spec still say 1
    (folder / "meta.json").write_text(json.dumps(meta))
    saved = ModelRegistry(tmp_path / "models").get("SPY", folder.name)
    with pytest.raises(RegistryError, match=r"meta\.json' is incomplete or corrupt \(horizon"):
        _ = saved.record
    meta["horizon"] = 1
    meta["bias_correction"]["scale"] = float("nan")
    (folder / "meta.json").write_text(json.dumps(meta))
    saved = ModelRegistry(tmp_path / "models").get("SPY", folder.name)
    with pytest.raises(RegistryError, match=r"scale must be a finite number > 0"):
        _ = saved.record


# ------------------------------------------------------------------- a sixth strategy


@pytest.fixture
def two_layer_strategy():
    """A test-only strategy with an option: h0, c0 from a hidden layer of `width` units."""

    @register
    class TwoLayer(InitialState):
        name = "two-layer-test"
        defaults = {"width": 6}

        def _build(self, sequence_input, context_input):
            import keras

            def glorot(index: int):
                return keras.initializers.GlorotUniform(seed=derive_seed(self.seed, 9, index))

            hidden = keras.layers.Dense(
                self.options["width"],
                activation="tanh",
                kernel_initializer=glorot(0),
                name="two_hidden",
            )(context_input)
            initial_h = keras.layers.Dense(
                self.units, activation="tanh", kernel_initializer=glorot(1), name="two_h0"
            )(hidden)
            initial_c = keras.layers.Dense(
                self.units, kernel_initializer=glorot(2), name="two_c0"
            )(hidden)
            return [initial_h, initial_c]

    yield TwoLayer
    del STRATEGIES["two-layer-test"]


def test_a_sixth_strategy_with_an_option_trains_saves_loads_and_is_honoured(
    tmp_path, two_layer_strategy
):
    prices = make_prices(420, seed=3)
    registry = ModelRegistry(tmp_path / "models")
    config = TINY.replace(init="two-layer-test", init_options={"width": 3})
    outcome = train(price_data(prices), config, registry)
    assert outcome.record.config.init_options == {"width": 3}
    meta = json.loads((outcome.version.path / "meta.json").read_text())
    assert meta["config"]["init"] == "two-layer-test"
    assert meta["config"]["init_options"] == {"width": 3}
    loaded = load_forecaster(registry.champion("TEST"))
    assert loaded.model.get_layer("two_hidden").units == 3  # the option is honoured
    dataset = loaded.dataset(prices)
    np.testing.assert_allclose(
        loaded.predict(dataset), outcome.forecaster.predict(dataset), rtol=1e-6
    )
    other = train(
        price_data(prices),
        config.replace(init_options={"width": 5}),
        registry,
        promote=False,
    )
    assert other.forecaster.model.get_layer("two_hidden").units == 5


# ------------------------------------------------------------------------ LSTM contract


def test_lstm_contract_fits_before_the_cut_and_rebuilds_from_config():
    prices = make_prices(420, seed=3)
    forecaster = LSTMForecaster(TINY)
    dataset = forecaster.dataset(prices)
    split = split_dataset(dataset, test_fraction=0.25)
    forecaster.fit(dataset, split.test_start)
    assert forecaster.split.validation_end < split.test_start
    rows = split.test[:5]
    first = forecaster.predict(dataset, rows)
    assert first.shape == (5,) and np.isfinite(first).all() and (first > 0).all()
    # the same config fit again gives the same forecasts (seeded)
    again = forecaster.untrained()
    assert not again.is_fitted and again.config() == forecaster.config()
    np.testing.assert_allclose(again.fit(dataset, split.test_start).predict(dataset, rows), first)
    # no look-ahead: prices after the cut do not change the fit
    shocked = prices.copy()
    shocked.loc[shocked.index > split.test_start, "high"] *= 1.5
    shocked_set = forecaster.dataset(shocked)
    refit = forecaster.untrained().fit(shocked_set, split.test_start)
    assert refit.scale == forecaster.scale
    np.testing.assert_allclose(
        refit.predict(shocked_set, split.validation), forecaster.predict(dataset, split.validation)
    )


def test_lstm_rejects_a_dataset_built_with_other_settings():
    forecaster = LSTMForecaster(TINY)
    other = build_dataset(make_prices(420, seed=3), TINY.replace(horizon=5).feature_spec())
    with pytest.raises(ModelError, match="the dataset was built with"):
        forecaster.fit(other, other.origins[300])


# --------------------------------------------------------------- ensembles and anchor


def test_one_member_ensemble_is_the_plain_model():
    prices = make_prices(420, seed=3)
    plain = LSTMForecaster(TINY)
    dataset = plain.dataset(prices)
    cut = split_dataset(dataset, test_fraction=0.25).test_start
    single = LSTMForecaster(TINY.replace(ensemble=1))
    np.testing.assert_array_equal(
        plain.fit(dataset, cut).predict(dataset), single.fit(dataset, cut).predict(dataset)
    )
    assert plain.model.output.shape[-1] == 1


@pytest.mark.parametrize("init", ["encoder", "stateful"])
def test_ensemble_averages_its_members_in_log_variance_and_reloads(tmp_path, init):
    prices = make_prices(420, seed=3)
    registry = ModelRegistry(tmp_path / "models")
    config = TINY.replace(init=init, ensemble=3)
    outcome = train(price_data(prices), config, registry)
    forecaster = outcome.forecaster
    assert forecaster.model.output.shape[-1] == 3
    dataset = forecaster.dataset(prices)
    rows = np.arange(len(dataset) - 30, len(dataset))
    # the ensemble's forecast = exp(mean of the members' log forecasts) * validation scale
    from forecaster.models.lstm_forecaster import _inputs
    from forecaster.models.training import predict_z

    z = predict_z(forecaster.model, forecaster.model_spec, _inputs(dataset, forecaster.scaler))
    assert np.isfinite(z[-1])
    if init == "encoder":
        members = np.asarray(
            forecaster.model.predict_on_batch(_inputs(dataset, forecaster.scaler)), dtype=np.float64
        )
        np.testing.assert_allclose(z, members.mean(axis=1), rtol=1e-6, atol=1e-7)
        expected = forecaster.scaler.inverse_target(members.mean(axis=1))[rows] * forecaster.scale
        np.testing.assert_allclose(forecaster.predict(dataset, rows), expected, rtol=1e-5)
        assert not np.allclose(members[-5:, 0], members[-5:, 1])  # members have their own seeds
    loaded = load_forecaster(registry.champion("TEST"))
    assert loaded.settings.ensemble == 3
    np.testing.assert_allclose(loaded.predict(dataset), forecaster.predict(dataset), rtol=1e-6)


def test_har_anchor_learns_a_correction_to_har_fit_on_training_rows(tmp_path):
    prices = make_prices(420, seed=3)
    registry = ModelRegistry(tmp_path / "models")
    outcome = train(price_data(prices), TINY.replace(anchor="har"), registry)
    forecaster = outcome.forecaster
    dataset = forecaster.dataset(prices)
    split = forecaster.split
    har = HAR().fit(dataset, split.validation_start)  # training rows only
    assert outcome.record.anchor == {"kind": "har", "params": har.params}
    # forecast = HAR forecast * exp(network's correction) * validation scale
    from forecaster.models.lstm_forecaster import _inputs
    from forecaster.models.training import predict_z

    z = predict_z(forecaster.model, forecaster.model_spec, _inputs(dataset, forecaster.scaler))
    correction = forecaster.scaler.inverse_target(z)
    expected = har.predict(dataset) * correction * forecaster.scale
    np.testing.assert_allclose(forecaster.predict(dataset), expected, rtol=1e-9)
    loaded = load_forecaster(registry.champion("TEST"))
    np.testing.assert_allclose(loaded.predict(dataset), forecaster.predict(dataset), rtol=1e-6)
    # the anchor never sees the test period: prices after the cut leave its fit unchanged
    shocked = prices.copy()
    shocked.loc[shocked.index >= split.validation_start, "high"] *= 1.5
    shocked_set = forecaster.dataset(shocked)
    assert HAR().fit(shocked_set, split.validation_start).params == har.params


def test_anchor_and_ensemble_are_validated():
    with pytest.raises(ConfigError, match=r"unknown anchor 'garch'; expected one of none, har"):
        LSTMConfig(anchor="garch")
    with pytest.raises(ConfigError, match=r"ensemble must be an integer >= 1; received 0"):
        LSTMConfig(ensemble=0)
