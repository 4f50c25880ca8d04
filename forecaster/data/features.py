"""Model inputs and targets built without look-ahead, chronological splits, scaling.

A forecast origin t is the close of day t. Everything an origin's inputs are
made of — the ``sequence`` of the ``lookback`` days ending at t, the
``context`` of the ``context`` days before that, the ``trailing_var`` of the
22 days ending at t — depends only on prices up to and including day t. The
``target`` is the mean daily variance over days t+1 .. t+h.

Rows are consecutive trading days, so a row-index difference is a difference
in trading days; :func:`split_dataset` uses this to purge overlapping labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecaster.data.volatility import (
    DEFAULT_ESTIMATOR,
    DEFAULT_WINDOW,
    VARIANCE_FLOOR,
    daily_variance,
    get_estimator,
    log_returns,
)
from forecaster.errors import ConfigError, DataError

#: Per-day features of the ``sequence`` input, in column order.
SEQUENCE_FEATURES: tuple[str, ...] = ("log_variance", "log_return", "abs_log_return")
#: Days in the trailing mean variance known at the origin (the ex-ante regime).
TRAILING_DAYS = 22
#: Fewest labeled origins a dataset (and a training set) must have.
MIN_ORIGINS = 50


def _check_int(name: str, value: Any, minimum: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"{name} must be an integer of at least {minimum}, received {value!r}; {hint}"
        )


@dataclass(frozen=True)
class FeatureSpec:
    """How the inputs and target are built.

    Attributes
    ----------
    lookback : int
        Days in the ``sequence`` input, ending at the origin (at least 2).
    context : int
        Days of long history before the sequence, summarized as block means.
    horizon : int
        Target is the mean daily variance over the next ``horizon`` days.
    estimator : str
        Daily-variance estimator (a name in :data:`forecaster.data.volatility.ESTIMATORS`).
    window : int
        Window of a windowed estimator such as ``yang-zhang`` (ignored by the others).
    block : int
        Days per block of the context summary; ``context`` must be a multiple.
    exog : tuple of str
        Names of exogenous daily inputs appended to the sequence features, in
        order (``market`` first when present; see :mod:`forecaster.data.exog`).
    """

    lookback: int = 22
    context: int = 252
    horizon: int = 1
    estimator: str = DEFAULT_ESTIMATOR
    window: int = DEFAULT_WINDOW
    block: int = 21
    exog: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_int("horizon", self.horizon, 1, "pass e.g. --horizon 1, 5 or 22")
        _check_int("lookback", self.lookback, 2, "pass e.g. --lookback 22")
        _check_int("block", self.block, 1, "pass e.g. a block of 21 days")
        _check_int("window", self.window, 2, "pass e.g. --window 22")
        _check_int("context", self.context, 1, "pass e.g. --context 252")
        if self.context < self.block or self.context % self.block != 0:
            suggestion = max(1, self.context // self.block) * self.block
            raise ConfigError(
                f"context must be at least block ({self.block} days) and a multiple of it, "
                f"received context={self.context}; pass e.g. --context {suggestion}"
            )
        get_estimator(self.estimator)  # ConfigError listing the registered names
        object.__setattr__(self, "exog", tuple(self.exog))
        if len(set(self.exog)) != len(self.exog):
            raise ConfigError(f"exogenous inputs must be named once each; received {self.exog}")

    @property
    def features(self) -> tuple[str, ...]:
        """Names of the per-day sequence features, in column order."""
        return SEQUENCE_FEATURES + tuple(f"exog:{name}" for name in self.exog)

    @property
    def n_blocks(self) -> int:
        """Number of context columns (``context // block``)."""
        return self.context // self.block

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the spec (for model metadata)."""
        data = {
            key: (value if isinstance(value, str) else int(value))
            for key, value in asdict(self).items()
            if key != "exog"
        }
        if self.exog:  # older records have no key: no exogenous inputs
            data["exog"] = list(self.exog)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Rebuild a spec from :meth:`to_dict` output; unknown keys raise ConfigError."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"feature spec has unknown key(s) {sorted(unknown)}; expected a subset of "
                f"{sorted(cls.__dataclass_fields__)}"
            )
        return cls(**{**data, "exog": tuple(data.get("exog", ()))})


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and targets, one row per forecast origin (oldest first).

    Attributes
    ----------
    spec : FeatureSpec
        The spec the rows were built from.
    origins : pd.DatetimeIndex
        Date of each origin (forecast made at that day's close).
    positions : np.ndarray
        Integer position of each origin in the price frame / ``variance``.
    sequence : np.ndarray
        float32 (N, lookback, F), a read-only view of ``features``: ``spec.features`` for the lookback
        days ending at the origin (unscaled).
    context : np.ndarray
        float32 (N, context // block): block means of log daily variance over
        the ``context`` days before the sequence window, oldest block first.
    target : np.ndarray
        float64 (N,): mean daily variance over days t+1 .. t+horizon; NaN for
        the newest ``horizon`` origins, whose future is not yet realized.
    trailing_var : np.ndarray
        float64 (N,): mean daily variance over the 22 days ending at the origin.
    variance : pd.Series
        The full daily-variance series (indexed like the prices).
    returns : pd.Series
        The full log-return series (indexed like the prices).
    estimator : str
        Estimator of ``variance``.
    n_floored : int
        Garman–Klass values clipped at the variance floor.
    exog : pandas.DataFrame or None
        The exogenous inputs aligned to the price dates (log values, one column
        per name of ``spec.exog``; NaN before an input starts), or None.
    features : numpy.ndarray or None
        float32 (days, F): the daily features every ``sequence`` row is a window
        of (``sequence[i] == features[positions[i] - lookback + 1 : positions[i] + 1]``).
    quarticity : pandas.Series or None
        Realized quarticity ``rq`` per day (indexed like ``variance``) when the
        source provides it (intraday bars, a file with an ``rq`` column): HARQ's
        regressor. None otherwise.
    """

    spec: FeatureSpec
    origins: pd.DatetimeIndex
    positions: np.ndarray
    sequence: np.ndarray
    context: np.ndarray
    target: np.ndarray
    trailing_var: np.ndarray
    variance: pd.Series
    returns: pd.Series
    estimator: str
    n_floored: int
    exog: pd.DataFrame | None = None
    features: np.ndarray | None = field(default=None, repr=False)
    quarticity: pd.Series | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.origins)

    @property
    def horizon(self) -> int:
        """Forecast horizon in days."""
        return self.spec.horizon

    def labeled(self) -> np.ndarray:
        """Boolean mask of the rows whose target is realized."""
        return np.isfinite(self.target)

    def floored_target(self) -> np.ndarray:
        """Targets floored at the variance floor (a zero close-to-close day breaks QLIKE)."""
        return np.where(np.isnan(self.target), np.nan, np.maximum(self.target, VARIANCE_FLOOR))


