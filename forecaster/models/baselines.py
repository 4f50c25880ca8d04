"""Econometric baselines, each a :class:`~forecaster.models.base.Forecaster`.

Every baseline forecasts the **mean daily variance over t+1 .. t+h** at each
forecast origin t (the target of DESIGN §2), in daily-variance units.

As forecasters they ``fit(dataset, cut)`` and ``predict(dataset, rows)`` like
the LSTM. Underneath, ``fit_series(variance, returns, horizon, fit_end)``
receives the full available history (a daily variance proxy and daily log
returns, both possibly with a leading NaN, on one shared DatetimeIndex).
Parameters are estimated on rows dated ``<= fit_end`` only (the day before the
cut); the HAR regression uses only targets fully realized by ``fit_end``.
``predict_origins(origins)`` then forecasts at any origin in the index; the
forecast at origin t uses data dated ``<= t`` only, even though the series
cover later dates. Public methods validate and delegate to the private hooks
``_estimate``/``_forecast`` (the arch pattern), so subclasses cannot skip the
checks.

Adding a baseline is one class decorated with :func:`register_baseline`: it
then appears in ``forecast evaluate --baselines`` and every report.

No TensorFlow here: baselines stay cheap to import.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, EvaluationError, ModelError
from forecaster.models.base import Forecaster, fit_end_before

if TYPE_CHECKING:
    from arch.univariate.base import ARCHModelFixedResult
    from typing_extensions import Self

    from forecaster.data.features import Dataset

__all__ = [
    "BASELINES",
    "EWMA",
    "GARCH",
    "GJR",
    "HAR",
    "HARQ",
    "Baseline",
    "Naive",
    "create_baseline",
    "parse_baselines",
    "register_baseline",
    "usable_baselines",
]

#: Registered baselines by name, in registration order (the order of reports).
BASELINES: dict[str, type[Baseline]] = {}


def register_baseline(cls: type[Baseline]) -> type[Baseline]:
    """Class decorator: add a baseline to :data:`BASELINES` under ``cls.kind``."""
    name = getattr(cls, "kind", None)
    if not isinstance(name, str) or not name or name != name.lower() or "," in name:
        raise TypeError(
            f"{cls.__name__} must define a lower-case class attribute `kind` without commas"
        )
    if name in BASELINES and BASELINES[name] is not cls:
        raise TypeError(f"a baseline named {name!r} is already registered")
    BASELINES[name] = cls
    return cls

#: Trading days in the monthly HAR component, the naive window and the EWMA warm-up.
MONTH = 22
#: Trading days in the weekly HAR component.
WEEK = 5
#: Observations arch uses for the GARCH backcast; earlier origins would see later data.
GARCH_BACKCAST = 75
#: Fewest training regressions rows HAR accepts.
MIN_HAR_ROWS = 30
#: Fewest training returns a GARCH fit accepts.
MIN_GARCH_ROWS = 100
#: Percent returns for arch (better-scaled optimisation); variances come back in %^2.
RETURN_SCALE = 100.0


def _first_dates(index: pd.DatetimeIndex, count: int = 3) -> str:
    shown = ", ".join(str(date.date()) for date in index[:count])
    return shown + (f" (and {len(index) - count} more)" if len(index) > count else "")


def _validated_series(series: Any, name: str, non_negative: bool) -> pd.Series:
    """Check one input series: DatetimeIndex, sorted, unique, NaN only as a leading block."""
    if not isinstance(series, pd.Series):
        raise ModelError(f"{name} must be a pandas Series indexed by date, got {type(series)}")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ModelError(
            f"{name} must have a DatetimeIndex, got {type(series.index).__name__}; "
            "index the series by trading date"
        )
    if not series.index.is_monotonic_increasing or not series.index.is_unique:
        raise ModelError(f"{name} index must be sorted and unique; sort it and drop duplicates")
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{name} must be numeric: {exc}") from exc
    valid = ~np.isnan(values)
    if not valid.any():
        raise ModelError(f"{name} has no values (all NaN); expected a daily series")
    first = int(np.argmax(valid))
    tail = values[first:]
    bad = ~np.isfinite(tail)
    if non_negative:
        bad |= tail < 0.0
    if bad.any():
        dates = series.index[first:][bad]
        expected = "finite and non-negative" if non_negative else "finite"
        raise ModelError(
            f"{name} must be {expected} after its leading NaNs, got bad values on "
            f"{_first_dates(dates)}; fix or drop those days upstream"
        )
    return pd.Series(values, index=series.index, name=series.name)


def _trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of ``values[t-window+1 .. t]`` at each t (NaN until a full window exists)."""
    out = np.full(values.shape, np.nan)
    if values.size >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(values, window).mean(axis=1)
    return out


