"""Training rows of many series served as batches, without a copy of every window.

A pooled (universal) model over hundreds of series would need, as arrays,
``rows x lookback x features`` floats for its training set, and a shuffled copy
of them every epoch. A :class:`WindowFeed` keeps instead each series' scaled
*daily* features once (``days x features``) and cuts the lookback windows of
the rows a batch asks for when it is asked (:meth:`WindowFeed.take`): memory is
O(days), not O(rows x lookback). The windows are exactly those of
:attr:`forecaster.data.features.Dataset.sequence`, scaled by each series' own
scaler, so a model fit on a feed sees the same numbers as one fit on arrays.

No TensorFlow here: :func:`forecaster.models.training.fit` wraps a feed in a
Keras ``PyDataset`` when it trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecaster.errors import ModelError

__all__ = ["WindowFeed", "SeriesRows"]


@dataclass(frozen=True)
class SeriesRows:
    """One series' part of a feed: scaled daily features, and the rows it contributes.

    Attributes
    ----------
    daily : ndarray
        float32 (days, F), already scaled.
    ends : ndarray
        Position in ``daily`` of each row's origin (its window's last day).
    context : ndarray
        float32 (rows, C), already scaled.
    target : ndarray
        The rows' standardized targets.
    """

    daily: np.ndarray
    ends: np.ndarray
    context: np.ndarray
    target: np.ndarray


class WindowFeed:
    """Rows of several series whose ``lookback``-day windows are cut on demand.

    Parameters
    ----------
    parts : sequence of SeriesRows
        The series, in order; rows are numbered across them in that order.
    lookback : int
        Days per window.
    """

    def __init__(self, parts: Sequence[SeriesRows], lookback: int) -> None:
        if not parts:
            raise ModelError("a window feed needs at least one series; received none")
        self.lookback = int(lookback)
        offsets = np.cumsum([0] + [len(part.daily) for part in parts[:-1]])
        self.daily = np.ascontiguousarray(
            np.concatenate([part.daily for part in parts]), dtype=np.float32
        )
        self.ends = np.concatenate(
            [offset + np.asarray(part.ends, dtype=np.int64) for offset, part in zip(offsets, parts, strict=True)]
        )
        if (np.concatenate([np.asarray(part.ends) for part in parts]) < self.lookback - 1).any():
            raise ModelError(f"every row needs {self.lookback} days of history in its series")
        self.context = np.ascontiguousarray(
            np.concatenate([part.context for part in parts]), dtype=np.float32
        )
        self.target = np.concatenate([np.asarray(part.target, dtype=np.float32) for part in parts])
        self._steps = np.arange(-self.lookback + 1, 1)
        if not (len(self.ends) == len(self.context) == len(self.target)):
            raise ModelError("a window feed's rows, contexts and targets must match in number")

    def __len__(self) -> int:
        return int(self.ends.size)

    @property
    def n_features(self) -> int:
        return int(self.daily.shape[1])

    @property
    def context_size(self) -> int:
        return int(self.context.shape[1])

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The network inputs of ``rows``: ``{"sequence": (n, L, F), "context": (n, C)}``."""
        rows = np.asarray(rows)
        return {
            "sequence": self.daily[self.ends[rows, None] + self._steps[None, :]],
            "context": self.context[rows],
        }

    def check_finite(self, label: str) -> None:
        """Every value a batch can hold is finite (else the DataError fit raises for arrays)."""
        from forecaster.errors import DataError

        used = np.unique(self.ends[:, None] + self._steps[None, :])
        for name, values in (
            ("sequence", self.daily[used]),
            ("context", self.context),
            ("target", self.target),
        ):
            bad = int(np.sum(~np.isfinite(values)))
            if bad:
                raise DataError(
                    f"{label} {name!r} contains {bad} non-finite value(s); "
                    "drop or fill those rows before training"
                )
