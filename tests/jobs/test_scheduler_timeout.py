"""``nightly --scheduler`` against addresses that are not a working Dask scheduler (issue 20).

Every socket here is on 127.0.0.1. A listener that accepts and never answers
used to hang the run (Dask's Client does not bound its handshake) while it held
the nightly lock; now the run ends within ``--scheduler-timeout`` with one
error line naming the cause, and the lock is free again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from forecaster.errors import ConfigError
from forecaster.jobs.lock import nightly_lock
from forecaster.jobs.nightly import (
    SCHEDULER_TIMEOUT_SECONDS,
    check_scheduler,
    parse_scheduler,
)
from forecaster.settings import Settings
from tests.conftest import run_cli

pytest.importorskip("distributed")


@contextlib.contextmanager
def silent_listener():
    """A TCP port on 127.0.0.1 that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nightly(home, scheduler, *extra):
    started = time.monotonic()
    result = run_cli(
        "--home", str(home), "nightly", "--tickers", "SPY", "--source", "sample",
        "--scheduler", scheduler, *extra,
    )  # fmt: skip
    return result, time.monotonic() - started


def assert_one_line(result, *parts):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


def assert_lock_free(home):
    with nightly_lock(Settings.resolve(home).lock_path):
        pass  # would raise LockError if the failed run still held it


def test_a_listener_that_never_answers_fails_within_the_timeout(tmp_path):
    with silent_listener() as port:
        address = f"tcp://127.0.0.1:{port}"
        result, seconds = nightly(tmp_path, address, "--scheduler-timeout", "1.5")
    assert_one_line(result, "not a Dask scheduler", "sent nothing within 1.5 s", "handshake")
    assert seconds < 1.5 + 8  # bounded: before, it never ended
    assert_lock_free(tmp_path)


def test_connection_refused_is_named_at_once(tmp_path):
    result, seconds = nightly(tmp_path, f"tcp://127.0.0.1:{closed_port()}")
    assert_one_line(result, "connection refused")
    assert seconds < SCHEDULER_TIMEOUT_SECONDS  # no 30 s wait, no "Timed out"
    assert_lock_free(tmp_path)


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_an_invalid_port_is_named_before_connecting(tmp_path, port):
    result, seconds = nightly(tmp_path, f"tcp://127.0.0.1:{port}")
    assert_one_line(result, f"invalid port {port!r}", "1 to 65535")
    assert seconds < 5
    assert not Settings.resolve(tmp_path).lock_path.exists()  # refused before the lock


def test_the_timeout_option_is_bounded_and_shown_in_help(tmp_path):
    args = ("--home", str(tmp_path), "nightly", "--tickers", "SPY", "--scheduler-timeout", "0")
    bad = run_cli(*args)
    assert bad.exit_code == 2 and "--scheduler-timeout" in bad.stderr
    shown = run_cli("nightly", "--help")
    text = " ".join(shown.stdout.split())
    assert "--scheduler-timeout SECONDS" in text and "[default: 10.0; 0.1<=x<=600]" in text


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://127.0.0.1:8786", ("tcp", "127.0.0.1", 8786)),
        ("tls://10.0.0.5", ("tls", "10.0.0.5", 8786)),
        ("tcp://[::1]:9000", ("tcp", "::1", 9000)),
    ],
)
def test_scheduler_addresses_are_parsed(address, expected):
    assert parse_scheduler(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "http://127.0.0.1:8786", "tcp://:8786"])
def test_malformed_scheduler_addresses_are_refused(address):
    with pytest.raises(ConfigError, match="--scheduler"):
        parse_scheduler(address)


def test_a_listener_that_answers_without_a_handshake_is_named():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        connection, _ = server.accept()
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        connection.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ConfigError, match="answered with something else"):
            check_scheduler(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout=3)
    finally:
        thread.join(5)
        server.close()
