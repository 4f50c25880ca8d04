"""How often the nightly promotion rule promotes a challenger that is no better, and how fast
it promotes one that is.

Data: ``../shared/data/stocks_daily.parquet`` through the product's ``--panel``
source; the first N tickers of ``bench/universe_unseen.txt``. Every model is fit
on data before 2014-01-02 (validation = the last 15% of origins before it) and
forecasts every origin after it, out of sample.

* **No real improvement**: champion = the single-series LSTM with seed 0,
  challenger = the same model and data with seed 1 (one member each, default
  settings otherwise) — the issue's "champion retrained with another seed".
* **A clearly better challenger**: champion = the ``naive`` baseline (last
  day's variance), challenger = the seed-0 LSTM.

A replayed night at origin t compares the two on the window the nightly job
uses: the last ``--window-days`` (63) origins whose h-day targets are realized
at t. Nights are every trading day of the test period (overlapping windows:
the share of nights promoted is an average over them, not a count of
independent trials). The decision is :func:`forecaster.jobs.nightly.decide`
with the defaults (one-sided DM at 0.05, at least 40 scored origins), next to
the old rule (promote when the challenger's QLIKE is no worse).

    .venv/bin/python bench/promotion.py          # writes bench/promotion.md and .json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.features import split_dataset
from forecaster.data.loader import load_prices
from forecaster.jobs.nightly import DEFAULT_WINDOW_DAYS, PromotionRule, decide
from forecaster.models.baselines import create_baseline
from forecaster.models.config import LSTMConfig
from forecaster.models.lstm_forecaster import LSTMForecaster
from forecaster.settings import Settings

HERE = Path(__file__).resolve().parent
PANEL = HERE.parent.parent / "shared" / "data" / "stocks_daily.parquet"
CUT = pd.Timestamp("2014-01-02")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


#: Levels whose promotion rates are reported besides the default rule's.
LEVELS = (0.01, 0.025, 0.05, 0.10)


def replay(
    challenger: np.ndarray, champion: np.ndarray, target: np.ndarray, horizon: int, rule
) -> list[dict]:
    """One decision per night: window = the last 63 origins realized by the night's origin."""
    window = DEFAULT_WINDOW_DAYS
    challenger_loss = metrics.qlike_losses(target, challenger)
    champion_loss = metrics.qlike_losses(target, champion)
    nights = []
    # night at test origin j: origins j-h-window+1 .. j-h have realized targets
    for j in range(window + horizon - 1, target.size):
        rows = slice(j - horizon - window + 1, j - horizon + 1)
        verdict = decide(challenger_loss[rows], champion_loss[rows], horizon, rule)
        p_value = 1.0 if verdict.dm_pvalue is None else verdict.dm_pvalue
        nights.append(
            {
                "new": verdict.decision == "promoted",
                "old": bool(challenger_loss[rows].mean() <= champion_loss[rows].mean()),
                **{f"at {level:g}": bool(p_value < level) for level in LEVELS},
            }
        )
    return nights


