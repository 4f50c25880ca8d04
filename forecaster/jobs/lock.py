"""One nightly run at a time: an exclusive ``flock`` on ``<home>/data/nightly.lock``.

The lock is held on an open file, so the kernel releases it when the holding
process exits for any reason (even ``kill -9``); the file itself stays behind
and is harmless. While held, the file names its holder (pid, host, start
time) so a refused run can say who is in the way.

Note for cron: ``flock -n FILE forecast nightly`` must use a *different* file
than this one, or the program would find its own wrapper holding the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from forecaster.errors import ConfigError, LockError


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock, as written into the lock file."""

    pid: int
    host: str
    started_at: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started_at}"


def _read_holder(descriptor: int) -> LockHolder | None:
    try:
        os.lseek(descriptor, 0, os.SEEK_SET)
        raw = os.read(descriptor, 4096)
        payload = json.loads(raw.decode())
        return LockHolder(int(payload["pid"]), str(payload["host"]), str(payload["started_at"]))
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _held_error(path: Path, descriptor: int) -> LockError:
    holder = _read_holder(descriptor)
    who = holder.describe() if holder else "holder unknown"
    return LockError(
        f"another nightly run holds {path} ({who}); wait for it to finish (the lock is "
        "released automatically when that process exits; do not delete the file)"
    )


@contextlib.contextmanager
def nightly_lock(
    path: str | os.PathLike[str], command: str = "forecast nightly", hint: str = ""
) -> Iterator[LockHolder]:
    """Hold the exclusive nightly lock at ``path`` for the duration of the block.

    Parameters
    ----------
    path : path-like
        The lock file (``Settings.lock_path``); its folder is created if needed.
    command, hint : str
        Named in the error when the folder is not writable (a read-only home):
        what needs the write access, and an extra way out.

    Yields
    ------
    LockHolder
        This process's entry, as written into the file.

    Raises
    ------
    LockError
        Another process holds the lock; the message names it.
    ConfigError
        The lock file cannot be created or opened for writing (a read-only home).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_RDWR without O_TRUNC: never wipe the current holder's entry before we own the lock.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(
            f"cannot create the lock file {path} ({error.strerror or error}); {command} needs "
            f"write access to {path.parent} in the data home; make that folder writable by "
            f"this user, or pass --home with a writable folder{hint}"
        ) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        error = _held_error(path, descriptor)
        os.close(descriptor)
        raise error from None
    holder = LockHolder(
        pid=os.getpid(),
        host=socket.gethostname(),
        started_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    )
    try:
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, (json.dumps(asdict(holder)) + "\n").encode())
        os.fsync(descriptor)
        yield holder
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


@contextlib.contextmanager
def shared_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """For a look that changes nothing (``models prune --dry-run``): needs no write access.

    A shared ``flock`` on a read-only descriptor of the lock file, refused while a
    nightly run or a prune holds it; nothing is created or written. With no lock
    file (no run ever held it) or an unreadable one, there is nothing to wait for.

    Raises
    ------
    LockError
        Another process holds the exclusive lock; the message names it.
    """
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise _held_error(path, descriptor) from None
        yield
    finally:
        os.close(descriptor)  # releases the shared lock
