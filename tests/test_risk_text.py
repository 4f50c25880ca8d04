"""One wording of a forecast's VaR/ES line for `predict` and `nightly` (cli.output.risk_text)."""

from __future__ import annotations

from forecaster.cli.jobs import _risk_cells
from forecaster.cli.output import risk_text
from forecaster.cli.predict import _risk_line

RISK = {
    "distribution": "t",
    "horizon": 1,
    "levels": {"0.01": {"var": -0.0418, "es": -0.0504}, "0.05": {"var": -0.0277, "es": -0.0365}},
    "fit": {"n": 3805, "params": {"dof": 11.43, "scale": 0.906}, "before": "2015-03-23"},
    "overnight": {"method": "hansen-lunde-2005", "factor": 1.6597},
    "reason": None,
}
CELLS = "1-day log return VaR 1% -4.18% ES -5.04%, VaR 5% -2.77% ES -3.65%"


def test_predict_and_nightly_word_the_same_levels_the_same_way():
    stored = {key: RISK[key] for key in ("distribution", "levels", "reason", "overnight")}
    assert _risk_cells(stored, 1) == f"{CELLS} (t)"  # what the nightly record keeps
    assert _risk_line(RISK) == (
        f"{CELLS} (t; dof 11.4, scale 0.91, fit on 3805 training days before 2015-03-23); "
        "close-to-close variance = 1.660 x forecast (overnight gap, Hansen-Lunde factor of "
        "the pre-test days)"
    )


def test_no_levels_is_the_reason_in_both_and_the_horizon_is_named():
    none = {**RISK, "levels": None, "reason": "not enough data: 40 residuals"}
    assert risk_text(none) == risk_text(none, detail=True) == (
        "VaR/ES (t): n/a — not enough data: 40 residuals"
    )
    assert _risk_cells({**RISK, "overnight": None}, 5).startswith("5-day log return VaR 1% ")
    normal = {**RISK, "distribution": "normal", "overnight": {"factor": 1.0}}
    assert risk_text(normal, detail=True) == f"{CELLS} (normal)"
