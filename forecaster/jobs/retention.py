"""Registry retention: delete old losing challengers, never a version still needed.

Every nightly run saves a challenger per ticker, so the registry grows by one
model per ticker per night. :func:`prune` keeps, per ticker:

- the **champion** (``champion.json``);
- the **previous champion**, the one the current champion replaced: the
  pointer's ``previous`` field, and the ``previous_champion`` of the nightly run
  that promoted the current champion (both, when they differ) — the version to
  go back to with ``forecast models promote``;
- every version that issued a forecast **still being scored**: a row of the
  forecast history whose realized variance is not in the price cache yet;
- the **current universal model** of ``forecast nightly --universal``
  (``models/universal.json``);
- the ``keep`` newest of the other versions (by version id, which starts with
  the UTC time it was saved; ``keep=0`` keeps none of them).

Everything else is deleted, oldest first, each version by one atomic rename
out of the registry followed by its removal
(:meth:`~forecaster.models.registry.ModelRegistry.delete`): a kill at any
point leaves whole versions (files and manifest together) and at most one
hidden ``.tmp-*`` folder, removed by the next save or nightly run. Callers hold
the nightly lock, so no run is saving or promoting meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from forecaster.errors import ConfigError, DataError
from forecaster.files import remove_stale_temporaries
from forecaster.jobs.history import ForecastHistory, load_history
from forecaster.settings import Settings

#: Versions kept per ticker by ``forecast nightly`` besides the protected ones (--keep).
DEFAULT_NIGHTLY_KEEP = 5


@dataclass
class TickerPrune:
    """What pruning one ticker deleted (or, in a dry run, would delete) and kept."""

    ticker: str
    keep: int
    dry_run: bool
    deleted: list[dict[str, Any]] = field(default_factory=list)  # {"version", "bytes"}
    protected: dict[str, list[str]] = field(default_factory=dict)  # version -> reasons
    kept: list[str] = field(default_factory=list)  # the `keep` newest unprotected

    @property
    def bytes_freed(self) -> int:
        return sum(entry["bytes"] for entry in self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticker": self.ticker,
            "keep": self.keep,
            "dry_run": self.dry_run,
            "deleted": list(self.deleted),
            "bytes_freed": self.bytes_freed,
            "protected": {version: list(reasons) for version, reasons in self.protected.items()},
            "kept": list(self.kept),
        }


def check_keep(keep: Any) -> int:
    """``keep`` as a non-negative int, else a ConfigError saying what is expected."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ConfigError(
            f"--keep must be a whole number of versions >= 0, received {keep!r}; e.g. --keep 5 "
            "keeps the 5 newest versions besides the protected ones"
        )
    return keep


def protected_versions(
    ticker: str,
    registry: Any,
    history: ForecastHistory,
    pending: Iterable[str],
    universal: str | None = None,
) -> dict[str, list[str]]:
    """Versions of ``ticker`` that pruning must keep, each with why.

    ``pending`` lists the versions whose issued forecasts are not yet scored;
    ``universal`` is the current universal model's version
    (``models/universal.json``), which tonight's refit-less nights still serve.
    """
    reasons: dict[str, list[str]] = {}

    def protect(version: str | None, why: str) -> None:
        if version is not None and why not in reasons.setdefault(version, []):
            reasons[version].append(why)

    # A corrupt pointer raises: pruning must know the champion before deleting anything.
    champion = registry.champion_id(ticker)
    protect(champion, "champion")
    protect(registry.previous_champion_id(ticker), "previous champion")
    if champion is not None:
        for run in reversed(history.runs(ticker)):
            if run["status"] == "ok" and run["champion_version"] == champion:
                if run["decision"] == "promoted" and run["previous_champion"] != champion:
                    protect(run["previous_champion"], "previous champion")
                break
    for version in pending:
        protect(version, "forecast pending")
    if universal is not None:
        protect(universal, "current universal model")
    return reasons


def _pending_versions(settings: Settings, ticker: str) -> set[str]:
    """Versions whose forecasts of ``ticker`` are issued but not yet realized in the cache."""
    return {
        row["model_version"]
        for entry in load_history(settings.forecasts_db, settings.prices_dir, ticker)
        for row in entry.forecasts
        if row["realized_var"] is None
    }


