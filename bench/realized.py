"""Realized measures as targets: the 25 Oxford-Man indices, the S&P 500 on rv5 or Garman–Klass, HARQ.

Writes ``bench/realized.md`` (and ``bench/realized.json``) with every goal of
issue 18 marked met, not met or not measured. One command runs every part:

    PYTHONPATH=. .venv/bin/python bench/realized.py [--parts bars,indices,per-index,spx-targets] [--seeds 3] [--horizons 1,5,22] [--threads 1]

``--parts`` picks the parts to (re)measure (default: all); the sections of the
parts not run are kept as they were in ``bench/realized.json``, each with its
own "Measured" line. ``--threads`` sets TensorFlow's intra/inter-op threads
for the whole process before any model is built (speed only). ``--render-only``
rewrites the .md from the saved .json without measuring anything.

Part A — the 25 indices of ``../shared/data/realized_library.parquet`` (daily
``rv5`` and ``ret``), read through the product's ``--panel`` source into a
temporary home, target ``rv5``. One calendar cut, 2016-01-04: every model and
baseline is fit on data before it (validation = the last 15% of each series'
origins before the cut); test = every origin from the cut to 2021-02-24.
A universal LSTM (one pooled network over the 25 indices; settings printed in
the report, chosen for speed on this 2-core machine, not searched on the test
period), seeds 0..S-1, against per-index ``har``, ``har-pooled`` (one panel
fit), ``garch`` (on ``ret``) and ``gbm``. Ratios: QLIKE / per-index HAR QLIKE
on the same rows, averaged over indices, then mean ± std over seeds.

Part B — HARQ next to HAR on the SPY 5-minute bars 2018–2020
(``../shared/data/intraday``): daily measures, partial days dropped, target
``rv5``, cut 2019-07-01, baselines only (no LSTM).

Part C (``per-index``) — per-index LSTMs next to the universal model: the same
25 series, cut, validation rule and ratio to per-index HAR as part A; one
network per index (the product's single-series ``LSTMForecaster.fit``) with
the universal model's settings, seeds 0..S-1.

Part D (``spx-targets``) — is the gain the target's or the model's? The same
single-series LSTM trained on the .SPX ``rv5`` of the library and on the
Garman–Klass variance of SPY's daily OHLC (``../shared/data/etfs_daily.parquet``;
the library has no high/low), on the dates both hold (inner join), cut
2014-01-02 (chosen before any test result was seen), same validation rule.
Each model's forecasts are scored against both targets with QLIKE; every
ratio is to HAR fit on the scoring target's own series, and HAR fit on the
other target is scored across too. Seeds 0..S-1.
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
from forecaster.data.features import FeatureSpec, build_dataset, split_dataset
from forecaster.data.intraday import daily_measures, read_bars
from forecaster.data.loader import load_prices
from forecaster.data.panel import load_panel, read_panel
from forecaster.data.validation import validate_prices
from forecaster.evaluation.panel import panel_summary
from forecaster.models.baselines import PooledHAR, create_baseline
from forecaster.models.config import LSTMConfig
from forecaster.models.lstm_forecaster import LSTMForecaster
from forecaster.settings import Settings

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
LIBRARY = SHARED / "realized_library.parquet"
BARS = SHARED / "intraday" / "spy_5min_2018_2020.parquet"
ETFS = SHARED / "etfs_daily.parquet"
CUT = pd.Timestamp("2016-01-04")
BARS_CUT = pd.Timestamp("2019-07-01")
#: Part D's cut, inside the .SPX/SPY overlap (2005-02-25 .. 2017-11-10); fixed in advance.
SPX_CUT = pd.Timestamp("2014-01-02")
BASELINES = ("har", "garch", "gbm")
UNIVERSAL = {"ensemble": 1, "batch_size": 256, "epochs": 12, "patience": 3}
#: The single-series LSTMs of parts C and D: the universal model's settings.
PER_SERIES = dict(UNIVERSAL)
#: Part D's two targets: estimator name -> the series it is computed from.
TARGETS = {"rv5": "rv5 of .SPX", "garman-klass": "Garman–Klass of SPY"}
#: Command-line part name -> key in the JSON, in the order they run.
PARTS = {"bars": "bars", "indices": "indices", "per-index": "per_index", "spx-targets": "spx_targets"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def qlike(dataset, rows, forecast) -> np.ndarray:
    return metrics.qlike_losses(dataset.floored_target()[rows], forecast)


def load_library() -> tuple[dict, dict]:
    """The 25 indices through the product's panel source (into a temporary home)."""
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.resolve(home)
        tickers = read_panel(LIBRARY).tickers
        loaded = load_panel(
            tickers,
            lambda t: load_prices(t, panel_path=LIBRARY, settings=settings, estimator="rv5"),
        )
    return {d.ticker: d for d in loaded.loaded}, loaded.failed


