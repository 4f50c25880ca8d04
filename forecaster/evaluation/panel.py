"""Panel summary: how each model does across many tickers against a reference.

For every model and ticker the QLIKE ratio is the model's mean QLIKE over the
ticker's test rows divided by the reference's over the same rows. The summary
gives, per model, the mean and median of those ratios, the share of tickers
where the model beats the reference (ratio < 1), and a Diebold–Mariano test on
the cross-sectional average loss differential: on each test date, the mean
over the tickers scored that day of (model loss − reference loss), one series
of daily averages whose long-run variance is estimated with the HAC sum of
:func:`forecaster.metrics.diebold_mariano` (lags up to h − 1, the HLN
correction). A negative statistic means the model's loss is lower.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from forecaster import metrics
from forecaster.errors import EvaluationError

__all__ = ["loss_frame", "panel_summary", "render_panel"]


def loss_frame(predictions: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Per-row QLIKE losses of ``models`` from a predictions frame (``target_var`` + forecasts)."""
    target = predictions["target_var"].to_numpy()
    return pd.DataFrame(
        {name: metrics.qlike_losses(target, predictions[name].to_numpy()) for name in models},
        index=predictions.index,
    )


def panel_summary(
    losses: Mapping[str, pd.DataFrame], reference: str, horizon: int
) -> dict[str, Any]:
    """Mean/median QLIKE ratio to ``reference``, share beating it and the panel DM test.

    Parameters
    ----------
    losses : mapping of ticker to DataFrame
        Per-row QLIKE losses, indexed by origin date, one column per model
        (the reference among them).
    reference : str
        The model every ratio and test is taken against.
    horizon : int
        Forecast horizon (lags of the HAC variance).

    Returns
    -------
    dict
        ``reference``, ``n_tickers``, ``n_dates`` and ``models``: per model
        other than the reference, ``mean_ratio``, ``median_ratio``,
        ``share_beating``, ``n_tickers``, ``dm_stat``, ``dm_p_value``.
    """
    if not losses:
        raise EvaluationError("a panel summary needs at least one ticker's losses; received none")
    missing = [ticker for ticker, frame in losses.items() if reference not in frame]
    if missing:
        raise EvaluationError(
            f"the reference {reference!r} was not scored for {', '.join(missing[:5])}; "
            "a panel summary compares every model with it"
        )
    models: list[str] = []
    for frame in losses.values():
        models += [name for name in frame.columns if name != reference and name not in models]
    out: dict[str, Any] = {
        "reference": reference,
        "n_tickers": len(losses),
        "horizon": int(horizon),
        "models": {},
    }
    dates: set = set()
    for name in models:
        ratios, differentials = [], []
        for ticker, frame in losses.items():
            if name not in frame:
                continue
            ratios.append(float(frame[name].mean() / frame[reference].mean()))
            differentials.append((frame[name] - frame[reference]).rename(ticker))
        daily = pd.concat(differentials, axis=1).mean(axis=1).sort_index()
        dates |= set(daily.index)
        test = metrics.diebold_mariano(daily.to_numpy(), np.zeros(len(daily)), horizon)
        ratio = np.asarray(ratios)
        out["models"][name] = {
            "mean_ratio": float(ratio.mean()),
            "median_ratio": float(np.median(ratio)),
            "share_beating": float((ratio < 1.0).mean()),
            "n_tickers": int(ratio.size),
            "dm_stat": float(test["stat"]),
            "dm_p_value": float(test["p_value"]),
        }
    out["n_dates"] = len(dates)
    return out


def render_panel(summary: dict[str, Any]) -> str:
    """The panel summary as a plain-text table."""
    reference = summary["reference"]
    lines = [
        f"panel of {summary['n_tickers']} tickers, horizon {summary['horizon']}: QLIKE ratio to "
        f"{reference} per ticker; DM on the daily cross-sectional mean loss differential",
        f"{'model':<12}{'mean ratio':>11}{'median':>9}{'beats ' + reference:>12}{'DM':>8}{'p':>8}",
    ]
    for name, row in summary["models"].items():
        lines.append(
            f"{name:<12}{row['mean_ratio']:>11.3f}{row['median_ratio']:>9.3f}"
            f"{row['share_beating']:>11.0%} {row['dm_stat']:>+8.2f}{row['dm_p_value']:>8.3f}"
        )
    return "\n".join(lines)
