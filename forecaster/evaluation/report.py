"""Render evaluation results: terminal table, Markdown, JSON and a PNG plot.

Inputs are the JSON-shaped dicts of :func:`forecaster.evaluation.backtest.summarize`
(and of :func:`forecaster.evaluation.compare.compare` for ``forecast compare``),
so what is printed is exactly what ``--format json`` would give. A summary with
a ``risk`` block (``forecast evaluate --risk``) gets a risk section per VaR level.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from forecaster.tables import markdown_table, text_table
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
    out = [*_header(result), "", *text_table(headers, rows, bold=color), ""]
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
    if result.get("risk"):
        out.extend(["", *_risk_table(result["risk"], color)])
    return "\n".join(out)


def render_markdown(result: dict[str, Any]) -> str:
    """The same table as GitHub-flavoured Markdown (best per column in bold)."""
    models = result["models"]
    dm = result.get("diebold_mariano", {})
    reference, label = _reference(result)
    best = {key: _best(models, key, rule) for key, _, _, rule in COLUMNS}
    head = _header(result)
    headers = ["model", *[h for _, h, _, _ in COLUMNS], f"DM vs {label} (p)"]
    rows = []
    for name, scores in models.items():
        cells = [
            _fmt(fmt, _value(scores, key)) + ("*" if name in best[key] else "")
            for key, _, fmt, _ in COLUMNS
        ]
        rows.append([name, *cells, _dm_cell(name, reference, dm.get(name))])
    lines = [f"### {head[0]}", "", head[1], "", *markdown_table(headers, rows)]
    mcs = result.get("model_confidence_set")
    if mcs:
        lines.append(
            f"\n{1 - mcs['size']:.0%} model confidence set on QLIKE: {', '.join(mcs['included'])}"
        )
    lines.extend(f"\n_Note: {note}_" for note in result.get("notes", []))
    if result.get("risk"):
        lines.extend(["", *_risk_markdown(result["risk"])])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ risk view
# (header, cell): cell(entry) -> text; entry is one model's block at one level.
def _p(test: dict[str, float] | None) -> str:
    return "n/a" if test is None else f"{test['p_value']:.3f}"


def _breach_cell(entry: dict[str, Any]) -> str:
    if entry["breaches"] is None:
        return "n/a"
    return f"{entry['breaches']} ({entry['breach_rate']:.2%})"


def _basel_cell(entry: dict[str, Any]) -> str:
    light = entry["traffic_light"]
    if light is None:
        return "n/a"
    shares = light["rolling_shares"]
    return "/".join(f"{shares[zone]:.0%}".rstrip("%") for zone in ("green", "yellow", "red")) + (
        f"% {light['latest']}"
    )


def _regime_cell(entry: dict[str, Any]) -> str:
    regime = entry["regime"]
    if regime is None:
        return "n/a"
    return f"{_fmt('{:.1%}', regime['breach_rate_high'])} / {_fmt('{:.1%}', regime['breach_rate_low'])}"


def _risk_columns(risk: dict[str, Any], basel: bool) -> list[tuple[str, Any]]:
    _, label = _reference({"reference": risk.get("reference", "har")})
    columns: list[tuple[str, Any]] = [
        ("breaches (rate)", _breach_cell),
        ("Kupiec p", lambda e: _p(e["kupiec"])),
        ("indep. p", lambda e: _p(e["christoffersen_independence"])),
        ("cond. cov. p", lambda e: _p(e["christoffersen_conditional"])),
    ]
    if basel:
        columns.append(("Basel G/Y/R, latest", _basel_cell))
    columns += [
        ("ES test p", lambda e: _p(e["es_test"])),
        ("rate high/low ex-ante", _regime_cell),
        ("tick loss", lambda e: _fmt("{:.3e}", e["tick_loss"])),
        ("FZ0", lambda e: _fmt("{:.4f}", e["fz0"])),
        (
            f"DM FZ0 vs {label} (p)",
            lambda e: (
                f"{e['dm_fz0']['stat']:+.2f} ({e['dm_fz0']['p_value']:.3f})"
                if e["dm_fz0"]
                else "n/a"
            ),
        ),
    ]
    return columns


def _risk_head(risk: dict[str, Any]) -> list[str]:
    dist = {
        "normal": "normal (forecast at face value)",
        "t": "Student t (dof and scale fit on each model's standardized training returns)",
        "fhs": "filtered historical simulation (each model's standardized training returns)",
    }[risk["distribution"]]
    days = "1-day" if risk["horizon"] == 1 else f"{risk['horizon']}-day"
    step = (
        ""
        if risk["test_step"] == 1
        else f"; coverage and ES tests on every {risk['test_step']}th day "
        f"(non-overlapping returns, n = {risk['n_tested']})"
    )
    return [
        f"Risk view — VaR/ES of the {days} log close-to-close return, {dist}; "
        f"n = {risk['n']} test days{step}",
    ]


def _risk_reasons(risk: dict[str, Any]) -> list[str]:
    reasons: dict[str, list[str]] = {}
    for name, levels in risk["models"].items():
        for key, entry in levels.items():
            for column, reason in entry["unavailable"].items():
                if column in ("traffic_light", "dm_fz0") and (
                    reason.startswith("defined for") or reason.startswith("this is the reference")
                ):
                    continue
                reasons.setdefault(reason, [])
                tag = f"{name} {key}"
                if tag not in reasons[reason]:
                    reasons[reason].append(tag)
    return [f"n/a ({', '.join(tags)}): {reason}" for reason, tags in reasons.items()]


def _risk_rows(risk: dict[str, Any], key: str) -> tuple[list[str], list[list[str]]]:
    alpha = float(key)
    columns = _risk_columns(risk, basel=math.isclose(alpha, 0.01))
    reference = risk.get("reference", "har")
    fz0 = {n: {"fz0": levels[key]["fz0"]} for n, levels in risk["models"].items()}
    best = _best(fz0, "fz0", "min")
    rows = []
    for name, levels in risk["models"].items():
        entry = levels[key]
        cells = [name]
        for header, cell in columns:
            text = cell(entry)
            if header.startswith("DM") and name == reference:
                text = "reference"
            if header == "FZ0" and name in best:
                text += "*"
            cells.append(text)
        rows.append(cells)
    return ["model", *[header for header, _ in columns]], rows


def _level_title(key: str) -> str:
    alpha = float(key)
    return f"level {alpha:g} ({(1 - alpha) * 100:g}% VaR), expected breach rate {alpha * 100:g}%"


def _risk_table(risk: dict[str, Any], color: bool = False) -> list[str]:
    out = _risk_head(risk)
    for key in (f"{alpha:g}" for alpha in risk["levels"]):
        headers, rows = _risk_rows(risk, key)
        out += ["", _level_title(key), *text_table(headers, rows, bold=color)]
    out += ["", *_risk_footer(risk)]
    return out


def _risk_footer(risk: dict[str, Any], best: str = "* lowest FZ0") -> list[str]:
    return [
        "A breach is a return at or below VaR. p-values: Kupiec (coverage), Christoffersen "
        "independence and conditional coverage, McNeil-Frey ES test (one-sided: ES not deep "
        "enough); p < 0.05 rejects. Basel: share of rolling 250-day windows in the "
        f"green/yellow/red zone, and the zone of the latest window. {best}; "
        "DM < 0: lower FZ0 loss than the reference.",
        *_risk_reasons(risk),
        *(f"note: {note}" for note in risk.get("notes", [])),
    ]


def _risk_markdown(risk: dict[str, Any]) -> list[str]:
    lines = [f"#### {_risk_head(risk)[0]}"]
    for key in (f"{alpha:g}" for alpha in risk["levels"]):
        headers, rows = _risk_rows(risk, key)
        lines += ["", f"{_level_title(key)}:", "", *markdown_table(headers, rows)]
    for text in _risk_footer(risk, best="bold: lowest FZ0"):
        lines += ["", f"_{text}_"]
    return lines


def render_json(
    results: list[dict[str, Any]], panel: dict[str, Any] | None = None, schema: str = ""
) -> str:
    """``{"schema", "results": [one per ticker], "panel": summary or null}`` (NaN becomes null).

    The same shape for one ticker or many (the contract of ``forecast evaluate
    --format json``; ``schema`` is its id, see ``forecaster.cli.schemas``).
    """
    payload = {"schema": schema, "results": results, "panel": panel}
    return render_object(payload)


def render_object(payload: dict[str, Any]) -> str:
    """``payload`` as indented JSON, NaN and infinity as null."""
    return json.dumps(_clean(payload), indent=2, allow_nan=False) + "\n"


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


def plot_png(
    predictions: pd.DataFrame, result: dict[str, Any], risk_frame: pd.DataFrame | None = None
) -> bytes:
    """PNG bytes: realized vol and each forecast with high-vol days shaded; bias by regime.

    With ``risk_frame`` (:attr:`forecaster.evaluation.risk.RiskResult.frame`) and a
    ``risk`` block in ``result``, a third panel shows the realized h-day returns,
    the VaR of the LSTM and of the reference model at every level, their
    breaches at the lowest level, and high-volatility (ex-ante) days shaded.
    """
    from forecaster.settings import prepare_library_dir

    prepare_library_dir("MPLCONFIGDIR")  # matplotlib's config and font cache: never in ~
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(result["models"])
    with_risk = risk_frame is not None and bool(result.get("risk"))
    figure, axes = plt.subplots(
        3 if with_risk else 2,
        1,
        figsize=(12, 12 if with_risk else 8),
        gridspec_kw={"height_ratios": [3, 2, 3] if with_risk else [3, 2]},
        constrained_layout=True,
    )
    top, bottom = axes[0], axes[1]
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
    if with_risk:
        _plot_risk(axes[2], predictions, result, risk_frame)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _plot_risk(axis: Any, predictions: pd.DataFrame, result: dict[str, Any], frame: pd.DataFrame):
    """Returns, VaR lines of the LSTM and the reference, breaches; high ex-ante days shaded."""
    import matplotlib

    risk = result["risk"]
    dates = predictions.index
    high = predictions["high_ex_ante"].to_numpy(dtype=bool)
    axis.fill_between(
        dates,
        0,
        1,
        where=high,
        transform=axis.get_xaxis_transform(),
        color="tab:red",
        alpha=0.12,
        step="mid",
        label="high vol (ex-ante)",
    )
    returns = frame["return_h"].to_numpy()
    axis.plot(dates, returns, color="0.45", lw=0.5, label=f"{risk['horizon']}-day return")
    levels = [f"{alpha:g}" for alpha in risk["levels"]]
    chosen = [name for name in ("lstm", risk.get("reference")) if name in risk["models"]]
    for name, color in zip(chosen, ("tab:blue", "tab:orange"), strict=False):
        for number, key in enumerate(levels):
            var = frame[f"{name}_var_{key}"].to_numpy()
            if not np.isfinite(var).any():
                continue
            axis.plot(
                dates,
                var,
                color=color,
                lw=0.9,
                ls="-" if number == 0 else "--",
                label=f"{name} VaR {float(key):g}",
            )
            if number == 0:
                hit = returns <= var
                axis.scatter(
                    dates[hit],
                    returns[hit],
                    color=color,
                    marker="v",
                    s=22,
                    zorder=3,
                    label=f"{name} breaches ({int(hit.sum())})",
                )
    axis.axhline(0, color="black", lw=0.5)
    axis.set_ylabel("log return")
    axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axis.set_title(
        f"value at risk ({risk['distribution']}) and breaches, {risk['horizon']}-day "
        "log close-to-close returns"
    )
    axis.legend(ncol=4, fontsize=8, loc="lower left")
