"""The one place where daily variance and annualized volatility meet.

Internally every number is a daily variance of log returns. People see
annualized volatility as a decimal (0.18 = 18%): ``vol = sqrt(252 * variance)``.
"""

from __future__ import annotations

import numpy as np

TRADING_DAYS = 252


def to_vol(variance):
    """Annualized volatility (decimal) from daily variance; arrays pass through."""
    return np.sqrt(TRADING_DAYS * variance)
