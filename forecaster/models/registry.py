"""Versioned model artifacts and a champion pointer per ticker (DESIGN.md §7).

    <models>/<TICKER>/<version>/model.keras    the Keras model
    <models>/<TICKER>/<version>/meta.json      everything needed to rebuild inputs
                                               and interpret outputs
    <models>/<TICKER>/<version>/manifest.json  sha256 of the two files above
    <models>/<TICKER>/champion.json            {"version": ..., "promoted_at": ...,
                                                "reason": ..., "previous": ...}

A version is written into a hidden temporary folder — model, metadata, and
last the manifest — and renamed into place, so a failure mid-save leaves no
partial version; the champion pointer is replaced atomically. Every read of a
version (:meth:`ModelRegistry.get`, which ``predict``, ``evaluate``,
``nightly`` and ``promote`` all go through) checks the files against the
manifest, so a tampered or swapped file is an error, not a different forecast.
Versions saved before manifests existed have none and load as before. A
missing or corrupt file is an error naming it — never a silent fallback to
another model. Temporaries left by a killed save are removed by the next save.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from forecaster.errors import ConfigError, RegistryError
from forecaster.files import (
    atomic_write_bytes,
    remove_stale_temporaries,
    rename_durably,
    temporary_name,
)
from forecaster.models.record import ModelRecord

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
CHAMPION_FILE = "champion.json"
MANIFEST_FILE = "manifest.json"
#: Layout version of manifest.json.
MANIFEST_FORMAT = 1


@dataclass(frozen=True, eq=False)
class ModelVersion:
    """One saved model: where it is and its metadata."""

    ticker: str
    version: str
    path: Path
    meta: dict[str, Any]
    manifest: dict[str, Any] | None = None

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def verified(self) -> bool:
        """Whether its files were checked against a manifest (False: saved before manifests)."""
        return self.manifest is not None

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


def _read_json_bytes(path: Path, what: str, fix: str) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its JSON object; missing or corrupt is an error naming it."""
    try:
        raw = path.read_bytes()
        payload = json.loads(raw.decode())
    except FileNotFoundError:
        raise RegistryError(f"{what} {str(path)!r} is missing; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(
            f"{what} {str(path)!r} is corrupt ({exc.__class__.__name__}); {fix}"
        ) from None
    if not isinstance(payload, dict):
        raise RegistryError(f"{what} {str(path)!r} is corrupt (not a JSON object); {fix}")
    return raw, payload


