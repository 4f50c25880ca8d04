"""``forecast report``: the morning report, one self-contained HTML page per night.

Importing this module imports neither pandas nor TensorFlow.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.options import DATE, keep_option
from forecaster.cli.output import check_destinations, shown_path, write_files


def default_path(app: AppContext, as_of: str) -> Path:
    """``<home>/reports/<as-of>.html``."""
    return Path(app.settings.home) / "reports" / f"{as_of}.html"


def check_reports_folder(folder: Path) -> None:
    """A ConfigError naming ``folder`` unless a file can be created there (or it can be made).

    A real probe (a temporary file, removed at once), not a permission-bit test:
    it holds for root and for read-only or immutable file systems alike.
    """
    import tempfile

    from forecaster.errors import ConfigError

    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent  # the folder is created at the end, when the page is written
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot write the report into {folder} ({error.strerror or error}): forecast "
            f"report needs write access to that folder of the data home; make it writable by "
            f"this user, or pass --html FILE to write the page elsewhere"
        ) from None


#: A night's page under ``reports/``: the only files report pruning ever deletes.
_PAGE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}\.html$")


def prune_reports(folder: Path, keep: int, written: Path | None = None) -> list[Path]:
    """Delete all but the ``keep`` newest night pages (``YYYY-MM-DD.html``) in ``folder``.

    Newest means the latest night in the name; ``written`` (the page just
    made) is never deleted. Other files in the folder are never touched.
    Returns the deleted paths.
    """
    if not folder.is_dir():
        return []
    pages = sorted((p for p in folder.iterdir() if _PAGE_NAME.match(p.name)), reverse=True)
    doomed = [page for page in pages[keep:] if page != written]
    deleted = []
    for page in doomed:
        try:
            page.unlink()
        except FileNotFoundError:
            continue
        deleted.append(page)
    return deleted


def write_report(
    app: AppContext,
    as_of: str | None = None,
    html_path: str | None = None,
    keep: int | None = None,
) -> None:
    """Build and write the report, and say where (``wrote PATH`` on stderr).

    ``html_path`` follows the output policy of every ``-o`` (atomic replace,
    checked before any work); the default under the home is written
    atomically too, its ``reports/`` folder created if needed. With ``keep``,
    the home's ``reports/`` then holds at most that many night pages
    (:func:`prune_reports`; what went is said on stderr).
    """
    from forecaster.data.loader import parse_date
    from forecaster.evaluation.html_report import render_html
    from forecaster.files import atomic_write_bytes
    from forecaster.jobs.morning import build_report

    if as_of is not None:
        as_of = f"{parse_date(as_of, '--as-of'):%Y-%m-%d}"
    if html_path is not None:
        check_destinations(html_path)
    else:
        check_reports_folder(Path(app.settings.home) / "reports")
    payload = build_report(app.settings, as_of)
    if payload.get("stale"):
        stale = payload["stale"]
        click.echo(
            f"warning: the forecast history is stale: its last night is {stale['last_night']}, "
            f"{stale['weekdays']} weekdays before --as-of {stale['as_of']}; the page says so",
            err=True,
        )
    page = render_html(payload).encode("utf-8")
    if html_path is not None:
        write_files([(html_path, page)])
        return
    path = default_path(app, payload["as_of"])
    atomic_write_bytes(path, page)
    click.echo(f"wrote {shown_path(path)}", err=True)
    if keep is not None:
        deleted = prune_reports(path.parent, keep, written=path)
        if deleted:
            names = ", ".join(p.name for p in deleted[:3]) + (" ..." if len(deleted) > 3 else "")
            kept = f"the {keep} newest" if keep else "only the page just written"
            click.echo(
                f"retention: deleted {len(deleted)} older report page(s) ({names}); "
                f"reports/ keeps {kept}",
                err=True,
            )


@click.command()
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Write the page here (default: reports/<as-of>.html under the home).",
)
@click.option(
    "--as-of", type=DATE, help="The night to report (YYYY-MM-DD; default: the latest)."
)
@keep_option(
    "Then delete all but the N newest night pages (YYYY-MM-DD.html) in the home's reports/ "
    "folder (never other files, never the page just written: 0 keeps only that one).",
)
@pass_app
def report(app: AppContext, html_path, as_of, keep) -> None:
    """Write the morning report: one self-contained HTML page for a night.

    From the forecast history and the model registry: a summary of every
    ticker (latest forecast vol and VaR/ES, change since the previous night,
    live QLIKE against HAR over the last 20/60 scored days, regime, the last
    nightly decision and why), the tickers that failed in their latest run at
    the top, and per ticker forecast vs realized vol with high-vol days
    shaded, the running bias on high-vol days and the champion lineage.
    Scores are those of `forecast history --score`. The file needs no server
    or network (charts are inline SVG).

    \b
    Example:
      forecast report
      forecast report --as-of 2018-02-09 --html morning.html
      forecast nightly --tickers SPY,QQQ --report
    """
    if keep is not None and html_path is not None:
        from forecaster.errors import ConfigError

        raise ConfigError(
            "--keep prunes the home's reports/ folder; it cannot be combined with --html FILE "
            "(drop one of them)"
        )
    write_report(app, as_of, html_path, keep)
