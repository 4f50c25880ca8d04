"""forecaster.files: atomic writes in the ground layer, durable renames."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from forecaster import files

PACKAGE = Path(files.__file__).resolve().parent
HELPERS = {
    "TEMPORARY_PREFIX", "owner_tag", "temporary_name", "is_stale", "remove_stale_temporaries",
    "atomic_write_bytes", "replace_file", "fsync_folder", "rename_durably",
}


def test_replace_file_syncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(source, target):
        events.append(("replace", Path(target).name))
        return real_replace(source, target)

    def fsync(descriptor):
        kind = "folder" if os.path.isdir(f"/proc/self/fd/{descriptor}") else "file"
        events.append(("fsync", kind))
        return real_fsync(descriptor)

    monkeypatch.setattr(files.os, "replace", replace)
    monkeypatch.setattr(files.os, "fsync", fsync)
    target = tmp_path / "out.json"
    files.replace_file(target, b"{}\n")
    assert target.read_bytes() == b"{}\n"
    # the data reaches the disk before the rename, the folder entry after it
    assert events == [("fsync", "file"), ("replace", "out.json"), ("fsync", "folder")]


def test_rename_durably_syncs_both_folders(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(files, "fsync_folder", lambda folder: synced.append(Path(folder)))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "staging").mkdir()
    files.rename_durably(tmp_path / "a" / "staging", tmp_path / "b" / "final")
    assert (tmp_path / "b" / "final").is_dir() and not (tmp_path / "a" / "staging").exists()
    assert synced == [tmp_path / "b", tmp_path / "a"]


def test_a_folder_that_cannot_be_synced_is_not_an_error(tmp_path, monkeypatch):
    def refuse(descriptor):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(files.os, "fsync", refuse)
    files.fsync_folder(tmp_path)  # no exception
    files.fsync_folder(tmp_path / "missing")


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "pointer.json"
    target.write_bytes(b"old")

    def crash(source, destination):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def _imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_every_module_takes_the_helpers_from_the_ground_layer():
    """No module reaches into the data layer's store for a file helper (it re-exports none)."""
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, name in _imports(path)
        if module == "forecaster.data.store" and name in HELPERS
    ]
    assert wrong == []
    assert not any(module.startswith("forecaster") for module, _ in _imports(Path(files.__file__)))
