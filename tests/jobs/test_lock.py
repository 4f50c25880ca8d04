"""The nightly lock: exclusive, names its holder, released on every exit."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap

import pytest

from forecaster.errors import LockError
from forecaster.jobs.lock import LockHolder, nightly_lock


def test_lock_writes_holder_and_clears_it_on_release(tmp_path):
    path = tmp_path / "data" / "nightly.lock"
    with nightly_lock(path) as holder:
        written = json.loads(path.read_text())
        assert written["pid"] == os.getpid() == holder.pid
        assert written["host"] == socket.gethostname()
        assert LockHolder(**written) == holder
    assert path.read_text() == ""
    with nightly_lock(path):  # free again
        pass


def test_second_holder_in_the_same_process_is_refused_with_the_holder_named(tmp_path):
    path = tmp_path / "nightly.lock"
    with nightly_lock(path) as holder:
        message = (
            f"another nightly run holds {path} (pid {holder.pid} on {holder.host}, since "
            f"{holder.started_at}); wait for it to finish (the lock is released automatically "
            "when that process exits; do not delete the file)"
        )
        with pytest.raises(LockError, match=re.escape(message)):
            with nightly_lock(path):
                pass
        # the refused attempt did not wipe the entry
        assert LockHolder(**json.loads(path.read_text())) == holder


def test_lock_is_released_when_the_block_raises(tmp_path):
    path = tmp_path / "nightly.lock"
    with pytest.raises(RuntimeError, match="boom"):
        with nightly_lock(path):
            raise RuntimeError("boom")
    with nightly_lock(path):
        pass


def test_lock_held_by_another_process_is_refused_until_that_process_ends(tmp_path):
    path = tmp_path / "nightly.lock"
    script = textwrap.dedent(
        f"""
        import sys, time
        from forecaster.jobs.lock import nightly_lock
        with nightly_lock({str(path)!r}):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=rf"\(pid {child.pid} on "):
            with nightly_lock(path):
                pass
    finally:
        child.kill()  # even a killed holder releases: the kernel drops the lock
        child.wait(timeout=30)
    with nightly_lock(path) as holder:
        assert holder.pid == os.getpid()


def test_unreadable_holder_entry_still_refuses(tmp_path):
    path = tmp_path / "nightly.lock"
    with nightly_lock(path):
        path.write_text("not json")
        with pytest.raises(LockError, match=r"holds .*nightly\.lock \(holder unknown\)"):
            with nightly_lock(path):
                pass
