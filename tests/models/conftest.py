"""Small seeded arrays for the LSTM tests (NumPy only: no TensorFlow at import).

The sequences are real windows of one daily feature series: row i holds days
i .. i+L-1, so consecutive rows are consecutive forecast origins, as the
stateful strategy requires. The target depends on the inputs so training has
something to learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from forecaster.models.lstm import ModelSpec
from forecaster.models.training import TrainConfig

LOOKBACK = 5
N_FEATURES = 2
CONTEXT_SIZE = 3
UNITS = 4
N_TRAIN = 120  # a multiple of LOOKBACK: stateful fit keeps every row
N_VAL = 40  # a multiple of LOOKBACK: stateful validation needs no padding


@dataclass(frozen=True)
class TinyData:
    """Windows of a daily series; ``train``/``val`` split chronologically."""

    daily: np.ndarray  # (T, F), T = N_TRAIN + N_VAL + LOOKBACK - 1
    x_train: dict[str, np.ndarray]
    z_train: np.ndarray
    x_val: dict[str, np.ndarray]
    z_val: np.ndarray

    @property
    def x_all(self) -> dict[str, np.ndarray]:
        return {key: np.concatenate([self.x_train[key], self.x_val[key]]) for key in self.x_train}

    @property
    def z_all(self) -> np.ndarray:
        return np.concatenate([self.z_train, self.z_val])


def make_tiny_data(seed: int = 0) -> TinyData:
    """Build windows, contexts and targets from one seeded daily series."""
    rng = np.random.default_rng(seed)
    rows = N_TRAIN + N_VAL
    days = rows + LOOKBACK - 1
    daily = np.zeros((days, N_FEATURES))
    shocks = rng.standard_normal((days, N_FEATURES))
    for day in range(1, days):  # persistent (AR(1)) features, like log variances
        daily[day] = 0.8 * daily[day - 1] + 0.6 * shocks[day]
    daily = daily.astype(np.float32)
    sequence = np.stack([daily[row : row + LOOKBACK] for row in range(rows)])
    context = rng.standard_normal((rows, CONTEXT_SIZE)).astype(np.float32)
    target = (
        0.7 * sequence[:, -1, 0]
        + 0.2 * sequence[:, :, 1].mean(axis=1)
        + 0.3 * context[:, 0]
        + 0.1 * rng.standard_normal(rows)
    ).astype(np.float32)
    train, val = slice(0, N_TRAIN), slice(N_TRAIN, rows)
    return TinyData(
        daily=daily,
        x_train={"sequence": sequence[train], "context": context[train]},
        z_train=target[train],
        x_val={"sequence": sequence[val], "context": context[val]},
        z_val=target[val],
    )


def tiny_spec(init: str, **changes: Any) -> ModelSpec:
    """A tiny ModelSpec matching :func:`make_tiny_data`."""
    options = {"encoder_units": 3} if init == "encoder" else {}
    fields = {"units": UNITS, "init_options": options, "seed": 0, **changes}
    return ModelSpec(LOOKBACK, N_FEATURES, CONTEXT_SIZE, init=init, **fields)


def tiny_config(**changes: Any) -> TrainConfig:
    """Two quick epochs on one thread."""
    fields = {"epochs": 2, "patience": 2, "batch_size": 32, "learning_rate": 0.01, "threads": 1}
    return TrainConfig(**{**fields, **changes})


@pytest.fixture(scope="session")
def tiny_data() -> TinyData:
    return make_tiny_data()


@pytest.fixture(scope="session")
def tf_configured() -> None:
    """Configure TensorFlow once (1 thread: the test machine is shared)."""
    from forecaster.models.training import configure_tensorflow

    configure_tensorflow(threads=1, seed=0)
