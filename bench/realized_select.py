"""The universal LSTM on the 25 Oxford-Man indices: settings chosen on validation rows, tested once.

Writes ``bench/realized_select.md`` (and ``bench/realized_select.json``). One
command runs the selection and the test:

    PYTHONPATH=. .venv/bin/python bench/realized_select.py [--horizons 1,5,22] [--seeds 3] [--threads 1]

``--threads`` sets TensorFlow's intra/inter-op threads for the whole process
before any model is built (speed only; 0: TensorFlow's default).
``--render-only`` rewrites the .md from the saved .json without measuring.

Data and test protocol are those of part A of ``bench/realized.py`` (its
functions are imported): the 25 indices of ``realized_library.parquet``, target
``rv5``, calendar cut CUT = 2016-01-04, the universal model is one network
pooled over the indices, every ratio is QLIKE / per-index HAR QLIKE on the same
rows, averaged over indices.

Selection — validation rows only. Every series is cut short before CUT: the
selection never reads a row dated on or after 2016-01-04 (asserted), so a
scored origin's target is realized before CUT. Inner cut VCUT = 2013-08-12,
fixed before any candidate was scored: the first trading day on or after the
point 85% of the way from the library's first date (2000-01-04) to CUT, i.e.
the start of the last 15% of the pre-2016 period. Each candidate is fit with
``fit_pooled(datasets, VCUT)`` (its early stopping and scale correction use the
last 15% of each series' origins before VCUT) and scored on every origin in
[VCUT, CUT) against per-index HAR fit before VCUT; the score is the mean over
indices of the per-index QLIKE ratio. An index without enough origins before
VCUT cannot be split there and sits out the selection (named in the report).
One seed (0) per candidate. The lowest mean validation ratio wins per horizon;
ratios equal to 3 decimals are a tie, won by the faster fit.

These validation ratios are out-of-sample for every candidate (no scored row
is used by its fit), but they come from one seed and one 2.4-year window, and
the lowest of several noisy scores is biased low: they rank candidates, they
do not measure them. The chosen settings are then refit at CUT (early stopping
on the last 15% of origins before CUT, as in bench/realized.py) and measured
once on the test period.

Test — exactly part A of ``bench/realized.py`` for the chosen settings: fit
before CUT on all 25 indices, scored on every origin from CUT to 2021-02-24,
seeds 0..S-1, mean ratio to per-index HAR (mean ± std over seeds), median,
share of indices beating HAR, the panel DM test, and the ratio to
``har-pooled``. Only HAR and har-pooled are fit as baselines (garch and gbm of
bench/realized.py are skipped to save time: no goal here reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realized import CUT, GOALS, UNIVERSAL, load_library, log, mean_std, qlike  # noqa: E402

from forecaster.data.features import MIN_ORIGINS, split_dataset  # noqa: E402
from forecaster.errors import ConfigError  # noqa: E402
from forecaster.evaluation.panel import panel_summary  # noqa: E402
from forecaster.models.baselines import PooledHAR, create_baseline  # noqa: E402
from forecaster.models.config import LSTMConfig  # noqa: E402
from forecaster.models.lstm_forecaster import LSTMForecaster  # noqa: E402

HERE = Path(__file__).resolve().parent
#: Inner cut of the selection (see the module docstring); fixed before any candidate was scored.
VCUT = pd.Timestamp("2013-08-12")
LIBRARY_START = pd.Timestamp("2000-01-04")
LONG = {"epochs": 40, "patience": 8}
#: Changes to ``UNIVERSAL`` (bench/realized.py's settings, "current") each candidate makes.
CANDIDATES = {
    "current": {},
    "epochs 40, patience 8": dict(LONG),
    "epochs 40, patience 8, units 64": {**LONG, "units": 64},
    "epochs 40, patience 8, lr 3e-4": {**LONG, "learning_rate": 3e-4},
    "epochs 40, patience 8, anchor har": {**LONG, "anchor": "har"},
    # An epoch draws 1/8 of the training rows, so early stopping checks validation 8 times
    # per pass (the current h=22 fits stopped at 4 epochs with the first one their best).
    "fraction 1/8, epochs 80, patience 16": {"epoch_fraction": 0.125, "epochs": 80, "patience": 16},
}
SELECTION_SEED = 0


def check_vcut() -> None:
    """VCUT is the rule's date: the first weekday on or after 85% of 2000-01-04 .. CUT."""
    point = (LIBRARY_START + 0.85 * (CUT - LIBRARY_START)).ceil("D")
    first = pd.bdate_range(point, periods=1)[0]
    assert first == VCUT, (first, VCUT)


