"""``forecast report``: the morning report, one self-contained HTML page per night.

Importing this module imports neither pandas, TensorFlow nor Plotly.
"""

from __future__ import annotations

from pathlib import Path

import click

from forecaster.cli.app import AppContext, pass_app
from forecaster.cli.options import DATE
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


def write_report(app: AppContext, as_of: str | None = None, html_path: str | None = None) -> None:
    """Build and write the report, and say where (``wrote PATH`` on stderr).

    ``html_path`` follows the output policy of every ``-o`` (atomic replace,
    checked before any work); the default under the home is written
    atomically too, its ``reports/`` folder created if needed.
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
@pass_app
def report(app: AppContext, html_path, as_of) -> None:
    """Write the morning report: one self-contained HTML page for a night.

    From the forecast history and the model registry: a summary of every
    ticker (latest forecast vol and VaR/ES, change since the previous night,
    live QLIKE against HAR over the last 20/60 scored days, regime, the last
    nightly decision and why), the tickers that failed in their latest run at
    the top, and per ticker forecast vs realized vol with high-vol days
    shaded, the running bias on high-vol days and the champion lineage.
    Scores are those of `forecast history --score`. The file needs no server
    or network (the chart library is inside it).

    \b
    Example:
      forecast report
      forecast report --as-of 2018-02-09 --html morning.html
      forecast nightly --tickers SPY,QQQ --report
    """
    write_report(app, as_of, html_path)