class Baseline(Forecaster):
    """Common base of all baselines (fit returns ``self``, like darts).

    Attributes
    ----------
    kind : str
        Registry name (``har``, ``garch``, ...).
    """

    def __init__(self) -> None:
        super().__init__()
        self._variance = np.empty(0)
        self._returns = np.empty(0)
        self._index = pd.DatetimeIndex([])
        self._horizon = 1
        self._fit_end = pd.NaT
        self._n_fit = 0
        self._earliest = 0

    def __repr__(self) -> str:
        state = f"horizon={self._horizon}, fit_end={self._fit_end.date()}" if self._fitted else ""
        return f"{type(self).__name__}({state})"

    @property
    def name(self) -> str:
        return self.kind

    # ------------------------------------------------------------- contract
    def _fit(self, dataset: Dataset, cut: pd.Timestamp) -> None:
        self.fit_series(
            dataset.variance, dataset.returns, dataset.horizon, fit_end_before(dataset, cut)
        )

    def _predict(self, dataset: Dataset, rows: np.ndarray) -> np.ndarray:
        return self.predict_origins(dataset.origins[rows])

    # ----------------------------------------------------------------- series
    def fit_series(
        self,
        variance: pd.Series,
        returns: pd.Series,
        horizon: int,
        fit_end: pd.Timestamp,
    ) -> Self:
        """Estimate the baseline on rows dated ``<= fit_end``.

        Parameters
        ----------
        variance : pandas.Series
            Daily variance proxy over the full history (leading NaNs allowed).
        returns : pandas.Series
            Daily log returns on the same index (leading NaNs allowed).
        horizon : int
            Forecast horizon h in trading days (target = mean variance over t+1..t+h).
        fit_end : pandas.Timestamp
            Last date whose data may be used for estimation.

        Returns
        -------
        Baseline
            ``self``, fitted.
        """
        variance = _validated_series(variance, "variance", non_negative=True)
        returns = _validated_series(returns, "returns", non_negative=False)
        if not variance.index.equals(returns.index):
            raise ModelError(
                "variance and returns must share one DatetimeIndex, got indexes of lengths "
                f"{len(variance)} and {len(returns)} that differ; align them on trading dates"
            )
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise ConfigError(
                f"horizon must be a positive integer (e.g. 1, 5, 22), got {horizon!r}"
            )
        try:
            fit_end = pd.Timestamp(fit_end)
            n_fit = int(variance.index.searchsorted(fit_end, side="right"))
        except (TypeError, ValueError) as exc:
            raise ModelError(
                f"fit_end {fit_end!r} cannot be compared with the series' dates "
                f"({variance.index.dtype}): {exc}; pass a date of the same kind"
            ) from exc
        if n_fit == 0:
            raise ModelError(
                f"fit_end {fit_end} is before the first date {variance.index[0].date()}; "
                "expected a fit_end inside the series"
            )
        self._fitted = False
        self._variance = variance.to_numpy()
        self._returns = returns.to_numpy()
        self._index = variance.index
        self._horizon = int(horizon)
        self._fit_end = fit_end
        self._n_fit = n_fit
        self._estimate()
        self._fitted = True
        return self

    def predict_origins(self, origins: pd.DatetimeIndex) -> np.ndarray:
        """Forecast the mean daily variance over t+1..t+h at each origin t.

        Parameters
        ----------
        origins : pandas.DatetimeIndex
            Forecast origins; each must be a date of the fitted series.

        Returns
        -------
        numpy.ndarray
            One float64 forecast per origin, in daily variance.
        """
        if not self._fitted:
            raise ModelError(
                f"baseline '{self.name}' is not fitted; call fit(dataset, cut) or "
                "fit_series(variance, returns, horizon, fit_end) before predicting"
            )
        try:
            origins = pd.DatetimeIndex(origins)
            positions = self._index.get_indexer(origins)
        except (TypeError, ValueError) as exc:
            raise EvaluationError(
                f"origins must be dates comparable with the series index: {exc}"
            ) from exc
        missing = origins[positions < 0]
        if len(missing):
            raise EvaluationError(
                f"{len(missing)} origins are not dates of the series given to fit: "
                f"{_first_dates(missing)}; forecast only at trading dates of that series"
            )
        early = origins[positions < self._earliest]
        if len(early):
            raise EvaluationError(
                f"baseline '{self.name}' cannot forecast at {_first_dates(early)}: too little "
                f"history before those origins; the earliest usable origin is "
                f"{self.earliest_origin.date()}"
            )
        if positions.size == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self._forecast(positions), dtype=np.float64)

    @property
    def earliest_origin(self) -> pd.Timestamp:
        """First origin with enough history for a forecast (after :meth:`fit`)."""
        if not self._fitted:
            raise ModelError(f"baseline '{self.name}' is not fitted; call fit first")
        if self._earliest >= len(self._index):
            return pd.NaT
        return self._index[self._earliest]

    @property
    def params(self) -> dict[str, float]:
        """Fitted parameters, JSON-ready (for model metadata and reports)."""
        if not self._fitted:
            raise ModelError(f"baseline '{self.name}' is not fitted; call fit first")
        return self._params()

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _estimate(self) -> None:
        """Estimate on ``self._*[: self._n_fit]``; set ``self._earliest``."""

    @abstractmethod
    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        """Forecasts at integer ``positions`` of the series (already validated)."""

    @abstractmethod
    def _params(self) -> dict[str, float]:
        """Fitted parameters."""

    # ---------------------------------------------------------------- helpers
    def _first_valid(self, values: np.ndarray) -> int:
        return int(np.argmax(~np.isnan(values)))


