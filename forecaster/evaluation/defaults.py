"""Defaults shared by the library, the jobs and the CLI.

Kept free of heavy imports: the CLI shows them in ``-h`` without loading NumPy.
"""

from __future__ import annotations

#: Training quantile above which volatility is "high" (ex-ante and ex-post): the
#: default of ``evaluate --regime-quantile`` and of :func:`fit_thresholds`, and the
#: quantile of the morning report's regime, so "high-vol" means the same in both.
REGIME_QUANTILE = 0.8

#: Return distributions of VaR/ES (``--dist``): the registry
#: :mod:`forecaster.evaluation.risk` dispatches on, kept here so the CLI's choices
#: need no NumPy.
DISTRIBUTIONS: tuple[str, ...] = ("normal", "t", "fhs")
