"""The project's one text-table style: every report table is drawn here.

Two renderings of the same rows (header row, then body rows, cells already
formatted as text):

- :func:`text_table`: fixed width for a terminal. The first column (a name) is
  left-aligned, the others (figures) right-aligned; two spaces between
  columns; a row of dashes under the header. A cell may end in ``*`` to mark
  the best of its column, which ``bold`` turns into bold on a terminal.
- :func:`markdown_table`: GitHub-flavoured Markdown with the same alignment;
  a cell ending in ``*`` becomes bold.

Ground layer: no third-party import.
"""

from __future__ import annotations

from collections.abc import Sequence

_BOLD_STAR = "\033[1m*\033[0m"


def text_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    align: str | None = None,
    bold: bool = False,
) -> list[str]:
    """The table as lines of fixed width (header, dashes, one line per row).

    ``align`` is one letter per column, ``l`` or ``r`` (default: the first
    column left, the others right). Lines carry no trailing blanks.
    """
    if any(len(row) != len(headers) for row in rows):
        raise ValueError(f"every row needs {len(headers)} cells, one per header")
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers) or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one of l/r per column ({len(headers)}), got {align!r}")
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) if side == "l" else str(cell).rjust(width)
            for cell, width, side in zip(cells, widths, align, strict=True)
        ).rstrip()

    body = [line(row) for row in rows]
    if bold:
        body = [text.replace("*", _BOLD_STAR) for text in body]
    return [line(headers), line(["-" * width for width in widths]), *body]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The table as Markdown lines; a cell ending in ``*`` is set in bold instead."""
    if any(len(row) != len(headers) for row in rows):
        raise ValueError(f"every row needs {len(headers)} cells, one per header")

    def cell(text: str) -> str:
        text = str(text)
        return f"**{text[:-1]}**" if text.endswith("*") else text

    return [
        "| " + " | ".join(headers) + " |",
        "|---|" + "---:|" * (len(headers) - 1),
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows),
    ]