def _read_json(path: Path, what: str, fix: str) -> dict[str, Any]:
    return _read_json_bytes(path, what, fix)[1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": _sha256(path), "bytes": path.stat().st_size}


def _tamper_fix(path: Path, ticker: str) -> str:
    return (
        f"restore the version's files, or delete {str(path)!r} and choose another champion "
        f"with `forecast models promote VERSION --ticker {ticker}` or retrain with "
        f"`forecast train --ticker {ticker}`"
    )


def _check_name(name: str, what: str) -> None:
    """Version ids and tickers are single folder names, never paths."""
    if not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\"):
        raise RegistryError(
            f"{what} {name!r} is not a valid name; expected an id such as "
            "20261125T021530-encoder-a1b2c3 (see `forecast models list`)"
        )


def folder_bytes(path: Path) -> int:
    """Total size of the regular files under ``path``."""
    return sum(
        entry.stat().st_size
        for entry in path.rglob("*")
        if entry.is_file() and not entry.is_symlink()
    )


def _remove_tree(path: Path) -> None:
    """Remove a folder already renamed out of the registry (a hook for crash tests)."""
    shutil.rmtree(path)


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
        with self._staged(ticker, version) as staging:
            write_model(staging / MODEL_FILE)
            # The record declares its manifest, so a manifest deleted later is noticed.
            full_meta = {**record.to_dict(), "manifest": MANIFEST_FILE}
            write_json(staging / META_FILE, full_meta)
            manifest = {
                "format": MANIFEST_FORMAT,
                "ticker": ticker,
                "version": version,
                "algorithm": "sha256",
                "files": {name: _file_entry(staging / name) for name in (META_FILE, MODEL_FILE)},
            }
            write_json(staging / MANIFEST_FILE, manifest)  # last: it vouches for the others
        final = self.models_dir / ticker / version
        saved = ModelVersion(ticker, version, final, full_meta, manifest)
        if promote:
            self.promote(ticker, version, reason=reason)
        return saved

    def add_files(self, ticker: str, version: str, files: dict[str, bytes]) -> ModelVersion:
        """Write a version received as file contents (:meth:`version_files`) atomically.

        The files are staged in a hidden temporary folder, checked against the
        manifest among them (which must name this ticker and version), and
        renamed into place: a version damaged in transit is an error and leaves
        nothing behind. Used by the nightly driver to store a challenger that a
        Dask worker trained.
        """
        _check_name(ticker, "ticker")
        _check_name(version, "model version")
        expected = {META_FILE, MODEL_FILE, MANIFEST_FILE}
        if set(files) != expected:
            raise RegistryError(
                f"model version {version} of {ticker} arrived with files {sorted(files)}; "
                f"expected {sorted(expected)}"
            )
        with self._staged(ticker, version) as staging:
            for name in (MODEL_FILE, META_FILE, MANIFEST_FILE):  # the manifest last
                atomic_write_bytes(staging / name, files[name])
            meta = json.loads(files[META_FILE].decode())
            manifest = self._verify(ticker, version, staging, meta, files[META_FILE])
            if manifest is None:
                raise RegistryError(f"model version {version} of {ticker} arrived without manifest")
        return ModelVersion(ticker, version, self.models_dir / ticker / version, meta, manifest)

    @contextlib.contextmanager
    def _staged(self, ticker: str, version: str) -> Iterator[Path]:
        """A hidden folder to write a new version into, renamed into place on success.

        A version that already exists is an error; on any exception the folder is
        removed, so nothing half-written is ever visible.
        """
        folder = self.models_dir / ticker
        final = folder / version
        if final.exists():
            raise RegistryError(
                f"model version {str(final)!r} already exists; retry to get a new id"
            )
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)
        staging = folder / temporary_name(version, secrets.token_hex(3))
        staging.mkdir()
        try:
            yield staging
            rename_durably(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def version_files(self, ticker: str, version: str) -> dict[str, bytes]:
        """The files of a checked version by name (model, metadata, manifest), as bytes."""
        saved = self.get(ticker, version)
        names = (MODEL_FILE, META_FILE) + ((MANIFEST_FILE,) if saved.verified else ())
        return {name: (saved.path / name).read_bytes() for name in names}

    def promote(self, ticker: str, version: str, reason: str = "manual") -> None:
        """Point the ticker's champion at ``version`` (which must load).

        Works whatever the current pointer holds, so it also repairs a corrupt one.
        """
        self.get(ticker, version)
        remove_stale_temporaries(self.models_dir / ticker)
        pointer = {
            "version": version,
            "promoted_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "reason": reason,
        }
        previous = self.previous_champion_id(ticker, replacing=version)
        if previous is not None:
            pointer["previous"] = previous
        write_json(self.models_dir / ticker / CHAMPION_FILE, pointer)

    @contextlib.contextmanager
    def promoting(self, ticker: str, version: str, reason: str = "manual") -> Iterator[None]:
        """Promote ``version`` for the body of a ``with``; undo it if the body raises.

        The champion pointer is moved on entry (as :meth:`promote`). If the body
        raises, the previous pointer is put back exactly (its bytes, or no file
        when the ticker had no champion) and the exception propagates.
        """
        before = self.pointer_bytes(ticker)
        self.promote(ticker, version, reason=reason)
        try:
            yield
        except BaseException:
            self.restore_pointer(ticker, before)
            raise

    def previous_champion_id(self, ticker: str, replacing: str | None = None) -> str | None:
        """The champion before the current one, as the pointer records it (``previous``).

        With ``replacing``: the champion that would be previous once ``replacing``
        is promoted (the current one, or its own previous when it is re-promoted).
        None when unknown: no pointer, a corrupt one, or one written before
        pointers recorded their predecessor.
        """
        try:
            pointer = json.loads((self.models_dir / ticker / CHAMPION_FILE).read_bytes())
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(pointer, dict):
            return None
        current, previous = pointer.get("version"), pointer.get("previous")
        if replacing is not None and isinstance(current, str) and current != replacing:
            return current
        return previous if isinstance(previous, str) else None

    def pointer_bytes(self, ticker: str) -> bytes | None:
        """The champion pointer file as it is (None when the ticker has none)."""
        try:
            return (self.models_dir / ticker / CHAMPION_FILE).read_bytes()
        except FileNotFoundError:
            return None

    def restore_pointer(self, ticker: str, payload: bytes | None) -> None:
        """Put back a pointer read by :meth:`pointer_bytes` (None: remove the pointer)."""
        path = self.models_dir / ticker / CHAMPION_FILE
        if payload is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write_bytes(path, payload)

    def delete(self, ticker: str, version: str) -> int:
        """Remove a version folder crash-safely; return the bytes its files held.

        The folder is first renamed to a hidden temporary (one atomic step: the
        version, its files and its manifest disappear together), then removed. A
        kill in between leaves only the temporary, which the next save, promotion
        or nightly run removes (:func:`remove_stale_temporaries`). The caller
        decides what may go; this never checks the champion pointer.
        """
        _check_name(ticker, "ticker")
        _check_name(version, "model version")
        folder = self.models_dir / ticker
        path = folder / version
        if not path.is_dir():
            raise RegistryError(
                f"model version {version!r} of {ticker} not found under "
                f"{str(self.models_dir)!r}; see `forecast models list --ticker {ticker}`"
            )
        remove_stale_temporaries(folder)  # e.g. what a killed prune left
        size = folder_bytes(path)
        doomed = folder / temporary_name(version, secrets.token_hex(3))
        rename_durably(path, doomed)
        _remove_tree(doomed)
        return size

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
        raw_meta, meta = _read_json_bytes(path / META_FILE, "model metadata", fix)
        if not (path / MODEL_FILE).is_file():
            raise RegistryError(f"model file {str(path / MODEL_FILE)!r} is missing; {fix}")
        manifest = self._verify(ticker, version, path, meta, raw_meta)
        return ModelVersion(ticker, version, path, meta, manifest)

    @staticmethod
    def _verify(
        ticker: str, version: str, path: Path, meta: dict[str, Any], raw_meta: bytes
    ) -> dict[str, Any] | None:
        """Check the version's files against its manifest; None when it has none (0.1 saves)."""
        where = path / MANIFEST_FILE
        fix = _tamper_fix(path, ticker)
        if not where.exists():
            if "manifest" in meta:
                raise RegistryError(
                    f"manifest {str(where)!r} is missing, although {str(path / META_FILE)!r} "
                    f"declares one: the version cannot be checked; {fix}"
                )
            return None
        manifest = _read_json(where, "manifest", fix)
        files = manifest.get("files")
        if manifest.get("algorithm") != "sha256" or not isinstance(files, dict) or any(
            not isinstance(files.get(name), dict) for name in (META_FILE, MODEL_FILE)
        ):
            raise RegistryError(
                f"manifest {str(where)!r} is corrupt (expected sha256 entries for {META_FILE} "
                f"and {MODEL_FILE}); {fix}"
            )
        if (manifest.get("ticker"), manifest.get("version")) != (ticker, version):
            raise RegistryError(
                f"manifest {str(where)!r} belongs to {manifest.get('ticker')} version "
                f"{manifest.get('version')}, not {ticker} {version}: the folder was copied or "
                f"renamed; {fix}"
            )
        found = {
            META_FILE: hashlib.sha256(raw_meta).hexdigest(),
            MODEL_FILE: _sha256(path / MODEL_FILE),
        }
        for name, digest in found.items():
            recorded = files[name].get("sha256")
            if digest != recorded:
                raise RegistryError(
                    f"{'model metadata' if name == META_FILE else 'model file'} "
                    f"{str(path / name)!r} does not match the manifest {str(where)!r} "
                    f"(sha256 {str(recorded)[:12]}... recorded, {digest[:12]}... found): it was "
                    f"changed or replaced after the version was saved; {fix}"
                )
        return manifest

    def find(self, version: str, prefer: str | None = None) -> ModelVersion:
        """Look a version up across tickers; ``prefer``'s copy when it holds one.

        A pooled version is saved under every ticker it serves: only the copy
        that is read is checked, so another ticker's damaged copy does not stop
        ``prefer``'s intact one.
        """
        _check_name(version, "model version")
        matches = [t for t in self.tickers() if (self.models_dir / t / version).is_dir()]
        if not matches:
            raise RegistryError(
                f"model version {version!r} not found under {str(self.models_dir)!r}; "
                "see `forecast models list` for the versions there are"
            )
        return self.get(prefer if prefer in matches else matches[0], version)

    def champion_id(self, ticker: str) -> str | None:
        path = self.models_dir / ticker / CHAMPION_FILE
        if not path.exists():
            return None
        fix = (
            f"repair it with `forecast models promote VERSION --ticker {ticker}` (the versions "
            f"are listed by `forecast models list --ticker {ticker}`) or retrain with "
            f"`forecast train --ticker {ticker}`"
        )
        pointer = _read_json(path, "champion pointer", fix)
        if not isinstance(pointer.get("version"), str):
            raise RegistryError(f"champion pointer {str(path)!r} is corrupt (no version); {fix}")
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
