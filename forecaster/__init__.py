"""forecaster: realized-volatility forecasts from LSTMs with pluggable initial states."""

__version__ = "0.1.0"
