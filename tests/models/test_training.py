"""fit / predict_z: losses, early stopping, determinism, stateful batching, save/load."""

from __future__ import annotations

import random
import threading
import warnings

import numpy as np
import pytest

from forecaster.errors import ConfigError, DataError, ModelError
from forecaster.models.lstm import ModelSpec, build_model, load_model, save_model
from forecaster.models.training import (
    FitResult,
    TrainConfig,
    configure_tensorflow,
    fit,
    loss_value,
    predict_z,
)
from tests.models.conftest import (
    CONTEXT_SIZE,
    LOOKBACK,
    N_FEATURES,
    N_TRAIN,
    N_VAL,
    tiny_config,
    tiny_spec,
)

STRATEGY_NAMES = ["zeros", "random", "learned", "encoder", "stateful"]

# ----------------------------------------------------------------- config and losses (no TF)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, r"TrainConfig.epochs must be an integer >= 1; received 0"),
        ({"patience": -1}, r"TrainConfig.patience must be an integer >= 0; received -1"),
        ({"batch_size": 0}, r"TrainConfig.batch_size must be an integer >= 1; received 0"),
        ({"threads": 0}, r"TrainConfig.threads must be None or an integer >= 1; received 0"),
        ({"loss": "mae"}, r"unknown loss 'mae'; expected one of mse, qlike"),
        ({"learning_rate": 0.0}, r"TrainConfig.learning_rate must be a finite number > 0"),
        ({"target_scale": -1.0}, r"TrainConfig.target_scale must be a finite number > 0"),
    ],
)
def test_train_config_validates(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_mse_loss_value():
    z = np.array([0.0, 1.0, -2.0])
    z_hat = np.array([0.5, 1.0, -1.0])
    assert loss_value(z, z_hat, "mse") == pytest.approx((0.25 + 0.0 + 1.0) / 3)


def test_qlike_in_log_units_equals_qlike_on_variances():
    rng = np.random.default_rng(3)
    mean_log, scale = -9.5, 1.3  # log daily variance ~ N(mean_log, scale^2)
    z = rng.standard_normal(50)
    z_hat = z + 0.4 * rng.standard_normal(50)
    realized = np.exp(mean_log + scale * z)
    forecast = np.exp(mean_log + scale * z_hat)
    reference = np.mean(realized / forecast - np.log(realized / forecast) - 1)
    assert loss_value(z, z_hat, "qlike", target_scale=scale) == pytest.approx(reference, rel=1e-10)
    with pytest.raises(ConfigError, match="unknown loss 'mae'; expected one of mse, qlike"):
        loss_value(z, z_hat, "mae")


# ----------------------------------------------------------------- TensorFlow tests

pytestmark_tf = pytest.mark.usefixtures("tf_configured")


@pytestmark_tf
def test_keras_qlike_loss_matches_numpy():
    from forecaster.models.training import _loss_classes

    rng = np.random.default_rng(4)
    z = rng.standard_normal((30, 1)).astype(np.float32)
    z_hat = (z + 0.5 * rng.standard_normal((30, 1))).astype(np.float32)
    loss = _loss_classes()(target_scale=0.8)
    assert float(loss(z, z_hat)) == pytest.approx(loss_value(z, z_hat, "qlike", 0.8), rel=1e-5)


@pytest.fixture(scope="module")
def fitted(tiny_data, tf_configured) -> dict[str, FitResult]:
    """One two-epoch fit per strategy, shared by the tests below."""
    return {
        init: fit(
            tiny_spec(init),
            tiny_config(),
            tiny_data.x_train,
            tiny_data.z_train,
            tiny_data.x_val,
            tiny_data.z_val,
        )
        for init in STRATEGY_NAMES
    }


@pytest.mark.parametrize("init", STRATEGY_NAMES)
def test_fit_save_reload_predicts_identically(init, fitted, tiny_data, tmp_path):
    result = fitted[init]
    spec = tiny_spec(init)
    assert result.epochs_run == len(result.train_loss) == len(result.val_loss) == 2
    assert all(np.isfinite(result.train_loss)) and all(np.isfinite(result.val_loss))
    assert result.best_epoch == int(np.argmin(result.val_loss)) + 1
    assert result.seconds > 0
    x_eval = tiny_data.x_all if spec.stateful else tiny_data.x_val
    before = predict_z(result.model, spec, x_eval)
    again = predict_z(result.model, spec, x_eval)
    np.testing.assert_array_equal(before, again)  # inference is deterministic
    path = tmp_path / "model.keras"
    save_model(result.model, path)
    after = predict_z(load_model(path), spec, x_eval)
    np.testing.assert_array_equal(after, before)
    assert after.dtype == np.float64 and np.all(np.isfinite(after))


def test_learned_state_is_trained(fitted):
    layer = fitted["learned"].model.get_layer("learned_state")
    initial_h, initial_c = layer.get_weights()
    assert initial_h.shape == initial_c.shape == (1, 4)
    assert np.abs(initial_h).max() > 1e-4 and np.abs(initial_c).max() > 1e-4  # started at zero


def test_random_strategy_train_mode_differs_inference_does_not(fitted, tiny_data):
    model = fitted["random"].model
    inputs = {key: value[:8] for key, value in tiny_data.x_val.items()}
    train_a = np.asarray(model(inputs, training=True))
    train_b = np.asarray(model(inputs, training=True))
    infer_a = np.asarray(model(inputs, training=False))
    infer_b = np.asarray(model(inputs, training=False))
    assert not np.array_equal(train_a, train_b)
    np.testing.assert_array_equal(infer_a, infer_b)


@pytestmark_tf
@pytest.mark.parametrize("init", ["random", "stateful"])
def test_same_seed_same_predictions_even_in_a_worker_thread(init, tiny_data):
    spec = tiny_spec(init, seed=5)
    config = tiny_config(epochs=1, seed=5)
    x_eval = tiny_data.x_all if spec.stateful else tiny_data.x_val
    runs = []

    def run() -> None:
        result = fit(
            spec, config, tiny_data.x_train, tiny_data.z_train, tiny_data.x_val, tiny_data.z_val
        )
        runs.append(predict_z(result.model, spec, x_eval))

    run()
    random.seed(999)  # global state a default seed would pick up
    np.random.seed(999)
    worker = threading.Thread(target=run)  # Keras state is thread-local
    worker.start()
    worker.join()
    assert len(runs) == 2
    np.testing.assert_array_equal(runs[0], runs[1])


@pytestmark_tf
def test_early_stopping_restores_the_best_weights(tiny_data):
    spec = tiny_spec("zeros")
    config = tiny_config(epochs=6, patience=1, learning_rate=0.3, batch_size=16)
    seen = []
    result = fit(
        spec,
        config,
        tiny_data.x_train,
        tiny_data.z_train,
        tiny_data.x_val,
        tiny_data.z_val,
        on_epoch=lambda *args: seen.append(args),
    )
    assert seen == [
        (epoch, train, val)
        for epoch, train, val in zip(
            range(1, result.epochs_run + 1), result.train_loss, result.val_loss, strict=True
        )
    ]
    best = int(np.argmin(result.val_loss))
    assert result.best_epoch == best + 1
    # stops exactly `patience` epochs after the best one, or at the epoch limit
    assert result.epochs_run == min(config.epochs, result.best_epoch + config.patience)
    restored = loss_value(tiny_data.z_val, predict_z(result.model, spec, tiny_data.x_val), "mse")
    assert restored == pytest.approx(result.val_loss[best], rel=1e-5)
    assert result.epochs_run < config.epochs  # this seeded run does stop early ...
    assert result.val_loss[-1] > result.val_loss[best]  # ... so the last weights were worse


@pytestmark_tf
def test_qlike_training_runs_and_saves(tiny_data, tmp_path, capsys):
    config = tiny_config(epochs=1, loss="qlike", target_scale=0.9, verbose=True)
    result = fit(
        tiny_spec("zeros"),
        config,
        tiny_data.x_train,
        tiny_data.z_train,
        tiny_data.x_val,
        tiny_data.z_val,
    )
    z_hat = predict_z(result.model, tiny_spec("zeros"), tiny_data.x_val)
    assert result.val_loss[0] == pytest.approx(loss_value(tiny_data.z_val, z_hat, "qlike", 0.9))
    assert capsys.readouterr().err == (
        f"epoch 1/1: qlike train {result.train_loss[0]:.5f} validation {result.val_loss[0]:.5f}\n"
    )
    save_model(result.model, tmp_path / "qlike.keras")  # the compiled custom loss serializes
    reloaded = predict_z(load_model(tmp_path / "qlike.keras"), tiny_spec("zeros"), tiny_data.x_val)
    np.testing.assert_array_equal(reloaded, z_hat)


# ----------------------------------------------------------------- stateful


@pytestmark_tf
def test_stateful_resets_state_at_every_epoch_start(tiny_data, monkeypatch):
    import keras

    states_at_start = []
    original_fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        states_at_start.append([v.value.numpy() for v in self.get_layer("lstm").states])
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    result = fit(
        tiny_spec("stateful"),
        tiny_config(epochs=3, patience=5),
        tiny_data.x_train,
        tiny_data.z_train,
        tiny_data.x_val,
        tiny_data.z_val,
    )
    assert result.epochs_run == 3 and len(states_at_start) == 3
    for states in states_at_start:
        assert [state.shape for state in states] == [(LOOKBACK, 4), (LOOKBACK, 4)]
        for state in states:
            np.testing.assert_array_equal(state, 0.0)
    # the check can fail: after running a batch the state is not zero ...
    model = result.model
    model.predict_on_batch({key: value[:LOOKBACK] for key, value in tiny_data.x_val.items()})
    assert np.abs(model.get_layer("lstm").states[0].value.numpy()).max() > 0
    # ... and predict_z leaves it reset
    predict_z(model, tiny_spec("stateful"), tiny_data.x_val)
    for state in model.get_layer("lstm").states:
        np.testing.assert_array_equal(state.value.numpy(), 0.0)


def _stateful_reference(model, data, origin: int, first: int) -> float:
    """z_hat for row ``origin`` by a plain LSTM run from zero state over the days of its chain.

    ``first`` is the oldest row of the chain origin, origin - L, origin - 2L, ...
    Its window starts on day ``first``; row ``origin`` ends on day origin + L - 1.
    """
    days = data.daily[first : origin + LOOKBACK]
    reference = build_model(
        ModelSpec(len(days), N_FEATURES, CONTEXT_SIZE, units=4, init="zeros", unroll=False)
    )
    reference.set_weights(model.get_weights())
    inputs = {"sequence": days[None], "context": np.zeros((1, CONTEXT_SIZE), np.float32)}
    return float(np.asarray(reference.predict_on_batch(inputs))[0, 0])


def test_stateful_prediction_is_an_exact_continuation(fitted, tiny_data):
    spec = tiny_spec("stateful")
    model = fitted["stateful"].model
    rows = N_TRAIN + N_VAL - 3  # drop 3 newest rows: N mod L = 2 oldest rows get trimmed
    x = {key: value[:rows] for key, value in tiny_data.x_all.items()}
    z_hat = predict_z(model, spec, x)
    trimmed = rows % LOOKBACK
    assert trimmed == 2
    assert np.all(np.isnan(z_hat[:trimmed])) and np.all(np.isfinite(z_hat[trimmed:]))
    newest = rows - 1
    first = trimmed + (newest - trimmed) % LOOKBACK  # oldest row in the newest row's chain
    reference = _stateful_reference(model, tiny_data, newest, first)
    assert z_hat[newest] == pytest.approx(reference, abs=1e-5)
    # warm-up matters: the last batch alone (no history) gives a different forecast
    recent = {key: value[rows - LOOKBACK : rows] for key, value in x.items()}
    cold = predict_z(model, spec, recent)
    assert abs(cold[-1] - z_hat[newest]) > 1e-4
    # and the cold forecast is the chain of length one
    assert cold[-1] == pytest.approx(
        _stateful_reference(model, tiny_data, newest, newest), abs=1e-5
    )


def test_stateful_validation_loss_uses_the_training_rows_as_warm_up(fitted, tiny_data):
    result = fitted["stateful"]
    z_hat = predict_z(result.model, tiny_spec("stateful"), tiny_data.x_all)[N_TRAIN:]
    best = result.best_epoch - 1
    assert loss_value(tiny_data.z_val, z_hat, "mse") == pytest.approx(
        result.val_loss[best], rel=1e-5
    )


@pytestmark_tf
def test_stateful_fit_trims_the_oldest_rows(tiny_data):
    extra = 3  # 123 rows: the 3 oldest cannot fill a batch
    assert tiny_spec("stateful").strategy().training_rows(N_TRAIN + extra, LOOKBACK) == slice(
        extra, N_TRAIN + extra
    )
    assert tiny_spec("zeros").strategy().training_rows(N_TRAIN + extra, LOOKBACK) == slice(
        0, N_TRAIN + extra
    )
    x_val = {key: value[N_TRAIN + extra :] for key, value in tiny_data.x_all.items()}
    z_val = tiny_data.z_all[N_TRAIN + extra :]

    def fitted(first_row: int):
        x_train = {k: v[first_row : N_TRAIN + extra] for k, v in tiny_data.x_all.items()}
        z_train = tiny_data.z_all[first_row : N_TRAIN + extra]
        return fit(tiny_spec("stateful"), tiny_config(epochs=1), x_train, z_train, x_val, z_val)

    # 123 rows train exactly like their newest 120: the 3 oldest were dropped, not used
    with_extra, without = fitted(0), fitted(extra)
    assert with_extra.epochs_run == 1 and np.isfinite(with_extra.val_loss[0])
    assert with_extra.train_loss == without.train_loss
    assert with_extra.val_loss == without.val_loss
    for kept, reference in zip(
        with_extra.model.get_weights(), without.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(kept, reference)


# ----------------------------------------------------------------- errors


@pytestmark_tf
def test_predict_rejects_mismatches(fitted, tiny_data):
    with pytest.raises(ModelError, match=r"'sequence' must have shape \(N, 5, 2\) .* \(3, 5, 1\)"):
        predict_z(
            fitted["zeros"].model,
            tiny_spec("zeros"),
            {"sequence": np.zeros((3, 5, 1)), "context": np.zeros((3, 3))},
        )
    with pytest.raises(ModelError, match=r"is not stateful but the spec says init='stateful'"):
        predict_z(fitted["zeros"].model, tiny_spec("stateful"), tiny_data.x_val)
    short = {key: value[: LOOKBACK - 1] for key, value in tiny_data.x_val.items()}
    with pytest.raises(ModelError, match=r"at least lookback=5 consecutive origins.*received 4"):
        predict_z(fitted["stateful"].model, tiny_spec("stateful"), short)
    with pytest.raises(ModelError, match=r"keys 'sequence' and 'context'; received \['sequence'\]"):
        predict_z(fitted["zeros"].model, tiny_spec("zeros"), {"sequence": short["sequence"]})


def test_fit_rejects_bad_inputs(tiny_data):
    spec, config = tiny_spec("zeros"), tiny_config(epochs=1)
    bad = {key: value.copy() for key, value in tiny_data.x_train.items()}
    bad["context"][3, 1] = np.nan
    with pytest.raises(DataError, match=r"training 'context' contains 1 non-finite value"):
        fit(spec, config, bad, tiny_data.z_train, tiny_data.x_val, tiny_data.z_val)
    with pytest.raises(ModelError, match=r"validation target has 39 values for 40 input rows"):
        fit(
            spec, config, tiny_data.x_train, tiny_data.z_train, tiny_data.x_val, tiny_data.z_val[1:]
        )
    few = {key: value[:4] for key, value in tiny_data.x_train.items()}
    with pytest.raises(ModelError, match=r"stateful model needs at least lookback=5 training rows"):
        fit(
            tiny_spec("stateful"),
            config,
            few,
            tiny_data.z_train[:4],
            tiny_data.x_val,
            tiny_data.z_val,
        )


@pytestmark_tf
def test_configure_tensorflow_keeps_threads_once_running():
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # TensorFlow is running
    threading = tf.config.threading
    current = threading.get_intra_op_parallelism_threads()
    if current > 0 and threading.get_inter_op_parallelism_threads() == current:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            configure_tensorflow(current, seed=0)  # same values: silent no-op
    requested = current + 2
    with pytest.warns(RuntimeWarning, match=rf"cannot switch to {requested} in this process"):
        configure_tensorflow(requested, seed=0)
    assert threading.get_intra_op_parallelism_threads() == current