def _floored_log(variance: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(variance, VARIANCE_FLOOR))


def build_dataset(
    prices: pd.DataFrame, spec: FeatureSpec | None = None, exog: pd.DataFrame | None = None
) -> Dataset:
    """Build inputs and targets for every origin with a full history.

    Parameters
    ----------
    prices : pd.DataFrame
        Validated prices (DatetimeIndex, columns open, high, low, close, volume).
    spec : FeatureSpec, optional
        Lookback, context, horizon and estimator; defaults to ``FeatureSpec()``.
    exog : pandas.DataFrame, optional
        The exogenous inputs ``spec.exog`` names: positive daily values, one
        column per name, indexed by their own dates; aligned here without
        look-ahead (:func:`forecaster.data.exog.align`) and logged.

    Returns
    -------
    Dataset
        One row per origin; the newest ``horizon`` rows have a NaN target.

    Raises
    ------
    DataError
        If the prices give fewer than :data:`MIN_ORIGINS` labeled origins, or
        their daily variance is zero on every usable day (constant prices).
    """
    spec = FeatureSpec() if spec is None else spec
    estimator = get_estimator(spec.estimator)
    daily = daily_variance(prices, spec.estimator, spec.window)
    returns = log_returns(prices)
    variance = daily.variance.to_numpy()
    log_return = returns.to_numpy()
    log_variance = _floored_log(variance)
    columns = [log_variance, log_return, np.abs(log_return)]
    aligned = None
    if spec.exog:
        aligned = _aligned_exog(exog, spec.exog, prices.index)
        columns += [aligned[name].to_numpy() for name in spec.exog]
    features = np.column_stack(columns)

    n_rows = features.shape[0]
    # Day 0 has no return; the estimator may leave more leading rows undefined
    # (Yang-Zhang's first window ends at position `window`).
    first_valid = max(1, estimator.undefined_rows(spec.window))
    if aligned is not None:  # an exogenous input that starts later delays the first origin
        started = np.isfinite(aligned.to_numpy()).all(axis=1)
        first_valid = max(first_valid, int(np.argmax(started)) if started.any() else n_rows)
    lookback, context, horizon, block = spec.lookback, spec.context, spec.horizon, spec.block
    first_origin = first_valid + max(lookback + context, TRAILING_DAYS) - 1
    needed = first_origin + horizon + MIN_ORIGINS
    if n_rows < needed:
        span = f" ({prices.index[0].date()} to {prices.index[-1].date()})" if n_rows else ""
        estimator_warm_up = first_valid - 1
        trailing_warm_up = max(0, TRAILING_DAYS - lookback - context)
        extra = ""
        if estimator_warm_up:
            window = f" (window {spec.window})" if estimator.uses_window else ""
            extra += f" + {estimator_warm_up} warm-up rows for estimator {spec.estimator!r}{window}"
        if trailing_warm_up:
            extra += f" + {trailing_warm_up} rows to fill the {TRAILING_DAYS}-day trailing variance"
        raise DataError(
            f"too little price history: received {n_rows} rows{span}, need at least "
            f"{needed} = lookback {lookback} + context {context} + horizon {horizon} + "
            f"{MIN_ORIGINS} labeled origins{extra}; fetch a longer history (an earlier "
            "--start) or use a smaller --context / --lookback"
        )

    usable = variance[first_valid:]
    if not (usable > VARIANCE_FLOOR).any():
        raise DataError(
            f"the {spec.estimator} daily variance is zero on all {usable.size} usable days "
            f"({prices.index[first_valid].date()} to {prices.index[-1].date()}): the prices "
            "never move, so there is no volatility to forecast; expected a traded price "
            "series; check the data (a stale or placeholder file?)"
        )
    bad = np.flatnonzero(~np.isfinite(features[first_valid:]).all(axis=1)) + first_valid
    if bad.size:
        raise DataError(
            f"daily features are not finite on {bad.size} day(s), first "
            f"{prices.index[bad[0]].date()}; expected finite, positive prices; validate the "
            "prices (forecaster.data.validation) before building features"
        )
    positions = np.arange(first_origin, n_rows)
    features = np.ascontiguousarray(features, dtype=np.float32)
    # Each sliding-window row j covers days j .. j + size - 1. The sequence is a read-only
    # strided view of the daily features (no copy per window): memory stays O(days).
    sequence_windows = sliding_window_view(features, lookback, axis=0)  # (M, F, lookback)
    sequence = sequence_windows[first_origin - lookback + 1 :].transpose(0, 2, 1)
    block_means = sliding_window_view(log_variance, block).mean(axis=1)
    context_starts = positions - lookback - context + 1
    block_offsets = np.arange(spec.n_blocks) * block
    context_values = block_means[context_starts[:, None] + block_offsets[None, :]]
    trailing = sliding_window_view(variance, TRAILING_DAYS).mean(axis=1)
    trailing_var = trailing[positions - TRAILING_DAYS + 1]
    future = sliding_window_view(variance, horizon).mean(axis=1)  # row j: days j .. j+h-1
    target = np.full(positions.shape, np.nan)
    labeled = positions + horizon <= n_rows - 1
    target[labeled] = future[positions[labeled] + 1]

    return Dataset(
        spec=spec,
        origins=pd.DatetimeIndex(prices.index[positions]),
        positions=positions,
        sequence=sequence,
        context=np.ascontiguousarray(context_values, dtype=np.float32),
        target=target,
        trailing_var=np.asarray(trailing_var, dtype=np.float64),
        variance=daily.variance,
        returns=returns,
        estimator=daily.estimator,
        n_floored=daily.n_floored,
        exog=aligned,
        features=features,
        quarticity=prices["rq"].astype(np.float64) if "rq" in prices.columns else None,
    )


