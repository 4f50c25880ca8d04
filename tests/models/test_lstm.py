"""ModelSpec, build_model, save_model / load_model."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from forecaster.errors import ConfigError, RegistryError
from forecaster.models.lstm import ModelSpec, build_model, load_model, save_model
from tests.models.conftest import CONTEXT_SIZE, LOOKBACK, N_FEATURES, UNITS, tiny_spec

STRATEGY_NAMES = ["zeros", "random", "learned", "encoder", "stateful"]

# ----------------------------------------------------------------- ModelSpec (no TensorFlow)


def test_spec_round_trips_through_a_dict():
    spec = ModelSpec(
        22, 3, 12, units=8, init="random", init_options={"state_stddev": 0.2}, seed=4, unroll=False
    )
    data = spec.to_dict()
    assert data == {
        "lookback": 22,
        "n_features": 3,
        "context_size": 12,
        "units": 8,
        "init": "random",
        "init_options": {"state_stddev": 0.2},
        "seed": 4,
        "unroll": False,
        "members": 1,
    }
    assert ModelSpec.from_dict(data) == spec


def test_spec_fills_in_the_strategys_defaults():
    assert ModelSpec(22, 3, 12, init="encoder").init_options == {"encoder_units": 16}
    assert ModelSpec(22, 3, 12, init="zeros").init_options == {}


def test_spec_saved_with_flat_options_still_loads():
    """Release 0.1.0 kept state_stddev and encoder_units as fields of every spec."""
    flat = {"lookback": 22, "n_features": 3, "context_size": 12, "units": 8, "seed": 4}
    flat |= {"unroll": True, "state_stddev": 0.2, "encoder_units": 5}
    assert ModelSpec.from_dict({**flat, "init": "random"}).init_options == {"state_stddev": 0.2}
    assert ModelSpec.from_dict({**flat, "init": "encoder"}).init_options == {"encoder_units": 5}
    assert ModelSpec.from_dict({**flat, "init": "zeros"}).init_options == {}


def test_spec_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(ConfigError, match=r"unknown ModelSpec field\(s\) dropout; expected: "):
        ModelSpec.from_dict({"lookback": 5, "n_features": 2, "context_size": 3, "dropout": 0.1})
    with pytest.raises(ConfigError, match=r"missing required field\(s\) context_size"):
        ModelSpec.from_dict({"lookback": 5, "n_features": 2})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"units": 0}, r"ModelSpec.units must be an integer >= 1; received 0"),
        ({"lookback": 0}, r"ModelSpec.lookback must be an integer >= 1; received 0"),
        ({"context_size": 2.0}, r"ModelSpec.context_size must be an integer >= 1; received 2.0"),
        ({"seed": -1}, r"ModelSpec.seed must be an integer >= 0; received -1"),
        ({"unroll": "yes"}, r"ModelSpec.unroll must be true or false; received 'yes'"),
        (
            {"init": "random", "init_options": {"state_stddev": 0.0}},
            r"state_stddev must be a finite number > 0",
        ),
        ({"init": "encoder", "init_options": {"encoder_units": 0}}, r"encoder_units must be an"),
        (
            {"init": "zeros", "init_options": {"state_stddev": 0.3}},
            r"strategy 'zeros' got unknown option\(s\) state_stddev; it accepts: none",
        ),
        ({"init": "nope"}, r"unknown initial-state strategy 'nope'; expected one of zeros, random"),
    ],
)
def test_spec_validates_fields(changes, message):
    fields = {"lookback": 5, "n_features": 2, "context_size": 3, **changes}
    with pytest.raises(ConfigError, match=message):
        ModelSpec(**fields)


def test_spec_passes_its_options_to_the_strategy():
    spec = ModelSpec(5, 2, 3, init="random", init_options={"state_stddev": 0.3})
    assert spec.strategy().config() == {"state_stddev": 0.3}
    spec = ModelSpec(5, 2, 3, init="encoder", init_options={"encoder_units": 7})
    assert spec.strategy().config() == {"encoder_units": 7}
    assert ModelSpec(5, 2, 3, init="stateful").stateful
    assert not ModelSpec(5, 2, 3, init="learned").stateful


# ----------------------------------------------------------------- build (TensorFlow)

pytestmark_tf = pytest.mark.usefixtures("tf_configured")


def _inputs(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "sequence": rng.standard_normal((rows, LOOKBACK, N_FEATURES)).astype(np.float32),
        "context": rng.standard_normal((rows, CONTEXT_SIZE)).astype(np.float32),
    }


@pytestmark_tf
@pytest.mark.parametrize("init", STRATEGY_NAMES)
def test_build_model_shapes(init):
    model = build_model(tiny_spec(init))
    shapes = {tensor.name: tuple(tensor.shape) for tensor in model.inputs}
    batch = LOOKBACK if init == "stateful" else None
    assert shapes == {
        "sequence": (batch, LOOKBACK, N_FEATURES),
        "context": (batch, CONTEXT_SIZE),
    }
    assert tuple(model.output.shape) == (batch, 1)
    lstm = model.get_layer("lstm")
    assert lstm.stateful == (init == "stateful")
    assert lstm.units == UNITS and lstm.unroll
    output = np.asarray(model.predict_on_batch(_inputs(LOOKBACK)))
    assert output.shape == (LOOKBACK, 1) and np.all(np.isfinite(output))


@pytestmark_tf
def test_builds_are_reproducible_even_in_another_thread():
    import random

    spec = tiny_spec("encoder", seed=3)
    first = build_model(spec).get_weights()
    random.seed(12345)  # Keras' default seeds would come from here
    built = []
    worker = threading.Thread(target=lambda: built.append(build_model(spec).get_weights()))
    worker.start()
    worker.join()
    assert len(first) == len(built[0]) == 11  # encoder 3 x 2, LSTM 3, head 2
    for left, right in zip(first, built[0], strict=True):
        np.testing.assert_array_equal(left, right)
    other = build_model(tiny_spec("encoder", seed=4)).get_weights()
    assert not np.array_equal(first[0], other[0])


@pytestmark_tf
@pytest.mark.parametrize("init", ["random", "learned"])
def test_save_load_same_process_identical_predictions(init, tmp_path):
    model = build_model(tiny_spec(init))
    if init == "learned":  # non-zero h0/c0 so the reloaded weights matter
        layer = model.get_layer("learned_state")
        layer.set_weights([np.full((1, UNITS), 0.5), np.full((1, UNITS), -0.3)])
    inputs = _inputs(7)
    expected = np.asarray(model.predict_on_batch(inputs))
    path = tmp_path / "model.keras"
    save_model(model, path)
    loaded = load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded.predict_on_batch(inputs)), expected)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


@pytestmark_tf
def test_fresh_interpreter_loads_custom_layers(tmp_path):
    """Only `forecaster.models.lstm` is imported before loading: registration is automatic."""
    inputs = _inputs(6)
    np.savez(tmp_path / "inputs.npz", **inputs)
    expected = {}
    for init in ("random", "learned"):
        model = build_model(tiny_spec(init))
        if init == "learned":
            model.get_layer("learned_state").set_weights(
                [np.full((1, UNITS), 0.4), np.full((1, UNITS), 0.2)]
            )
        expected[init] = np.asarray(model.predict_on_batch(inputs))
        save_model(model, tmp_path / f"{init}.keras")
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from forecaster.models.lstm import load_model
        folder = {str(tmp_path)!r}
        inputs = dict(np.load(folder + "/inputs.npz"))
        for init in ("random", "learned"):
            model = load_model(folder + "/" + init + ".keras")
            np.save(folder + "/" + init + "_out.npy", np.asarray(model.predict_on_batch(inputs)))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)
    for init, values in expected.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{init}_out.npy"), values)


def test_corrupt_model_file_raises_registry_error_naming_it(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(
        RegistryError, match=rf"cannot load model file {re.escape(str(path))}: .*corrupt"
    ):
        load_model(path)


def test_missing_model_file_raises_registry_error(tmp_path):
    path = tmp_path / "absent" / "model.keras"
    with pytest.raises(RegistryError, match=rf"model file {re.escape(str(path))} does not exist"):
        load_model(path)


@pytestmark_tf
def test_model_path_must_end_in_keras(tmp_path):
    model = build_model(tiny_spec("zeros"))
    with pytest.raises(ConfigError, match=r"must end in .keras \(Keras 3 format\); received"):
        save_model(model, tmp_path / "model.h5")
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"must end in .keras"):
        load_model(tmp_path / "model.h5")


@pytestmark_tf
def test_unwritable_model_path_raises_registry_error(tmp_path):
    model = build_model(tiny_spec("zeros"))
    path = tmp_path / "no-such-folder" / "model.keras"
    with pytest.raises(RegistryError, match=rf"cannot write model file {re.escape(str(path))}"):
        save_model(model, path)