def before_cut(datas: dict) -> dict[str, pd.DataFrame]:
    """Each index's prices dated before CUT: all the selection may read."""
    frames = {t: d.prices.loc[d.prices.index < CUT] for t, d in datas.items()}
    for t, frame in frames.items():
        assert frame.index.max() < CUT, (t, frame.index.max())
    return frames


def config(horizon: int, changes: dict) -> LSTMConfig:
    return LSTMConfig(horizon=horizon, estimator="rv5", **UNIVERSAL).replace(**changes)


def splits_at_vcut(datasets: dict) -> tuple[dict, dict[str, str]]:
    """The indices that can be split at VCUT (enough origins on both sides) and why others can't."""
    kept, out = {}, {}
    for t, ds in datasets.items():
        try:
            split = split_dataset(ds, test_start=VCUT)
        except ConfigError as exc:
            out[t] = str(exc)
            continue
        if split.train.size < MIN_ORIGINS or split.test.size == 0:
            out[t] = f"{split.train.size} training origins before VCUT"
            continue
        kept[t] = split
    return kept, out


def select_part(frames: dict[str, pd.DataFrame], horizons: list[int], labels: list[str]) -> dict:
    out: dict = {}
    for horizon in horizons:
        base = config(horizon, {})
        shaper = LSTMForecaster(base)
        every = {t: shaper.dataset(frames[t]) for t in sorted(frames)}
        for t, ds in every.items():
            assert ds.origins.max() < CUT, (t, ds.origins.max())
        splits, excluded = splits_at_vcut(every)
        datasets = {t: every[t] for t in splits}
        rows = {t: s.test for t, s in splits.items()}
        for t, r in rows.items():
            dates = datasets[t].origins[r]
            assert dates.min() >= VCUT and dates.max() < CUT, (t, dates.min(), dates.max())
        har = {
            t: qlike(ds, rows[t], create_baseline("har").fit(ds, VCUT).predict(ds, rows[t]))
            for t, ds in datasets.items()
        }
        candidates = []
        for label in labels:
            settings = config(horizon, CANDIDATES[label]).replace(seed=SELECTION_SEED)
            assert settings.feature_spec() == base.feature_spec()  # the same datasets serve all
            clock = time.time()
            model = LSTMForecaster(settings).fit_pooled(datasets, VCUT)
            seconds = time.time() - clock
            ratios = {}
            for t, ds in datasets.items():
                lstm = qlike(ds, rows[t], model.for_ticker(t).predict(ds, rows[t]))
                ratios[t] = float(lstm.mean() / har[t].mean())
            values = np.array(list(ratios.values()))
            candidates.append(
                {
                    "candidate": label,
                    "changes": CANDIDATES[label],
                    "mean_ratio": float(values.mean()),
                    "median_ratio": float(np.median(values)),
                    "share_beating": float((values < 1).mean()),
                    "epochs_run": model.training["epochs_run"],
                    "best_epoch": model.training["best_epoch"],
                    "seconds": round(seconds, 1),
                    "ratios": ratios,
                }
            )
            log(
                f"select h={horizon} {label}: validation ratio {values.mean():.4f}, "
                f"{model.training['epochs_run']} epochs, {seconds:.0f}s"
            )
        first = min(r["mean_ratio"] for r in candidates)
        tied = [r for r in candidates if round(r["mean_ratio"], 3) == round(first, 3)]
        chosen = min(tied, key=lambda r: r["seconds"])
        dates = np.concatenate([datasets[t].origins[r] for t, r in rows.items()])
        out[str(horizon)] = {
            "indices": sorted(datasets),
            "excluded": excluded,
            "n_validation": {t: int(r.size) for t, r in rows.items()},
            "first_scored": f"{pd.Timestamp(dates.min()):%Y-%m-%d}",
            "last_scored": f"{pd.Timestamp(dates.max()):%Y-%m-%d}",
            "candidates": candidates,
            "chosen": chosen["candidate"],
            "tied": [r["candidate"] for r in tied],
        }
    return out


