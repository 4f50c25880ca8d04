"""Render evaluation results: terminal table, Markdown, JSON and a PNG plot.

Inputs are the JSON-shaped dicts of :func:`forecaster.evaluation.backtest.summarize`
(and of :func:`forecaster.evaluation.compare.compare` for ``forecast compare``),
so what is printed is exactly what ``--format json`` would give.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from forecaster.units import to_vol

# (key, header, format, best): best is "min", "abs" (closest to 0) or None.
COLUMNS: list[tuple[str, str, str, str | None]] = [
    ("qlike", "QLIKE", "{:.4f}", "min"),
    ("mse", "MSE", "{:.3e}", "min"),
    ("mae_vol", "MAE vol", "{:.2%}", "min"),
    ("bias", "bias", "{:+.2%}", "abs"),
    ("bias_low", "bias low", "{:+.2%}", "abs"),
    ("bias_high_ex_ante", "bias high ex-ante", "{:+.2%}", "abs"),
    ("bias_high_ex_post", "bias high ex-post", "{:+.2%}", "abs"),
    ("mz_slope", "MZ slope", "{:.2f}", None),
    ("mz_r2", "MZ R2", "{:.3f}", "max"),
]


def _value(scores: dict[str, Any], key: str) -> float:
    if key.startswith("mz_"):
        return scores["mz"][key[3:]]
    return scores[key]


def _best(results: dict[str, dict[str, Any]], key: str, rule: str | None) -> set[str]:
    if rule is None:
        return set()
    values = {name: _value(s, key) for name, s in results.items()}
    finite = {n: v for n, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        return set()
    if rule == "min":
        target = min(finite.values())
        return {n for n, v in finite.items() if v == target}
    if rule == "max":
        target = max(finite.values())
        return {n for n, v in finite.items() if v == target}
    target = min(abs(v) for v in finite.values())
    return {n for n, v in finite.items() if abs(v) == target}


def _fmt(fmt: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return fmt.format(value)


def _reference(result: dict[str, Any]) -> tuple[str, str]:
    """The Diebold–Mariano reference model of ``result``: its name and its label.

    The name is ``result["reference"]`` (HAR when the summary does not say); the
    label is how headers and notes spell it (``"har"`` -> ``"HAR"``).
    """
    name = result.get("reference", "har")
    return name, name.upper()


def _dm_cell(name: str, reference: str, test: dict[str, float] | None) -> str:
    if name == reference:
        return "reference"
    return f"{test['stat']:+.2f} ({test['p_value']:.3f})" if test else "n/a"


def _header(result: dict[str, Any]) -> list[str]:
    regime = result["regime"]
    mode = result.get("mode", "held-out")
    if result.get("refit_every"):
        mode += f", refit every {result['refit_every']} days"
    return [
        f"{result['ticker']} — model {result['model_version']} (init {result['init']}), "
        f"horizon {result['horizon']}, {result['estimator']}, {mode}",
        f"test {result['test_start']} .. {result['test_end']}, n = {result['n']}; "
        f"high-vol regime above the training {regime['quantile']:.0%} quantile: "
        f"ex-ante vol > {regime['threshold_ex_ante_vol']:.1%} ({regime['n_high_ex_ante']} days), "
        f"ex-post vol > {regime['threshold_ex_post_vol']:.1%} ({regime['n_high_ex_post']} days)",
    ]


def render_table(result: dict[str, Any], color: bool = False) -> str:
    """A fixed-width table; the best model per column is marked with ``*`` (bold on a terminal)."""
    models = result["models"]
    dm = result.get("diebold_mariano", {})
    reference, label = _reference(result)
    headers = ["model", *[h for _, h, _, _ in COLUMNS], f"DM vs {label} (p)"]
    best = {key: _best(models, key, rule) for key, _, _, rule in COLUMNS}
    rows = []
    for name, scores in models.items():
        row = [name]
        for key, _, fmt, _ in COLUMNS:
            cell = _fmt(fmt, _value(scores, key))
            row.append(cell + ("*" if name in best[key] else " "))
        row.append(_dm_cell(name, reference, dm.get(name)))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)
        ]
        return "  ".join(parts)

    out = [*_header(result), "", line(headers), line(["-" * w for w in widths])]
    for row in rows:
        text = line(row)
        if color:
            text = text.replace("*", "\033[1m*\033[0m")
        out.append(text)
    out.append("")
    mcs = result.get("model_confidence_set")
    if mcs:
        out.append(
            f"{1 - mcs['size']:.0%} model confidence set on QLIKE (Hansen-Lunde-Nason): "
            f"{', '.join(mcs['included'])}"
        )
    out.append(
        "* best in column (bias: closest to zero). Bias = mean(forecast vol - realized vol), "
        f"annualized; negative = under-forecast. DM < 0: lower QLIKE than {label}."
    )
    out.extend(f"note: {note}" for note in result.get("notes", []))
    return "\n".join(out)


def render_markdown(result: dict[str, Any]) -> str:
    """The same table as GitHub-flavoured Markdown (best per column in bold)."""
    models = result["models"]
    dm = result.get("diebold_mariano", {})
    reference, label = _reference(result)
    best = {key: _best(models, key, rule) for key, _, _, rule in COLUMNS}
    head = _header(result)
    lines = [f"### {head[0]}", "", head[1], ""]
    lines.append("| model | " + " | ".join(h for _, h, _, _ in COLUMNS) + f" | DM vs {label} (p) |")
    lines.append("|---|" + "---:|" * (len(COLUMNS) + 1))
    for name, scores in models.items():
        cells = []
        for key, _, fmt, _ in COLUMNS:
            cell = _fmt(fmt, _value(scores, key))
            cells.append(f"**{cell}**" if name in best[key] else cell)
        dm_cell = _dm_cell(name, reference, dm.get(name))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {dm_cell} |")
    mcs = result.get("model_confidence_set")
    if mcs:
        lines.append(
            f"\n{1 - mcs['size']:.0%} model confidence set on QLIKE: {', '.join(mcs['included'])}"
        )
    lines.extend(f"\n_Note: {note}_" for note in result.get("notes", []))
    return "\n".join(lines) + "\n"


def render_json(results: list[dict[str, Any]]) -> str:
    """One object for one ticker, a list for several (NaN becomes null)."""
    payload: Any = results[0] if len(results) == 1 else results
    return json.dumps(_clean(payload), indent=2) + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def plot_png(predictions: pd.DataFrame, result: dict[str, Any]) -> bytes:
    """PNG bytes: realized vol and each forecast with high-vol days shaded; bias by regime."""
    from forecaster.settings import prepare_library_dir

    prepare_library_dir("MPLCONFIGDIR")  # matplotlib's config and font cache: never in ~
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(result["models"])
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 8), gridspec_kw={"height_ratios": [3, 2]}, constrained_layout=True
    )
    dates = predictions.index
    high = predictions["high_ex_post"].to_numpy(dtype=bool)
    top.fill_between(
        dates,
        0,
        1,
        where=high,
        transform=top.get_xaxis_transform(),
        color="tab:red",
        alpha=0.12,
        step="mid",
        label="high vol (ex-post)",
    )
    top.plot(dates, to_vol(predictions["target_var"]), color="black", lw=0.8, label="realized")
    for name in models:
        top.plot(dates, to_vol(predictions[name]), lw=1.0 if name == "lstm" else 0.7, label=name)
    top.set_ylabel("annualized vol")
    top.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    top.set_title(
        f"{result['ticker']}: realized vs forecast volatility, horizon {result['horizon']} "
        f"({result['test_start']} .. {result['test_end']})"
    )
    top.legend(ncol=4, fontsize=8, loc="upper left")
    regimes = [
        ("bias", "all"),
        ("bias_low", "low"),
        ("bias_high_ex_ante", "high ex-ante"),
        ("bias_high_ex_post", "high ex-post"),
    ]
    width = 0.8 / len(models)
    positions = np.arange(len(regimes))
    for i, name in enumerate(models):
        values = [result["models"][name][key] for key, _ in regimes]
        values = [np.nan if v is None else v for v in values]
        bottom.bar(positions + i * width - 0.4 + width / 2, values, width, label=name)
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_xticks(positions, [label for _, label in regimes])
    bottom.set_ylabel("bias (forecast - realized vol)")
    bottom.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    bottom.set_title("bias by regime (negative = under-forecast)")
    bottom.legend(ncol=len(models), fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
