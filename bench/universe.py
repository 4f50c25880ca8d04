"""A universal model on real stocks: trained on 100, scored on them and zero-shot on 50 others.

Data: ``../shared/data/stocks_daily.parquet`` (150 real US stocks, 1999-01-04 ..
2017-11-10) read through the product's ``--panel`` source (per-ticker
validation, bad-print repair, cache) into a temporary home; the market input
is the S&P 500 index shipped with ``arch`` (the ``sample`` source's SPY) and
the exogenous input is CBOE's VIX history (``../shared/data/vix``).

Protocol (nothing is chosen on the test period):

* tickers: the 150 sorted, shuffled with ``numpy.random.default_rng(2026)``;
  the first 100 (``bench/universe_train.txt``) train the universal model
  ("seen"), the other 50 (``bench/universe_unseen.txt``) are never shown to it
  ("unseen", zero-shot: standardized by their own rows before the cut);
* one calendar cut for everything, 2014-01-02: every model and baseline is fit
  on data before it; validation = the last 15% of each series' origins before
  the cut (early stopping and the scale correction); test = every origin from
  the cut to the end of the data;
* the universal LSTM (``--market SPY --exog VIX=...``, settings printed in the
  report), seeds 0..S-1, at h = 1, 5, 22;
* baselines fit per ticker before the cut: ``har``, ``harx`` (HAR + the same
  market and VIX inputs), ``garch``, ``gbm``; ``har-pooled`` fit once on the
  100 seen tickers' training rows (its slopes serve the unseen ones too);
* per-ticker LSTMs (the product's default single-series model, no exogenous
  inputs) on a sample of the unseen tickers, seed 0, for comparison.

Ratios are QLIKE / per-ticker HAR QLIKE on the same rows, averaged over
tickers (mean and median), then mean ± std over seeds. The panel DM test is on
the daily cross-sectional mean loss differential (``forecaster.evaluation.panel``).

    .venv/bin/python bench/universe.py            # writes bench/universe.md and .json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.data.exog import build_exog
from forecaster.data.features import split_dataset
from forecaster.data.loader import load_prices
from forecaster.data.panel import load_panel, read_panel
from forecaster.evaluation.panel import panel_summary
from forecaster.models.baselines import PooledHAR, create_baseline
from forecaster.models.config import LSTMConfig
from forecaster.models.lstm_forecaster import LSTMForecaster
from forecaster.settings import Settings

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
PANEL = SHARED / "stocks_daily.parquet"
VIX = SHARED / "vix" / "VIX_History.csv"
CUT = pd.Timestamp("2014-01-02")
BASELINES = ("har", "harx", "garch", "gbm")
#: The universal model's settings (training ones chosen for speed: see the report).
UNIVERSAL = {"ensemble": 3, "batch_size": 256, "epochs": 20, "patience": 4}


def read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_universe(home: str) -> tuple[dict, list[str], dict]:
    settings = Settings.resolve(home)
    tickers = read_panel(PANEL).tickers
    loaded = load_panel(
        tickers, lambda t: load_prices(t, source="panel", panel_path=PANEL, settings=settings)
    )
    market = load_prices("SPY", source="sample", settings=settings)
    indices = {t: load_prices(t, source="sample", settings=settings) for t in ("SPY", "QQQ")}
    repairs = {
        data.ticker: {k: v for k, v in data.repairs.items() if "bad-print" in k}
        for data in loaded.loaded
    }
    repairs = {t: r for t, r in repairs.items() if r}
    return {d.ticker: d for d in loaded.loaded}, list(loaded.failed), {
        "market": market,
        "indices": indices,
        "repairs": repairs,
    }


def qlike_rows(dataset, rows, forecast) -> np.ndarray:
    return metrics.qlike_losses(dataset.floored_target()[rows], forecast)


def run(args) -> dict:
    t0 = time.time()
    with tempfile.TemporaryDirectory() as home:
        datas, failed, extra = load_universe(home)
    log(f"loaded {len(datas)} tickers ({len(failed)} failed) in {time.time() - t0:.1f}s")
    names = sorted(datas)
    seen = [t for t in read_list(HERE / "universe_train.txt") if t in datas][: args.train]
    unseen = [t for t in read_list(HERE / "universe_unseen.txt") if t in datas]
    per_ticker_sample = unseen[: args.per_ticker]
    exog_files = {"VIX": str(VIX)}
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cut": f"{CUT:%Y-%m-%d}",
        "seen": seen,
        "unseen": unseen,
        "failed": failed,
        "bad_prints": extra["repairs"],
        "per_ticker_sample": per_ticker_sample,
        "universal": UNIVERSAL,
        "seeds": args.seeds,
        "horizons": {},
    }
    for horizon in args.horizons:
        base = LSTMConfig(horizon=horizon, market="SPY", exog=exog_files, **UNIVERSAL)
        market = extra["market"]
        exog = build_exog(market.prices, base.estimator, base.window, exog_files)
        shaper = LSTMForecaster(base)
        datasets = {t: shaper.dataset(datas[t].prices, exog) for t in names}
        index_sets = {t: shaper.dataset(d.prices, exog) for t, d in extra["indices"].items()}
        test_rows = {}
        for t, ds in {**datasets, **index_sets}.items():
            test_rows[t] = split_dataset(ds, test_start=CUT).test
        # baselines, per ticker (har-pooled: one panel fit on the seen tickers)
        tb = time.time()
        pooled = PooledHAR().fit_panel({t: datasets[t] for t in seen}, CUT)
        losses: dict[str, dict[str, np.ndarray]] = {}
        for t, ds in {**datasets, **index_sets}.items():
            rows = test_rows[t]
            losses[t] = {}
            for name in BASELINES:
                model = create_baseline(name).fit(ds, CUT)
                losses[t][name] = qlike_rows(ds, rows, model.predict(ds, rows))
            losses[t]["har-pooled"] = qlike_rows(ds, rows, pooled.fresh().fit(ds, CUT).predict(ds, rows))
        baseline_seconds = time.time() - tb
        log(f"h={horizon}: baselines in {baseline_seconds:.0f}s")
        fits = []
        for seed in range(args.seeds):
            config = base.replace(seed=seed)
            epochs: list[float] = []
            tick = [time.time()]

            def on_epoch(
                epoch, train_loss, val_loss, epochs=epochs, tick=tick, seed=seed, horizon=horizon
            ):
                now = time.time()
                epochs.append(now - tick[0])
                tick[0] = now
                log(f"h={horizon} seed {seed} epoch {epoch}: loss {train_loss:.4f} val {val_loss:.4f}")

            tf0 = time.time()
            model = LSTMForecaster(config, on_epoch=on_epoch).fit_pooled(
                {t: datasets[t] for t in seen}, CUT
            )
            fit_seconds = time.time() - tf0
            for t, ds in {**datasets, **index_sets}.items():
                view = model.for_ticker(t) if t in seen else model.for_ticker(t, ds)
                losses[t][f"lstm#{seed}"] = qlike_rows(ds, test_rows[t], view.predict(ds, test_rows[t]))
            fits.append(
                {
                    "seed": seed,
                    "seconds": round(fit_seconds, 1),
                    "epochs_run": model.training["epochs_run"],
                    "best_epoch": model.training["best_epoch"],
                    "seconds_per_epoch": round(float(np.median(epochs[1:] or epochs)), 2),
                    "first_epoch_seconds": round(epochs[0], 1),
                    "peak_rss_mb": round(peak_mb()),
                    "scale": model.scale,
                }
            )
            log(f"h={horizon} seed {seed}: fit {fit_seconds:.0f}s, peak RSS {peak_mb():.0f} MB")
        # per-ticker LSTMs (default single-series model) on a sample of unseen tickers
        single_seconds = []
        if horizon in args.per_ticker_horizons:
            single = LSTMConfig(horizon=horizon, seed=0)
            for t in per_ticker_sample:
                ds = LSTMForecaster(single).dataset(datas[t].prices)
                rows = split_dataset(ds, test_start=CUT).test
                ts = time.time()
                own = LSTMForecaster(single).fit(ds, CUT)
                single_seconds.append(time.time() - ts)
                # its test rows start at the same cut; align to the universal rows by date
                frame = pd.Series(qlike_rows(ds, rows, own.predict(ds, rows)), index=ds.origins[rows])
                dates = datasets[t].origins[test_rows[t]]
                losses[t]["lstm-per-ticker"] = frame.reindex(dates).to_numpy()
                log(f"h={horizon}: per-ticker LSTM {t} in {single_seconds[-1]:.0f}s")
        result["horizons"][str(horizon)] = summarize(
            horizon, losses, datasets, test_rows, seen, unseen, args.seeds
        )
        result["horizons"][str(horizon)]["fits"] = fits
        result["horizons"][str(horizon)]["baseline_seconds"] = round(baseline_seconds, 1)
        result["horizons"][str(horizon)]["per_ticker_seconds"] = [round(s, 1) for s in single_seconds]
        result["horizons"][str(horizon)]["indices"] = {
            t: {
                name: float(np.mean(v) / np.mean(losses[t]["har"]))
                for name, v in losses[t].items()
            }
            for t in index_sets
        }
        write(result, args)
    result["seconds"] = round(time.time() - t0)
    return result


def summarize(horizon, losses, datasets, test_rows, seen, unseen, seeds) -> dict:
    out = {}
    for group, tickers in (("seen", seen), ("unseen", unseen)):
        frames = {}
        for t in tickers:
            index = datasets[t].origins[test_rows[t]]
            frames[t] = pd.DataFrame(losses[t], index=index)
        per_seed = []
        for seed in range(seeds):
            cols = ["har", "harx", "har-pooled", "garch", "gbm", f"lstm#{seed}"]
            summary = panel_summary({t: f[cols] for t, f in frames.items()}, "har", horizon)
            per_seed.append(summary["models"])
        lstm = [s[f"lstm#{i}"] for i, s in enumerate(per_seed)]
        group_out = {
            "n": len(tickers),
            "lstm": {
                key: [row[key] for row in lstm]
                for key in ("mean_ratio", "median_ratio", "share_beating", "dm_stat", "dm_p_value")
            },
            "baselines": per_seed[0],
        }
        # the universal model against har-pooled and harx directly (seed by seed)
        for other in ("har-pooled", "harx"):
            group_out[f"lstm_vs_{other}"] = [
                panel_summary(
                    {t: f[[other, f"lstm#{seed}"]] for t, f in frames.items()}, other, horizon
                )["models"][f"lstm#{seed}"]
                for seed in range(seeds)
            ]
        sample = [t for t in tickers if "lstm-per-ticker" in frames[t]]
        if sample:
            ratios = []
            for t in sample:
                f = frames[t].dropna(subset=["lstm-per-ticker"])
                ratios.append(
                    {
                        "ticker": t,
                        "per_ticker": float(f["lstm-per-ticker"].mean() / f["har"].mean()),
                        "universal": [
                            float(f[f"lstm#{s}"].mean() / f["har"].mean()) for s in range(seeds)
                        ],
                    }
                )
            group_out["per_ticker"] = ratios
        out[group] = group_out
    return out


def fmt(values, digits=3) -> str:
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def render(result: dict) -> str:
    seeds = result["seeds"]
    lines = [
        "# A universal LSTM on 150 real stocks",
        "",
        f"Measured {result['date']} on this machine ({result['machine']}) by "
        "`.venv/bin/python bench/universe.py` (raw figures: `bench/universe.json`).",
        "",
        __doc__.split("\n\n", 1)[1].split("    .venv")[0].strip(),
        "",
        f"Universal model settings: default LSTM (encoder, 32 units, lookback 22, context 252, "
        f"garman-klass) with {result['universal']}; not tuned on the test period (the training "
        "settings were chosen for speed on this 2-core machine, not searched). Seeds "
        f"0..{seeds - 1}. Bad-print repairs made by the panel source: "
        + (", ".join(f"{t} {sum(r.values())}" for t, r in result["bad_prints"].items()) or "none")
        + ".",
        "",
    ]
    for h, hres in result["horizons"].items():
        lines += [f"## h = {h}", ""]
        lines += [
            "| tickers | model | mean ratio to HAR | median ratio | beats HAR | panel DM stat (p) |",
            "|---|---|---|---|---|---|",
        ]
        for group in ("unseen", "seen"):
            g = hres[group]
            lstm = g["lstm"]
            dm = ", ".join(f"{s:+.2f} ({p:.3f})" for s, p in zip(lstm["dm_stat"], lstm["dm_p_value"], strict=True))
            lines.append(
                f"| {group} ({g['n']}) | universal LSTM | {fmt(lstm['mean_ratio'])} | "
                f"{fmt(lstm['median_ratio'])} | {fmt(np.array(lstm['share_beating']) * 100, 0)}% | {dm} |"
            )
            for name in ("har-pooled", "harx", "garch", "gbm"):
                row = g["baselines"][name]
                lines.append(
                    f"| {group} ({g['n']}) | {name} | {row['mean_ratio']:.3f} | "
                    f"{row['median_ratio']:.3f} | {row['share_beating']:.0%} | "
                    f"{row['dm_stat']:+.2f} ({row['dm_p_value']:.3f}) |"
                )
        lines.append("")
        for group in ("unseen", "seen"):
            g = hres[group]
            for other in ("har-pooled", "harx"):
                rows = g[f"lstm_vs_{other}"]
                lines.append(
                    f"- {group}: universal LSTM / {other}: mean ratio "
                    f"{fmt([r['mean_ratio'] for r in rows])}, beats it on "
                    f"{fmt([r['share_beating'] * 100 for r in rows], 0)}% of tickers, panel DM "
                    + ", ".join(f"{r['dm_stat']:+.2f} (p {r['dm_p_value']:.3f})" for r in rows)
                )
        if "per_ticker" in hres["unseen"]:
            pt = hres["unseen"]["per_ticker"]
            better = sum(np.mean(r["universal"]) < r["per_ticker"] for r in pt)
            lines.append(
                f"- per-ticker LSTM (default single-series model, seed 0) on {len(pt)} unseen "
                f"tickers: mean ratio to HAR {np.mean([r['per_ticker'] for r in pt]):.3f} "
                f"(median {np.median([r['per_ticker'] for r in pt]):.3f}); the universal model "
                f"(mean over seeds) is better on {better} of {len(pt)}; per-ticker fit "
                f"{np.mean(hres['per_ticker_seconds']):.0f} s each"
            )
        for t, ratios in hres["indices"].items():
            uni = [ratios[f"lstm#{s}"] for s in range(seeds)]
            lines.append(
                f"- {t} (sample index, zero-shot): universal LSTM / HAR {fmt(uni)}; harx "
                f"{ratios['harx']:.3f}, har-pooled {ratios['har-pooled']:.3f}"
            )
        fits = hres["fits"]
        lines.append(
            "- cost: universal fit "
            + ", ".join(
                f"seed {f['seed']} {f['seconds']:.0f} s ({f['epochs_run']} epochs, best "
                f"{f['best_epoch']}, {f['seconds_per_epoch']} s/epoch)"
                for f in fits
            )
            + f"; peak RSS of the whole run so far {max(f['peak_rss_mb'] for f in fits)} MB; "
            f"baselines for 152 series {hres['baseline_seconds']:.0f} s"
        )
        lines.append("")
    lines += goals(result)
    return "\n".join(lines) + "\n"


def goals(result: dict) -> list[str]:
    hs = result["horizons"]
    lines = ["## Goals of issue 17", "", "| goal | measured | verdict |", "|---|---|---|"]
    limits = {"1": 0.92, "5": 0.95, "22": 0.97}
    for h, limit in limits.items():
        if h not in hs:
            continue
        mean = float(np.mean(hs[h]["unseen"]["lstm"]["mean_ratio"]))
        lines.append(f"| unseen, h={h}: mean ratio ≤ {limit} | {mean:.3f} | {verdict(mean <= limit)} |")
    for h, share in (("1", 0.85), ("22", 0.70)):
        if h in hs:
            got = float(np.mean(hs[h]["unseen"]["lstm"]["share_beating"]))
            lines.append(f"| unseen, h={h}: beats HAR on ≥ {share:.0%} | {got:.0%} | {verdict(got >= share)} |")
    for h in hs:
        p = max(hs[h]["unseen"]["lstm"]["dm_p_value"])
        stat = max(hs[h]["unseen"]["lstm"]["dm_stat"])
        ok = p < 0.01 and stat < 0
        lines.append(f"| unseen, h={h}: panel DM significant at 1% (every seed) | worst p {p:.4f} | {verdict(ok)} |")
    for h in hs:
        for other in ("har-pooled", "harx"):
            r = float(np.mean([x["mean_ratio"] for x in hs[h]["unseen"][f"lstm_vs_{other}"]]))
            lines.append(f"| unseen, h={h}: ≥ 3% better than {other} | ratio {r:.3f} | {verdict(r <= 0.97)} |")
    for h in hs:
        pt = hs[h]["unseen"].get("per_ticker")
        if pt:
            share = float(np.mean([np.mean(r["universal"]) < r["per_ticker"] for r in pt]))
            lines.append(f"| h={h}: beats the per-ticker LSTM on ≥ 80% of {len(pt)} compared | {share:.0%} | {verdict(share >= 0.8)} |")
    darts = {"1": 0.98, "22": 0.86}
    for h, median in darts.items():
        if h in hs:
            got = float(np.mean(hs[h]["unseen"]["lstm"]["median_ratio"]))
            lines.append(f"| unseen, h={h}: ahead of darts' median {median} (issue's figure, other split) | median {got:.3f} | {verdict(got < median)} |")
    for h in limits:
        if h in hs:
            for t, ratios in hs[h]["indices"].items():
                got = float(np.mean([ratios[f"lstm#{s}"] for s in range(result["seeds"])]))
                lim = 0.92 if h == "1" else 0.97
                lines.append(f"| {t} sample, h={h}: ≤ {lim} × HAR (zero-shot) | {got:.3f} | {verdict(got <= lim)} |")
    for h in hs:
        values = hs[h]["unseen"]["lstm"]["mean_ratio"]
        if len(values) > 1:
            std = float(np.std(values, ddof=1))
            lines.append(f"| h={h}: seed std of the panel mean ratio ≤ 0.005 | {std:.4f} | {verdict(std <= 0.005)} |")
    fits = [f for h in hs for f in hs[h]["fits"]]
    worst = max(f["seconds"] for f in fits)
    peak = max(f["peak_rss_mb"] for f in fits)
    lines.append(f"| universal fit on 100 stocks ≤ 20 min | slowest {worst / 60:.1f} min | {verdict(worst <= 1200)} |")
    lines.append(f"| ... and ≤ 4 GB peak memory | {peak} MB (whole benchmark process) | {verdict(peak <= 4096)} |")
    for h, limit in (("1", 0.85), ("22", 0.92)):
        if h in hs:
            got = float(np.mean(hs[h]["unseen"]["lstm"]["mean_ratio"]))
            lines.append(f"| moonshot, unseen h={h}: ≤ {limit} | {got:.3f} | {verdict(got <= limit)} |")
    return lines + [""]


def write(result: dict, args) -> None:
    Path(args.json).write_text(json.dumps(result, indent=1, default=float) + "\n")
    Path(args.output).write_text(render(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--horizons", default="1,5,22")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--per-ticker", type=int, default=10)
    parser.add_argument("--per-ticker-horizons", default="1,22")
    parser.add_argument("--epochs", type=int, default=UNIVERSAL["epochs"])
    parser.add_argument("--output", default=str(HERE / "universe.md"))
    parser.add_argument("--json", default=str(HERE / "universe.json"))
    args = parser.parse_args()
    args.horizons = [int(h) for h in args.horizons.split(",")]
    UNIVERSAL["epochs"] = args.epochs
    args.per_ticker_horizons = [int(h) for h in args.per_ticker_horizons.split(",") if h]
    result = run(args)
    write(result, args)
    log(f"done in {result['seconds']} s; wrote {args.output}")


if __name__ == "__main__":
    main()