def test_part(datas: dict, chosen: dict[str, str], seeds: int) -> dict:
    names = sorted(datas)
    out: dict = {}
    for horizon, label in chosen.items():
        base = config(int(horizon), CANDIDATES[label])
        shaper = LSTMForecaster(base)
        datasets = {t: shaper.dataset(datas[t].prices) for t in names}
        rows = {t: split_dataset(ds, test_start=CUT).test for t, ds in datasets.items()}
        clock = time.time()
        pooled = PooledHAR().fit_panel(datasets, CUT)
        losses: dict[str, dict[str, np.ndarray]] = {}
        for t, ds in datasets.items():
            losses[t] = {
                "har": qlike(ds, rows[t], create_baseline("har").fit(ds, CUT).predict(ds, rows[t])),
                "har-pooled": qlike(ds, rows[t], pooled.fresh().fit(ds, CUT).predict(ds, rows[t])),
            }
        baseline_seconds = time.time() - clock
        fits = []
        for seed in range(seeds):
            clock = time.time()
            model = LSTMForecaster(base.replace(seed=seed)).fit_pooled(datasets, CUT)
            seconds = time.time() - clock
            for t, ds in datasets.items():
                losses[t][f"lstm#{seed}"] = qlike(
                    ds, rows[t], model.for_ticker(t).predict(ds, rows[t])
                )
            fits.append(
                {
                    "seed": seed,
                    "seconds": round(seconds, 1),
                    "epochs_run": model.training["epochs_run"],
                    "best_epoch": model.training["best_epoch"],
                }
            )
            log(f"test h={horizon} seed {seed}: fit in {seconds:.0f}s")
        frames = {t: pd.DataFrame(losses[t], index=datasets[t].origins[rows[t]]) for t in names}
        per_seed = []
        for seed in range(seeds):
            name = f"lstm#{seed}"
            summary = panel_summary(
                {t: f[["har", "har-pooled", name]] for t, f in frames.items()}, "har", int(horizon)
            )
            versus = panel_summary(
                {t: f[["har-pooled", name]] for t, f in frames.items()}, "har-pooled", int(horizon)
            )["models"][name]
            per_seed.append({"models": summary["models"], "vs_pooled": versus})
        out[horizon] = {
            "candidate": label,
            "settings": {**UNIVERSAL, **CANDIDATES[label]},
            "n_test": {t: int(rows[t].size) for t in names},
            "baseline_seconds": round(baseline_seconds, 1),
            "fits": fits,
            "lstm": [s["models"][f"lstm#{i}"] for i, s in enumerate(per_seed)],
            "lstm_vs_pooled": [s["vs_pooled"] for s in per_seed],
            "har_pooled": per_seed[0]["models"]["har-pooled"],
        }
    return out


def current_figures() -> dict:
    """The universal model's test figures at the current settings, from bench/realized.json."""
    saved = json.loads((HERE / "realized.json").read_text())["indices"]
    return {
        "run": {k: saved["run"][k] for k in ("date", "command", "threads")},
        "horizons": {
            h: {
                "lstm": entry["lstm"],
                "vs_pooled": [r["mean_ratio"] for r in entry["lstm_vs_pooled"]],
                "har_pooled": entry["baselines"]["har-pooled"]["mean_ratio"],
            }
            for h, entry in saved["horizons"].items()
        },
    }