def _aligned_exog(
    exog: pd.DataFrame | None, names: tuple[str, ...], dates: pd.DatetimeIndex
) -> pd.DataFrame:
    """The spec's exogenous inputs at the price dates (log values, no look-ahead)."""
    from forecaster.data.exog import align

    given = [] if exog is None else list(exog.columns)
    missing = [name for name in names if name not in given]
    if missing:
        raise DataError(
            f"the features need the exogenous input(s) {', '.join(missing)} but received "
            f"{', '.join(given) or 'none'}; pass them (--market TICKER, --exog NAME=PATH)"
        )
    return pd.DataFrame(
        {name: align(exog[name], dates, name) for name in names}, index=dates
    )


#: How a session measure is scaled to a close-to-close variance (Hansen & Lunde 2005).
OVERNIGHT_METHOD = "hansen-lunde-2005"
#: Fewest days with a return and a variance the overnight factor is estimated on.
MIN_OVERNIGHT_DAYS = 20


@dataclass(frozen=True)
class OvernightScale:
    """The factor that turns a session variance into a close-to-close one.

    Range estimators (Garman–Klass, Parkinson, Rogers–Satchell) and intraday
    measures (rv5, bv, ...) cover the trading session only; the return a VaR
    claims to bound runs close to close and so includes the overnight gap.
    Hansen & Lunde (2005): ``c = sum r_d^2 / sum v_d`` over the training days d
    (every day before the cut with both a close-to-close log return ``r_d`` and
    a daily variance ``v_d``), and ``c * v`` is the close-to-close variance.
    ``c`` is 1 for close-to-close by construction (v = r^2).

    Attributes
    ----------
    factor : float
        ``c``.
    n_days : int
        Days it was estimated on.
    start, end : str
        First and last of those days (ISO dates).
    """

    factor: float
    n_days: int
    start: str
    end: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with the method named (for the model record and reports)."""
        return {"method": OVERNIGHT_METHOD, **asdict(self)}


def overnight_scale(dataset: Dataset, cut: pd.Timestamp | str) -> OvernightScale:
    """The Hansen–Lunde factor of ``dataset`` estimated on the days before ``cut``.

    Only days dated strictly before ``cut`` (the first test origin) are used, so
    nothing of the test period moves it.

    Raises
    ------
    DataError
        Fewer than :data:`MIN_OVERNIGHT_DAYS` such days, or a zero variance sum.
    """
    cut = pd.Timestamp(cut)
    variance = dataset.variance.to_numpy(dtype=np.float64)
    returns = dataset.returns.to_numpy(dtype=np.float64)
    before = np.asarray(dataset.variance.index < cut)
    used = before & np.isfinite(variance) & np.isfinite(returns)
    total = float(variance[used].sum())
    if used.sum() < MIN_OVERNIGHT_DAYS or not total > 0:
        raise DataError(
            f"the overnight factor needs at least {MIN_OVERNIGHT_DAYS} days with a return and a "
            f"positive variance before {cut:%Y-%m-%d}, found {int(used.sum())}; use a longer "
            "history before the test period"
        )
    dates = dataset.variance.index[used]
    return OvernightScale(
        factor=float((returns[used] ** 2).sum() / total),
        n_days=int(used.sum()),
        start=f"{dates[0]:%Y-%m-%d}",
        end=f"{dates[-1]:%Y-%m-%d}",
    )


@dataclass(frozen=True, eq=False)
class Split:
    """Chronological train / validation / test rows of a :class:`Dataset`.

    ``train``, ``validation`` and ``test`` are integer row indices into the
    dataset, in time order; only labeled rows appear. Rows whose label
    overlaps a later set are purged (``n_purged``).
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    horizon: int
    n_purged: int
    train_start: pd.Timestamp = field(repr=False)
    train_end: pd.Timestamp = field(repr=False)
    validation_start: pd.Timestamp = field(repr=False)
    validation_end: pd.Timestamp = field(repr=False)
    test_start: pd.Timestamp = field(repr=False)
    test_end: pd.Timestamp = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dates (ISO ``YYYY-MM-DD``) and row counts of the split."""
        dates = {
            name: getattr(self, name).date().isoformat()
            for name in (
                "train_start",
                "train_end",
                "validation_start",
                "validation_end",
                "test_start",
                "test_end",
            )
        }
        counts = {
            "n_train": int(self.train.size),
            "n_validation": int(self.validation.size),
            "n_test": int(self.test.size),
            "n_purged": int(self.n_purged),
            "horizon": int(self.horizon),
        }
        return dates | counts


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ConfigError(
            f"{name} must be a number strictly between 0 and 1, received {value!r}; pass e.g. 0.2"
        )
    return float(value)


def split_dataset(
    dataset: Dataset,
    test_start: str | pd.Timestamp | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.15,
) -> Split:
    """Split the labeled rows chronologically into train, validation and test.

    Parameters
    ----------
    dataset : Dataset
        Output of :func:`build_dataset`.
    test_start : str or Timestamp, optional
        First origin date of the test set; default: the last ``test_fraction``
        of the labeled rows.
    test_fraction : float
        Share of labeled rows held out for test when ``test_start`` is None.
    validation_fraction : float
        Share of the rows before the test set used for validation (the last ones).

    Returns
    -------
    Split
        A train origin at row i is kept only if ``i + horizon`` is at most the
        first validation row (likewise validation against test), so no label
        used for fitting overlaps a later set.
    """
    validation_fraction = _check_fraction("validation_fraction", validation_fraction)
    horizon = dataset.horizon
    labeled_rows = np.flatnonzero(dataset.labeled())
    if labeled_rows.size == 0:
        raise DataError(
            "the dataset has no labeled origins to split; build it from a longer price history"
        )
    labeled_origins = dataset.origins[labeled_rows]
    first_date, last_date = labeled_origins[0].date(), labeled_origins[-1].date()

    if test_start is not None:
        try:
            start = pd.Timestamp(test_start)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"test_start must be a date like 2016-01-04, received {test_start!r}"
            ) from exc
        if start.tzinfo is not None:
            start = start.tz_localize(None)
        if not labeled_origins[0] < start <= labeled_origins[-1]:
            raise ConfigError(
                f"test_start {start.date()} is outside the labeled origins {first_date} to "
                f"{last_date}; choose a date after {first_date} and no later than {last_date}"
            )
        n_before = int(np.searchsorted(labeled_origins, start, side="left"))
    else:
        test_fraction = _check_fraction("test_fraction", test_fraction)
        n_test = max(1, int(round(test_fraction * labeled_rows.size)))
        n_before = labeled_rows.size - n_test

    test = labeled_rows[n_before:]
    before = labeled_rows[:n_before]
    n_validation = max(1, int(round(validation_fraction * before.size)))
    validation = before[before.size - n_validation :] if before.size else before
    train = before[: before.size - n_validation]
    validation_kept = validation[validation + horizon <= test[0]]
    first_validation = validation_kept[0] if validation_kept.size else test[0]
    train_kept = train[train + horizon <= first_validation]
    n_purged = (validation.size - validation_kept.size) + (train.size - train_kept.size)

    if train_kept.size < MIN_ORIGINS or validation_kept.size == 0:
        how = (
            "choose a later test_start"
            if test_start is not None
            else "use a longer price history or smaller test/validation fractions"
        )
        error = ConfigError if test_start is not None else DataError
        raise error(
            f"the split leaves {train_kept.size} training and {validation_kept.size} validation "
            f"origins (labeled origins {first_date} to {last_date}, test from "
            f"{dataset.origins[test[0]].date()}); need at least {MIN_ORIGINS} training and 1 "
            f"validation origin; {how}"
        )

    origins = dataset.origins
    return Split(
        train=train_kept,
        validation=validation_kept,
        test=test,
        horizon=horizon,
        n_purged=int(n_purged),
        train_start=origins[train_kept[0]],
        train_end=origins[train_kept[-1]],
        validation_start=origins[validation_kept[0]],
        validation_end=origins[validation_kept[-1]],
        test_start=origins[test[0]],
        test_end=origins[test[-1]],
    )


def _safe_std(values: np.ndarray, axis: int | None = 0) -> np.ndarray:
    std = np.std(values, axis=axis)
    return np.where(std > 0.0, std, 1.0)


class FeatureScaler:
    """Standardizes inputs and log targets with statistics from training rows only.

    Sequence features are scaled per feature (over every day of every window
    of the fitted rows), context per column, and the target as
    ``z = (log y - mu) / sd``. A feature with zero spread gets sd = 1.
    """

    def __init__(self) -> None:
        self.sequence_mean: np.ndarray | None = None
        self.sequence_std: np.ndarray | None = None
        self.context_mean: np.ndarray | None = None
        self.context_std: np.ndarray | None = None
        self.target_mean: float | None = None
        self.target_std: float | None = None
        self.features: tuple[str, ...] = SEQUENCE_FEATURES

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`from_dict` has set the statistics."""
        return self.target_mean is not None

    def fit(self, dataset: Dataset, rows: np.ndarray) -> FeatureScaler:
        """Compute the statistics from ``rows`` of ``dataset`` (e.g. ``split.train``)."""
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
            raise ConfigError(
                f"FeatureScaler.fit needs a non-empty 1-d array of row indices, received "
                f"shape {rows.shape} of dtype {rows.dtype}; pass e.g. split.train"
            )
        target = dataset.target[rows]
        if not np.isfinite(target).all():
            raise ConfigError(
                f"FeatureScaler.fit received {int((~np.isfinite(target)).sum())} rows without "
                "a realized target; fit on labeled rows only (e.g. split.train)"
            )
        n_features = dataset.sequence.shape[2]
        sequence = dataset.sequence[rows].astype(np.float64).reshape(-1, n_features)
        context = dataset.context[rows].astype(np.float64)
        log_target = _floored_log(target)
        self.sequence_mean = sequence.mean(axis=0)
        self.sequence_std = _safe_std(sequence)
        self.context_mean = context.mean(axis=0)
        self.context_std = _safe_std(context)
        self.target_mean = float(log_target.mean())
        self.target_std = float(_safe_std(log_target, axis=None))
        self.features = dataset.spec.features
        return self

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("FeatureScaler is not fitted; call fit() or from_dict() first")

    def transform_sequence(self, sequence: np.ndarray) -> np.ndarray:
        """Scaled float32 copy of a (N, lookback, 3) sequence array."""
        self._require_fitted()
        return ((sequence - self.sequence_mean) / self.sequence_std).astype(np.float32)

    def transform_context(self, context: np.ndarray) -> np.ndarray:
        """Scaled float32 copy of a (N, n_blocks) context array."""
        self._require_fitted()
        return ((context - self.context_mean) / self.context_std).astype(np.float32)

    def transform_target(self, target_var: np.ndarray) -> np.ndarray:
        """``z = (log y - mu) / sd`` of daily-variance targets (floored before the log)."""
        self._require_fitted()
        return (_floored_log(np.asarray(target_var, dtype=np.float64)) - self.target_mean) / (
            self.target_std
        )

    def inverse_target(self, z: np.ndarray) -> np.ndarray:
        """Daily variance ``exp(mu + sd * z)`` from scaled model outputs."""
        self._require_fitted()
        return np.exp(self.target_mean + self.target_std * np.asarray(z, dtype=np.float64))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe statistics (plain floats and lists) for model metadata."""
        self._require_fitted()
        return {
            "sequence_features": list(self.features),
            "sequence_mean": [float(x) for x in self.sequence_mean],
            "sequence_std": [float(x) for x in self.sequence_std],
            "context_mean": [float(x) for x in self.context_mean],
            "context_std": [float(x) for x in self.context_std],
            "target_mean": float(self.target_mean),
            "target_std": float(self.target_std),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output."""
        required = (
            "sequence_mean",
            "sequence_std",
            "context_mean",
            "context_std",
            "target_mean",
            "target_std",
        )
        missing = [key for key in required if key not in data]
        if missing:
            raise ConfigError(
                f"scaler metadata is missing key(s) {missing}; expected the keys written by "
                "FeatureScaler.to_dict (retrain the model to regenerate its metadata)"
            )
        features = tuple(data.get("sequence_features", SEQUENCE_FEATURES))
        n_features = len(features)
        malformed = ConfigError(
            f"scaler metadata is malformed: expected {n_features} finite sequence means and "
            "positive stds, matching context means and positive stds, and a finite target "
            "mean with a positive std; retrain the model to regenerate its metadata"
        )
        try:
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in required}
        except (TypeError, ValueError) as exc:
            raise malformed from exc
        shapes_ok = (
            arrays["sequence_mean"].shape == (n_features,)
            and arrays["sequence_std"].shape == (n_features,)
            and arrays["context_mean"].ndim == 1
            and arrays["context_std"].shape == arrays["context_mean"].shape
            and arrays["target_mean"].ndim == 0
            and arrays["target_std"].ndim == 0
        )
        if not shapes_ok or not all(np.isfinite(value).all() for value in arrays.values()):
            raise malformed
        if any((arrays[key] <= 0).any() for key in ("sequence_std", "context_std", "target_std")):
            raise malformed
        scaler = cls()
        scaler.sequence_mean = arrays["sequence_mean"]
        scaler.sequence_std = arrays["sequence_std"]
        scaler.context_mean = arrays["context_mean"]
        scaler.context_std = arrays["context_std"]
        scaler.target_mean = float(arrays["target_mean"])
        scaler.target_std = float(arrays["target_std"])
        scaler.features = features
        return scaler
