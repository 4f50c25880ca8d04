"""The one text-table style (forecaster.tables): alignment, dashes, bold marks, Markdown."""

from __future__ import annotations

import pytest

from forecaster.tables import markdown_table, text_table


def test_text_table_aligns_names_left_figures_right_with_dashes():
    lines = text_table(["model", "QLIKE"], [["lstm", "0.38*"], ["har", "0.4004 "]])
    assert lines == [
        "model    QLIKE",
        "-----  -------",
        "lstm     0.38*",
        "har    0.4004",  # no trailing blank
    ]


def test_text_table_bold_marks_and_explicit_alignment():
    lines = text_table(["t", "h", "model"], [["SPY", "1", "v1"]], align="lrl", bold=True)
    assert lines[2] == "SPY  1  v1"
    assert text_table(["a", "b"], [["x", "1*"]], bold=True)[2] == "x  1\033[1m*\033[0m"


def test_markdown_table_bolds_marked_cells_and_right_aligns_figures():
    assert markdown_table(["model", "QLIKE"], [["lstm", "0.38*"], ["har", "0.40"]]) == [
        "| model | QLIKE |",
        "|---|---:|",
        "| lstm | **0.38** |",
        "| har | 0.40 |",
    ]


@pytest.mark.parametrize("rows,align", [([["only one"]], None), ([["a", "b"]], "lx")])
def test_ragged_rows_and_bad_alignment_are_errors(rows, align):
    with pytest.raises(ValueError):
        text_table(["a", "b"], rows, align=align)
