"""The universal model through the `forecast` command: train, fine-tune, predict for 150 tickers.

Runs, in a fresh home under the system's temporary folder (the commands are
printed as they run):

1. ``forecast train --panel stocks_daily.parquet --universe bench/universe_train.txt
   --market SPY --exog VIX=... --test-start 2014-01-02`` with the settings of
   ``bench/universe.py`` — wall time and peak memory of the process (goal: ≤ 20
   minutes and ≤ 4 GB);
2. ``forecast train --ticker T --panel ... --from VERSION --epochs 5`` for one
   unseen ticker — wall time (goal ≤ 30 s);
3. ``forecast predict --panel ... --model VERSION`` for all 150 tickers, first
   cold (no cached VaR/ES fits), then again (cached) — wall time of each fresh
   process (goal ≤ 20 s);
4. ``forecast evaluate --model VERSION --panel ... --tickers <the 50 of
   bench/universe_unseen.txt>`` — the panel summary on the unseen tickers.

Writes ``bench/universe_cli.md`` with the figures and the commands' output
(the long per-ticker parts cut), measured on this machine and dated.

    .venv/bin/python bench/universe_cli.py
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data"
PANEL = SHARED / "stocks_daily.parquet"
VIX = SHARED / "vix" / "VIX_History.csv"
FORECAST = str(Path(sys.executable).with_name("forecast"))
SETTINGS = ["--ensemble", "3", "--batch-size", "256", "--epochs", "20", "--patience", "4"]


def shown(text: str) -> str:
    """Paths relative to the project, never this machine's absolute ones."""
    return text.replace(str(SHARED), "../shared/data").replace(str(ROOT) + "/", "")


def run(home: str, *args: str) -> tuple[float, float, str, str]:
    """Run ``forecast --home HOME ARGS`` in a fresh process: wall s, peak RSS MB, out, err."""
    command = [FORECAST, "--home", home, *args]
    print("+ forecast " + shown(" ".join(args)), file=sys.stderr, flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):
        raise SystemExit(f"forecast {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return seconds, max(peak, before) / 1024, shown(done.stdout), shown(done.stderr)


def cut(text: str, head: int = 8, tail: int = 4) -> str:
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= head + tail + 1:
        return "\n".join(lines)
    return "\n".join([*lines[:head], f"... ({len(lines) - head - tail} lines cut)", *lines[-tail:]])


def main() -> None:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as home:
        train_s, train_mb, train_out, train_err = run(
            home, "train", "--panel", str(PANEL), "--universe", "bench/universe_train.txt",
            "--market", "SPY", "--exog", f"VIX={VIX}", "--test-start", "2014-01-02", *SETTINGS,
        )
        version = next(line.split()[1] for line in train_out.splitlines() if line.startswith("version:"))
        unseen = [t for t in (HERE / "universe_unseen.txt").read_text().split() if not t.startswith("#")]
        ticker = unseen[0]
        tune_s, _, tune_out, tune_err = run(
            home, "train", "--ticker", ticker, "--panel", str(PANEL), "--from", version,
            "--epochs", "5", "--no-promote",
        )
        cold_s, _, cold_out, cold_err = run(home, "predict", "--panel", str(PANEL), "--model", version)
        warm_s, _, warm_out, warm_err = run(home, "predict", "--panel", str(PANEL), "--model", version)
        eval_s, _, eval_out, eval_err = run(
            home, "evaluate", "--model", version, "--panel", str(PANEL), "--tickers",
            ",".join(unseen), "--baselines", "har,harx,har-pooled,garch,gbm",
        )
    panel_part = eval_out[eval_out.find("panel of"):] if "panel of" in eval_out else eval_out[-2000:]
    ok = [line for line in warm_out.splitlines()[2:] if line.rstrip().endswith("ok")]
    lines = [
        "# The universal model through the `forecast` command",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on this machine ({platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average at the start "
        f"{load[0]:.1f}) by `.venv/bin/python bench/universe_cli.py`. "
        + __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "| step | wall time | goal | verdict |",
        "|---|---|---|---|",
        f"| train on 100 stocks (3 members) | {train_s / 60:.1f} min, peak RSS {train_mb:.0f} MB | ≤ 20 min, ≤ 4 GB | "
        f"{'**met**' if train_s <= 1200 and train_mb <= 4096 else '**not met**'} |",
        f"| fine-tune {ticker} (5 epochs) | {tune_s:.1f} s | ≤ 30 s | {'**met**' if tune_s <= 30 else '**not met**'} |",
        f"| predict 150 tickers, cold (VaR/ES fits computed) | {cold_s:.1f} s | – | – |",
        f"| predict 150 tickers, cached fits | {warm_s:.1f} s ({len(ok)} ok) | ≤ 20 s | {'**met**' if warm_s <= 20 else '**not met**'} |",
        f"| evaluate 50 unseen tickers (5 baselines) | {eval_s:.0f} s | – | – |",
        "",
        "## Output",
        "",
        "```console",
        "$ forecast train --panel ../shared/data/stocks_daily.parquet --universe bench/universe_train.txt \\",
        f"    --market SPY --exog VIX=../shared/data/vix/VIX_History.csv --test-start 2014-01-02 {' '.join(SETTINGS)}",
        cut(train_err, 3, 2),
        cut(train_out, 6, 2),
        f"$ forecast train --ticker {ticker} --panel ../shared/data/stocks_daily.parquet --from {version} --epochs 5 --no-promote",
        cut(tune_err, 3, 2),
        tune_out.rstrip(),
        f"$ forecast predict --panel ../shared/data/stocks_daily.parquet --model {version}",
        cut(warm_out, 6, 3),
        f"$ forecast evaluate --model {version} --panel ../shared/data/stocks_daily.parquet \\",
        "    --tickers $(grep -v '#' bench/universe_unseen.txt | paste -sd,) \\",
        "    --baselines har,harx,har-pooled,garch,gbm",
        "...",
        panel_part.rstrip(),
        "```",
        "",
    ]
    (HERE / "universe_cli.md").write_text("\n".join(lines))
    print("wrote bench/universe_cli.md", file=sys.stderr)


if __name__ == "__main__":
    main()