@register_baseline
class HAR(Baseline):
    """HAR-RV in logs (Corsi 2009).

    ``log target_t = b0 + b_d log v_t + b_w log mean(v_{t-4..t}) + b_m log mean(v_{t-21..t})``
    by OLS on origins whose target (mean variance over t+1..t+h) is fully realized
    by ``fit_end``. Forecast = ``exp(fitted) * exp(0.5 * s2)``, ``s2`` the residual
    variance (SSR / (n - 4)): the log-normal correction from the log scale back to
    a mean variance. Needs a strictly positive variance proxy.
    """

    kind = "har"

    def __init__(self) -> None:
        super().__init__()
        self.coefficients = np.full(4, np.nan)
        self.residual_variance = math.nan
        self.lognormal_correction = math.nan
        self.n_obs = 0
        self._design = np.empty((0, 4))
        self._given: dict[str, float] | None = None

    @classmethod
    def with_params(cls, params: dict[str, float]) -> HAR:
        """A HAR with the coefficients of :attr:`params` (a saved fit); fit only lays out data."""
        har = cls()
        har._given = {key: float(value) for key, value in params.items()}
        return har

    def _estimate(self) -> None:
        variance = self._variance
        first = self._first_valid(variance)
        self._earliest = first + MONTH - 1
        used = variance[first : self._n_fit]
        if (used <= 0.0).any():
            dates = self._index[first : self._n_fit][used <= 0.0]
            raise ModelError(
                f"HAR works in logs but the variance proxy is zero on {_first_dates(dates)}; "
                "use a range estimator (e.g. garman-klass) or floor the proxy"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            self._design = np.column_stack(
                [
                    np.ones_like(variance),
                    np.log(variance),
                    np.log(_trailing_mean(variance, WEEK)),
                    np.log(_trailing_mean(variance, MONTH)),
                ]
            )
            # target at origin t = mean of v[t+1 .. t+h]
            horizon = self._horizon
            target = np.full(variance.shape, np.nan)
            target[: variance.size - horizon] = _trailing_mean(variance, horizon)[horizon:]
            log_target = np.log(target)
        if self._given is not None:
            given = self._given
            keys = ("const", "beta_daily", "beta_weekly", "beta_monthly")
            self.coefficients = np.array([given[key] for key in keys])
            self.residual_variance = given["residual_variance"]
            self.lognormal_correction = math.exp(0.5 * self.residual_variance)
            self.n_obs = int(given.get("n_obs", 0))
            return
        last_origin = self._n_fit - 1 - horizon  # target realized by fit_end
        rows = np.arange(self._earliest, last_origin + 1)
        if rows.size < MIN_HAR_ROWS:
            raise ModelError(
                f"HAR needs at least {MIN_HAR_ROWS} training origins with a full {MONTH}-day "
                f"history and a target realized by fit_end, got {max(rows.size, 0)}; "
                "move fit_end later or provide more history"
            )
        design = self._design[rows]
        response = log_target[rows]
        coefficients, *_ = np.linalg.lstsq(design, response, rcond=None)
        residuals = response - design @ coefficients
        self.coefficients = coefficients
        self.n_obs = int(rows.size)
        self.residual_variance = float(residuals @ residuals / (rows.size - design.shape[1]))
        self.lognormal_correction = math.exp(0.5 * self.residual_variance)

    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        design = self._design[positions]
        bad = ~np.isfinite(design).all(axis=1)
        if bad.any():
            raise ModelError(
                "HAR works in logs but the variance proxy (or its 5/22-day mean) is zero at "
                f"the origins {_first_dates(self._index[positions[bad]])}; use a range "
                "estimator (e.g. garman-klass) or floor the proxy"
            )
        return np.exp(design @ self.coefficients) * self.lognormal_correction

    def _params(self) -> dict[str, float]:
        const, daily, weekly, monthly = (float(value) for value in self.coefficients)
        return {
            "const": const,
            "beta_daily": daily,
            "beta_weekly": weekly,
            "beta_monthly": monthly,
            "residual_variance": self.residual_variance,
            "lognormal_correction": self.lognormal_correction,
            "n_obs": float(self.n_obs),
        }


@register_baseline
class GARCH(Baseline):
    """GARCH(1,1) with constant mean and normal errors, fit by arch on percent returns.

    Parameters are estimated on returns dated ``<= fit_end``; forecasts filter the
    full series with those fixed parameters (``model.fix``) and average arch's
    analytic 1..h-step variance forecasts, divided by 1e4 back to daily variance.

    Notes
    -----
    arch's backcast uses the first 75 returns, so origins before the 75th valid
    return are refused. arch also clips the variance recursion to very loose
    bounds computed from the whole sample (1e-8 x sample variance, 1e6 x the
    EWMA); they never bind for sane data, but in principle are the only place
    later data could touch an earlier forecast. :attr:`params` holds arch's
    parameter names and percent-return units (``mu`` in %, ``omega`` in %^2).
    """

    kind = "garch"
    #: The conditional variance of the close-to-close returns it is fit on: no overnight factor.
    forecasts_target: ClassVar[bool] = False
    o: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.arch_params = pd.Series(dtype=np.float64)
        self.convergence_flag = 0
        self._fixed: ARCHModelFixedResult | None = None
        self._first = 0

    def _model(self, percent_returns: np.ndarray) -> Any:
        from arch import arch_model

        return arch_model(
            percent_returns,
            mean="Constant",
            vol="GARCH",
            p=1,
            o=self.o,
            q=1,
            dist="normal",
            rescale=False,
        )

    def _estimate(self) -> None:
        returns = self._returns
        first = self._first_valid(returns)
        self._first = first
        self._earliest = first + GARCH_BACKCAST - 1
        train = RETURN_SCALE * returns[first : self._n_fit]
        if train.size < MIN_GARCH_ROWS:
            raise ModelError(
                f"{self.name.upper()} needs at least {MIN_GARCH_ROWS} returns up to fit_end, "
                f"got {train.size}; move fit_end later or provide more history"
            )
        result = self._model(train).fit(disp="off")
        self.arch_params = result.params.copy()
        self.convergence_flag = int(result.convergence_flag)
        self._fixed = self._model(RETURN_SCALE * returns[first:]).fix(result.params.to_numpy())

    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        assert self._fixed is not None
        offsets = positions - self._first
        start = int(offsets.min())
        forecast = self._fixed.forecast(
            horizon=self._horizon, start=start, reindex=False, method="analytic"
        )
        variances = forecast.variance.to_numpy()
        return variances[offsets - start].mean(axis=1) / RETURN_SCALE**2

    def _params(self) -> dict[str, float]:
        params = {str(key): float(value) for key, value in self.arch_params.items()}
        params["convergence_flag"] = float(self.convergence_flag)
        return params


@register_baseline
class GJR(GARCH):
    """GJR-GARCH(1,1,1): GARCH with a leverage term (``o=1``)."""

    kind = "gjr"
    o: ClassVar[int] = 1


@register_baseline
class EWMA(Baseline):
    """RiskMetrics EWMA on the variance proxy, flat over the horizon.

    ``sigma2_t = lambda * sigma2_{t-1} + (1 - lambda) * v_t`` with lambda = 0.94.
    The recursion starts at the 22nd available value with ``sigma2`` = the mean of
    the first 22 values, so no forecast ever sees a later day. Nothing is
    estimated: ``fit`` only records the series.
    """

    kind = "ewma"
    decay: ClassVar[float] = 0.94

    def __init__(self) -> None:
        super().__init__()
        self._sigma2 = np.empty(0)

    def _estimate(self) -> None:
        variance = self._variance
        first = self._first_valid(variance)
        self._earliest = first + MONTH - 1
        sigma2 = np.full(variance.shape, np.nan)
        if self._earliest < variance.size:
            level = float(np.mean(variance[first : self._earliest + 1]))
            sigma2[self._earliest] = level
            for position in range(self._earliest + 1, variance.size):
                level = self.decay * level + (1.0 - self.decay) * float(variance[position])
                sigma2[position] = level
        self._sigma2 = sigma2

    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        return self._sigma2[positions]

    def _params(self) -> dict[str, float]:
        return {"lambda": self.decay, "init_window": float(MONTH)}


@register_baseline
class Naive(Baseline):
    """Mean daily variance of the 22 trading days ending at the origin, flat over h."""

    kind = "naive"

    def __init__(self) -> None:
        super().__init__()
        self._trailing = np.empty(0)

    def _estimate(self) -> None:
        self._earliest = self._first_valid(self._variance) + MONTH - 1
        self._trailing = _trailing_mean(self._variance, MONTH)

    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        return self._trailing[positions]

    def _params(self) -> dict[str, float]:
        return {"window": float(MONTH)}


@register_baseline
class GBM(Baseline):
    """Gradient boosting on HAR features (Christensen, Siggaard & Veliyev, JFEC 2023).

    scikit-learn's ``HistGradientBoostingRegressor`` predicts the log target
    (mean variance over t+1..t+h) from the log of the 1-, 5- and 22-day mean
    variance and the day's return and absolute return. As for the LSTM, it is
    fit on the first 85% of the training origins (targets realized by
    ``fit_end``; labels overlapping the rest purged) and every forecast is
    multiplied by the QLIKE-optimal constant mean(y/f) of the last 15%.
    Zero variances are floored (logs). Deterministic (``random_state=0``).
    """

    kind = "gbm"
    #: Share of the training origins that sets the scale correction.
    validation_fraction: ClassVar[float] = 0.15
    #: Fewest training origins accepted.
    min_rows: ClassVar[int] = 100
    settings: ClassVar[dict[str, Any]] = {
        "max_iter": 200,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
    }

    def __init__(self) -> None:
        super().__init__()
        self._design = np.empty((0, 5))
        self._model: Any = None
        self.scale = math.nan
        self.n_obs = 0

    def _estimate(self) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        from forecaster.data.volatility import VARIANCE_FLOOR

        variance = np.maximum(self._variance, VARIANCE_FLOOR)  # NaN stays NaN
        first = self._first_valid(self._variance)
        self._earliest = first + MONTH - 1
        self._design = np.column_stack(
            [
                np.log(variance),
                np.log(_trailing_mean(variance, WEEK)),
                np.log(_trailing_mean(variance, MONTH)),
                self._returns,
                np.abs(self._returns),
            ]
        )
        horizon = self._horizon
        target = np.full(variance.shape, np.nan)
        target[: variance.size - horizon] = _trailing_mean(variance, horizon)[horizon:]
        last_origin = self._n_fit - 1 - horizon  # target realized by fit_end
        rows = np.arange(self._earliest, last_origin + 1)
        rows = rows[np.isfinite(self._design[rows]).all(axis=1)]
        if rows.size < self.min_rows:
            raise ModelError(
                f"gbm needs at least {self.min_rows} training origins with a full {MONTH}-day "
                f"history and a target realized by fit_end, got {rows.size}; move fit_end later "
                "or provide more history"
            )
        n_validation = max(1, int(round(self.validation_fraction * rows.size)))
        validation = rows[rows.size - n_validation :]
        train = rows[: rows.size - n_validation]
        train = train[train + horizon <= validation[0]]  # no label overlapping validation
        model = HistGradientBoostingRegressor(
            **self.settings, early_stopping=False, random_state=0
        )
        model.fit(self._design[train], np.log(target[train]))
        fitted = np.exp(model.predict(self._design[validation]))
        self._model = model
        self.scale = float(np.mean(target[validation] / fitted))
        self.n_obs = int(train.size)

    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        design = self._design[positions]
        bad = ~np.isfinite(design).all(axis=1)
        if bad.any():
            raise ModelError(
                f"gbm has no finite features at the origins {_first_dates(self._index[positions[bad]])}; "
                "check the return series there"
            )
        return np.exp(self._model.predict(design)) * self.scale

    def _params(self) -> dict[str, float]:
        return {
            **{key: float(value) for key, value in self.settings.items()},
            "scale": self.scale,
            "n_obs": float(self.n_obs),
        }


@register_baseline
class HARQ(Baseline):
    """HARQ (Bollerslev, Patton & Quaedvlieg 2016): HAR whose daily slope moves with sqrt(RQ).

    In levels, by OLS on the training origins whose target is realized by ``fit_end``::

        mean(RV_{t+1..t+h}) = b0 + (b_d + b_q sqrt(RQ_t)) RV_t + b_w RV_w,t + b_m RV_m,t

    i.e. the regressors ``1, RV_t, mean(RV_{t-4..t}), mean(RV_{t-21..t}),
    RV_t sqrt(RQ_t)``, with RQ the realized quarticity of day t: the more
    precisely RV_t is measured (small RQ), the more weight it gets. (The paper
    demeans sqrt(RQ) for interpretation; that changes b_d, never a forecast.)

    Insanity filter (the paper's; its replication code ``volatility_insanity_filter``):
    a forecast below the minimum or above the maximum of the daily RV in the
    estimation sample (rows dated ``<= fit_end``) is replaced by the mean of that
    RV. :attr:`n_filtered` counts the replaced forecasts of the last predict.

    Needs the quarticity ``rq`` the source provides (intraday bars, or a file
    with an ``rq`` column; ``Dataset.quarticity``): without it ``usable_baselines``
    leaves HARQ out with a note. The target should be the RV whose quarticity
    ``rq`` is (``--estimator rv5`` on bars).
    """

    kind = "harq"
    needs_quarticity: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.coefficients = np.full(5, np.nan)
        self.bounds = (math.nan, math.nan)
        self.in_sample_mean = math.nan
        self.n_obs = 0
        self.n_filtered = 0
        self._quarticity: pd.Series | None = None
        self._design = np.empty((0, 5))

    def with_quarticity(self, quarticity: pd.Series) -> HARQ:
        """Give the realized quarticity (indexed like the variance) before :meth:`fit_series`."""
        self._quarticity = _validated_series(quarticity, "quarticity", non_negative=True)
        return self

    def _fit(self, dataset: Dataset, cut: pd.Timestamp) -> None:
        if dataset.quarticity is None:
            raise ModelError(
                "harq needs the realized quarticity rq, and this dataset has none; use a source "
                "that provides it (intraday bars, or a file with an rq column) or leave harq out"
            )
        self.with_quarticity(dataset.quarticity)
        super()._fit(dataset, cut)

    def _estimate(self) -> None:
        if self._quarticity is None or not self._quarticity.index.equals(self._index):
            raise ModelError(
                "harq needs the realized quarticity on the variance's dates; call "
                "with_quarticity(rq) with a series indexed like the variance before fit_series"
            )
        variance = self._variance
        first = self._first_valid(variance)
        self._earliest = first + MONTH - 1
        root_quarticity = np.sqrt(self._quarticity.to_numpy())
        self._design = np.column_stack(
            [
                np.ones_like(variance),
                variance,
                _trailing_mean(variance, WEEK),
                _trailing_mean(variance, MONTH),
                variance * root_quarticity,
            ]
        )
        horizon = self._horizon
        target = np.full(variance.shape, np.nan)
        target[: variance.size - horizon] = _trailing_mean(variance, horizon)[horizon:]
        last_origin = self._n_fit - 1 - horizon  # target realized by fit_end
        rows = np.arange(self._earliest, last_origin + 1)
        rows = rows[np.isfinite(self._design[rows]).all(axis=1) & np.isfinite(target[rows])]
        if rows.size < MIN_HAR_ROWS:
            raise ModelError(
                f"harq needs at least {MIN_HAR_ROWS} training origins with a full {MONTH}-day "
                f"history, a quarticity and a target realized by fit_end, got {rows.size}; "
                "move fit_end later or provide more history"
            )
        coefficients, *_ = np.linalg.lstsq(self._design[rows], target[rows], rcond=None)
        self.coefficients = coefficients
        self.n_obs = int(rows.size)
        in_sample = variance[first : self._n_fit]
        in_sample = in_sample[np.isfinite(in_sample)]
        self.bounds = (float(in_sample.min()), float(in_sample.max()))
        self.in_sample_mean = float(in_sample.mean())

    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        design = self._design[positions]
        bad = ~np.isfinite(design).all(axis=1)
        if bad.any():
            raise ModelError(
                "harq has no quarticity or variance at the origins "
                f"{_first_dates(self._index[positions[bad]])}; check the source there"
            )
        raw = design @ self.coefficients
        insane = (raw < self.bounds[0]) | (raw > self.bounds[1])
        self.n_filtered = int(insane.sum())
        return np.where(insane, self.in_sample_mean, raw)

    def _params(self) -> dict[str, float]:
        const, daily, weekly, monthly, quarticity = (float(value) for value in self.coefficients)
        return {
            "const": const,
            "beta_daily": daily,
            "beta_weekly": weekly,
            "beta_monthly": monthly,
            "beta_quarticity": quarticity,
            "insanity_lower": self.bounds[0],
            "insanity_upper": self.bounds[1],
            "insanity_replacement": self.in_sample_mean,
            "n_obs": float(self.n_obs),
        }


def _unknown(name: str) -> ConfigError:
    return ConfigError(
        f"unknown baseline {name!r}; valid names are {', '.join(BASELINES)} "
        "(comma-separated, or 'all' / 'none')"
    )


def create_baseline(name: str) -> Baseline:
    """A new, unfitted baseline by registry name (see :data:`BASELINES`)."""
    try:
        return BASELINES[name]()
    except (KeyError, TypeError):
        raise _unknown(name) from None


def usable_baselines(
    names: list[str],
    has_exog: bool,
    panel_fitted: frozenset[str] | set[str] = frozenset(),
    has_quarticity: bool = False,
) -> tuple[list[str], list[str]]:
    """The baselines of ``names`` that apply, and a note for each left out.

    ``harx`` needs exogenous inputs (without them it is HAR); ``har-pooled``
    needs a fit on a panel (on one series it is HAR); ``harq`` needs the
    realized quarticity (``Dataset.quarticity``): each is left out with a note
    saying so.
    """
    kept, notes = [], []
    for name in names:
        cls = BASELINES.get(name)
        if getattr(cls, "needs_quarticity", False) and not has_quarticity:
            notes.append(
                f"{name} left out: it needs the realized quarticity rq, which only intraday "
                "bars (or a file with an rq column) provide; this source has none"
            )
        elif getattr(cls, "needs_panel", False) and name not in panel_fitted:
            notes.append(
                f"{name} left out: it is fit on a panel of tickers (evaluate --panel); on one "
                "series it would be HAR"
            )
        elif getattr(cls, "needs_exog", False) and not has_exog:
            notes.append(
                f"{name} left out: it adds the model's market/exogenous inputs to HAR, and "
                "this model has none (train with --market/--exog to compare against it)"
            )
        else:
            kept.append(name)
    return kept, notes


def parse_baselines(text: str) -> list[str]:
    """Parse a comma-separated list such as ``"har,garch"``.

    Case and spaces are ignored, duplicates dropped (first occurrence kept);
    ``"all"`` gives every baseline, ``""`` or ``"none"`` gives none.
    """
    if not isinstance(text, str):
        raise ConfigError(f"baselines must be a comma-separated string, got {text!r}")
    names: list[str] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if item in ("", "none"):
            continue
        if item == "all":
            candidates = list(BASELINES)
        elif item in BASELINES:
            candidates = [item]
        else:
            raise _unknown(raw.strip())
        names.extend(candidate for candidate in candidates if candidate not in names)
    return names


def _har_design(variance: np.ndarray) -> np.ndarray:
    """HAR regressors at every origin: 1, log v_t, log mean(v_{t-4..t}), log mean(v_{t-21..t})."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack(
            [
                np.ones_like(variance),
                np.log(variance),
                np.log(_trailing_mean(variance, WEEK)),
                np.log(_trailing_mean(variance, MONTH)),
            ]
        )


def _har_target(variance: np.ndarray, horizon: int) -> np.ndarray:
    """Log of the mean variance over t+1..t+h at every origin t (NaN where unrealized)."""
    target = np.full(variance.shape, np.nan)
    target[: variance.size - horizon] = _trailing_mean(variance, horizon)[horizon:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(target)


def _har_rows(baseline: Baseline, design: np.ndarray, name: str) -> np.ndarray:
    """Training origins: a full history, finite regressors, a target realized by fit_end."""
    last_origin = baseline._n_fit - 1 - baseline._horizon
    rows = np.arange(baseline._earliest, last_origin + 1)
    rows = rows[np.isfinite(design[rows]).all(axis=1)] if rows.size else rows
    if rows.size < MIN_HAR_ROWS:
        raise ModelError(
            f"{name} needs at least {MIN_HAR_ROWS} training origins with a full {MONTH}-day "
            f"history and a target realized by fit_end, got {max(rows.size, 0)}; "
            "move fit_end later or provide more history"
        )
    return rows


def _floored(variance: np.ndarray) -> np.ndarray:
    from forecaster.data.volatility import VARIANCE_FLOOR

    return np.maximum(variance, VARIANCE_FLOOR)  # NaN stays NaN


@register_baseline
class PooledHAR(HAR):
    """One log-HAR regression for a whole panel (Bollerslev, Hood, Huss & Pedersen, RFS 2018).

    :meth:`fit_panel` standardizes each series' log variance by the mean and
    standard deviation of its own log daily variance over its training rows
    (dated before the cut) and fits one OLS of the standardized log target on
    the standardized daily, weekly and monthly regressors over the training
    origins of every series. Mapped back, a series' HAR has the panel's slopes
    and its own intercept ``mu (1 - sum b) + sd b0``; its log-normal correction
    is the residual variance of that series' own training rows. A series the
    panel fit never saw (a zero-shot ticker) gets the panel's slopes and its own
    mean and spread before the cut, exactly like a series of the panel.

    Fit on one series without a panel (:meth:`fit`), it is that series' HAR
    with the log daily variance floored. Walk-forward refits are per series.
    """

    kind = "har-pooled"
    #: Evaluation leaves it out (with a note) unless it was fit on a panel.
    needs_panel: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.pooled: dict[str, float] | None = None

    def fresh(self) -> PooledHAR:
        """An unfitted copy that keeps the panel's slopes (to fit on one more series)."""
        copy = type(self)()
        copy.pooled = None if self.pooled is None else dict(self.pooled)
        return copy

    def fit_panel(self, datasets: dict[str, Dataset], cut: pd.Timestamp) -> PooledHAR:
        """Fit the panel's slopes on every series' origins realized before ``cut``."""
        designs, targets = [], []
        for dataset in datasets.values():
            har = HAR()
            har.fit_series(
                _floored_series(dataset.variance),
                dataset.returns,
                dataset.horizon,
                fit_end_before(dataset, cut),
            )
            variance = har._variance
            design = _har_design(variance)
            rows = _har_rows(har, design, self.kind)
            mu, sd = _log_moments(variance[: har._n_fit])
            designs.append(np.column_stack([design[rows, :1], (design[rows, 1:] - mu) / sd]))
            targets.append((_har_target(variance, dataset.horizon)[rows] - mu) / sd)
        if not designs:
            raise ModelError("har-pooled needs at least one series to fit on; received none")
        design, target = np.concatenate(designs), np.concatenate(targets)
        coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
        keys = ("z_const", "z_beta_daily", "z_beta_weekly", "z_beta_monthly")
        self.pooled = {key: float(value) for key, value in zip(keys, coefficients, strict=True)}
        self.pooled["n_series"] = float(len(designs))
        self.pooled["n_obs_panel"] = float(target.size)
        return self

    def _fit(self, dataset: Dataset, cut: pd.Timestamp) -> None:
        self.fit_series(
            _floored_series(dataset.variance),
            dataset.returns,
            dataset.horizon,
            fit_end_before(dataset, cut),
        )

    def _estimate(self) -> None:
        if self.pooled is None:
            super()._estimate()
            return
        variance = self._variance
        first = self._first_valid(variance)
        self._earliest = first + MONTH - 1
        self._design = _har_design(variance)
        rows = _har_rows(self, self._design, self.kind)
        mu, sd = _log_moments(variance[: self._n_fit])
        p = self.pooled
        slopes = np.array([p["z_beta_daily"], p["z_beta_weekly"], p["z_beta_monthly"]])
        const = mu * (1.0 - slopes.sum()) + sd * p["z_const"]
        self.coefficients = np.concatenate([[const], slopes])
        residuals = _har_target(variance, self._horizon)[rows] - self._design[rows] @ self.coefficients
        self.n_obs = int(rows.size)
        self.residual_variance = float(residuals @ residuals / rows.size)
        self.lognormal_correction = math.exp(0.5 * self.residual_variance)

    def _params(self) -> dict[str, float]:
        return {**super()._params(), **(self.pooled or {})}


def _floored_series(variance: pd.Series) -> pd.Series:
    return pd.Series(_floored(variance.to_numpy()), index=variance.index)


def _log_moments(variance: np.ndarray) -> tuple[float, float]:
    logs = np.log(variance[np.isfinite(variance)])
    sd = float(logs.std())
    return float(logs.mean()), sd if sd > 0 else 1.0


@register_baseline
class HARX(Baseline):
    """HAR with the model's exogenous inputs as extra regressors (HAR-X).

    ``log target_t = b0 + b_d log v_t + b_w log v^(5)_t + b_m log v^(22)_t + sum_k g_k x_k,t``
    where ``x_k,t`` are the dataset's exogenous inputs at the origin's close
    (the log market variance, the log VIX, ... as the LSTM reads them; see
    :mod:`forecaster.data.exog`), fit by OLS on the origins realized by
    ``fit_end`` with every input known; forecast ``exp(fitted + s2 / 2)``.
    The proxy is floored (logs). A dataset without exogenous inputs has nothing
    to add to HAR: fitting one is an error (evaluation skips ``harx`` then).
    """

    kind = "harx"
    #: Evaluation skips this baseline (with a note) for a dataset without exogenous inputs.
    needs_exog: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self._exog: np.ndarray | None = None
        self.names: list[str] = []
        self.coefficients = np.empty(0)
        self.residual_variance = math.nan
        self.n_obs = 0
        self._design = np.empty((0, 0))

    def _fit(self, dataset: Dataset, cut: pd.Timestamp) -> None:
        if dataset.exog is None or dataset.exog.shape[1] == 0:
            raise ModelError(
                "harx needs exogenous inputs (a model trained with --market or --exog); this "
                "dataset has none, so harx would be HAR: leave it out of --baselines"
            )
        self._exog = dataset.exog.to_numpy(dtype=float)
        self.names = list(dataset.exog.columns)
        self.fit_series(
            _floored_series(dataset.variance),
            dataset.returns,
            dataset.horizon,
            fit_end_before(dataset, cut),
        )

    def _estimate(self) -> None:
        if self._exog is None or len(self._exog) != len(self._variance):
            raise ModelError("harx is fit through fit(dataset, cut) with the dataset's inputs")
        variance = self._variance
        first = self._first_valid(variance)
        self._earliest = first + MONTH - 1
        self._design = np.column_stack([_har_design(variance), self._exog])
        rows = _har_rows(self, self._design, self.kind)
        response = _har_target(variance, self._horizon)[rows]
        coefficients, *_ = np.linalg.lstsq(self._design[rows], response, rcond=None)
        residuals = response - self._design[rows] @ coefficients
        self.coefficients = coefficients
        self.n_obs = int(rows.size)
        self.residual_variance = float(
            residuals @ residuals / (rows.size - self._design.shape[1])
        )

    def _forecast(self, positions: np.ndarray) -> np.ndarray:
        design = self._design[positions]
        bad = ~np.isfinite(design).all(axis=1)
        if bad.any():
            raise ModelError(
                f"harx has no finite regressors at the origins "
                f"{_first_dates(self._index[positions[bad]])}; the exogenous inputs start later"
            )
        return np.exp(design @ self.coefficients + 0.5 * self.residual_variance)

    def _params(self) -> dict[str, float]:
        names = ["const", "beta_daily", "beta_weekly", "beta_monthly"]
        names += [f"gamma_{name}" for name in self.names]
        params = {name: float(value) for name, value in zip(names, self.coefficients, strict=True)}
        return {**params, "residual_variance": self.residual_variance, "n_obs": float(self.n_obs)}