def plan_ticker(settings: Settings, ticker: str, keep: int) -> TickerPrune:
    """What pruning ``ticker`` would delete (``dry_run=True``); nothing is touched.

    Raises
    ------
    RegistryError
        The ticker's champion pointer is corrupt: the champion is unknown.
    """
    from forecaster.models.registry import ModelRegistry, folder_bytes

    keep = check_keep(keep)
    registry = ModelRegistry(settings.models_dir)
    history = ForecastHistory(settings.forecasts_db)
    plan = TickerPrune(ticker=ticker, keep=keep, dry_run=True)
    versions = registry.version_ids(ticker)  # oldest first
    if not versions:
        return plan
    from forecaster.jobs.universe import read_pointer

    try:
        pointer = read_pointer(settings)
    except DataError:
        pointer = None  # a corrupt pointer protects nothing; the next night refits
    protected = protected_versions(
        ticker,
        registry,
        history,
        _pending_versions(settings, ticker),
        pointer.version if pointer is not None else None,
    )
    plan.protected = {version: protected[version] for version in versions if version in protected}
    others = [version for version in versions if version not in protected]
    doomed = others[: max(0, len(others) - keep)]
    plan.kept = others[len(doomed) :]
    plan.deleted = [
        {"version": version, "bytes": folder_bytes(registry.models_dir / ticker / version)}
        for version in doomed
    ]
    return plan


def apply_plan(settings: Settings, plan: TickerPrune) -> TickerPrune:
    """Delete the versions of a plan, oldest first; the outcome with the bytes freed."""
    from forecaster.models.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    remove_stale_temporaries(registry.models_dir / plan.ticker)  # e.g. what a killed prune left
    outcome = TickerPrune(
        ticker=plan.ticker, keep=plan.keep, dry_run=False, protected=plan.protected, kept=plan.kept
    )
    for entry in plan.deleted:
        size = registry.delete(plan.ticker, entry["version"])
        outcome.deleted.append({"version": entry["version"], "bytes": size})
        # Its cached VaR/ES fits (one folder per ticker served, so a pooled model's too).
        for stale in settings.risk_cache_dir.glob(f"*/{entry['version']}.*.json"):
            stale.unlink(missing_ok=True)
    return outcome


def prune_ticker(settings: Settings, ticker: str, keep: int, dry_run: bool = False) -> TickerPrune:
    """Prune one ticker's versions (see the module docstring); hold the nightly lock."""
    plan = plan_ticker(settings, ticker, keep)
    return plan if dry_run else apply_plan(settings, plan)


def prune(
    settings: Settings, tickers: Iterable[str] | None, keep: int, dry_run: bool = False
) -> list[TickerPrune]:
    """Prune every ticker of ``tickers`` (None: every ticker in the registry).

    Every ticker is planned before anything is deleted, so an error (a corrupt
    champion pointer) deletes nothing. Hold the nightly lock
    (:func:`forecaster.jobs.lock.nightly_lock`) around it.
    """
    from forecaster.models.registry import ModelRegistry

    keep = check_keep(keep)
    names = ModelRegistry(settings.models_dir).tickers() if tickers is None else list(tickers)
    plans = [plan_ticker(settings, name, keep) for name in names]
    return plans if dry_run else [apply_plan(settings, plan) for plan in plans]


def prune_after_run(
    settings: Settings, records: Iterable[dict[str, Any]], keep: int | None
) -> list[dict[str, Any]]:
    """The nightly job's last step: prune the tickers of this run that did not fail.

    Called once by :func:`forecaster.jobs.nightly.run_nightly` while it still holds
    the nightly lock; ``keep=None`` prunes nothing. A failed ticker is left as it
    is (someone will look at it). A ticker whose pruning fails (e.g. a corrupt
    champion pointer) gets an entry with ``error`` and no deletion, and never
    fails the run: its forecast was already issued.

    Returns
    -------
    list of dict
        :meth:`TickerPrune.to_dict` per pruned ticker, or ``{"ticker", "error"}``.
    """
    from forecaster.errors import ForecasterError

    if keep is None:
        return []
    keep = check_keep(keep)
    outcomes: list[dict[str, Any]] = []
    for record in records:
        if record["status"] == "failed":
            continue
        try:
            outcomes.append(prune_ticker(settings, record["ticker"], keep).to_dict())
        except (ForecasterError, OSError) as exc:
            outcomes.append({"ticker": record["ticker"], "error": str(exc)})
    return outcomes
