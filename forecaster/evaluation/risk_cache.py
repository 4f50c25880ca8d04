"""Cache of the fitted VaR/ES distribution of a saved model, so ``predict`` need not refit it.

``forecast predict`` reports VaR/ES from a ``t`` or ``fhs`` distribution fit on
the model's standardized returns before its test period
(:func:`forecaster.evaluation.risk.forecast_risk`). That fit runs the network
over every training origin and, for ``t``, a maximum-likelihood fit (and the
~0.8 s import of scipy.stats and scipy.optimize) — yet for a given model it is
a constant: it reads only the prices up to the model's cut. So its result is
kept in ``<home>/data/cache/risk/<TICKER>/<version>.<distribution>.<engine>.json``:

- the **key** it was computed for: format, package version, model version,
  ticker served, engine, distribution, horizon, the cut, and a fingerprint of the
  price rows dated up to the first test origin (every row the fit reads: the
  returns, the features, and an unseen ticker's own scaler). Prices revised
  or added after that do not change it; a revision before it, a different
  ``--start``, or another model or release does, and the fit is recomputed;
- the fit: ``n``, ``params``, and per level the standardized quantile and
  shortfall (``ReturnDistribution.quantile``/``shortfall``), so a cached run
  computes ``VaR = sqrt(h f) q`` and ``ES = sqrt(h f) e`` exactly as a cold
  run does, with no scipy import.

The engine that ran the network (``numpy`` or ``keras``, which agree to float32
rounding) is part of the key and of the file name, so a cached run gives exactly
what a cold run with the same options gives.

The file is written atomically (:func:`forecaster.files.atomic_write_bytes`)
and never written into the model's version folder (its manifest is checked on
load). It carries the SHA-256 of its content (``checksum``). On reading it is
validated: a file that is unreadable, not this format, for another key, whose
checksum does not match, with a value out of range, or that contradicts itself
is ignored and rewritten by the next cold run. Contradictions checked: a
smaller level must give a more extreme quantile and shortfall, each shortfall
must lie beyond its quantile, and for ``t`` every stored quantile and
shortfall must equal what the stored ``dof`` and ``scale`` give by the same
formulas (relative tolerance :data:`_TOLERANCE`; ``scipy.special`` only, not
the slower ``scipy.stats``). An ``fhs`` fit stores no residuals, so its
values are covered by the checksum and the ordering checks only. A cache that cannot be written (read-only home) costs speed, not
correctness. ``normal`` fits nothing and is never cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster import __version__
from forecaster.evaluation.distributions import (
    MAX_LEVEL,
    MIN_FIT_RESIDUALS,
    MIN_LEVEL,
    T_DOF_BOUNDS,
)

if TYPE_CHECKING:
    import pandas as pd

    from forecaster.data.features import Dataset

__all__ = ["CACHE_FORMAT", "FitCache", "prices_fingerprint"]

#: Version of the file layout (and of what the key covers); bump it to invalidate old files.
#: 2: the ``checksum`` of the content.
CACHE_FORMAT = 3  # 3: fits standardized with the overnight factor
#: Relative tolerance of a stored t quantile/shortfall against its recomputation.
_TOLERANCE = 1e-9
#: The params each fitted distribution has.
_PARAMS: dict[str, tuple[str, ...]] = {"t": ("dof", "scale"), "fhs": ("std",)}


def prices_fingerprint(prices: pd.DataFrame, last: pd.Timestamp | None) -> str:
    """SHA-256 of the price rows dated up to ``last`` (all rows if None): dates and every column."""
    rows = prices if last is None else prices.loc[:last]
    digest = hashlib.sha256()
    digest.update(",".join(map(str, rows.columns)).encode())
    digest.update(np.ascontiguousarray(rows.index.asi8).tobytes())
    digest.update(np.ascontiguousarray(rows.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def _finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


@dataclass(frozen=True)
class FitCache:
    """The cached fits of one model version serving one ticker on one price history.

    Build it with :meth:`for_prices`; :func:`~forecaster.evaluation.risk.forecast_risk`
    reads and writes it.
    """

    folder: Path
    version: str
    ticker: str
    engine: str
    data: str
    before: str
    horizon: int

    @classmethod
    def for_prices(
        cls,
        folder: Path,
        version: str,
        ticker: str,
        engine: str,
        prices: pd.DataFrame,
        dataset: Dataset,
        test_start: pd.Timestamp | str,
    ) -> FitCache:
        """The cache of ``version`` run by ``engine`` serving ``ticker`` on ``prices``.

        ``dataset`` is built from ``prices``.

        The fingerprint covers the price rows up to the first origin at or
        after ``test_start``: the fit's last return ends on that day.
        """
        import pandas as pd

        start = pd.Timestamp(test_start)
        first_test_row = int(dataset.origins.searchsorted(start, side="left"))
        last = dataset.origins[first_test_row] if first_test_row < len(dataset) else None
        return cls(
            folder=Path(folder),
            version=version,
            ticker=ticker,
            engine=engine,
            data=prices_fingerprint(prices, last),
            before=f"{start:%Y-%m-%d}",
            horizon=int(dataset.horizon),
        )

    def path(self, distribution: str) -> Path:
        return self.folder / self.ticker / f"{self.version}.{distribution}.{self.engine}.json"

    def key(self, distribution: str) -> dict[str, Any]:
        """What a cached fit depends on; a file whose key differs is not used."""
        return {
            "format": CACHE_FORMAT,
            "package": __version__,
            "version": self.version,
            "ticker": self.ticker,
            "engine": self.engine,
            "distribution": distribution,
            "horizon": self.horizon,
            "before": self.before,
            "data": self.data,
        }

    def read(self, distribution: str) -> dict[str, Any] | None:
        """The cached fit (``n``, ``params``, ``levels``), or None if absent, corrupt or stale."""
        try:
            entry = json.loads(self.path(distribution).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != self.key(distribution):
            return None
        if entry.get("checksum") != _checksum(entry):
            return None
        if not (_valid(entry, distribution) and _consistent(entry, distribution)):
            return None
        return entry

    def write(
        self, distribution: str, n: int, params: dict[str, float], levels: dict[str, Any]
    ) -> None:
        """Store a fit (atomically); ``levels`` maps level keys to ``quantile``/``shortfall``."""
        from forecaster.files import atomic_write_bytes

        entry = {"key": self.key(distribution), "n": n, "params": params, "levels": levels}
        entry["checksum"] = _checksum(entry)
        try:
            payload = (json.dumps(entry, indent=1, allow_nan=False) + "\n").encode()
        except ValueError:  # a non-finite number is never stored
            return
        with contextlib.suppress(OSError):  # a cache that cannot be written costs only speed
            atomic_write_bytes(self.path(distribution), payload)


def _valid(entry: dict[str, Any], distribution: str) -> bool:
    """Whether a cached entry has the shape and ranges a fit of ``distribution`` has."""
    n, params, levels = entry.get("n"), entry.get("params"), entry.get("levels")
    if isinstance(n, bool) or not isinstance(n, int) or n < MIN_FIT_RESIDUALS:
        return False
    names = _PARAMS.get(distribution)
    if names is None or not isinstance(params, dict) or sorted(params) != sorted(names):
        return False
    if not all(_finite(params[name]) and params[name] > 0 for name in names):
        return False
    if distribution == "t" and not T_DOF_BOUNDS[0] <= params["dof"] <= T_DOF_BOUNDS[1]:
        return False
    if not isinstance(levels, dict) or not levels:
        return False
    for key, value in levels.items():
        try:
            alpha = float(key)
        except ValueError:
            return False
        if not (MIN_LEVEL <= alpha < MAX_LEVEL and isinstance(value, dict)):
            return False
        quantile, shortfall = value.get("quantile"), value.get("shortfall")
        if not (_finite(quantile) and _finite(shortfall) and shortfall <= quantile < 0):
            return False
    return True


def _checksum(entry: dict[str, Any]) -> str:
    """SHA-256 of an entry's content (every field but ``checksum``), in a canonical form."""
    content = {name: entry.get(name) for name in ("key", "n", "params", "levels")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _consistent(entry: dict[str, Any], distribution: str) -> bool:
    """Whether a valid entry agrees with itself: ordered levels and, for t, its own params."""
    levels = sorted((float(key), value) for key, value in entry["levels"].items())
    for (_, lower), (_, higher) in zip(levels, levels[1:], strict=False):
        # a smaller level (first) is further in the tail: a lower quantile and shortfall
        if not (lower["quantile"] < higher["quantile"] and lower["shortfall"] <= higher["shortfall"]):
            return False
    if distribution != "t":
        return True
    from scipy import special

    dof, scale = entry["params"]["dof"], entry["params"]["scale"]
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    for alpha, value in levels:
        # as ReturnDistribution.quantile/shortfall (scipy.stats.t.ppf is special.stdtrit)
        q = float(special.stdtrit(dof, alpha))
        density = math.exp(log_norm - (dof + 1) / 2 * math.log1p(q * q / dof))
        shortfall = -scale * (dof + q**2) / (dof - 1) * density / alpha
        if not (_close(value["quantile"], scale * q) and _close(value["shortfall"], shortfall)):
            return False
    return True


def _close(stored: float, computed: float) -> bool:
    return math.isfinite(computed) and abs(stored - computed) <= _TOLERANCE * abs(computed)
