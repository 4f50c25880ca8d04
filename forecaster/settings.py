"""Paths.

Everything the program writes lives under one *home* folder: ``--home DIR``,
else ``$FORECAST_HOME``, else the current directory.

    <home>/data/prices/<TICKER>.<source>.parquet   price cache
    <home>/data/forecasts.sqlite                   issued-forecast history
    <home>/data/nightly.lock                       nightly run lock
    <home>/data/cache/{keras,matplotlib}/          Keras' and matplotlib's own files
    <home>/data/cache/risk/<TICKER>/               fitted VaR/ES distributions of saved models
    <home>/data/cache/dask/                        a local Dask cluster's dask-scratch-space
    <home>/models/<TICKER>/<version>/              model registry

An empty home (``FORECAST_HOME=""``) is an error, not the current folder. A
home that does not exist yet is created on first write, so the nearest folder
above it that exists must be a writable folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from forecaster.errors import ConfigError

HOME_ENV = "FORECAST_HOME"

#: Environment variables through which libraries choose where to write their own files
#: (``~/.keras/keras.json``, matplotlib's font cache), and the folder each gets under
#: ``<home>/data/cache``.
LIBRARY_DIRS: dict[str, str] = {"KERAS_HOME": "keras", "MPLCONFIGDIR": "matplotlib"}
#: The values this process set (not the user): only these may be replaced.
_exported: dict[str, str] = {}


@dataclass(frozen=True)
class Settings:
    """Resolved paths under one home folder."""

    home: Path

    @classmethod
    def resolve(
        cls, home: str | os.PathLike[str] | None = None, origin: str = "--home"
    ) -> Settings:
        """Settings for ``home``, else ``$FORECAST_HOME``, else the current directory.

        ``origin`` names where ``home`` came from, for messages.

        Raises
        ------
        ConfigError
            An empty home, or one that is not (and cannot become) a folder:
            an existing file, a path under a file, an unwritable place.
        """
        if home is not None:
            chosen = os.fspath(home)
        elif HOME_ENV in os.environ:
            chosen, origin = os.environ[HOME_ENV], f"${HOME_ENV}"
        else:
            chosen, origin = os.getcwd(), "the current folder"
        if not chosen.strip():
            raise ConfigError(
                f"{origin} is empty; set it to the folder holding data/ and models/, or unset "
                f"{HOME_ENV} and omit --home to use the current folder"
            )
        try:
            path = Path(chosen).expanduser().resolve()
        except (OSError, RuntimeError) as exc:
            raise ConfigError(f"data home {chosen!r} ({origin}) is not usable ({exc})") from None
        _check_home(path, chosen, origin)
        return cls(home=path)

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

    @property
    def library_cache_dir(self) -> Path:
        """Where Keras and matplotlib keep their files (see :data:`LIBRARY_DIRS`)."""
        return self.data_dir / "cache"

    @property
    def dask_dir(self) -> Path:
        """A local Dask cluster's scratch space (``dask-scratch-space``; ``nightly --workers``)."""
        return self.library_cache_dir / "dask"

    @property
    def risk_cache_dir(self) -> Path:
        """Fitted VaR/ES distributions of saved models (:mod:`forecaster.evaluation.risk_cache`)."""
        return self.library_cache_dir / "risk"

    def export_library_dirs(self) -> None:
        """Point Keras and matplotlib at folders under the home, unless the user chose.

        Sets environment variables only (the libraries create their folders);
        call it before either library is imported (``arch`` imports
        matplotlib). A variable already set is never changed. Where the home
        cannot be written, a private temporary folder, removed at exit, is used.
        """
        for variable, name in LIBRARY_DIRS.items():
            if variable not in os.environ:
                folder = self.library_cache_dir / name
                chosen = str(folder) if _can_create(folder) else _temporary_dir(variable)
                os.environ[variable] = _exported[variable] = chosen


def _nearest_existing(path: Path) -> Path:
    """``path`` or the closest folder above it that exists."""
    while not path.exists():
        path = path.parent
    return path


def _can_create(folder: Path) -> bool:
    """Whether ``folder`` is, or can be made, a writable folder (nothing is created)."""
    try:
        existing = _nearest_existing(folder)
        return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    except OSError:
        return False


def _temporary_dir(variable: str) -> str:
    """A new private folder for the library behind ``variable``, removed at exit."""
    temporary = tempfile.mkdtemp(prefix=f"forecaster-{LIBRARY_DIRS[variable]}-")
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    return temporary


def _check_home(path: Path, chosen: str, origin: str) -> None:
    """``path`` is a folder, or can be created: its nearest existing ancestor is a writable folder."""
    fix = "set --home or $FORECAST_HOME to a folder you can write"
    try:
        existing = _nearest_existing(path)
        is_folder = existing.is_dir()
    except OSError as exc:
        raise ConfigError(
            f"data home {chosen!r} ({origin}) is not usable ({exc.strerror or exc}); {fix}"
        ) from None
    if existing == path and not is_folder:
        raise ConfigError(f"data home {chosen!r} ({origin}) is not a folder; {fix}")
    if existing != path and not (is_folder and os.access(existing, os.W_OK | os.X_OK)):
        why = "is not a folder" if not is_folder else "is not writable"
        raise ConfigError(
            f"data home {chosen!r} ({origin}) cannot be created: {str(existing)!r} {why}; {fix}"
        )


def prepare_library_dir(variable: str) -> str:
    """Before importing the library behind ``variable`` (a key of :data:`LIBRARY_DIRS`).

    A value the user set is kept as it is. The folder under the data home set
    by :meth:`Settings.export_library_dirs` is created; if it cannot be, or
    nothing was set (library use without the CLI), a private temporary folder,
    removed at exit, is used instead, so the library never writes to ``~``.

    Returns
    -------
    str
        The folder the library will use.
    """
    value = os.environ.get(variable)
    if value is not None and _exported.get(variable) != value:
        return value  # the user's choice
    if value is not None:
        try:
            Path(value).mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        else:
            if os.access(value, os.W_OK | os.X_OK):
                return value
    temporary = _temporary_dir(variable)
    os.environ[variable] = _exported[variable] = temporary
    return temporary