def indices_part(seeds: int, horizons: list[int]) -> dict:
    datas, failed = load_library()
    names = sorted(datas)
    out: dict = {"tickers": names, "failed": failed, "horizons": {}}
    for horizon in horizons:
        base = LSTMConfig(horizon=horizon, estimator="rv5", **UNIVERSAL)
        shaper = LSTMForecaster(base)
        datasets = {t: shaper.dataset(datas[t].prices) for t in names}
        rows = {t: split_dataset(ds, test_start=CUT).test for t, ds in datasets.items()}
        clock = time.time()
        pooled = PooledHAR().fit_panel(datasets, CUT)
        losses: dict[str, dict[str, np.ndarray]] = {}
        for t, ds in datasets.items():
            losses[t] = {
                name: qlike(ds, rows[t], create_baseline(name).fit(ds, CUT).predict(ds, rows[t]))
                for name in BASELINES
            }
            losses[t]["har-pooled"] = qlike(
                ds, rows[t], pooled.fresh().fit(ds, CUT).predict(ds, rows[t])
            )
        baseline_seconds = time.time() - clock
        log(f"h={horizon}: baselines in {baseline_seconds:.0f}s")
        fits = []
        for seed in range(seeds):
            clock = time.time()
            model = LSTMForecaster(base.replace(seed=seed)).fit_pooled(datasets, CUT)
            for t, ds in datasets.items():
                view = model.for_ticker(t)
                losses[t][f"lstm#{seed}"] = qlike(ds, rows[t], view.predict(ds, rows[t]))
            fits.append(
                {
                    "seed": seed,
                    "seconds": round(time.time() - clock, 1),
                    "epochs_run": model.training["epochs_run"],
                }
            )
            log(f"h={horizon} seed {seed}: fit in {fits[-1]['seconds']:.0f}s")
        frames = {
            t: pd.DataFrame(losses[t], index=datasets[t].origins[rows[t]]) for t in names
        }
        per_seed = []
        for seed in range(seeds):
            cols = ["har", "har-pooled", "garch", "gbm", f"lstm#{seed}"]
            summary = panel_summary({t: f[cols] for t, f in frames.items()}, "har", horizon)
            versus = panel_summary(
                {t: f[["har-pooled", f"lstm#{seed}"]] for t, f in frames.items()},
                "har-pooled",
                horizon,
            )["models"][f"lstm#{seed}"]
            per_seed.append({"models": summary["models"], "vs_pooled": versus})
        out["horizons"][str(horizon)] = {
            "n_test": {t: int(rows[t].size) for t in names},
            "baseline_seconds": round(baseline_seconds, 1),
            "fits": fits,
            "lstm": [s["models"][f"lstm#{i}"] for i, s in enumerate(per_seed)],
            "lstm_vs_pooled": [s["vs_pooled"] for s in per_seed],
            "baselines": {
                name: per_seed[0]["models"][name] for name in ("har-pooled", "garch", "gbm")
            },
        }
    return out


def bars_part(horizons: list[int]) -> dict:
    frame = daily_measures(read_bars(BARS)).frame
    prices = validate_prices(frame, "SPY bars").prices
    out: dict = {"days": int(len(prices)), "dropped": int(len(frame) - len(prices)), "horizons": {}}
    for horizon in horizons:
        dataset = build_dataset(prices, FeatureSpec(estimator="rv5", horizon=horizon, context=63))
        rows = split_dataset(dataset, test_start=BARS_CUT).test
        result = {}
        for name in ("har", "harq"):
            model = create_baseline(name).fit(dataset, BARS_CUT)
            result[name] = float(np.mean(qlike(dataset, rows, model.predict(dataset, rows))))
            if name == "harq":
                result["harq_filtered"] = model.n_filtered
                result["harq_params"] = model.params
        result["n_test"] = int(rows.size)
        out["horizons"][str(horizon)] = result
    return out


def per_series_fit(config: LSTMConfig, dataset, cut: pd.Timestamp, threads: int | None):
    """One single-series LSTM (the product's per-ticker model) and its fit record."""
    clock = time.time()
    model = LSTMForecaster(config, threads=threads).fit(dataset, cut)
    return model, {
        "seconds": round(time.time() - clock, 1),
        "epochs_run": model.training["epochs_run"],
        "best_epoch": model.training["best_epoch"],
    }


