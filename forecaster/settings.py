"""Paths.

Everything the program writes lives under one *home* folder: ``--home DIR``,
else ``$FORECAST_HOME``, else the current directory.

    <home>/data/prices/<TICKER>.<source>.parquet   price cache
    <home>/data/forecasts.sqlite                   issued-forecast history
    <home>/data/nightly.lock                       nightly run lock
    <home>/models/<TICKER>/<version>/              model registry
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "FORECAST_HOME"


@dataclass(frozen=True)
class Settings:
    """Resolved paths under one home folder."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Settings for ``home``, else ``$FORECAST_HOME``, else the current directory."""
        chosen = home if home is not None else os.environ.get(HOME_ENV) or os.getcwd()
        return cls(home=Path(chosen).expanduser().resolve())

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def prices_dir(self) -> Path:
        return self.data_dir / "prices"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def forecasts_db(self) -> Path:
        return self.data_dir / "forecasts.sqlite"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "nightly.lock"

    @property
    def yfinance_cache_dir(self) -> Path:
        return self.data_dir / "yfinance-cache"
