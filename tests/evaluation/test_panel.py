"""Panel summary: ratios, share beating the reference, DM on the daily mean differential."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecaster.errors import EvaluationError
from forecaster.evaluation.panel import panel_summary


def test_panel_summary_by_hand():
    dates = pd.bdate_range("2020-01-01", periods=60)
    rng = np.random.default_rng(0)
    losses = {}
    for i, ticker in enumerate(["A", "B", "C"]):
        ref = 1 + rng.random(60)
        model = ref * (0.9 if i < 2 else 1.1) + rng.normal(0, 0.05, 60)
        # C misses its first 10 dates: the daily mean uses the tickers scored that day
        index = dates if ticker != "C" else dates[10:]
        size = len(index)
        losses[ticker] = pd.DataFrame({"har": ref[:size], "lstm": model[:size]}, index=index)
    out = panel_summary(losses, "har", horizon=1)["models"]["lstm"]
    ratios = [losses[t]["lstm"].mean() / losses[t]["har"].mean() for t in "ABC"]
    assert out["mean_ratio"] == pytest.approx(np.mean(ratios))
    assert out["median_ratio"] == pytest.approx(np.median(ratios))
    assert out["share_beating"] == pytest.approx(2 / 3)
    # DM for h = 1 by the textbook formula: mean / sqrt(var / n), HLN factor, t(n-1)
    d = pd.concat([losses[t]["lstm"] - losses[t]["har"] for t in "ABC"], axis=1).mean(axis=1)
    n = len(d)
    stat = d.mean() / math.sqrt(d.var(ddof=0) / n) * math.sqrt((n + 1 - 2) / n)
    assert out["dm_stat"] == pytest.approx(stat, rel=1e-9)
    assert out["dm_p_value"] == pytest.approx(2 * stats.t.sf(abs(stat), n - 1), rel=1e-7)


def test_panel_summary_needs_the_reference():
    frame = pd.DataFrame({"lstm": [1.0, 2.0]}, index=pd.bdate_range("2020-01-01", periods=2))
    with pytest.raises(EvaluationError, match="reference 'har' was not scored for A"):
        panel_summary({"A": frame}, "har", 1)