def doc_paragraph(start: str) -> str:
    """The module docstring's paragraph beginning with ``start``, on one line."""
    for paragraph in __doc__.split("\n\n"):
        if paragraph.startswith(start):
            return " ".join(paragraph.split())
    raise KeyError(start)


def goal_rows(result: dict) -> list[str]:
    lines = ["| goal | measured (test, chosen settings) | status |", "|---|---|---|"]
    for horizon, entry in result.get("test", {}).items():
        ratios = [r["mean_ratio"] for r in entry["lstm"]]
        limit, share = GOALS.get(horizon, (None, None))
        if limit is not None:
            status = "met" if np.mean(ratios) <= limit else "not met"
            lines.append(
                f"| h={horizon}: mean QLIKE ratio to per-index HAR <= {limit} | "
                f"{mean_std(ratios)} | {status} |"
            )
        pooled = entry["har_pooled"]["mean_ratio"]
        better = all(r < pooled for r in ratios)
        lines.append(
            f"| h={horizon}: better than har-pooled (mean ratio {pooled:.3f}) | "
            f"{mean_std(ratios)} (every seed below: {'yes' if better else 'no'}) | "
            f"{'met' if better else 'not met'} |"
        )
        if share is not None:
            shares = [r["share_beating"] for r in entry["lstm"]]
            status = "met" if np.mean(shares) >= share else "not met"
            lines.append(
                f"| h={horizon}: beats HAR on >= {share:.0%} of indices | "
                f"{np.mean(shares):.0%} (per seed: {', '.join(f'{s:.0%}' for s in shares)}) | "
                f"{status} |"
            )
    return lines


def threads_text(threads: int | None) -> str:
    if threads is None:
        return "on its default threads"
    return f"on {threads} thread{'s' if threads > 1 else ''}"


def lstm_row(name: str, rows: list[dict]) -> str:
    return (
        f"| {name} | {mean_std([r['mean_ratio'] for r in rows])} | "
        f"{mean_std([r['median_ratio'] for r in rows])} | "
        f"{np.mean([r['share_beating'] for r in rows]):.0%} | "
        + ", ".join(f"{r['dm_stat']:+.2f} ({r['dm_p_value']:.3f})" for r in rows)
        + " |"
    )


def capped_note(settings: dict, fits: list[dict]) -> str:
    """A sentence on the fits the epoch cap ended before their patience ran out."""
    cap, patience = settings["epochs"], settings["patience"]
    capped = [f for f in fits if f["epochs_run"] == cap and cap - f["best_epoch"] < patience]
    if not capped:
        return ""
    return (
        f" {len(capped)} of {len(fits)} fit(s) ran to the cap of {cap} epochs (best epoch "
        f"{', '.join(str(f['best_epoch']) for f in capped)}, patience {patience}): early stopping "
        "did not end them, "
        "so a longer schedule might do better (not run)."
    )


def versus_current(entry: dict, current: list[dict]) -> str:
    """The chosen settings' test mean ratio next to the current settings', in words."""
    mine = [r["mean_ratio"] for r in entry["lstm"]]
    theirs = [r["mean_ratio"] for r in current]
    if mine == theirs:
        return (
            "The per-seed ratios equal bench/realized.md's exactly: the same settings and "
            "seeds give the same fits (op determinism), whatever the thread count."
        )
    delta = float(np.mean(mine) - np.mean(theirs))
    spread = max(np.std(mine, ddof=1), np.std(theirs, ddof=1)) if len(mine) > 1 else 0.0
    within = "within" if abs(delta) <= spread else "outside"
    return (
        f"Mean ratio {'lower' if delta < 0 else 'higher'} than the current settings' by "
        f"{abs(delta):.3f}, {within} the larger of the two standard deviations over seeds "
        f"({spread:.3f})."
    )


