"""Risk-view benchmark on the bundled S&P 500 and NASDAQ samples.

For each index (SPY -> S&P 500, QQQ -> NASDAQ Composite, `source="sample"`): train
the default `encoder` LSTM once, run one held-out backtest against every
baseline, and score VaR/ES at 1% and 5% under the normal, t and fhs
distributions — all three reuse the same forecasts. Writes bench/risk.md.

    PYTHONPATH=. .venv/bin/python bench/risk.py [--epochs 60] [--output bench/risk.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.data.loader import load_prices
from forecaster.evaluation import backtest
from forecaster.evaluation.risk import DISTRIBUTIONS
from forecaster.models.baselines import BASELINES as REGISTERED_BASELINES
from forecaster.models.config import LSTMConfig
from forecaster.models.lstm_forecaster import train
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings

HERE = Path(__file__).resolve().parent
BASELINES = list(REGISTERED_BASELINES)
INDICES = {"SPY": "S&P 500", "QQQ": "NASDAQ Composite"}
LEVELS = (0.01, 0.05)
PASS = 0.05


def p(test: dict[str, float] | None) -> str:
    return "n/a" if test is None else f"{test['p_value']:.3f}"


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def covered(entry: dict[str, Any]) -> bool:
    """Kupiec and conditional coverage p >= 0.05, and (1%) no red 250-day window."""
    if entry["breaches"] is None:
        return False
    tests = (entry["kupiec"], entry["christoffersen_conditional"])
    if any(test is None or test["p_value"] < PASS for test in tests):
        return False
    light = entry["traffic_light"]
    return light is None or light["rolling_shares"]["red"] == 0


def passed(entry: dict[str, Any]) -> bool:
    """:func:`covered` and the ES test p >= 0.05."""
    return covered(entry) and entry["es_test"] is not None and entry["es_test"]["p_value"] >= PASS


def table(risks: dict[str, dict[str, Any]], alpha: float) -> list[str]:
    key = f"{alpha:g}"
    basel = alpha == 0.01
    head = ["model", "dist", "breaches (rate)", "Kupiec p", "ind. p", "cond. cov. p"]
    if basel:
        head.append("Basel G/Y/R (rolling), latest")
    head += [
        "ES test p",
        "rate high ex-ante",
        "rate low ex-ante",
        "rate high ex-post",
        "FZ0",
        "DM FZ0 vs HAR (p)",
        "coverage ok",
        "all ok",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 3) + "---|"]
    models = list(next(iter(risks.values()))["models"])
    for name in models:
        for dist, risk in risks.items():
            entry = risk["models"][name][key]
            if entry["breaches"] is None:
                lines.append(f"| {name} | {dist} | n/a: {entry['unavailable']['kupiec']} |")
                continue
            regime = entry["regime"]
            cells = [
                name,
                dist,
                f"{entry['breaches']} ({entry['breach_rate']:.2%})",
                p(entry["kupiec"]),
                p(entry["christoffersen_independence"]),
                p(entry["christoffersen_conditional"]),
            ]
            if basel:
                light = entry["traffic_light"]
                shares = light["rolling_shares"]
                cells.append(
                    f"{shares['green']:.0%}/{shares['yellow']:.0%}/{shares['red']:.0%}, "
                    f"{light['latest']}"
                )
            dm = entry["dm_fz0"]
            cells += [
                p(entry["es_test"]),
                f"{rate(regime['breach_rate_high'])} ({regime['breaches_high']}/{regime['n_high']})",
                rate(regime["breach_rate_low"]),
                f"{rate(regime['breach_rate_high_ex_post'])} "
                f"({regime['breaches_high_ex_post']}/{regime['n_high_ex_post']})",
                f"{entry['fz0']:.4f}",
                "reference" if name == "har" else f"{dm['stat']:+.2f} ({dm['p_value']:.3f})",
                "yes" if covered(entry) else "no",
                "yes" if passed(entry) else "no",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def regime_facts(risks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Pooled over models at one ticker (t and fhs): where the breaches fall."""
    facts: dict[str, Any] = {}
    for key in (f"{alpha:g}" for alpha in LEVELS):
        high = low = post = n_high = n_low = n_post = total = 0
        for dist in ("t", "fhs"):
            for levels in risks[dist]["models"].values():
                entry = levels[key]
                if entry["breaches"] is None:
                    continue
                regime = entry["regime"]
                high += regime["breaches_high"]
                n_high += regime["n_high"]
                low += regime["breaches_low"]
                n_low += regime["n_low"]
                post += regime["breaches_high_ex_post"]
                n_post += regime["n_high_ex_post"]
                total += entry["breaches"]
        facts[key] = {
            "rate_high": high / n_high if n_high else float("nan"),
            "rate_low": low / n_low if n_low else float("nan"),
            "rate_post": post / n_post if n_post else float("nan"),
            "share_post": post / total if total else float("nan"),
            "share_days_post": n_post / (n_high + n_low) if n_high + n_low else float("nan"),
        }
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=60, help="LSTM epochs (default settings)")
    parser.add_argument("--output", default=str(HERE / "risk.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    sections: list[str] = []
    verdicts: list[str] = []
    paragraphs: list[str] = []
    timings: list[str] = []
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve(folder)
        registry = ModelRegistry(settings.models_dir)
        for ticker, index in INDICES.items():
            clock = time.perf_counter()
            data = load_prices(ticker, source="sample", settings=settings)
            print(f"{ticker}: train encoder", file=sys.stderr, flush=True)
            version = train(data, LSTMConfig(epochs=args.epochs), registry).version
            trained = time.perf_counter() - clock
            print(f"{ticker}: held-out backtest with risk", file=sys.stderr, flush=True)
            run = backtest.held_out(version, data, BASELINES, risk=True)
            risks = {
                dist: backtest.risk_summary(run, dist, LEVELS).summary for dist in DISTRIBUTIONS
            }
            timings.append(
                f"{ticker}: {trained:.0f} s to train (epochs run: "
                f"{version.record.training['epochs_run']}), "
                f"{time.perf_counter() - clock - trained:.0f} s to backtest and score"
            )
            results[ticker] = risks
            first = risks["t"]
            fits = {name: blocks[0]["params"] for name, blocks in risks["t"]["fits"].items()}
            fhs = {name: blocks[0]["params"] for name, blocks in risks["fhs"]["fits"].items()}
            sections.append(f"## {index} sample ({ticker}), horizon 1, held-out\n")
            summary = backtest.summarize(run)
            sections.append(
                f"Test {summary['test_start']} .. {summary['test_end']}, n = {first['n']} days; "
                f"model {version.version}. High ex-ante: trailing 22-day vol above "
                f"{summary['regime']['threshold_ex_ante_vol']:.1%} "
                f"({summary['regime']['n_high_ex_ante']} days); high ex-post: realized "
                f"Garman-Klass vol above {summary['regime']['threshold_ex_post_vol']:.1%} "
                f"({summary['regime']['n_high_ex_post']} days). Distributions fit on "
                f"{first['fits']['lstm'][0]['n']} standardized training returns (lstm).\n"
            )
            sections.append(
                "Fitted on the training period — t: dof / scale; fhs: std of the standardized "
                "returns (1.0 would mean the forecast already has the return's scale):\n"
            )
            sections.append("| model | t dof | t scale | fhs std |\n|---|---:|---:|---:|")
            for name, params in fits.items():
                sections.append(
                    f"| {name} | {params['dof']:.1f} | {params['scale']:.3f} | "
                    f"{fhs[name]['std']:.3f} |"
                )
            sections.append("")
            for alpha in LEVELS:
                sections.append(f"### {alpha:.0%} level ({1 - alpha:.0%} VaR)\n")
                sections.extend(table(risks, alpha))
                sections.append("")
            for dist, risk in risks.items():
                for alpha in LEVELS:
                    entries = {n: levels[f"{alpha:g}"] for n, levels in risk["models"].items()}
                    cover = [n for n, entry in entries.items() if covered(entry)]
                    every = [n for n, entry in entries.items() if passed(entry)]
                    verdicts.append(
                        f"| {ticker} | {dist} | {alpha:.0%} | {', '.join(cover) or 'none'} | "
                        f"{', '.join(every) or 'none'} |"
                    )
            facts = regime_facts(risks)
            one, five = facts["0.01"], facts["0.05"]
            paragraphs.append(
                f"- {ticker}: pooled over the six models under t and fhs, the 1% VaR was "
                f"breached on {one['rate_high']:.1%} of high ex-ante days vs "
                f"{one['rate_low']:.1%} of the rest, and on {one['rate_post']:.1%} of high "
                f"ex-post days, which are {one['share_days_post']:.0%} of the days but hold "
                f"{one['share_post']:.0%} of the breaches; at 5%: {five['rate_high']:.1%} "
                f"high ex-ante vs {five['rate_low']:.1%} rest, {five['rate_post']:.1%} on high "
                f"ex-post days ({five['share_post']:.0%} of the breaches)."
            )
    minutes = (time.perf_counter() - started) / 60
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = f"""# Risk benchmark: VaR and ES from every model's volatility forecast

Measured {stamp} by `bench/risk.py --epochs {args.epochs}` in {minutes:.1f} minutes on this
machine ({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};
load average {load:.1f} at the end, shared with other jobs). Data: the real daily S&P 500
and NASDAQ Composite history shipped with `arch` (1999-2018, `source="sample"`), Garman-Klass
target, horizon 1, default `encoder` LSTM (lookback 22, context 252, 32 units, at most
{args.epochs} epochs with early stopping), trained once per index; last 20% of origins held
out as test. The same held-out forecasts serve all three distributions. c is the
overnight factor (Hansen & Lunde 2005: sum r^2 / sum of the target over the days before
the test period) for every model of the Garman-Klass target, 1 for GARCH/GJR.

- {chr(10).join(timings).replace(chr(10), chr(10) + "- ")}

How to read it (`forecaster/evaluation/risk.py`): VaR/ES of the 1-day log close-to-close
return = sqrt(c x forecast) x the quantile / tail mean of the standardized return under
`normal` (N(0,1), the forecast at face value), `t` (dof and scale fit by maximum likelihood
on that model's standardized training returns) or `fhs` (their empirical quantile and tail
mean). A breach is a return at or below VaR. p-values: Kupiec (coverage), Christoffersen
independence and conditional coverage, McNeil-Frey bootstrap ES test (one-sided: ES not
deep enough; 9999 draws). Basel: share of rolling 250-day windows in the green (<= 4
breaches) / yellow (5-9) / red (>= 10) zone and the zone of the latest window (1% only).
Rates by regime: breaches / days on high ex-ante days (trailing vol above the training 80%
quantile, known at the origin), the other days, and high ex-post days (realized
Garman-Klass vol above its training quantile, known only afterwards). FZ0: mean joint
VaR/ES loss (lower is better); DM: Diebold-Mariano on FZ0 vs HAR (negative = lower loss).
*coverage ok*: Kupiec and conditional coverage p >= 0.05 and (1%) no red window;
*all ok*: that and the ES test p >= 0.05.

## Which models pass

| index | dist | level | coverage ok (Kupiec, cond. coverage, no red window) | also the ES test |
|---|---|---|---|---|
{chr(10).join(verdicts)}

## Under-forecasting in high-volatility regimes

{chr(10).join(paragraphs)}

"""
    text = header + analysis(results) + "\n\n" + "\n".join(sections) + "\n"
    Path(args.output).write_text(text)
    print(f"wrote {args.output} in {minutes:.1f} min", file=sys.stderr)


def analysis(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """What the numbers say about high-volatility regimes, worded from the numbers."""
    facts = {ticker: regime_facts(risks) for ticker, risks in results.items()}
    high = [f["0.01"]["rate_high"] for f in facts.values()]
    low = [f["0.01"]["rate_low"] for f in facts.values()]
    post = [f["0.01"]["rate_post"] for f in facts.values()]
    share = [f["0.01"]["share_post"] for f in facts.values()]
    days = [f["0.01"]["share_days_post"] for f in facts.values()]
    tickers = " and ".join(results)
    lines = []
    if all(h <= lo for h, lo in zip(high, low, strict=True)):
        lines.append(
            f"On both indices ({tickers}) the 1% VaR is breached *less* often on days that "
            "were already turbulent at the forecast origin (high ex-ante) than on the rest: "
            "once high volatility shows in the trailing window every model has caught up, and "
            "a VaR scaled by it is wide enough."
        )
    else:
        lines.append(
            f"The 1% VaR is breached more often on high ex-ante days than on the rest on "
            f"{', '.join(t for t, h, lo in zip(results, high, low, strict=True) if h > lo)}: "
            "the models under-forecast even when the turbulence is already visible at the origin."
        )
    lines.append(
        "The breaches concentrate on high ex-post days — "
        + "; ".join(
            f"{ticker}: {s:.0%} of the breaches on {d:.0%} of the days (rate {r:.1%})"
            for ticker, s, d, r in zip(results, share, days, post, strict=True)
        )
        + ". That is where the volatility forecasts are biased low (the point-forecast "
        "`bias high ex-post`): "
        + (
            "a calm origin followed by a large move — the jump *into* a turbulent spell — is "
            "what no model anticipates; their VaR follows volatility, it does not lead it."
            if all(h <= lo for h, lo in zip(high, low, strict=True))
            else "the models under-forecast both the jump into turbulence and its persistence."
        )
    )
    clustered = [
        (ticker, name)
        for ticker, risks in results.items()
        for name, levels in risks["t"]["models"].items()
        if (levels["0.01"]["christoffersen_independence"] or {"p_value": 1})["p_value"] < PASS
    ]
    total = sum(len(risks["t"]["models"]) for risks in results.values())
    lines.append(
        f"Breaches cluster: under `t`, {len(clustered)} of {total} model-index pairs reject "
        "independence at 1% (Christoffersen p < 0.05), the signature of those spells."
    )
    normal = {
        ticker: risks["normal"]["models"]["lstm"]["0.01"]["breach_rate"]
        for ticker, risks in results.items()
    }
    garch = {
        ticker: risks["normal"]["models"]["garch"]["0.01"]["breach_rate"]
        for ticker, risks in results.items()
    }
    factors = {
        ticker: risks["normal"]["fits"]["lstm"][0]["overnight"] for ticker, risks in results.items()
    }
    lines.append(
        "Under `normal` the forecasts of Garman-Klass variance (lstm, HAR, EWMA, naive, gbm) "
        "are first multiplied by the overnight factor of Hansen & Lunde (2005), sum r^2 / sum "
        "GK over the days before the test period ("
        + ", ".join(f"{ticker} {factor:.3f}" for ticker, factor in factors.items())
        + "): that target covers the session only, the VaR bounds the close-to-close return "
        "(before this factor the lstm breached its 1% normal VaR on 4.4% of SPY days and 5.2% "
        "of QQQ days, bench/risk.md of 2026-11-26). With it: "
        + ", ".join(f"lstm {ticker} {rate:.1%}" for ticker, rate in normal.items())
        + "; GARCH/GJR, fit to close-to-close returns, keep factor 1 ("
        + ", ".join(f"garch {ticker} {rate:.1%}" for ticker, rate in garch.items())
        + "). `t` and `fhs` rescale every model on its own training residuals (the fitted "
        "scale / std in the first table of each index, after the factor), so the factor does "
        "not change them: the lstm's 1% breach rate under `t` is "
        + ", ".join(
            f"{ticker} {risks['t']['models']['lstm']['0.01']['breach_rate']:.1%}"
            for ticker, risks in results.items()
        )
        + ". The ES test is conditional on the breaches: it "
        "asks whether losses beyond VaR are as deep as ES says, so a VaR that is simply too "
        "narrow shows in Kupiec and the traffic light first."
    )
    return "\n\n".join(lines)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
