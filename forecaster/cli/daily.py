"""``forecast realized --daily`` and ``--bars``: one row per day instead of a windowed vol.

``--daily`` on the OHLC sources prints the chosen estimator's daily variance;
``--bars PATH`` reads intraday bars (:mod:`forecaster.data.intraday`) and prints
every daily measure, the open-to-close and overnight returns, ``partial`` and
``bars``. Kept apart from :mod:`forecaster.cli.data` so that command stays small.
Imports neither TensorFlow nor anything of the model layer.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import click

from forecaster.cli.options import bars_label, given

if TYPE_CHECKING:
    import pandas as pd

    from forecaster.data.intraday import DailyMeasures
    from forecaster.data.loader import PriceData

#: --daily: the option `realized` takes for daily rows (--bars and --tz are price options).
daily_option = click.option(
    "--daily",
    is_flag=True,
    help="One row per day: the --estimator's daily variance (with --bars: every measure; "
    "--bars implies --daily).",
)


def check_daily_options(bars_path: str | None, tz: str | None, csv_path: str | None) -> None:
    """Refuse option combinations --bars cannot honour (each a one-line ConfigError)."""
    from forecaster.errors import ConfigError

    if bars_path is None:
        if tz is not None:
            raise ConfigError(
                "--tz is the time zone of --bars timestamps and was given without --bars; "
                "drop --tz, or add --bars PATH"
            )
        return
    if csv_path is not None:
        raise ConfigError(
            "--bars and --csv both name the data to read; pass one (--bars for intraday "
            "bars, --csv for daily OHLC)"
        )
    ctx = click.get_current_context()
    if given("source") and ctx.params.get("source") not in ("auto", "bars"):
        raise ConfigError(
            f"--bars reads its own file and was given with --source {ctx.params['source']}; "
            "drop --source"
        )
    for name, option in (("estimator", "--estimator"), ("window", "--window")):
        if given(name):
            raise ConfigError(
                f"{option} applies to daily OHLC prices, not to --bars (which prints every "
                f"intraday measure per day); drop {option}"
            )


def realized_bars(
    ticker: str,
    bars_path: str,
    tz: str | None,
    start: str | None,
    end: str | None,
    fmt: str,
    last: int | None,
) -> str:
    """Read the bars, compute the daily measures, render them (notes go to stderr)."""
    from forecaster.data.intraday import daily_measures, read_bars
    from forecaster.data.loader import parse_date

    label = bars_label(ticker, bars_path)
    first, final = parse_date(start, "--start"), parse_date(end, "--end")
    daily = daily_measures(read_bars(bars_path, tz=tz))
    frame = _window(daily.frame, first, final, f"bars file {bars_path!r}")
    if last is not None:
        frame = frame.iloc[-last:]
    if daily.outside_session:
        click.echo(
            f"note: {daily.outside_session} bars outside the 09:30-16:00 {daily.tz} session "
            "ignored",
            err=True,
        )
    partial = int(frame["partial"].sum())
    if partial:
        click.echo(
            f"note: {partial} of {len(frame)} days have fewer than {daily.expected_bars} bars: "
            "partial=true, measures from the bars present (not scaled); never score them as "
            "full days",
            err=True,
        )
    return render_bars(frame, daily, label, bars_path, fmt)


def _window(frame: pd.DataFrame, start, end, origin: str) -> pd.DataFrame:
    from forecaster.errors import ConfigError, DataError

    if start is not None and end is not None and start > end:
        raise ConfigError(f"--start {start:%Y-%m-%d} is after --end {end:%Y-%m-%d}; swap them")
    selected = frame.loc[start:end]
    if selected.empty:
        wanted = f"{start:%Y-%m-%d}" if start is not None else "the beginning"
        wanted += f" to {end:%Y-%m-%d}" if end is not None else " onwards"
        raise DataError(
            f"{origin}: no days from {wanted}; the bars cover {frame.index[0]:%Y-%m-%d} to "
            f"{frame.index[-1]:%Y-%m-%d}; choose dates inside that range"
        )
    return selected


def _cell(value: Any) -> Any:
    """A JSON value: NaN -> None, numpy scalars -> Python."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value