def render(result: dict) -> str:
    run = result["run"]
    select, test = result["select"], result.get("test", {})
    current = result["current"]
    lines = [
        "# Universal LSTM on the 25 Oxford-Man indices: settings chosen on validation rows, "
        "tested once",
        "",
        f"Measured {run['date']} on this machine ({run['machine']}, shared with other jobs; "
        f"TensorFlow {threads_text(run['threads'])}) "
        f"by `{run['command']}` in {run['minutes']:.1f} minutes (selection "
        f"{run['select_minutes']:.1f}, test {run['test_minutes']:.1f}). Raw figures: "
        "`bench/realized_select.json`.",
        "",
        doc_paragraph("Data and test protocol"),
        "",
        doc_paragraph("Selection"),
        "",
        doc_paragraph("These validation ratios"),
        "",
        doc_paragraph("Test"),
        "",
        f"Current settings (bench/realized.py's `UNIVERSAL`): {UNIVERSAL}; default encoder "
        "LSTM (32 units, lookback 22, context 252, learning rate 1e-3).",
        "",
        "## Goals",
        "",
    ]
    lines += goal_rows(result)
    lines += ["", "## Selection (validation rows only)", ""]
    for horizon, entry in select.items():
        excluded = "; ".join(f"{t} ({why})" for t, why in entry["excluded"].items())
        n = entry["n_validation"]
        lines += [
            f"### h = {horizon}",
            "",
            f"{len(entry['indices'])} indices scored on origins {entry['first_scored']} .. "
            f"{entry['last_scored']} ({sum(n.values())} rows; median {int(np.median(list(n.values())))} "
            f"per index){'; sitting out: ' + excluded if excluded else ''}. Seed "
            f"{SELECTION_SEED}, fit before {VCUT:%Y-%m-%d}.",
            "",
            "| candidate | validation QLIKE / HAR (mean) | median | beats HAR | epochs run (best) "
            "| fit s |",
            "|---|---|---|---|---|---|",
        ]
        for r in entry["candidates"]:
            mark = " **(chosen)**" if r["candidate"] == entry["chosen"] else ""
            lines.append(
                f"| {r['candidate']}{mark} | {r['mean_ratio']:.3f} | {r['median_ratio']:.3f} | "
                f"{r['share_beating']:.0%} | {r['epochs_run']} ({r['best_epoch']}) | "
                f"{r['seconds']:.0f} |"
            )
        rows = {r["candidate"]: r for r in entry["candidates"]}
        chosen = rows[entry["chosen"]]
        text = f"Chosen: **{entry['chosen']}** ({chosen['mean_ratio']:.3f})"
        if len(entry["tied"]) > 1:
            text += f", the fastest of the tied {', '.join(entry['tied'])}"
        if "current" in rows:
            now = rows["current"]["mean_ratio"]
            if entry["chosen"] == "current":
                text += (
                    ". No candidate beat the current settings on validation; the test below "
                    "re-measures the current settings"
                )
            else:
                text += f", against {now:.3f} for the current settings"
        lines += ["", text + "." + capped_note({**UNIVERSAL, **chosen["changes"]}, [chosen]), ""]
        if any(r["changes"].get("epoch_fraction", 1.0) < 1 for r in entry["candidates"]):
            lines += ["With an epoch fraction of 1/8, an epoch is 1/8 of a pass over the rows.", ""]
    if test:
        lines += ["## Test (2016-01-04 .. 2021-02-24), the chosen settings, measured once", ""]
        cur_run = current["run"]
        lines += [
            f'"current, bench/realized.md" is the universal model of bench/realized.md '
            f"(measured {cur_run['date']}, TensorFlow {threads_text(cur_run['threads'])}), not re-run here unless "
            "chosen; ratios are to per-index HAR, mean ± std over seeds.",
            "",
        ]
        for horizon, entry in test.items():
            rows = entry["lstm"]
            now = current["horizons"].get(horizon)
            lines += [
                f"### h = {horizon}",
                "",
                "| model | mean ratio to HAR | median ratio | beats HAR | panel DM stat (p) |",
                "|---|---|---|---|---|",
                lstm_row(f"chosen: {entry['candidate']}", rows),
            ]
            if now is not None:
                lines.append(lstm_row("current, bench/realized.md", now["lstm"]))
            pooled = entry["har_pooled"]
            lines += [
                f"| har-pooled | {pooled['mean_ratio']:.3f} | {pooled['median_ratio']:.3f} | "
                f"{pooled['share_beating']:.0%} | {pooled['dm_stat']:+.2f} "
                f"({pooled['dm_p_value']:.3f}) |",
                "",
            ]
            versus = entry["lstm_vs_pooled"]
            text = (
                f"Chosen settings {entry['settings']}. Against har-pooled directly: mean ratio "
                f"{mean_std([r['mean_ratio'] for r in versus])}, beats it on "
                f"{np.mean([r['share_beating'] for r in versus]):.0%} of indices"
            )
            if now is not None:
                text += f" (current settings, bench/realized.md: {mean_std(now['vs_pooled'])})"
            text += (
                ". Fits: "
                + "; ".join(
                    f"seed {f['seed']} {f['seconds']:.0f} s ({f['epochs_run']} epochs, best "
                    f"{f['best_epoch']})"
                    for f in entry["fits"]
                )
                + f"; HAR and har-pooled {entry['baseline_seconds']:.0f} s."
            )
            text += capped_note(entry["settings"], entry["fits"])
            picked = {r["candidate"]: r for r in select[horizon]["candidates"]}[entry["candidate"]]
            text += (
                f" Its validation ratio (seed {SELECTION_SEED}, origins "
                f"{select[horizon]['first_scored']} .. {select[horizon]['last_scored']}) was "
                f"{picked['mean_ratio']:.3f}."
            )
            if now is not None:
                text += " " + versus_current(entry, now["lstm"])
            lines += [text, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--horizons", default="1,5,22")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the test run")
    parser.add_argument(
        "--threads", type=int, default=1, help="TensorFlow threads (0: TensorFlow's default)"
    )
    parser.add_argument("--output", default=str(HERE / "realized_select.md"))
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    output = Path(args.output)
    saved = output.with_suffix(".json")
    if args.render_only:
        output.write_text(render(json.loads(saved.read_text())))
        log(f"wrote {output} from {saved}")
        return
    check_vcut()
    horizons = [int(h) for h in args.horizons.split(",")]
    threads = args.threads or None
    if threads is not None:
        from forecaster.models.training import configure_tensorflow

        configure_tensorflow(threads, seed=0)  # before any model: the whole process
    command = (
        f"PYTHONPATH=. .venv/bin/python bench/realized_select.py --horizons {args.horizons} "
        f"--seeds {args.seeds} --threads {args.threads}"
    )
    started = time.time()
    datas, failed = load_library()
    if failed:
        raise RuntimeError(f"indices that failed to load: {failed}")
    result: dict = {
        "run": {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "command": command,
            "threads": threads,
            "vcut": f"{VCUT:%Y-%m-%d}",
            "cut": f"{CUT:%Y-%m-%d}",
            "selection_seed": SELECTION_SEED,
            "test_seeds": args.seeds,
        },
        "current": current_figures(),
    }
    result["select"] = select_part(before_cut(datas), horizons, list(CANDIDATES))
    result["run"]["select_minutes"] = (time.time() - started) / 60
    saved.write_text(json.dumps(result, indent=1, default=float))  # the choice, before any test
    log(f"selection done in {result['run']['select_minutes']:.1f} min")
    chosen = {h: entry["chosen"] for h, entry in result["select"].items()}
    clock = time.time()
    result["test"] = test_part(datas, chosen, args.seeds)
    result["run"]["test_minutes"] = (time.time() - clock) / 60
    result["run"]["minutes"] = (time.time() - started) / 60
    saved.write_text(json.dumps(result, indent=1, default=float))
    output.write_text(render(result))
    log(f"done in {result['run']['minutes']:.1f} min; wrote {output}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
