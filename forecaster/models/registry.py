"""Versioned model artifacts and a champion pointer per ticker (DESIGN.md §7).

    <models>/<TICKER>/<version>/model.keras   the Keras model
    <models>/<TICKER>/<version>/meta.json     everything needed to rebuild inputs
                                              and interpret outputs
    <models>/<TICKER>/champion.json           {"version": ..., "promoted_at": ...}

A version is written into a hidden temporary folder and renamed into place, so
a failure mid-save leaves no partial version; the champion pointer is replaced
atomically. A missing or corrupt file is an error naming it — never a silent
fallback to another model.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from forecaster.data.store import atomic_write_bytes
from forecaster.errors import ConfigError, RegistryError
from forecaster.models.record import ModelRecord

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
CHAMPION_FILE = "champion.json"


@dataclass(frozen=True, eq=False)
class ModelVersion:
    """One saved model: where it is and its metadata."""

    ticker: str
    version: str
    path: Path
    meta: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @functools.cached_property
    def record(self) -> ModelRecord:
        """The typed record of ``meta.json``; incomplete or inconsistent is an error naming it."""
        try:
            return ModelRecord.from_dict(self.meta)
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise RegistryError(
                f"model metadata {str(self.path / META_FILE)!r} is incomplete or corrupt "
                f"({detail}); retrain with `forecast train --ticker {self.ticker}`"
            ) from None


def new_version_id(init: str) -> str:
    """Sortable, unique id: UTC time, the initializer and a random suffix."""
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{init}-{secrets.token_hex(3)}"


def _read_json(path: Path, what: str, fix: str) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"{what} {str(path)!r} is missing; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(
            f"{what} {str(path)!r} is corrupt ({exc.__class__.__name__}); {fix}"
        ) from None
    if not isinstance(payload, dict):
        raise RegistryError(f"{what} {str(path)!r} is corrupt (not a JSON object); {fix}")
    return payload


def _check_name(name: str, what: str) -> None:
    """Version ids and tickers are single folder names, never paths."""
    if not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\"):
        raise RegistryError(
            f"{what} {name!r} is not a valid name; expected an id such as "
            "20261125T021530-encoder-a1b2c3 (see `forecast models list`)"
        )


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


class ModelRegistry:
    """The model registry under ``models_dir``."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)

    # --- writing ----------------------------------------------------------

    def save(
        self,
        record: ModelRecord,
        write_model: Callable[[Path], None],
        promote: bool,
        reason: str = "trained",
    ) -> ModelVersion:
        """Write a new version (``record`` as meta.json) atomically; optionally promote it.

        ``write_model(path)`` must write the model file to ``path``.
        """
        ticker, version = record.ticker, record.version
        _check_name(ticker, "ticker")
        _check_name(version, "model version")
        folder = self.models_dir / ticker
        final = folder / version
        if final.exists():
            raise RegistryError(
                f"model version {str(final)!r} already exists; retry to get a new id"
            )
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".tmp-{version}-{secrets.token_hex(3)}"
        staging.mkdir()
        try:
            write_model(staging / MODEL_FILE)
            full_meta = record.to_dict()
            write_json(staging / META_FILE, full_meta)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        saved = ModelVersion(ticker, version, final, full_meta)
        if promote:
            self.promote(ticker, version, reason=reason)
        return saved

    def promote(self, ticker: str, version: str, reason: str = "manual") -> None:
        """Point the ticker's champion at ``version`` (which must load)."""
        self.get(ticker, version)
        write_json(
            self.models_dir / ticker / CHAMPION_FILE,
            {
                "version": version,
                "promoted_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
                "reason": reason,
            },
        )

    @contextlib.contextmanager
    def promoting(self, ticker: str, version: str, reason: str = "manual") -> Iterator[None]:
        """Promote ``version`` for the body of a ``with``; undo it if the body raises.

        The champion pointer is moved on entry (as :meth:`promote`). If the body
        raises, the previous pointer is put back exactly (its bytes, or no file
        when the ticker had no champion) and the exception propagates.
        """
        path = self.models_dir / ticker / CHAMPION_FILE
        try:
            before: bytes | None = path.read_bytes()
        except FileNotFoundError:
            before = None
        self.promote(ticker, version, reason=reason)
        try:
            yield
        except BaseException:
            if before is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, before)
            raise

    # --- reading ----------------------------------------------------------

    def tickers(self) -> list[str]:
        if not self.models_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def version_ids(self, ticker: str) -> list[str]:
        folder = self.models_dir / ticker
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def get(self, ticker: str, version: str) -> ModelVersion:
        """A version with its metadata; missing or corrupt files are errors naming them."""
        _check_name(version, "model version")
        _check_name(ticker, "ticker")
        path = self.models_dir / ticker / version
        if not path.is_dir():
            known = ", ".join(self.version_ids(ticker)[-5:]) or "none"
            raise RegistryError(
                f"model version {version!r} of {ticker} not found under {str(self.models_dir)!r} "
                f"(latest versions: {known}); see `forecast models list --ticker {ticker}`"
            )
        fix = f"delete {str(path)!r} or retrain with `forecast train --ticker {ticker}`"
        meta = _read_json(path / META_FILE, "model metadata", fix)
        if not (path / MODEL_FILE).is_file():
            raise RegistryError(f"model file {str(path / MODEL_FILE)!r} is missing; {fix}")
        return ModelVersion(ticker, version, path, meta)

    def find(self, version: str) -> ModelVersion:
        """Look a version up across tickers."""
        _check_name(version, "model version")
        matches = [t for t in self.tickers() if (self.models_dir / t / version).is_dir()]
        if not matches:
            raise RegistryError(
                f"model version {version!r} not found under {str(self.models_dir)!r}; "
                "see `forecast models list` for the versions there are"
            )
        return self.get(matches[0], version)

    def champion_id(self, ticker: str) -> str | None:
        path = self.models_dir / ticker / CHAMPION_FILE
        if not path.exists():
            return None
        pointer = _read_json(
            path,
            "champion pointer",
            f"repair it with `forecast models promote VERSION` or retrain with `forecast train --ticker {ticker}`",
        )
        if not isinstance(pointer.get("version"), str):
            raise RegistryError(
                f"champion pointer {str(path)!r} is corrupt (no version); repair it with `forecast models promote VERSION`"
            )
        return pointer["version"]

    def champion(self, ticker: str) -> ModelVersion:
        """The ticker's champion; none is an error that says how to get one."""
        version = self.champion_id(ticker)
        if version is None:
            raise RegistryError(
                f"no champion model for {ticker} under {str(self.models_dir)!r}; "
                f"train one with `forecast train --ticker {ticker}`"
            )
        return self.get(ticker, version)

    def tickers_with_champion(self) -> list[str]:
        return [t for t in self.tickers() if (self.models_dir / t / CHAMPION_FILE).exists()]

    def resolve(self, ticker: str | None, version: str | None) -> ModelVersion:
        """``version`` if given (within ``ticker`` when given), else the champion."""
        if version is not None:
            return self.get(ticker, version) if ticker is not None else self.find(version)
        if ticker is None:
            raise RegistryError("name a --ticker or a --model VERSION")
        return self.champion(ticker)
