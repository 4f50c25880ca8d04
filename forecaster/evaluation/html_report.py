"""The morning report as one self-contained HTML page (no server, network or CDN).

:func:`render_html` turns the payload of :func:`forecaster.jobs.morning.build_report`
(a plain dict: this module imports nothing from the jobs layer) into a page with
Plotly's JavaScript inlined, so it opens from a mail attachment or a shared
drive with the network off. Every string that comes from data (tickers,
versions, error lines) is HTML-escaped; the payload itself is embedded as JSON
(``<script type="application/json" id="report-data">``) so every number in the
page can be checked against ``forecast history --score --format json``.

Plotly is imported only here, when a page is rendered.
"""

from __future__ import annotations

import html
import json
from typing import Any

from forecaster.errors import ConfigError

#: Marker colours of the issuing versions, in lineage order (chart and lineage table).
PALETTE = ("#2f6fdf", "#e07b00", "#1f9e5a", "#b0309a", "#8a6d00", "#0091a8", "#c2412d")
#: Characters of a failure's error line shown in the summary (the whole line is at the top).
REASON_CHARS = 90

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px;
       color: #1d2733; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 18px; margin: 28px 0 8px 0; border-bottom: 1px solid #d5dbe3; }
h3 { font-size: 15px; margin: 16px 0 6px 0; }
p.note, .note { color: #5b6776; font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #d5dbe3; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f2f5f8; }
td.text, th.text { text-align: left; white-space: normal; max-width: 420px; }
#failures { background: #fdecec; border: 1px solid #e3a1a1; padding: 8px 14px; }
#failures h2 { border: none; color: #a01818; margin-top: 4px; }
#failures code { white-space: pre-wrap; }
#stale { background: #fff4d6; border: 1px solid #e0b84c; padding: 8px 14px; }
#stale h2 { border: none; color: #7a5200; margin-top: 4px; }
.up { color: #b42318; } .down { color: #1f7a3a; }
.high { background: #fff1d6; font-weight: 600; }
.failed { color: #a01818; font-weight: 600; } .promoted { color: #1f7a3a; font-weight: 600; }
"""


def _e(value: Any) -> str:
    """HTML-escaped text of any value (None shown as a dash)."""
    return "–" if value is None else html.escape(str(value), quote=True)


def _pct(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.2%}" if sign else f"{value:.2%}"


def _cell(key: str, value: Any, text: str, css: str = "") -> str:
    """A table cell carrying its raw value (``data-value``) next to the shown text."""
    raw = "" if value is None else json.dumps(value)
    klass = f' class="{css}"' if css else ""
    return f'<td data-key="{_e(key)}" data-value="{_e(raw)}"{klass}>{_e(text)}</td>'


def _script_json(payload: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, ``<!--`` or ``&`` can close it)."""
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _levels(reports: list[dict[str, Any]]) -> list[str]:
    keys = {
        key
        for item in reports
        if item["latest"] and item["latest"]["risk"] and item["latest"]["risk"]["levels"]
        for key in item["latest"]["risk"]["levels"]
    }
    return sorted(keys, key=float)


def _summary(payload: dict[str, Any]) -> str:
    reports = payload["tickers"]
    levels = _levels(reports)
    windows = payload["recent_windows"]
    head = ["ticker", "origin", "forecast vol", "change"]
    head += [f"{kind} {float(key) * 100:g}%" for key in levels for kind in ("VaR", "ES")]
    head += [f"QLIKE vs HAR, last {days}" for days in windows]
    head += ["regime (ex-ante)", "last night", "reason"]
    rows = []
    for item in reports:
        latest, decision = item["latest"] or {}, item["decision"] or {}
        cells = [f'<td class="text"><a href="#ticker-{_e(item["ticker"])}">{_e(item["ticker"])}</a></td>']
        cells.append(_cell("origin", latest.get("origin"), latest.get("origin") or "–"))
        cells.append(_cell("vol", latest.get("vol"), _pct(latest.get("vol"))))
        change = latest.get("change")
        css = "" if change is None else ("up" if change > 0 else "down")
        cells.append(_cell("change", change, _pct(change, sign=True), css))
        stored = ((latest.get("risk") or {}).get("levels")) or {}
        for key in levels:
            for kind in ("var", "es"):
                value = stored.get(key, {}).get(kind)
                cells.append(_cell(f"{kind}_{key}", value, _pct(value)))
        for days in windows:
            recent = item["recent"][str(days)]
            ratio = recent["qlike_ratio"]
            if ratio is not None:
                text = f"{ratio:.3f} ({recent['n']}d)"
            elif recent["model"] is not None:
                text = f"QLIKE {recent['model']['qlike']:.4f}, HAR n/a ({recent['n']}d)"
            else:
                text = "not scored yet"
            cells.append(_cell(f"qlike_ratio_{days}", ratio, text))
        regime = item["regime"]
        cells.append(
            _cell(
                "regime",
                regime["regime"] if regime else None,
                f"{regime['regime']} ({_pct(regime['trailing_vol'])} vs {_pct(regime['threshold_vol'])})"
                if regime
                else "–",
                "high" if regime and regime["regime"] == "high" else "",
            )
        )
        outcome = decision.get("outcome")
        cells.append(_cell("outcome", outcome, outcome or "no run", outcome or ""))
        reason = decision.get("reason")
        if outcome == "failed" and reason and len(reason) > REASON_CHARS:
            reason = reason[:REASON_CHARS].rstrip() + "… (whole error line above)"
        cells.append(f'<td class="text" data-key="reason">{_e(reason)}</td>')
        rows.append(f'<tr data-ticker="{_e(item["ticker"])}">{"".join(cells)}</tr>')
    header = "".join(f"<th>{_e(name)}</th>" for name in head)
    return (
        f'<table id="summary"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        '<p class="note">Forecast vol: annualized volatility forecast at the close of the origin '
        "for the next h days; change: vs the previous origin's forecast (vol points). VaR/ES: of "
        "the h-day log return, as stored with the forecast. QLIKE vs HAR: the model's live QLIKE "
        "over the last N scored origins divided by a log-HAR's on the same origins (HAR fit at "
        "each origin on the data up to its close); below 1 = better than HAR. Regime: trailing "
        f"22-day vol at the origin vs its {payload['regime_quantile']:.0%} quantile over all days "
        "up to the origin. Last night: the ticker's latest nightly run.</p>"
    )


def _stale(payload: dict[str, Any]) -> str:
    stale = payload.get("stale")
    if not stale:
        return ""
    days = stale["weekdays"]
    return (
        f'<section id="stale"><h2>Stale history: the last night is {_e(stale["last_night"])}'
        f"</h2><p>This report is as of {_e(stale['as_of'])}, but the forecast history holds "
        f"nothing after {_e(stale['last_night'])} ({days} weekday{'s' if days > 1 else ''} "
        "without a nightly run): every number below is from that night. Check that the "
        "nightly job runs.</p></section>"
    )


def _failures(payload: dict[str, Any]) -> str:
    if not payload["failures"]:
        return ""
    items = "".join(
        f'<li data-ticker="{_e(item["ticker"])}"><b>{_e(item["ticker"])}</b> '
        f"(night {_e(item['night'])}): <code>error: {_e(item['error'])}</code></li>"
        for item in payload["failures"]
    )
    count = len(payload["failures"])
    return (
        f'<section id="failures"><h2>{count} ticker{"s" if count > 1 else ""} failed in the '
        "latest run</h2><p class=\"note\">Their champions are unchanged; no new forecast was "
        f"issued for them.</p><ul>{items}</ul></section>"
    )


def _spans(dates: list[str], flags: list[bool | None]) -> list[tuple[str, str]]:
    """Runs of consecutive flagged origins as (first, last) pairs."""
    spans, start, last = [], None, None
    for date, flag in zip(dates, flags, strict=True):
        if flag:
            start = start or date
            last = date
        elif start is not None:
            spans.append((start, last))
            start = None
    if start is not None:
        spans.append((start, last))
    return spans


def _figure(item: dict[str, Any], index: int) -> str:
    import pandas as pd
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    series = item["series"]
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.68, 0.32],
        vertical_spacing=0.08,
        subplot_titles=(
            "forecast vs realized vol (annualized); shaded: high-vol days ex-ante",
            "running bias on high-vol days (forecast − realized vol)",
        ),
    )
    dates = [row["origin"] for row in series]
    realized = [row for row in series if row["realized_vol"] is not None]
    figure.add_trace(
        go.Scatter(
            x=[row["origin"] for row in realized],
            y=[row["realized_vol"] for row in realized],
            name="realized",
            mode="lines+markers",
            line={"color": "#1d2733", "width": 2},
        ),
        row=1,
        col=1,
    )
    if len(series) > 1:
        figure.add_trace(
            go.Scatter(
                x=dates,
                y=[row["vol"] for row in series],
                name="forecast",
                mode="lines",
                line={"color": "#9db7e8", "width": 1},
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    versions = [entry["version"] for entry in item["lineage"]]
    for number, version in enumerate(versions):
        rows = [row for row in series if row["model_version"] == version]
        if not rows:
            continue
        figure.add_trace(
            go.Scatter(
                x=[row["origin"] for row in rows],
                y=[row["vol"] for row in rows],
                name=f"forecast by {html.escape(version)}",
                mode="markers",
                marker={"color": PALETTE[number % len(PALETTE)], "size": 7},
                line={"color": PALETTE[number % len(PALETTE)]},
            ),
            row=1,
            col=1,
        )
    har = [row for row in series if row["har_var"] is not None]
    if har:
        figure.add_trace(
            go.Scatter(
                x=[row["origin"] for row in har],
                y=[(252.0 * row["har_var"]) ** 0.5 for row in har],
                name="HAR (fit at each origin)",
                mode="lines",
                line={"color": "#8c96a3", "dash": "dot"},
            ),
            row=1,
            col=1,
        )
    day = pd.Timedelta(hours=12)
    for start, end in _spans(dates, [row["high_ex_ante"] for row in series]):
        figure.add_vrect(
            x0=str(pd.Timestamp(start) - day),
            x1=str(pd.Timestamp(end) + day),
            fillcolor="#f5a623",
            opacity=0.18,
            line_width=0,
            row=1,
            col=1,
        )
    labels = {"high_ex_ante": "high ex-ante", "high_ex_post": "high ex-post"}
    colors = {"high_ex_ante": "#d9480f", "high_ex_post": "#7048e8"}
    for sense, points in item["running_bias"].items():
        if points:
            figure.add_trace(
                go.Scatter(
                    x=[point["origin"] for point in points],
                    y=[point["bias"] for point in points],
                    name=f"bias, {labels[sense]}",
                    mode="lines+markers",
                    line={"color": colors[sense]},
                ),
                row=2,
                col=1,
            )
    figure.add_hline(y=0, line_color="#8c96a3", line_width=1, row=2, col=1)
    grid = {"showgrid": True, "gridcolor": "#e5e9ef", "zeroline": False}
    figure.update_xaxes(**grid)
    figure.update_yaxes(**grid)
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    figure.update_yaxes(tickformat="+.1%", row=2, col=1)
    figure.update_layout(
        height=520,
        margin={"l": 60, "r": 20, "t": 40, "b": 30},
        legend={"orientation": "h", "y": -0.08},
        template="none",  # the default template costs a second of deep copies per chart
        paper_bgcolor="white",
        plot_bgcolor="white",
        font={"family": "Helvetica, Arial, sans-serif", "size": 12, "color": "#1d2733"},
    )
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{index}",
        config={"displaylogo": False, "responsive": True},
    )


def _score_line(history: dict[str, Any] | None) -> str:
    if history is None:
        return '<p class="note">No forecast issued yet.</p>'
    score = history["score"]
    if not score["n"]:
        return (
            f'<p class="score" data-n="0">Nothing scored yet ({score["n_pending"]} pending): a '
            "forecast is scored once the prices of its horizon are in the cache.</p>"
        )
    values = {key: score[key] for key in ("n", "n_pending", "qlike", "mse", "mae_vol", "bias")}
    attributes = " ".join(f'data-{key}="{_e(json.dumps(value))}"' for key, value in values.items())
    breaches = []
    for key, entry in score["risk"]["levels"].items():
        if entry["breaches"] is not None:
            breaches.append(
                f'<span class="breaches" data-level="{_e(key)}" data-breaches="{entry["breaches"]}">'
                f"VaR {float(key) * 100:g}%: {entry['breaches']} breaches in {entry['n']} "
                f"({entry['breach_rate']:.2%}, expected {float(key) * 100:g}%)</span>"
            )
    return (
        f'<p class="score" {attributes}>Live score over {score["n"]} realized forecasts '
        f"({score['n_pending']} pending): QLIKE {score['qlike']:.4f}, MSE {score['mse']:.3e}, "
        f"MAE vol {score['mae_vol']:.2%}, bias {score['bias']:+.2%} (annualized vol)"
        + ("; " + "; ".join(breaches) if breaches else "")
        + " — as <code>forecast history --score</code>.</p>"
    )


def _lineage(item: dict[str, Any]) -> str:
    if not item["lineage"]:
        return ""
    rows = "".join(
        f'<tr><td class="text"><span style="color:{PALETTE[number % len(PALETTE)]}">&#9679;</span> '
        f'<code>{_e(entry["version"])}</code></td>'
        f"<td>{_e(entry['n_forecasts'])}</td><td>{_e(entry['first_origin'])}</td>"
        f"<td>{_e(entry['last_origin'])}</td><td>{_e(entry['champion_since'])}</td>"
        f'<td class="text">{_e(entry["how"])}</td></tr>'
        for number, entry in enumerate(item["lineage"])
    )
    return (
        "<h3>Champion lineage</h3><table class=\"lineage\"><thead><tr><th class=\"text\">version"
        "</th><th>forecasts</th><th>first origin</th><th>last origin</th><th>champion since"
        f'</th><th class="text">how</th></tr></thead><tbody>{rows}</tbody></table>'
        f'<p class="note">Current champion pointer: <code>{_e(item["champion"])}</code></p>'
    )


def render_html(payload: dict[str, Any]) -> str:
    """The page for one :func:`~forecaster.jobs.morning.build_report` payload.

    Raises
    ------
    ConfigError
        Plotly is not installed.
    """
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ConfigError(
            "the HTML report needs the plotly package, which is not installed; install it "
            "with `pip install plotly` (it is a dependency of forecaster: `pip install -e .`)"
        ) from None
    histories = {entry["ticker"]: entry for entry in payload["history"]}
    sections = []
    for index, item in enumerate(payload["tickers"]):
        ticker = item["ticker"]
        body = [f'<section class="ticker" id="ticker-{_e(ticker)}"><h2>{_e(ticker)}</h2>']
        body.append(_score_line(histories.get(ticker)))
        if item["series"]:
            body.append(_figure(item, index))
        body.append(_lineage(item))
        body.append("</section>")
        sections.append("".join(body))
    title = f"Volatility morning report — {payload['as_of']}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>{_e(title)}</h1>"
        f'<p class="note">Generated {_e(payload["generated_at"])} from the forecast history '
        "and the model registry. Vol is annualized (0.18 = 18%); a forecast is scored once "
        "its horizon's prices are in the cache.</p>"
        f"{_stale(payload)}"
        f"{_failures(payload)}"
        f"<h2>Summary</h2>{_summary(payload)}"
        f"{''.join(sections)}"
        f'<script type="application/json" id="report-data">{_script_json(payload)}</script>'
        "</body></html>\n"
    )
