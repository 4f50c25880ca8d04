"""The TensorFlow-free forward pass (models/inference.py) against Keras' own.

Every initial-state strategy, seed ensembles, the HAR anchor and pooled models
(trained and unseen tickers) must forecast what the Keras model forecasts, to
1e-6 relative; a network with a layer the NumPy pass does not know falls back
to Keras with the same output.
"""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.data.features import build_dataset
from forecaster.data.loader import PriceData
from forecaster.errors import ConfigError, RegistryError
from forecaster.models.inference import UnsupportedNetwork, load_network
from forecaster.models.initial_state import STRATEGIES, available_strategies
from forecaster.models.lstm import build_model, save_model
from forecaster.models.lstm_forecaster import load_forecaster, train, train_pooled
from forecaster.models.registry import ModelRegistry
from forecaster.models.training import predict_z
from tests.conftest import TINY, make_prices
from tests.models.conftest import tiny_spec

pytestmark = pytest.mark.usefixtures("tf_configured")

RELATIVE = 1e-6


def randomized(model, seed: int = 0):
    """``model`` with every weight drawn at random (learned h0/c0 start at zero otherwise)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("members", [1, 2])
@pytest.mark.parametrize("init", available_strategies())
def test_numpy_network_equals_keras_for_every_strategy(tmp_path, tiny_data, init, members):
    spec = tiny_spec(init, members=members)
    model = randomized(build_model(spec))
    path = tmp_path / "model.keras"
    save_model(model, path)
    network = load_network(path)
    assert network.stateful == spec.stateful
    x = tiny_data.x_all
    expected = predict_z(model, spec, x)
    got = predict_z(network, spec, x)
    assert np.isfinite(expected).all() and np.isfinite(got).all()
    assert np.ptp(expected) > 0.1  # a forecast that varies, not a constant both sides agree on
    # z is a log variance: compare it as the variance exp(z) it becomes
    np.testing.assert_allclose(np.exp(got), np.exp(expected), rtol=RELATIVE, atol=0)
    if spec.stateful:  # the carried state matters: a cold start on the last batch differs
        cold = predict_z(network, spec, {k: v[-spec.lookback :] for k, v in x.items()})
        assert abs(cold[-1] - got[-1]) > 10 * RELATIVE


@pytest.mark.parametrize(
    "init", [name for name in available_strategies() if not STRATEGIES[name].stateful]
)
def test_a_row_alone_gets_its_forecast_from_the_full_pass_unless_stateful(
    tmp_path, tiny_data, init
):
    """LSTMForecaster.predict runs a non-stateful network on the rows asked for only.

    (A stateful one warms its state on the history, so it always runs over every row.)
    """
    spec = tiny_spec(init, members=2)
    path = tmp_path / "model.keras"
    save_model(randomized(build_model(spec)), path)
    network = load_network(path)
    x = tiny_data.x_all
    full = predict_z(network, spec, x)
    rows = np.array([0, len(full) // 2, len(full) - 1])
    alone = predict_z(network, spec, {key: value[rows] for key, value in x.items()})
    np.testing.assert_allclose(np.exp(alone), np.exp(full[rows]), rtol=RELATIVE, atol=0)


def _registry_version(tmp_path, **changes):
    registry = ModelRegistry(tmp_path / "models")
    prices = make_prices(420, seed=3)
    data = PriceData(ticker="TEST", prices=prices, source="csv", description="test prices")
    outcome = train(data, TINY.replace(**changes), registry, threads=1)
    return outcome.version, prices


@pytest.mark.slow
def test_anchored_ensemble_forecaster_equals_keras(tmp_path):
    version, prices = _registry_version(tmp_path, anchor="har", ensemble=2, init="learned")
    keras_path = load_forecaster(version, engine="keras")
    numpy_path = load_forecaster(version, engine="numpy")
    assert getattr(numpy_path.model, "engine", None) == "numpy"
    dataset = keras_path.dataset(prices)
    expected, got = keras_path.predict(dataset), numpy_path.predict(dataset)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(got, expected, rtol=RELATIVE, atol=0)
    # a fresh forecaster asked for two rows runs the network (and the anchor) on those only
    rows = np.array([3, len(dataset) - 1])
    alone = load_forecaster(version, engine="numpy").predict(dataset, rows)
    np.testing.assert_allclose(alone, expected[rows], rtol=RELATIVE, atol=0)


@pytest.mark.slow
def test_pooled_forecaster_equals_keras_for_trained_and_unseen_tickers(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    prices = {ticker: make_prices(420, seed) for ticker, seed in (("AAA", 11), ("BBB", 12))}
    datas = [PriceData(t, p, "csv", f"{t} test") for t, p in prices.items()]
    cut = build_dataset(prices["AAA"], TINY.feature_spec()).origins[300]
    config = TINY.replace(anchor="har", ensemble=2)
    outcome = train_pooled(datas, config, registry, test_start=cut, threads=1)
    unseen = build_dataset(make_prices(420, 99), TINY.feature_spec())
    for ticker in prices:
        saved = registry.get(ticker, outcome.version)
        keras_path = load_forecaster(saved, engine="keras")
        numpy_path = load_forecaster(saved, engine="numpy")
        dataset = keras_path.dataset(prices[ticker])
        np.testing.assert_allclose(
            numpy_path.predict(dataset), keras_path.predict(dataset), rtol=RELATIVE, atol=0
        )
        np.testing.assert_allclose(
            numpy_path.for_ticker("CCC", unseen).predict(unseen),
            keras_path.for_ticker("CCC", unseen).predict(unseen),
            rtol=RELATIVE,
            atol=0,
        )


@pytest.mark.slow
def test_unknown_layer_falls_back_to_keras_with_the_same_forecasts(tmp_path):
    import keras

    version, prices = _registry_version(tmp_path)
    model = keras.saving.load_model(version.model_path, compile=False)
    # the same function with one layer the NumPy pass does not know (an identity)
    wrapped = keras.Model(model.inputs, keras.layers.Identity(name="extra")(model.outputs[0]))
    save_model(wrapped, version.model_path)
    with pytest.raises(UnsupportedNetwork, match="Identity"):
        load_network(version.model_path)
    auto = load_forecaster(version, engine="auto")
    assert getattr(auto.model, "engine", None) is None  # the Keras model
    dataset = auto.dataset(prices)
    np.testing.assert_array_equal(
        auto.predict(dataset), load_forecaster(version, engine="keras").predict(dataset)
    )
    with pytest.raises(ConfigError, match="cannot run without TensorFlow .*--engine keras"):
        load_forecaster(version, engine="numpy")


def test_unknown_activation_is_refused_not_guessed(tmp_path):
    import keras

    sequence = keras.Input((5, 2), name="sequence")
    context = keras.Input((3,), name="context")
    hidden = keras.layers.LSTM(4, name="lstm")(sequence)
    output = keras.layers.Dense(1, activation="softplus", name="z_hat")(hidden)
    path = tmp_path / "model.keras"
    save_model(keras.Model({"sequence": sequence, "context": context}, output), path)
    with pytest.raises(UnsupportedNetwork, match="softplus"):
        load_network(path)


def test_corrupt_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(RegistryError, match=f"cannot load model file {path}"):
        load_network(path)
    with pytest.raises(RegistryError, match="does not exist"):
        load_network(tmp_path / "missing.keras")