def per_index_part(seeds: int, horizons: list[int], threads: int | None) -> dict:
    datas, failed = load_library()
    names = sorted(datas)
    out: dict = {"tickers": names, "failed": failed, "settings": PER_SERIES, "horizons": {}}
    for horizon in horizons:
        base = LSTMConfig(horizon=horizon, estimator="rv5", **PER_SERIES)
        shaper = LSTMForecaster(base)
        datasets = {t: shaper.dataset(datas[t].prices) for t in names}
        splits = {t: split_dataset(ds, test_start=CUT) for t, ds in datasets.items()}
        rows = {t: split.test for t, split in splits.items()}
        losses = {
            t: {"har": qlike(ds, rows[t], create_baseline("har").fit(ds, CUT).predict(ds, rows[t]))}
            for t, ds in datasets.items()
        }
        fits = []
        for seed in range(seeds):
            clock = time.time()
            records = {}
            for t, ds in datasets.items():
                model, records[t] = per_series_fit(base.replace(seed=seed), ds, CUT, threads)
                losses[t][f"lstm#{seed}"] = qlike(ds, rows[t], model.predict(ds, rows[t]))
            fits.append({"seed": seed, "seconds": round(time.time() - clock, 1), "per_index": records})
            log(f"per-index h={horizon} seed {seed}: 25 fits in {fits[-1]['seconds']:.0f}s")
        frames = {
            t: pd.DataFrame(losses[t], index=datasets[t].origins[rows[t]]) for t in names
        }
        lstm = [
            panel_summary({t: f[["har", f"lstm#{seed}"]] for t, f in frames.items()}, "har", horizon)[
                "models"
            ][f"lstm#{seed}"]
            for seed in range(seeds)
        ]
        out["horizons"][str(horizon)] = {
            "n_train": {t: int(splits[t].train.size) for t in names},
            "n_test": {t: int(rows[t].size) for t in names},
            "fits": fits,
            "lstm": lstm,
            "ratios": {
                t: [float(f[f"lstm#{s}"].mean() / f["har"].mean()) for s in range(seeds)]
                for t, f in frames.items()
            },
        }
    return out


def spx_frames() -> tuple[dict[str, pd.DataFrame], dict]:
    """.SPX (rv5, ret) and SPY (OHLC) on the dates both hold, and what the join dropped."""
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.resolve(home)
        spx = load_prices("SPX", panel_path=LIBRARY, settings=settings, estimator="rv5").prices
        spy = load_prices("SPY", source="panel", panel_path=ETFS, settings=settings).prices
    common = spx.index.intersection(spy.index)
    span = slice(common[0], common[-1])
    join = {
        "first": f"{common[0]:%Y-%m-%d}",
        "last": f"{common[-1]:%Y-%m-%d}",
        "rows": int(len(common)),
        "dropped": {
            name: [f"{d:%Y-%m-%d}" for d in frame.loc[span].index.difference(common)]
            for name, frame in (("SPX", spx), ("SPY", spy))
        },
    }
    return {"rv5": spx.loc[common], "garman-klass": spy.loc[common]}, join


def scores(truth: dict[str, np.ndarray], forecast: np.ndarray) -> dict[str, float]:
    """Mean QLIKE of one forecast against each of part D's targets."""
    return {name: float(np.mean(metrics.qlike_losses(y, forecast))) for name, y in truth.items()}


def spx_targets_part(seeds: int, horizons: list[int], threads: int | None) -> dict:
    frames, join = spx_frames()
    out: dict = {"join": join, "cut": f"{SPX_CUT:%Y-%m-%d}", "settings": PER_SERIES, "horizons": {}}
    for horizon in horizons:
        configs = {
            name: LSTMConfig(horizon=horizon, estimator=name, **PER_SERIES) for name in TARGETS
        }
        sets = {name: LSTMForecaster(configs[name]).dataset(frames[name]) for name in TARGETS}
        first, second = TARGETS
        if not sets[first].origins.equals(sets[second].origins):
            raise RuntimeError(f"h={horizon}: the two targets' datasets have different origins")
        split = split_dataset(sets[first], test_start=SPX_CUT)  # the same rows for both
        rows = split.test
        dates = sets[first].origins[rows]
        truth = {name: ds.floored_target()[rows] for name, ds in sets.items()}
        har = {
            name: scores(truth, create_baseline("har").fit(ds, SPX_CUT).predict(ds, rows))
            for name, ds in sets.items()
        }
        lstm, fits = [], []
        for seed in range(seeds):
            trained = {}
            for name, ds in sets.items():
                model, record = per_series_fit(configs[name].replace(seed=seed), ds, SPX_CUT, threads)
                trained[name] = scores(truth, model.predict(ds, rows))
                fits.append({"seed": seed, "target": name, **record})
            lstm.append(trained)
            log(f"spx-targets h={horizon} seed {seed}: done")
        train = {name: ds.floored_target()[split.train] for name, ds in sets.items()}
        level = {
            "test_median": float(np.median(truth["garman-klass"] / truth["rv5"])),
            "train_median": float(np.median(train["garman-klass"] / train["rv5"])),
        }
        out["horizons"][str(horizon)] = {
            "test": {
                "first": f"{dates[0]:%Y-%m-%d}",
                "last": f"{dates[-1]:%Y-%m-%d}",
                "origins": int(dates.size),
            },
            "train_origins": int(split.train.size),
            "validation_origins": int(split.validation.size),
            "n_floored": {name: int(ds.n_floored) for name, ds in sets.items()},
            "qlike": {"har": har, "lstm": lstm},
            "level": level,
            "fits": fits,
        }
    return out