def render_bars(
    frame: pd.DataFrame, daily: DailyMeasures, label: str, bars_path: str, fmt: str
) -> str:
    """The daily measures as CSV, JSON or a table ending with a one-line summary."""
    from forecaster.data.intraday import DAILY_COLUMNS, MEASURES, target_measure
    from forecaster.units import to_vol

    dates = frame.index.strftime("%Y-%m-%d")
    if fmt == "csv":
        lines = [",".join(("date", *DAILY_COLUMNS))]
        for date, row in zip(dates, frame.itertuples(index=False), strict=True):
            cells = [("" if math.isnan(v) else f"{v:.12g}") for v in row[: len(DAILY_COLUMNS) - 2]]
            cells += ["true" if row[-2] else "false", str(int(row[-1]))]
            lines.append(",".join((date, *cells)))
        return "\n".join(lines) + "\n"
    if fmt == "json":
        payload = {
            "ticker": label,
            "source": "bars",
            "path": bars_path,
            "spacing_minutes": daily.spacing,
            "tz": daily.tz,
            "expected_bars": daily.expected_bars,
            "columns": list(DAILY_COLUMNS),
            "series": [
                {"date": date, **{c: _cell(v) for c, v in zip(DAILY_COLUMNS, row, strict=True)}}
                for date, row in zip(dates, frame.itertuples(index=False), strict=True)
            ],
        }
        return json.dumps(payload, indent=2) + "\n"
    header = f"{'date':<10}  " + "  ".join(f"{c:>10}" for c in MEASURES)
    header += f"  {'open-to-close':>13}  {'overnight':>9}  {'partial':>7}  {'bars':>4}"
    lines = [header]
    for date, row in zip(dates, frame.itertuples(index=False), strict=True):
        values = "  ".join(f"{v:>10.4e}" for v in row[: len(MEASURES)])
        oc, overnight = row[len(MEASURES)], row[len(MEASURES) + 1]
        shown_overnight = "-" if math.isnan(overnight) else f"{overnight:+.3%}"
        lines.append(
            f"{date:<10}  {values}  {oc:>+13.3%}  {shown_overnight:>9}  "
            f"{'yes' if row[-2] else 'no':>7}  {row[-1]:>4}"
        )
    full = target_measure(frame, "rv5").dropna()
    summary = (
        f"{label} bars ({daily.spacing}-minute, {daily.tz}): {len(frame)} days "
        f"({dates[0]} to {dates[-1]}), {len(full)} full ({daily.expected_bars} bars), "
        f"{len(frame) - len(full)} partial"
    )
    if len(full):
        summary += (
            f"; full days: mean rv5 {full.mean():.3e} (annualized vol "
            f"{float(to_vol(full.mean())):.2%})"
        )
    lines.append(summary)
    return "\n".join(lines) + "\n"


def realized_daily(data: PriceData, estimator: str, window: int, fmt: str, last: int | None):
    """The chosen estimator's daily variance per day, rendered (OHLC sources)."""
    from forecaster.data.volatility import daily_variance
    from forecaster.errors import DataError
    from forecaster.units import to_vol

    result = daily_variance(data.prices, estimator, window)
    variance = result.variance.dropna()
    if last is not None:
        variance = variance.iloc[-last:]
    if variance.empty:
        raise DataError(
            f"{data.ticker}: {len(data.prices)} rows give no daily {estimator} variance; "
            "fetch a longer history or lower --window"
        )
    if result.n_floored:
        click.echo(
            f"note: {result.n_floored} daily {estimator} values clipped at the floor 1e-10",
            err=True,
        )
    dates = variance.index.strftime("%Y-%m-%d")
    rows = list(zip(dates, variance.to_numpy(), strict=True))
    if fmt == "csv":
        return "\n".join([f"date,{estimator}", *(f"{d},{v:.12g}" for d, v in rows)]) + "\n"
    if fmt == "json":
        payload = {
            "ticker": data.ticker,
            "estimator": estimator,
            "window": result.window,
            "source": data.source,
            "description": data.description,
            "series": [{"date": d, estimator: float(v)} for d, v in rows],
        }
        return json.dumps(payload, indent=2) + "\n"
    lines = [f"{'date':<10}  {estimator:>14}"]
    lines += [f"{d:<10}  {v:>14.6e}" for d, v in rows]
    mean = float(variance.mean())
    lines.append(
        f"{data.ticker} {estimator} daily variance over {len(variance)} days ({dates[0]} to "
        f"{dates[-1]}, {data.source}): mean {mean:.3e} (annualized vol {float(to_vol(mean)):.2%})"
    )
    return "\n".join(lines) + "\n"
