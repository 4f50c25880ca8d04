"""The record of one ticker's nightly run: one definition for the report and the history.

:class:`RunRecord` lists the run's fields once, with their types. Its field
order is the order of the record's dict form (the nightly report and its JSON);
the fields stored in the history's ``runs`` table carry their column position
there, which existing ``forecasts.sqlite`` files fix (:func:`stored_fields`).
The table's SQL and ``RUN_COLUMNS`` are derived from it in
:mod:`forecaster.jobs.history`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "unchanged", "failed"]
Decision = Literal["first", "promoted", "kept"]


def _column(position: int, **options: Any) -> Any:
    """A field stored in the ``runs`` table as its ``position``-th column (after ``id``)."""
    options.setdefault("default", None)
    return dataclasses.field(metadata={"column": position}, **options)


@dataclass
class RunRecord:
    """One ticker's nightly run, filled step by step (DESIGN.md §8).

    ``status`` is ``ok``, ``unchanged`` (this data was already processed: the
    outcome fields repeat that run's) or ``failed`` (with ``error``, and
    ``traceback`` for an unexpected exception). Dates are ``YYYY-MM-DD`` text;
    ``variance`` is the daily variance forecast for ``origin`` + ``horizon``
    days and ``vol`` its annualized volatility; ``risk`` its VaR and ES
    (``{"distribution", "levels", "reason"}``, stored in the history's
    ``forecast_risk`` table). Fields without a column (``source``, ``rows``,
    ``rows_added``, ``champion_saw_window``, ``traceback``, ``risk``, ``worker``:
    the Dask worker that trained the challenger, None in-process) appear in the
    report only. ``dm_stat``/``dm_pvalue`` are the promotion test's statistic and
    one-sided p-value (None when no test ran) and ``decision_reason`` says why
    the champion was kept or replaced.
    """

    ticker: str = _column(1, default=dataclasses.MISSING)
    status: Status = _column(5, default="failed")
    decision: Decision | None = _column(6)
    as_of: str | None = _column(2)
    source: str | None = None
    data_end: str | None = _column(3)
    rows: int | None = None
    rows_added: int | None = None
    fingerprint: str | None = _column(4)
    previous_champion: str | None = _column(9)
    champion_version: str | None = _column(8)
    challenger_version: str | None = _column(7)
    challenger_qlike: float | None = _column(10)
    champion_qlike: float | None = _column(11)
    challenger_bias: float | None = _column(12)
    champion_bias: float | None = _column(13)
    champion_saw_window: bool | None = None
    window_start: str | None = _column(14)
    window_end: str | None = _column(15)
    window_rows: int | None = _column(16)
    origin: str | None = _column(18)
    horizon: int | None = _column(17)
    variance: float | None = _column(19)
    vol: float | None = _column(20)
    error: str | None = _column(21)
    traceback: str | None = None
    seconds: float | None = _column(22)
    risk: dict[str, Any] | None = None
    worker: str | None = None
    dm_stat: float | None = _column(23)
    dm_pvalue: float | None = _column(24)
    decision_reason: str | None = _column(25)

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, in field order (the report's and the CLI's form)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def stored_fields() -> list[tuple[str, Any]]:
    """``(name, type)`` of the fields stored in ``runs``, in the table's column order."""
    hints = typing.get_type_hints(RunRecord)
    stored = [field for field in dataclasses.fields(RunRecord) if "column" in field.metadata]
    stored.sort(key=lambda field: field.metadata["column"])
    return [(field.name, hints[field.name]) for field in stored]