def mean_std(values: list[float]) -> str:
    values = [float(v) for v in values]
    if len(values) == 1:
        return f"{values[0]:.3f} (1 seed)"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


GOALS = {"1": (0.92, 0.80), "5": (0.95, None), "22": (0.97, None)}


def doc_part(letter: str) -> str:
    """Part ``letter``'s paragraph of the module docstring, on one line."""
    text = __doc__.split(f"Part {letter} ", 1)[1].split("\n\nPart ", 1)[0]
    return " ".join(text.split("— ", 1)[1].split())


def run_line(run: dict) -> str:
    """The "Measured ..." line of one section."""
    threads = ""
    if "threads" in run:
        threads = (
            "; TensorFlow's default threads"
            if run["threads"] is None
            else f"; TensorFlow on {run['threads']} thread{'s' if run['threads'] > 1 else ''}"
        )
    note = f" ({run['note']})" if run.get("note") else ""
    return (
        f"Measured {run['date']} on this machine ({run['machine']}, shared with other jobs"
        f"{threads}) by `{run['command']}` in {run['minutes']:.1f} minutes{note}."
    )


def render(result: dict) -> str:
    lines = [
        "# Realized measures: the 25 Oxford-Man indices, the S&P 500's two targets and HARQ "
        "on the SPY bars",
        "",
        "Written by `PYTHONPATH=. .venv/bin/python bench/realized.py` (every part; "
        "`--parts per-index,spx-targets` re-measures only those parts and keeps the other "
        "sections as they were). Each section says when and by which command it was "
        "measured; raw figures: `bench/realized.json`.",
        "",
        __doc__.splitlines()[0],
        "",
    ]
    lines += render_goals(result)
    if "indices" in result or "per_index" in result:
        lines += render_indices(result.get("indices"), result.get("per_index"))
    if "spx_targets" in result:
        lines += render_spx(result["spx_targets"])
    if "bars" in result:
        lines += render_bars(result["bars"])
    return "\n".join(lines)


def render_goals(result: dict) -> list[str]:
    lines = ["## Goals", "", "| goal | measured | status |", "|---|---|---|"]
    part_a = result.get("indices")
    measured = part_a["run"]["horizons"] if part_a else []
    for horizon in measured:
        entry = part_a["horizons"][horizon]
        ratios = [row["mean_ratio"] for row in entry["lstm"]]
        limit, share = GOALS.get(horizon, (None, None))
        if limit is not None:
            status = "met" if np.mean(ratios) <= limit else "not met"
            lines.append(
                f"| h={horizon}: mean QLIKE ratio to per-index HAR <= {limit} | "
                f"{mean_std(ratios)} | {status} |"
            )
        pooled = entry["baselines"]["har-pooled"]["mean_ratio"]
        better = all(r < pooled for r in ratios)
        lines.append(
            f"| h={horizon}: better than har-pooled (mean ratio {pooled:.3f}) | "
            f"{mean_std(ratios)} | {'met' if better else 'not met'} |"
        )
        if share is not None:
            shares = [row["share_beating"] for row in entry["lstm"]]
            status = "met" if np.mean(shares) >= share else "not met"
            lines.append(
                f"| h={horizon}: beats HAR on >= {share:.0%} of indices | "
                f"{np.mean(shares):.0%} (per seed: {', '.join(f'{s:.0%}' for s in shares)}) | "
                f"{status} |"
            )
    for horizon in (h for h in ("1", "5", "22") if h not in measured):
        lines.append(f"| h={horizon}: universal model goals | — | not measured (time) |")
    lines.append(per_index_goal(part_a, result.get("per_index")))
    lines.append(spx_goal(result.get("spx_targets")))
    dropped = f"{result['bars']['dropped']} of" if "bars" in result else "the partial days of"
    lines += [
        "| intraday measures exact (rv5, bv, rsv-pos + rsv-neg = rv5, rq) to 1e-12 | "
        "`tests/data/test_intraday.py` (independent computation in the test) | met |",
        "| a partial day is never scored as a full one | dropped by the daily source "
        f"({dropped} the SPY bars' days); `target_measure` NaN | met |",
        "| risk: 1% normal VaR of the default model on the S&P 500 sample <= 2% breaches "
        "(overnight factor included) | 16 of 951 days, 1.68% (`bench/risk.md`, 2026-12-05; "
        "4.4% before the factor) | met |",
        "| risk: t-VaR passes Kupiec at 1% and 5% | Kupiec p 0.054 at 1%, 0.718 at 5% "
        "(`bench/risk.md`, 2026-12-05; conditional coverage still fails at 1%) | met |",
        "| `forecast realized --bars` on the 3 years of SPY bars under 5 s | 1.07 s "
        "(`bench/realized_bars.md`, 2026-12-05) | met |",
        "",
    ]
    return lines


