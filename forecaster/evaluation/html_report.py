"""The morning report as one self-contained HTML page (no server, network, CDN or script).

:func:`render_html` turns the payload of :func:`forecaster.jobs.morning.build_report`
(a plain dict: this module imports nothing from the jobs layer) into a page whose
charts are inline SVG drawn here, so it opens from a mail attachment or a shared
drive with the network off, and stays small for a book of hundreds of tickers (a
few kilobytes per chart; no charting library inside). Every string that comes
from data (tickers, versions, error lines) is HTML-escaped; the summary is
embedded as JSON (``<script type="application/json" id="report-data">``,
:func:`_embedded`); the per-night rows and scores are what
``forecast history --score --format json`` prints.
"""

from __future__ import annotations

import html
import json
from typing import Any

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
figure.chart { margin: 8px 0; } svg.chart { max-width: 100%; height: auto; font-size: 11px; }
svg.chart polyline { fill: none; stroke-width: 1.6; } svg.chart .realized { stroke: #1d2733; }
svg.chart .har { stroke: #8c96a3; } svg.chart .grid { stroke: #e5e9ef; }
svg.chart .zero { stroke: #8c96a3; } svg.chart .high { fill: #f5a623; opacity: 0.18; }
svg.chart .bias-ante { stroke: #d9480f; } svg.chart .bias-post { stroke: #7048e8; }
svg.chart .axis, svg.chart .title { fill: #5b6776; }
.key { margin-right: 8px; } .key.realized { color: #1d2733; } .key.har { color: #8c96a3; }
.key.shade { color: #c47f00; } .key.bias-ante { color: #d9480f; }
.key.bias-post { color: #7048e8; }
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


#: What each ticker keeps in the page's embedded JSON: the summary table's sources. Its
#: per-night rows (``series``), recent scores, running bias and forecast history are left
#: out so the page grows with the number of tickers only (a few KB each):
#: ``forecast history --score --format json`` prints them.
EMBEDDED_KEYS = ("ticker", "champion", "latest", "regime", "decision", "lineage")


def _embedded(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as embedded in the page (:data:`EMBEDDED_KEYS` per ticker, no history)."""
    summary = {key: value for key, value in payload.items() if key != "history"}
    summary["tickers"] = [
        {key: item[key] for key in EMBEDDED_KEYS if key in item} for item in payload["tickers"]
    ]
    return summary


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


#: Origins drawn in each ticker's chart (about five months of nights).
CHART_NIGHTS = 100
_W, _LEFT, _RIGHT = 720, 56, 12  # chart width and margins (SVG user units = CSS pixels)
_TOP_H, _BOTTOM_H, _GAP = 190, 80, 34  # panel heights and the space between them


def _polyline(points: list[tuple[float, float]], css: str, dashed: bool = False) -> str:
    if len(points) < 2:
        return "".join(
            f'<circle class="{css}" cx="{x:.0f}" cy="{y:.0f}" r="2.5"/>' for x, y in points
        )
    coordinates = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return f'<polyline class="{css}" points="{coordinates}"{dash}/>'


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    step = (high - low) / count
    return [low + step * k for k in range(count + 1)]


def _figure(item: dict[str, Any], index: int) -> str:
    """One ticker's chart as inline SVG: forecast vs realized vol, then the running bias.

    The last :data:`CHART_NIGHTS` origins: realized vol (dark), the issued
    forecasts coloured by issuing version (lineage colours), HAR fit at each
    origin (dotted), high-vol days ex ante shaded; below, the running bias on
    high-vol days. Plain SVG (no script), a few kilobytes per ticker, so a page
    for a book of hundreds of tickers stays small.
    """
    series = item["series"][-CHART_NIGHTS:]
    n = len(series)
    dates = [row["origin"] for row in series]
    position = {date: k for k, date in enumerate(dates)}
    width = _W - _LEFT - _RIGHT

    def x(k: int) -> float:
        return _LEFT + (k * width / (n - 1) if n > 1 else width / 2)

    har = [(k, (252.0 * row["har_var"]) ** 0.5) for k, row in enumerate(series) if row["har_var"]]
    values = [row["vol"] for row in series] + [
        row["realized_vol"] for row in series if row["realized_vol"] is not None
    ] + [vol for _, vol in har]
    top = max(values) * 1.1 if values else 1.0

    def y(vol: float) -> float:
        return 8 + _TOP_H * (1 - vol / top)

    parts = [
        f'<svg class="chart" id="chart-{index}" viewBox="0 0 {_W} '
        f'{8 + _TOP_H + _GAP + _BOTTOM_H + 26}" width="{_W}" role="img" '
        f'aria-label="{_e(item["ticker"])}: forecast vs realized vol">'
    ]
    for first, last in _spans(dates, [row["high_ex_ante"] for row in series]):
        x0, x1 = x(position[first]) - 2, x(position[last]) + 2
        parts.append(
            f'<rect class="high" x="{x0:.0f}" y="8" width="{max(x1 - x0, 3):.0f}" '
            f'height="{_TOP_H}"><title>high vol ex ante {first}..{last}</title></rect>'
        )
    for tick in _ticks(0.0, top):
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(tick):.0f}" '
            f'y2="{y(tick):.0f}"/><text class="axis" x="{_LEFT - 6}" y="{y(tick) + 4:.0f}" '
            f'text-anchor="end">{tick:.0%}</text>'
        )
    realized = [(x(k), y(row["realized_vol"])) for k, row in enumerate(series)
                if row["realized_vol"] is not None]
    parts.append(_polyline([(x(k), y(vol)) for k, vol in har], "har", dashed=True))
    parts.append(_polyline(realized, "realized"))
    versions = [entry["version"] for entry in item["lineage"]]
    for number, version in enumerate(versions):
        colour = PALETTE[number % len(PALETTE)]
        run: list[tuple[float, float]] = []
        for k, row in enumerate(series + [None]):  # runs of consecutive origins by one version
            if row is not None and row["model_version"] == version:
                run.append((x(k), y(row["vol"])))
                continue
            if run:
                parts.append(_polyline(run, "forecast").replace(
                    'class="forecast"', f'class="forecast" stroke="{colour}" fill="{colour}"'
                ))
                run = []
    bias_points = {
        sense: [(position[p["origin"]], p["bias"]) for p in points if p["origin"] in position]
        for sense, points in item["running_bias"].items()
    }
    biases = [abs(b) for points in bias_points.values() for _, b in points] or [0.01]
    span = max(biases) * 1.1 or 0.01
    base = 8 + _TOP_H + _GAP

    def yb(bias: float) -> float:
        return base + _BOTTOM_H * (0.5 - bias / (2 * span))

    parts.append(
        f'<line class="zero" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{yb(0):.0f}" y2="{yb(0):.0f}"/>'
    )
    for tick in (-span, span):
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{yb(tick) + 4:.0f}" '
            f'text-anchor="end">{tick:+.1%}</text>'
        )
    for sense, css in (("high_ex_ante", "bias-ante"), ("high_ex_post", "bias-post")):
        parts.append(_polyline([(x(k), yb(b)) for k, b in bias_points.get(sense, [])], css))
    bottom = base + _BOTTOM_H + 18
    for k in sorted({0, n // 2, n - 1}):
        anchor = "start" if k == 0 else "end" if k == n - 1 else "middle"
        parts.append(
            f'<text class="axis" x="{x(k):.0f}" y="{bottom}" text-anchor="{anchor}">'
            f"{_e(dates[k])}</text>"
        )
    parts.append(
        f'<text class="title" x="{_LEFT}" y="{base - 8}">running bias on high-vol days '
        "(forecast − realized vol)</text></svg>"
    )
    legend = (
        '<span class="key realized">realized</span> '
        + " ".join(
            f'<span class="key" style="color:{PALETTE[number % len(PALETTE)]}">forecast by '
            f"{_e(version)}</span>"
            for number, version in enumerate(versions)
        )
        + ' <span class="key har">HAR (fit at each origin)</span>'
        ' <span class="key shade">shaded: high-vol days ex ante</span>'
        ' <span class="key bias-ante">bias, high ex-ante</span>'
        ' <span class="key bias-post">bias, high ex-post</span>'
    )
    shown = f"the last {n} origins" if len(item["series"]) > n else f"{n} origins"
    return (
        f'<figure class="chart">{"".join(parts)}<figcaption class="note">Forecast vs '
        f"realized vol (annualized), {shown}: {legend}</figcaption></figure>"
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

    """
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
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="note">Generated {_e(payload["generated_at"])} from the forecast history '
        "and the model registry. Vol is annualized (0.18 = 18%); a forecast is scored once "
        "its horizon's prices are in the cache.</p>"
        f"{_stale(payload)}"
        f"{_failures(payload)}"
        f"<h2>Summary</h2>{_summary(payload)}"
        f"{''.join(sections)}"
        f'<script type="application/json" id="report-data">{_script_json(_embedded(payload))}'
        "</script>"
        "</body></html>\n"
    )
