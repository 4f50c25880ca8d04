"""Choose the universal model's settings on validation rows only (bench/universe.py's protocol).

The 100 "seen" tickers of ``bench/universe.py`` (same shuffle, same 2014-01-02
cut) train each candidate; the score is the mean over tickers of the ratio of
the candidate's QLIKE to HAR's on each ticker's *validation* rows (the last 15%
of its origins before the cut; HAR fit on the rows before them). The test
period is never touched. The validation rows also set early stopping and the
scale correction, so these ratios flatter every candidate alike: they rank
candidates, they do not measure them (bench/universe.md does).

    .venv/bin/python bench/universe_select.py --horizon 22 --output bench/universe_select_h22.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from universe import CUT, HERE, VIX, load_universe, read_list  # noqa: E402

from forecaster import metrics  # noqa: E402
from forecaster.data.exog import build_exog  # noqa: E402
from forecaster.data.features import split_dataset  # noqa: E402
from forecaster.models.baselines import HAR  # noqa: E402
from forecaster.models.config import LSTMConfig  # noqa: E402
from forecaster.models.lstm_forecaster import LSTMForecaster  # noqa: E402

#: The settings every candidate changes (one member: the fastest to compare).
BASE = {"ensemble": 1, "batch_size": 256, "epochs": 20, "patience": 4}
CANDIDATES = {
    "base": {},
    "anchor har": {"anchor": "har"},
    "lr 3e-4": {"learning_rate": 3e-4},
    "units 16": {"units": 16},
    "3 members": {"ensemble": 3},
    "no exog": {"market": None, "exog": {}},
    "fraction 1/8": {"epoch_fraction": 0.125, "epochs": 60, "patience": 6},
    "fraction 1/8, lr 3e-4": {
        "epoch_fraction": 0.125, "epochs": 60, "patience": 6, "learning_rate": 3e-4
    },
    "loss qlike": {"loss": "qlike"},
    "3 members + fraction 1/8": {
        "ensemble": 3, "epoch_fraction": 0.125, "epochs": 60, "patience": 6
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--horizon", type=int, default=22)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    labels = [name for name in args.candidates.split(",") if name]
    unknown = [name for name in labels if name not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; choose among {list(CANDIDATES)}")
    if labels:
        with tempfile.TemporaryDirectory() as home:
            datas, _failed, extra = load_universe(home)
        seen = read_list(HERE / "universe_train.txt")
    store = HERE / "universe_select.json"
    saved = json.loads(store.read_text()) if store.is_file() else {}
    done = saved.setdefault(str(args.horizon), {})
    for label in labels:  # none: render the saved rows only
        changes = CANDIDATES[label]
        config = LSTMConfig(
            horizon=args.horizon, market="SPY", exog={"VIX": str(VIX)}, **BASE
        ).replace(**changes)
        exog = build_exog(
            extra["market"].prices if config.market else None,
            config.estimator,
            config.window,
            dict(config.exog),
        )
        model = LSTMForecaster(config)
        datasets = {t: model.dataset(datas[t].prices, exog) for t in seen}
        start = time.time()
        model.fit_pooled(datasets, CUT)
        ratios = []
        for t, ds in datasets.items():
            split = split_dataset(ds, test_start=CUT)
            val = split.validation
            y = ds.floored_target()[val]
            lstm = metrics.qlike(y, model.for_ticker(t).predict(ds, val))
            har = HAR().fit(ds, split.validation_start)
            ratios.append(lstm / metrics.qlike(y, har.predict(ds, val)))
        row = {
            "candidate": label,
            "changes": {k: v for k, v in changes.items()},
            "mean_ratio": float(np.mean(ratios)),
            "median_ratio": float(np.median(ratios)),
            "epochs": model.training["epochs_run"],
            "best_epoch": model.training["best_epoch"],
            "seconds": round(time.time() - start, 1),
        }
        row["date"] = time.strftime("%Y-%m-%d")
        done[label] = row
        store.write_text(json.dumps(saved, indent=1) + "\n")
        print(json.dumps(row), flush=True)
    rows = list(done.values())
    lines = [
        f"# Universal model: settings chosen on validation rows, h = {args.horizon}",
        "",
        f"Measured {', '.join(sorted({r['date'] for r in rows}))} by `.venv/bin/python "
        f"bench/universe_select.py --horizon {args.horizon} --candidates ...` (each run adds "
        "its candidates; raw rows in `bench/universe_select.json`). "
        + __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        f"Base: {BASE}, market SPY (S&P 500 sample), VIX; cut {CUT:%Y-%m-%d}.",
        "",
        "| candidate | validation QLIKE / HAR (mean) | median | epochs (best) | fit s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['candidate']} | {r['mean_ratio']:.3f} | {r['median_ratio']:.3f} | "
            f"{r['epochs']} ({r['best_epoch']}) | {r['seconds']:.0f} |"
        )
    best = min(rows, key=lambda r: r["mean_ratio"])
    lines += ["", f"Lowest mean validation ratio: **{best['candidate']}**.", ""]
    Path(args.output).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