def per_index_goal(part_a: dict | None, part_c: dict | None) -> str:
    goal = "| per-index LSTMs next to the universal model (mean ratio to per-index HAR)"
    if part_c is None:
        return f"{goal} | — | not measured (time) |"
    figures, lower = [], {"universal": [], "per-index": []}
    for horizon in part_c["run"]["horizons"]:
        own = [row["mean_ratio"] for row in part_c["horizons"][horizon]["lstm"]]
        text = f"h={horizon}: per-index {mean_std(own)}"
        if part_a is not None and horizon in part_a["horizons"]:
            pooled = [row["mean_ratio"] for row in part_a["horizons"][horizon]["lstm"]]
            text += f", universal {mean_std(pooled)}"
            lower["universal" if np.mean(pooled) < np.mean(own) else "per-index"].append(horizon)
        figures.append(text)
    verdict = "; ".join(
        f"the {name} model's mean ratio is the lower at h={', '.join(hs)}"
        for name, hs in lower.items()
        if hs
    )
    return (
        f"{goal} | {'; '.join(figures)} | measured {part_c['run']['date']}"
        + (f" ({verdict})" if verdict else "")
        + " |"
    )


def spx_goal(part_d: dict | None) -> str:
    goal = "| S&P 500: the model trained on rv5 and on Garman-Klass, scored on both"
    if part_d is None:
        return f"{goal} | — | not measured (time) |"
    figures = []
    for horizon in part_d["run"]["horizons"]:
        ratio = spx_ratios(part_d["horizons"][horizon])
        figures.append(
            f"h={horizon}: LSTM / HAR on its own target: rv5 "
            f"{mean_std(ratio['lstm']['rv5']['rv5'])}, Garman-Klass "
            f"{mean_std(ratio['lstm']['garman-klass']['garman-klass'])}"
        )
    return (
        f"{goal} | {'; '.join(figures)} (2x2 tables below) | measured {part_d['run']['date']} |"
    )


def render_indices(part_a: dict | None, part_c: dict | None) -> list[str]:
    lines = ["## The 25 Oxford-Man indices (target rv5)", ""]
    if part_a is not None:
        lines += [
            "Universal model and baselines: " + run_line(part_a["run"]),
            "",
            "Protocol: " + doc_part("A"),
            "",
            f"Universal LSTM settings: default encoder LSTM (32 units, lookback 22, context "
            f"252), target rv5, {UNIVERSAL}.",
            "",
        ]
    if part_c is not None:
        lines += [
            "Per-index LSTMs: " + run_line(part_c["run"]),
            "",
            "Protocol: " + doc_part("C") + f" Settings: {part_c['settings']}.",
            "",
        ]
    horizons = list(part_a["run"]["horizons"] if part_a else [])
    horizons += [h for h in (part_c["run"]["horizons"] if part_c else []) if h not in horizons]
    for horizon in sorted(horizons, key=int):
        entry = part_a["horizons"].get(horizon) if part_a else None
        own = part_c["horizons"].get(horizon) if part_c else None
        lines += [
            f"### h = {horizon}",
            "",
            "| model | mean ratio to HAR | median ratio | beats HAR | panel DM stat (p) |",
            "|---|---|---|---|---|",
        ]
        for name, rows in (
            ("universal LSTM", entry["lstm"] if entry else None),
            ("per-index LSTM", own["lstm"] if own else None),
        ):
            if rows is None:
                lines.append(f"| {name} | not measured | | | |")
                continue
            lines.append(
                f"| {name} | {mean_std([r['mean_ratio'] for r in rows])} | "
                f"{mean_std([r['median_ratio'] for r in rows])} | "
                f"{np.mean([r['share_beating'] for r in rows]):.0%} | "
                + ", ".join(f"{r['dm_stat']:+.2f} ({r['dm_p_value']:.3f})" for r in rows)
                + " |"
            )
        for name, row in (entry["baselines"] if entry else {}).items():
            lines.append(
                f"| {name} | {row['mean_ratio']:.3f} | {row['median_ratio']:.3f} | "
                f"{row['share_beating']:.0%} | {row['dm_stat']:+.2f} ({row['dm_p_value']:.3f}) |"
            )
        lines.append("")
        if entry is not None:
            versus = entry["lstm_vs_pooled"]
            lines += [
                "garch is fit to the close-to-close returns (`ret`), so it forecasts the "
                "close-to-close variance, overnight part included, while the target rv5 covers "
                "the session only: its ratio measures that level gap as much as the model.",
                "",
                f"Universal LSTM against har-pooled directly: mean ratio "
                f"{mean_std([r['mean_ratio'] for r in versus])}, beats it on "
                f"{np.mean([r['share_beating'] for r in versus]):.0%} of indices. Fits: "
                + "; ".join(
                    f"seed {f['seed']} {f['seconds']:.0f} s ({f['epochs_run']} epochs)"
                    for f in entry["fits"]
                )
                + f"; baselines {entry['baseline_seconds']:.0f} s.",
                "",
            ]
        if own is not None:
            lines += [per_index_notes(own, entry), ""]
    return lines


