"""Initial-state strategies: registry, options, and the custom layers' behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from forecaster.errors import ConfigError
from forecaster.models import initial_state
from forecaster.models.initial_state import (
    STRATEGIES,
    InitialState,
    available_strategies,
    create_strategy,
    derive_seed,
    register,
)
from tests.models.conftest import CONTEXT_SIZE, UNITS, tiny_spec

# ----------------------------------------------------------------- registry (no TensorFlow)


def test_registry_order_and_names():
    assert available_strategies() == ["zeros", "random", "learned", "encoder", "stateful"]
    assert [STRATEGIES[name].name for name in available_strategies()] == available_strategies()
    assert [name for name in available_strategies() if STRATEGIES[name].stateful] == ["stateful"]


def test_unknown_strategy_lists_valid_names():
    with pytest.raises(
        ConfigError,
        match=r"unknown initial-state strategy 'warm'; expected one of "
        r"zeros, random, learned, encoder, stateful \(pass one of them to --init\)",
    ):
        create_strategy("warm", units=4, seed=0)


@pytest.mark.parametrize("stddev", [0.0, -0.1, float("nan"), float("inf")])
def test_random_rejects_non_positive_stddev(stddev):
    with pytest.raises(ConfigError, match=r"state_stddev must be a finite number > 0; received"):
        create_strategy("random", units=4, seed=0, state_stddev=stddev)


def test_random_rejects_non_numeric_stddev():
    with pytest.raises(ConfigError, match=r"state_stddev must be a positive number; received '1'"):
        create_strategy("random", units=4, seed=0, state_stddev="1")


@pytest.mark.parametrize("name", ["zeros", "random", "learned", "encoder", "stateful"])
@pytest.mark.parametrize("units", [0, -3, 2.5, True])
def test_units_must_be_positive_integer(name, units):
    with pytest.raises(ConfigError, match=rf"units must be an integer >= 1; received {units!r}"):
        create_strategy(name, units=units, seed=0)


def test_seed_must_be_non_negative():
    with pytest.raises(ConfigError, match=r"seed must be an integer >= 0; received -1"):
        create_strategy("zeros", units=4, seed=-1)


def test_encoder_units_validated():
    with pytest.raises(ConfigError, match=r"encoder_units must be an integer >= 1; received 0"):
        create_strategy("encoder", units=4, seed=0, encoder_units=0)


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(
        ConfigError,
        match=r"strategy 'random' got unknown option\(s\) encoder_units; it accepts: state_stddev",
    ):
        create_strategy("random", units=4, seed=0, encoder_units=8)
    with pytest.raises(ConfigError, match=r"'zeros' got unknown option\(s\) x; it accepts: none"):
        create_strategy("zeros", units=4, seed=0, x=1)


def test_config_holds_defaults_and_is_json_safe():
    configs = {name: create_strategy(name, units=4, seed=0).config() for name in STRATEGIES}
    assert configs == {
        "zeros": {},
        "random": {"state_stddev": 0.1},
        "learned": {},
        "encoder": {"encoder_units": 16},
        "stateful": {},
    }
    assert json.loads(json.dumps(configs)) == configs
    assert create_strategy("random", 4, 0, state_stddev=1).config() == {"state_stddev": 1.0}


def test_derive_seed_is_reproducible_and_separates_components():
    assert derive_seed(3, 0, 1) == derive_seed(3, 0, 1)
    seeds = {
        derive_seed(seed, *path) for seed in (0, 1) for path in [(0, 0), (0, 1), (1,), (), (0,)]
    }
    assert len(seeds) == 10
    assert all(0 <= seed < 2**31 for seed in seeds)


def test_register_rejects_a_duplicate_name():
    class Impostor(InitialState):
        name = "zeros"

        def _build(self, sequence_input, context_input):
            return None

    with pytest.raises(TypeError, match="named 'zeros' is already registered"):
        register(Impostor)


def test_importing_the_model_layer_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import forecaster.models.initial_state, forecaster.models.lstm\n"
        "import forecaster.models.training\n"
        "from forecaster.models.lstm import ModelSpec\n"
        "ModelSpec(22, 3, 12, init='random').strategy()\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------- custom layers (TensorFlow)


@pytest.fixture(scope="module")
def layers(tf_configured):
    return initial_state._layer_classes()


def test_random_layer_draws_fresh_states_in_training_and_zeros_at_inference(layers):
    stddev = 0.1
    layer = layers.RandomInitialState(units=64, stddev=stddev, seed=11)
    batch = np.zeros((500, 5, 2), dtype=np.float32)
    first_h, first_c = (np.asarray(state) for state in layer(batch, training=True))
    second_h, _ = (np.asarray(state) for state in layer(batch, training=True))
    assert first_h.shape == first_c.shape == (500, 64)
    assert not np.array_equal(first_h, second_h)  # fresh draw per call
    assert not np.array_equal(first_h, first_c)
    assert not np.array_equal(first_h[0], first_h[1])  # and per sequence
    # truncated at 2 sd: std = stddev * sqrt(1 - 2 phi(2) / (Phi(2) - Phi(-2)))
    phi2 = np.exp(-2.0) / np.sqrt(2 * np.pi)
    truncated_std = stddev * np.sqrt(1 - 2 * 2 * phi2 / 0.954499736)
    assert np.abs(first_h).max() <= 2 * stddev + 1e-6
    assert first_h.std() == pytest.approx(truncated_std, rel=0.03)
    assert abs(first_h.mean()) < 0.003
    for _ in range(2):
        states = layer(batch, training=False)
        for state in states:
            np.testing.assert_array_equal(np.asarray(state), np.zeros((500, 64)))


def test_random_layer_is_seeded(layers):
    batch = np.zeros((3, 5, 2), dtype=np.float32)
    draws = [
        np.asarray(
            layers.RandomInitialState(units=4, stddev=0.1, seed=seed)(batch, training=True)[0]
        )
        for seed in (5, 5, 6)
    ]
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])


def test_learned_layer_broadcasts_its_weights(layers):
    layer = layers.LearnedInitialState(units=3)
    batch = np.zeros((4, 5, 2), dtype=np.float32)
    layer(batch)
    layer.set_weights([np.array([[1.0, 2.0, 3.0]]), np.array([[-1.0, 0.0, 1.0]])])
    initial_h, initial_c = (np.asarray(state) for state in layer(batch))
    np.testing.assert_array_equal(initial_h, np.tile([1.0, 2.0, 3.0], (4, 1)))
    np.testing.assert_array_equal(initial_c, np.tile([-1.0, 0.0, 1.0], (4, 1)))
    assert [weight.trainable for weight in layer.weights] == [True, True]


def test_encoder_states_follow_the_context(tf_configured):
    import keras

    from forecaster.models.lstm import build_model

    model = build_model(tiny_spec("encoder"))
    states = keras.Model(
        model.inputs, [model.get_layer("encoder_h0").output, model.get_layer("encoder_c0").output]
    )
    rng = np.random.default_rng(1)
    context = rng.standard_normal((6, CONTEXT_SIZE)).astype(np.float32)
    inputs = {"sequence": np.zeros((6, 5, 2), dtype=np.float32), "context": context}
    initial_h, initial_c = (np.asarray(state) for state in states.predict_on_batch(inputs))
    assert initial_h.shape == initial_c.shape == (6, UNITS)
    assert not np.allclose(initial_h[0], initial_h[1])
    assert not np.allclose(initial_c[0], initial_c[1])
    # reference: z = tanh(W z_in + b), h0 = tanh(W_h z + b_h), c0 = W_c z + b_c
    kernel, bias = model.get_layer("encoder_hidden").get_weights()
    kernel_h, bias_h = model.get_layer("encoder_h0").get_weights()
    kernel_c, bias_c = model.get_layer("encoder_c0").get_weights()
    encoded = np.tanh(context @ kernel + bias)
    np.testing.assert_allclose(initial_h, np.tanh(encoded @ kernel_h + bias_h), atol=1e-6)
    np.testing.assert_allclose(initial_c, encoded @ kernel_c + bias_c, atol=1e-6)
