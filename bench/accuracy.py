"""Accuracy benchmark on the bundled S&P 500 and NASDAQ samples.

For each index and horizon (1, 5, 22): the `compare` table (every initial-state
strategy over several seeds, HAR as reference) and the `evaluate` table of an
`encoder` model (held-out and walk-forward), written to bench/accuracy.md with
the goals checked:

- encoder QLIKE <= 0.92 x HAR's at h = 1, on both indices;
- encoder's ex-post high-volatility bias smaller in magnitude than HAR's.

    .venv/bin/python bench/accuracy.py [--seeds 2] [--refit-every 252] [--horizons 1,5,22]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from forecaster.data.loader import load_prices
from forecaster.evaluation import backtest
from forecaster.evaluation.compare import compare, render_compare_markdown
from forecaster.evaluation.report import render_markdown
from forecaster.models.baselines import BASELINES as REGISTERED_BASELINES
from forecaster.models.config import LSTMConfig
from forecaster.models.initial_state import available_strategies
from forecaster.models.lstm_forecaster import train
from forecaster.models.registry import ModelRegistry
from forecaster.settings import Settings

HERE = Path(__file__).resolve().parent
BASELINES = list(REGISTERED_BASELINES)
INDICES = {"SPY": "S&P 500", "QQQ": "NASDAQ Composite"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--refit-every", type=int, default=252)
    parser.add_argument("--horizons", default="1,5,22")
    parser.add_argument("--output", default=str(HERE / "accuracy.md"))
    parser.add_argument("--loss", default="mse", choices=["mse", "qlike"])
    parser.add_argument("--inits", default=",".join(available_strategies()))
    parser.add_argument("--no-walk-forward", action="store_true")
    args = parser.parse_args()
    horizons = [int(h) for h in args.horizons.split(",")]
    started = time.perf_counter()
    sections: list[str] = []
    goals: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve(folder)
        registry = ModelRegistry(settings.models_dir)
        for ticker, name in INDICES.items():
            data = load_prices(ticker, source="sample", settings=settings)
            for horizon in horizons:
                options = LSTMConfig(horizon=horizon, loss=args.loss)
                print(f"{ticker} h={horizon}: compare", flush=True)
                compared = compare(data, args.inits.split(","), args.seeds, options)
                print(f"{ticker} h={horizon}: train encoder + evaluate", flush=True)
                version = train(data, options, registry).version
                held = backtest.summarize(backtest.held_out(version, data, BASELINES))
                walked = None
                if not args.no_walk_forward:
                    walked = backtest.summarize(
                        backtest.walk_forward(
                            version, data, BASELINES, refit_every=args.refit_every
                        )
                    )
                sections.append(f"## {name} sample ({ticker}), horizon {horizon}\n")
                sections.append("#### compare: strategies x seeds vs HAR\n")
                sections.append(render_compare_markdown(compared))
                sections.append("#### evaluate: held-out\n")
                sections.append(render_markdown(held))
                if walked is not None:
                    sections.append(
                        f"#### evaluate: walk-forward, refit every {args.refit_every} days\n"
                    )
                    sections.append(render_markdown(walked))
                for label, result in (("held-out", held), ("walk-forward", walked)):
                    if result is None:
                        continue
                    lstm, har = result["models"]["lstm"], result["models"]["har"]
                    ratio = lstm["qlike"] / har["qlike"]
                    bias_ok = abs(lstm["bias_high_ex_post"]) < abs(har["bias_high_ex_post"])
                    goal_q = "met" if ratio <= 0.92 else "not met"
                    goals.append(
                        f"| {ticker} | {horizon} | {label} | {lstm['qlike']:.4f} | {har['qlike']:.4f} | "
                        f"{ratio:.3f} | {goal_q if horizon == 1 else '(h=1 only)'} | "
                        f"{lstm['bias_high_ex_post']:+.2%} | {har['bias_high_ex_post']:+.2%} | "
                        f"{'met' if bias_ok else 'not met'} |"
                    )
                encoder = compared["inits"]["encoder"]["qlike"]["mean"]
                goals.append(
                    f"| {ticker} | {horizon} | compare, encoder mean of {args.seeds} seeds | {encoder:.4f} | "
                    f"{compared['har']['qlike']:.4f} | {encoder / compared['har']['qlike']:.3f} | "
                    f"{('met' if encoder / compared['har']['qlike'] <= 0.92 else 'not met') if horizon == 1 else '(h=1 only)'} | "
                    f"{compared['inits']['encoder']['bias_high_ex_post']['mean']:+.2%} | "
                    f"{compared['har']['bias_high_ex_post']:+.2%} | "
                    f"{'met' if abs(compared['inits']['encoder']['bias_high_ex_post']['mean']) < abs(compared['har']['bias_high_ex_post']) else 'not met'} |"
                )
    minutes = (time.perf_counter() - started) / 60
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    header = f"""# Accuracy benchmark

Measured {stamp} by `bench/accuracy.py --seeds {args.seeds} --refit-every {args.refit_every}
--horizons {args.horizons} --loss {args.loss} --inits {args.inits}{" --no-walk-forward" if args.no_walk_forward else ""}` in {minutes:.0f} minutes on this machine ({os.cpu_count()} cores,
{platform.machine()}). Data: the real daily S&P 500 and NASDAQ Composite history shipped with
`arch` (1999-2018), Garman-Klass variance, default model settings (lookback 22, context 252,
32 units, `--loss {args.loss}` on log variance + validation scale correction), chronological split with the
last 20% of origins held out as test (2015-2018). The held-out `lstm` is an `encoder` model
with seed 0; walk-forward retrains that configuration every {args.refit_every} trading days.

## Goals

| index | h | run | encoder QLIKE | HAR QLIKE | ratio | goal ratio <= 0.92 | encoder bias high ex-post | HAR bias high ex-post | goal abs(bias) < HAR |
|---|---:|---|---:|---:|---:|---|---:|---:|---|
{chr(10).join(goals)}

"""
    Path(args.output).write_text(header + "\n".join(sections))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