def per_index_notes(own: dict, universal: dict | None) -> str:
    """Cost, epochs and the per-index/universal comparison of one horizon."""
    records = [r for fit in own["fits"] for r in fit["per_index"].values()]
    epochs = PER_SERIES["epochs"]
    capped = capped_fits(records)
    seeds = len(own["fits"])
    train = own["n_train"]
    steps = {t: -(-n // PER_SERIES["batch_size"]) for t, n in train.items()}
    pooled_steps = -(-sum(train.values()) // PER_SERIES["batch_size"])
    text = (
        f"Per-index LSTMs: {len(records)} fits (25 indices x {seeds} seeds), "
        + "; ".join(f"seed {f['seed']} {f['seconds']:.0f} s" for f in own["fits"])
        + f". {capped} of {len(records)} fits ran to the cap of {epochs} epochs with the "
        f"last epoch their best (early stopping did not end them); an epoch is "
        f"{int(np.median(list(steps.values())))} batches for one index (median) against "
        f"about {pooled_steps} for the universal model over all 25."
    )
    if 2 * capped > len(records):
        text += (
            " Most fits were still improving when the cap stopped them: at the universal "
            "model's settings these per-index networks are probably under-trained (a longer "
            "schedule was not run)."
        )
    ratios = own["ratios"]
    beaten = sum(np.mean(r) < 1 for r in ratios.values())
    text += (
        f" Per index, averaged over seeds, the per-index LSTM beats HAR on {beaten} of "
        f"{len(ratios)}."
    )
    if universal is not None:
        pooled = np.mean([r["mean_ratio"] for r in universal["lstm"]])
        mine = np.mean([r["mean_ratio"] for r in own["lstm"]])
        better = "universal" if pooled < mine else "per-index"
        text += (
            f" The {better} model has the lower mean ratio ({pooled:.3f} universal, "
            f"{mine:.3f} per-index, means over seeds; the universal figures are from the "
            f"earlier run)."
        )
    return text


def capped_fits(records: list[dict]) -> int:
    """Fits that ran to the epoch cap with the last epoch their best."""
    epochs = PER_SERIES["epochs"]
    return sum(r["best_epoch"] == r["epochs_run"] == epochs for r in records)


def spx_reading(ratio: dict) -> str:
    """What part D's tables say, from their figures (lower QLIKE is better)."""
    gk, rv5 = "garman-klass", "rv5"
    names = {rv5: "rv5", gk: "Garman–Klass"}
    lstm = {t: {s: float(np.mean(v)) for s, v in row.items()} for t, row in ratio["lstm"].items()}
    parts = []
    for scored in TARGETS:
        best = min(TARGETS, key=lambda trained, scored=scored: lstm[trained][scored])
        parts.append(
            f"scored on {names[scored]}, the LSTM trained on {names[best]} is the better one "
            f"({lstm[best][scored]:.3f} against "
            f"{lstm[gk if best == rv5 else rv5][scored]:.3f})"
        )
    own = [f"{names[t]} {lstm[t][t]:.3f}" for t in TARGETS]
    beats = [t for t in TARGETS if lstm[t][t] < 1]
    parts.append(
        f"against HAR on its own target the LSTM is at {', '.join(own)}"
        + (f" (below 1, better than HAR, on {', '.join(names[t] for t in beats)})" if beats
           else " (worse than HAR on both)")
    )
    parts.append(
        f"on the Garman–Klass target, HAR fit on rv5 has {ratio['har'][rv5][gk]:.3f} times the "
        f"QLIKE of HAR fit on Garman–Klass itself; on the rv5 target, HAR fit on Garman–Klass "
        f"has {ratio['har'][gk][rv5]:.3f} times that of HAR fit on rv5"
    )
    return "Reading (means over seeds): " + "; ".join(parts) + "."


def spx_ratios(entry: dict) -> dict:
    """Part D's ratios: each model's QLIKE on a target / HAR's own QLIKE on that target."""
    har = entry["qlike"]["har"]
    reference = {scored: har[scored][scored] for scored in TARGETS}
    return {
        "har": {t: {s: har[t][s] / reference[s] for s in TARGETS} for t in TARGETS},
        "lstm": {
            t: {s: [seed[t][s] / reference[s] for seed in entry["qlike"]["lstm"]] for s in TARGETS}
            for t in TARGETS
        },
        "same_training": {
            t: {s: [seed[t][s] / har[t][s] for seed in entry["qlike"]["lstm"]] for s in TARGETS}
            for t in TARGETS
        },
        "reference": reference,
    }


def render_spx(part: dict) -> list[str]:
    join = part["join"]
    dropped = "; ".join(
        f"{name} rows dropped: {', '.join(days)}" for name, days in join["dropped"].items() if days
    )
    names = {"rv5": "rv5 (.SPX)", "garman-klass": "Garman–Klass (SPY)"}
    lines = [
        "## S&P 500: the LSTM trained on rv5 or on Garman–Klass, scored on both",
        "",
        run_line(part["run"]),
        "",
        "Protocol: " + doc_part("D") + f" Settings: {part['settings']}.",
        "",
        "Data: `rv5` and `ret` of .SPX (the index; `realized_library.parquet`, 5-minute "
        "realized variance of the session) and SPY's open, high, low and close (the ETF; "
        "`etfs_daily.parquet`, back-adjusted daily prices). These are different instruments "
        "measured differently: the index's intraday realized variance against a range "
        f"estimator of the ETF. Inner join on dates: {join['first']} .. {join['last']}, "
        f"{join['rows']} rows ({dropped or 'nothing dropped'}). Each LSTM and each HAR reads "
        "its own series only: the rv5 ones .SPX's rv5 and returns, the Garman–Klass ones "
        f"SPY's Garman–Klass variance and close-to-close returns. Cut {part['cut']}.",
        "",
    ]
    for horizon in part["run"]["horizons"]:
        entry = part["horizons"][horizon]
        ratio = spx_ratios(entry)
        test = entry["test"]
        seeds = len(entry["qlike"]["lstm"])
        lines += [
            f"### h = {horizon}",
            "",
            f"Test origins {test['first']} .. {test['last']} ({test['origins']}); "
            f"{entry['train_origins']} training and {entry['validation_origins']} validation "
            "origins before the cut. QLIKE ratio to HAR fit on the scoring target's own series "
            f"(LSTM: mean ± std over {seeds} seeds):",
            "",
            "| trained on ↓, scored on → | " + " | ".join(names[s] for s in TARGETS) + " |",
            "|---|---|---|",
        ]
        for model in ("lstm", "har"):
            for trained in TARGETS:
                cells = [
                    mean_std(ratio["lstm"][trained][s]) if model == "lstm"
                    else f"{ratio['har'][trained][s]:.3f}"
                    for s in TARGETS
                ]
                lines.append(f"| {model.upper()}, {names[trained]} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "HAR QLIKE on its own target (the denominators): "
            + ", ".join(f"{names[s]} {ratio['reference'][s]:.4f}" for s in TARGETS)
            + ".",
            "",
            "LSTM / HAR fit on the same target as the LSTM, scored on each target (both "
            "carry the same level gap when scored across):",
            "",
            "| trained on ↓, scored on → | " + " | ".join(names[s] for s in TARGETS) + " |",
            "|---|---|---|",
        ]
        for trained in TARGETS:
            lines.append(
                f"| {names[trained]} | "
                + " | ".join(mean_std(ratio["same_training"][trained][s]) for s in TARGETS)
                + " |"
            )
        level = entry["level"]
        fits = entry["fits"]
        lines += [
            "",
            f"Level: the median ratio of the two targets (Garman–Klass of SPY / rv5 of .SPX, "
            f"each the mean over the {horizon} day(s) after the origin) is "
            f"{level['test_median']:.3f} over the test origins ({level['train_median']:.3f} "
            "over the training origins). QLIKE punishes a forecast that is steadily too high "
            "or too low, so a model scored on the target it was not trained on pays for this "
            "gap as well as for its errors: read the off-diagonal cells of the first table with "
            "it in mind; the second table compares models that pay the same gap. "
            f"Garman–Klass days clipped at the variance floor: "
            f"{entry['n_floored']['garman-klass']}.",
            "",
            spx_reading(ratio),
            "",
            "Fits: "
            + "; ".join(
                f"seed {f['seed']} {f['target']} {f['seconds']:.0f} s ({f['epochs_run']} "
                f"epochs, best {f['best_epoch']})"
                for f in fits
            )
            + f"; {capped_fits(fits)} of {len(fits)} ran to the cap of {PER_SERIES['epochs']} "
            "epochs with the last epoch their best.",
            "",
        ]
    return lines


def render_bars(bars: dict) -> list[str]:
    lines = [
        "## HARQ next to HAR on the SPY 5-minute bars (2018–2020)",
        "",
        run_line(bars["run"]),
        "",
        f"{bars['days']} full days ({bars['dropped']} partial days dropped), target rv5, "
        f"fit before {BARS_CUT:%Y-%m-%d}, scored on every origin from it.",
        "",
        "| h | test origins | HAR QLIKE | HARQ QLIKE | HARQ / HAR | forecasts replaced by the "
        "insanity filter |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for horizon, row in bars["horizons"].items():
        lines.append(
            f"| {horizon} | {row['n_test']} | {row['har']:.4f} | {row['harq']:.4f} | "
            f"{row['harq'] / row['har']:.3f} | {row['harq_filtered']} |"
        )
    lines += [
        "",
        "HAR here is the product's log-HAR (with its log-normal correction); HARQ is the "
        "paper's levels regression. One short sample (18 months of fit, 18 months of "
        "test including March 2020): a report, not a ranking.",
        "",
    ]
    return lines


def upgrade(saved: dict) -> dict:
    """A JSON written before ``--parts`` (one run of parts A and B) in the per-part layout."""
    if "date" not in saved:
        return saved
    command = (
        f"PYTHONPATH=. .venv/bin/python bench/realized.py --seeds {saved['seeds']} "
        f"--horizons {','.join(saved['horizons'])}"
    )
    run = {
        "date": saved["date"],
        "machine": saved["machine"],
        "command": command,
        "minutes": saved["minutes"],
        "note": "one run for the indices and the bars",
    }
    return {
        "indices": {
            **saved["indices"],
            "run": {**run, "threads": None, "seeds": saved["seeds"], "horizons": saved["horizons"]},
        },
        "bars": {**saved["bars"], "run": run},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to measure, of {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--horizons", default="1,5,22")
    parser.add_argument(
        "--threads", type=int, default=1, help="TensorFlow threads (0: TensorFlow's default)"
    )
    parser.add_argument("--output", default=str(HERE / "realized.md"))
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the .md from the saved .json without measuring anything",
    )
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        parser.error(f"unknown part(s) {unknown or parts}; choose from {', '.join(PARTS)}")
    horizons = [int(h) for h in args.horizons.split(",")]
    threads = args.threads or None
    output = Path(args.output)
    saved = output.with_suffix(".json")
    result = upgrade(json.loads(saved.read_text())) if saved.exists() else {}
    if args.render_only:
        output.write_text(render(result))
        log(f"wrote {output} from {saved}")
        return
    if threads is not None and any(p != "bars" for p in parts):
        from forecaster.models.training import configure_tensorflow

        configure_tensorflow(threads, seed=0)  # before any model: the whole process
    command = (
        f"PYTHONPATH=. .venv/bin/python bench/realized.py --parts {','.join(parts)} "
        f"--seeds {args.seeds} --horizons {args.horizons} --threads {args.threads}"
    )
    for part in (p for p in PARTS if p in parts):
        started = time.time()
        if part == "bars":
            section = bars_part([1, 5, 22])
        elif part == "indices":
            section = indices_part(args.seeds, horizons)
        elif part == "per-index":
            section = per_index_part(args.seeds, horizons, threads)
        else:
            section = spx_targets_part(args.seeds, horizons, threads)
        section["run"] = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "command": command,
            "minutes": (time.time() - started) / 60,
        }
        if part != "bars":
            section["run"].update(
                threads=threads, seeds=args.seeds, horizons=[str(h) for h in horizons]
            )
        result[PARTS[part]] = section
        # Written after every part: a later failure keeps what was measured.
        output.write_text(render(result))
        saved.write_text(json.dumps(result, indent=1, default=float))
        log(f"{part} done in {section['run']['minutes']:.1f} min; wrote {output}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