def run(args) -> dict:
    names = [
        line.strip()
        for line in (HERE / "universe_unseen.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ][: args.tickers]
    rule = PromotionRule()
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "tickers": names,
        "cut": f"{CUT:%Y-%m-%d}",
        "rule": {"level": rule.level, "min_scored": rule.min_scored, "window": DEFAULT_WINDOW_DAYS},
        "horizons": {},
    }
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.resolve(home)
        datas = {t: load_prices(t, source="panel", panel_path=PANEL, settings=settings) for t in names}
    for horizon in args.horizons:
        per_ticker = {}
        for t in names:
            t0 = time.time()
            forecasts = {}
            for seed in (0, 1):
                config = LSTMConfig(horizon=horizon, seed=seed, ensemble=1)
                model = LSTMForecaster(config)
                ds = model.dataset(datas[t].prices)
                rows = split_dataset(ds, test_start=CUT).test
                model.fit(ds, CUT)
                forecasts[seed] = model.predict(ds, rows)
            naive = create_baseline("naive").fit(ds, CUT).predict(ds, rows)
            target = ds.floored_target()[rows]
            twin = replay(forecasts[1], forecasts[0], target, horizon, rule)
            better = replay(forecasts[0], naive, target, horizon, rule)
            first_new = next((i + 1 for i, n in enumerate(better) if n["new"]), None)
            promoted_at = [i for i, n in enumerate(better) if n["new"]]
            waits = []  # from each night: nights until the next promotion (that night = 1)
            for start in range(len(better)):
                later = [i for i in promoted_at if i >= start]
                if later:
                    waits.append(later[0] - start + 1)
            per_ticker[t] = {
                "nights": len(twin),
                "twin_promoted_new": sum(n["new"] for n in twin) / len(twin),
                "twin_promoted_old": sum(n["old"] for n in twin) / len(twin),
                "better_promoted_new": sum(n["new"] for n in better) / len(better),
                **{
                    f"twin {key}": sum(n[key] for n in twin) / len(twin)
                    for key in twin[0]
                    if key.startswith("at ")
                },
                **{
                    f"better {key}": sum(n[key] for n in better) / len(better)
                    for key in better[0]
                    if key.startswith("at ")
                },
                "better_first_night_new": first_new,
                "better_wait_median": float(np.median(waits)) if waits else None,
                "qlike_ratio_seed1_seed0": float(
                    metrics.qlike(target, forecasts[1]) / metrics.qlike(target, forecasts[0])
                ),
                "qlike_ratio_lstm_naive": float(
                    metrics.qlike(target, forecasts[0]) / metrics.qlike(target, naive)
                ),
            }
            log(f"h={horizon} {t}: {per_ticker[t]} ({time.time() - t0:.0f}s)")
        frame = pd.DataFrame(per_ticker).T
        result["horizons"][str(horizon)] = {
            "per_ticker": per_ticker,
            "twin_promoted_new": float(frame["twin_promoted_new"].mean()),
            "twin_promoted_old": float(frame["twin_promoted_old"].mean()),
            "better_promoted_new": float(frame["better_promoted_new"].mean()),
            "better_first_night_median": float(
                pd.to_numeric(frame["better_first_night_new"]).median()
            ),
            "better_never": int(frame["better_first_night_new"].isna().sum()),
            "better_wait_median": float(pd.to_numeric(frame["better_wait_median"]).median()),
            "by_level": {
                f"{level:g}": {
                    "twin": float(frame[f"twin at {level:g}"].mean()),
                    "better": float(frame[f"better at {level:g}"].mean()),
                }
                for level in LEVELS
            },
        }
    return result


def render(result: dict) -> str:
    rule = result["rule"]
    lines = [
        "# Promotion rule: false promotions and time to promote",
        "",
        f"Measured {result['date']} on {result['machine']} with `.venv/bin/python "
        "bench/promotion.py` (script docstring: protocol).",
        "",
        f"Rule: one-sided Diebold–Mariano on the QLIKE losses of the last {rule['window']} "
        f"realized origins, promote at p < {rule['level']}, at least {rule['min_scored']} "
        "scored origins (and 2h+1). Old rule: promote when the challenger's QLIKE is no worse.",
        f"Tickers ({len(result['tickers'])}, real stocks never used to choose anything): "
        + ", ".join(result["tickers"])
        + f". Models fit before {result['cut']}; every trading day after it is a replayed night.",
        "",
        "| h | nights/ticker | twin promoted, DM rule | twin promoted, old rule | "
        "better promoted (share of nights), DM rule | first night promoted, median | "
        "nights to wait from any night, median | never |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for h, row in result["horizons"].items():
        nights = int(np.median([v["nights"] for v in row["per_ticker"].values()]))
        lines.append(
            f"| {h} | {nights} | {row['twin_promoted_new']:.1%} | {row['twin_promoted_old']:.1%} | "
            f"{row['better_promoted_new']:.1%} | {row['better_first_night_median']:.0f} | "
            f"{row['better_wait_median']:.0f} | "
            f"{row['better_never']} of {len(row['per_ticker'])} |"
        )
    lines += [
        "",
        "Share of nights promoted at other levels of the same test (mean over tickers):",
        "",
        "| h | level | twin promoted | better promoted |",
        "|---|---|---|---|",
    ]
    for h, row in result["horizons"].items():
        for level, rates in row["by_level"].items():
            lines.append(f"| {h} | {level} | {rates['twin']:.1%} | {rates['better']:.1%} |")
    lines += [
        "",
        "Twin = the champion retrained with another seed (no real improvement): the share of "
        "nights it is promoted is the false-promotion rate. Better = LSTM challenger vs the "
        "naive champion; 'first night' counts replayed nights from the first one with a full "
        "window; 'nights to wait' is, from every replayed night, the number of nights until "
        "the next promotion (1 = that night), median over nights then over tickers; "
        "'never' = tickers where it was never promoted.",
        "",
        "Per ticker:",
        "",
        "| h | ticker | QLIKE seed1/seed0 | twin DM | twin old | QLIKE lstm/naive | better DM | first night |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for h, row in result["horizons"].items():
        for t, v in row["per_ticker"].items():
            lines.append(
                f"| {h} | {t} | {v['qlike_ratio_seed1_seed0']:.3f} | {v['twin_promoted_new']:.1%} | "
                f"{v['twin_promoted_old']:.1%} | {v['qlike_ratio_lstm_naive']:.3f} | "
                f"{v['better_promoted_new']:.1%} | {v['better_first_night_new']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=8)
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 22])
    parser.add_argument("--out", default=str(HERE / "promotion"))
    args = parser.parse_args()
    result = run(args)
    Path(args.out + ".json").write_text(json.dumps(result, indent=1) + "\n")
    Path(args.out + ".md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
