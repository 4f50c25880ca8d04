"""Crash recovery: champion pointers and the forecast history agree again (DESIGN.md §8).

A nightly champion move touches two stores, the pointer file and the SQLite
history, which cannot commit together. :func:`~forecaster.jobs.protocol.issue_step`
therefore writes ahead: it commits a row of ``promotions`` (the move, the
pointer as it was, the run) before moving the pointer, and the transaction that
commits the run's forecast and run rows deletes that row. A ``promotions`` row
that is still there is a run killed before its commit. :func:`reconcile`, run
at the start of every nightly run under its lock, **rolls it back**:

- if the pointer still holds that run's move, the previous pointer is put back
  byte for byte (or removed when the ticker had no champion); a pointer that
  was changed since (``forecast train``, ``forecast models promote``) is left
  alone;
- the interrupted run is recorded in ``runs`` as ``failed`` (unless it already
  is), so the next run on the same data retrains instead of skipping it;
- the intent is deleted in that same transaction.

Every step is idempotent, so a kill during recovery is recovered by the next
one. It also removes the temporaries killed saves left in the registry and the
price cache. The challenger version itself stays in the registry, as every
challenger does.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from forecaster.files import remove_stale_temporaries
from forecaster.jobs.history import ForecastHistory, now_utc
from forecaster.jobs.record import RunRecord
from forecaster.settings import Settings


def _holds_move(pointer: bytes | None, intent: dict[str, Any]) -> bool:
    """Whether the pointer file is the one the intent's run wrote."""
    if pointer is None:
        return False
    try:
        payload = json.loads(pointer)
    except (UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(payload, dict)
        and payload.get("version") == intent["version"]
        and payload.get("reason") == intent["reason"]
    )


def _roll_back(intent: dict[str, Any], registry: Any, history: ForecastHistory) -> str:
    ticker, version = intent["ticker"], intent["version"]
    run = json.loads(intent["run"])
    previous = run.get("previous_champion")
    moved = _holds_move(registry.pointer_bytes(ticker), intent)
    if moved:
        registry.restore_pointer(ticker, intent["previous_pointer"])
        what = (
            f"its champion move to {version} was rolled back "
            f"(champion: {previous or 'none, as before'})"
        )
    else:
        what = f"the champion pointer did not hold its move to {version} and was left as it is"
    note = (
        f"{ticker}: a nightly run (as of {run.get('as_of') or 'the latest data'}, written "
        f"{intent['created_at']}) was interrupted before it committed; {what}"
    )
    failed = dataclasses.replace(
        RunRecord(**{field.name: run.get(field.name) for field in dataclasses.fields(RunRecord)}),
        status="failed",
        decision=None,
        champion_version=previous,
        origin=None,
        variance=None,
        vol=None,
        error=f"interrupted before its history commit; recovered {now_utc()}: {what}",
        traceback=None,
    )
    with history.transaction() as connection:
        known = connection.execute(
            "SELECT 1 FROM runs WHERE ticker = ? AND challenger_version = ? LIMIT 1",
            (ticker, run.get("challenger_version")),
        ).fetchone()
        if known is None:
            history.insert_run(connection, failed)
        history.finish_promotion(connection, intent["id"])
    return note


def reconcile(settings: Settings) -> list[str]:
    """Roll back interrupted champion moves and remove stale temporaries.

    Call while holding the nightly lock (no run may be in flight).

    Returns
    -------
    list of str
        One line per interrupted run that was rolled back.
    """
    from forecaster.models.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    history = ForecastHistory(settings.forecasts_db)
    notes = [_roll_back(intent, registry, history) for intent in history.pending_promotions()]
    remove_stale_temporaries(settings.prices_dir)
    for ticker in registry.tickers():
        remove_stale_temporaries(registry.models_dir / ticker)
    return notes
