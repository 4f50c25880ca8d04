"""Atomic writes and the temporaries on their way (ground layer: every layer writes files).

A file is written to a temporary beside it, flushed and fsynced, renamed over
its target, and then the folder is fsynced so the rename itself survives a
power cut. Temporaries are named ``.tmp-<name>-<random>-<pid>@<host>``: a kill
can leave one behind, and :func:`remove_stale_temporaries` removes those whose
writing process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

#: Prefix of every temporary file or folder written on the way to an atomic rename.
TEMPORARY_PREFIX = ".tmp-"

#: When this module was imported: a temporary whose owner cannot be told is stale
#: if it is older than this (it predates the running process).
_STARTED = time.time()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def owner_tag() -> str:
    """``<pid>@<host>``: which process a temporary file or folder belongs to."""
    return f"{os.getpid()}@{socket.gethostname()}"


def temporary_name(name: str, token: str) -> str:
    """The name of a temporary on the way to ``name`` (see :func:`is_stale`)."""
    return f"{TEMPORARY_PREFIX}{name}-{token}-{owner_tag()}"


def _owner(name: str) -> tuple[int, str] | None:
    """``(pid, host)`` encoded in a temporary's name, None for names of older releases."""
    rest, at, host = name.rpartition("@")
    pid = rest.rpartition("-")[2]
    if not at or not host or not pid.isdigit():
        return None
    return int(pid), host


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale(path: Path) -> bool:
    """Whether a leftover temporary at ``path`` no longer belongs to a live writer.

    A temporary made on this host is stale once its process has exited; one of
    an older release (no owner in its name) once it is older than the running
    process; one of another host (a shared folder) once it is also a day old.
    """
    name = path.name
    if not (name.startswith(TEMPORARY_PREFIX) or (name.startswith(".") and name.endswith(".tmp"))):
        return False
    owner = _owner(name)
    if owner is not None and owner[1] == socket.gethostname():
        return owner[0] != os.getpid() and not _alive(owner[0])
    try:
        modified = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if owner is None:
        return modified < _STARTED
    return modified < min(_STARTED, time.time() - 86400)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the stale temporaries directly inside ``folder``; return what was removed.

    Called before a save writes into ``folder`` and at the start of a nightly
    run, so a kill mid-save leaves nothing behind for long.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not is_stale(entry):
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, payload)


def replace_file(path: Path, payload: bytes, mode: int | None = None) -> None:
    """Write ``path`` through a temporary file beside it and a rename; the folder must exist.

    ``mode`` sets the file's permission bits (default: the usual 0666 less the umask).
    """
    handle, temporary = tempfile.mkstemp(
        prefix=f"{TEMPORARY_PREFIX}{path.name[:200]}-", suffix=f"-{owner_tag()}", dir=path.parent
    )
    try:
        os.chmod(temporary, mode if mode is not None else 0o666 & ~_umask())  # mkstemp: 0600
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush ``folder``'s entries to disk, so a rename into it survives a crash.

    A file system that cannot sync a folder (some network mounts, Windows)
    refuses with EINVAL/EBADF/EACCES; the rename is then as durable as it can be.
    """
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def rename_durably(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """``os.replace(source, target)``, then fsync the target's folder (and the source's)."""
    os.replace(source, target)
    target_folder = Path(target).parent
    fsync_folder(target_folder)
    source_folder = Path(source).parent
    if source_folder.resolve() != target_folder.resolve():
        fsync_folder(source_folder)
