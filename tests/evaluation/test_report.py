"""Report renderers: the Diebold–Mariano column names the summary's reference model."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from forecaster.evaluation.report import render_markdown, render_table


def scores(qlike: float, bias: float) -> dict[str, Any]:
    return {
        "qlike": qlike,
        "mse": 1.5e-8,
        "mae_vol": 0.031,
        "bias": bias,
        "bias_low": bias + 0.01,
        "bias_high_ex_ante": bias - 0.02,
        "bias_high_ex_post": bias - 0.05,
        "mz": {"intercept": 1e-5, "slope": 0.9, "r2": 0.41, "se_intercept": 1e-6, "se_slope": 0.1},
    }


@pytest.fixture
def summary() -> dict[str, Any]:
    """A summary in the shape of backtest.summarize, with HAR as the (implicit) reference."""
    return {
        "ticker": "SPY",
        "model_version": "20240101T000000Z-abc",
        "init": "encoder",
        "horizon": 1,
        "estimator": "garman-klass",
        "test_start": "2015-01-02",
        "test_end": "2018-12-31",
        "n": 1006,
        "mode": "held-out",
        "refit_every": None,
        "regime": {
            "quantile": 0.8,
            "threshold_ex_ante_vol": 0.2,
            "threshold_ex_post_vol": 0.21,
            "n_high_ex_ante": 150,
            "n_high_ex_post": 160,
        },
        "models": {
            "lstm": scores(0.30, -0.010),
            "har": scores(0.32, -0.020),
            "ewma": scores(0.35, 0.015),
        },
        "diebold_mariano": {
            "lstm": {"stat": -2.5, "p_value": 0.0126},
            "ewma": {"stat": 1.75, "p_value": 0.0807},
        },
        "model_confidence_set": None,
        "notes": [],
    }


def with_ewma_reference(summary: dict[str, Any]) -> dict[str, Any]:
    ewma = copy.deepcopy(summary)
    ewma["reference"] = "ewma"
    ewma["diebold_mariano"] = {
        "lstm": {"stat": -3.25, "p_value": 0.0012},
        "har": {"stat": -1.5, "p_value": 0.1338},
    }
    return ewma


def table_rows(text: str) -> dict[str, str]:
    """Last cell (the DM column) of each model row of a fixed-width table."""
    rows = {}
    for line in text.splitlines():
        first = line.split(" ", 1)[0]
        if first in ("lstm", "har", "ewma"):
            rows[first] = line.split("  ")[-1].strip()
    return rows


def markdown_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] in ("lstm", "har", "ewma"):
            rows[cells[0]] = cells[-1]
    return rows


def test_default_reference_is_har(summary):
    table = render_table(summary)
    assert "DM vs HAR (p)" in table and "DM < 0: lower QLIKE than HAR." in table
    assert table_rows(table) == {
        "lstm": "-2.50 (0.013)",
        "har": "reference",
        "ewma": "+1.75 (0.081)",
    }
    markdown = render_markdown(summary)
    assert markdown.splitlines()[4].endswith("| MZ R2 | DM vs HAR (p) |")
    assert markdown_rows(markdown) == {
        "lstm": "-2.50 (0.013)",
        "har": "reference",
        "ewma": "+1.75 (0.081)",
    }


def test_explicit_har_reference_renders_like_the_default(summary):
    explicit = {**summary, "reference": "har"}
    assert render_table(explicit) == render_table(summary)
    assert render_markdown(explicit) == render_markdown(summary)


def test_reference_from_the_summary_names_the_dm_column(summary):
    ewma = with_ewma_reference(summary)
    table = render_table(ewma)
    assert "DM vs EWMA (p)" in table and "DM < 0: lower QLIKE than EWMA." in table
    assert "HAR" not in table
    assert table_rows(table) == {
        "lstm": "-3.25 (0.001)",
        "har": "-1.50 (0.134)",
        "ewma": "reference",
    }
    markdown = render_markdown(ewma)
    assert "| DM vs EWMA (p) |" in markdown and "HAR" not in markdown
    assert markdown_rows(markdown) == {
        "lstm": "-3.25 (0.001)",
        "har": "-1.50 (0.134)",
        "ewma": "reference",
    }
