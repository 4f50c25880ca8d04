"""Fixtures of the data-layer tests: estimators registered in test code only."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from forecaster.data.volatility import ESTIMATORS, close_to_close, register_estimator


@pytest.fixture
def scaled_close_to_close() -> Iterator[str]:
    """Register ``scaled-close-to-close`` (2 r_t^2) for one test, then remove it."""
    name = "scaled-close-to-close"

    @register_estimator(name, warm_up=1)
    def doubled(prices: pd.DataFrame) -> pd.Series:
        return 2.0 * close_to_close(prices)

    try:
        yield name
    finally:
        del ESTIMATORS[name]


@pytest.fixture
def rolling_close_to_close() -> Iterator[str]:
    """Register ``rolling-close-to-close`` (a windowed mean of r_t^2) for one test."""
    name = "rolling-close-to-close"

    @register_estimator(name, uses_window=True, warm_up=1)
    def rolling(prices: pd.DataFrame, window: int) -> pd.Series:
        return close_to_close(prices).rolling(window).mean()

    try:
        yield name
    finally:
        del ESTIMATORS[name]
