"""A tiny headless-Chromium client over the DevTools protocol (``--remote-debugging-pipe``).

:func:`render` opens a local file with the network emulated offline, records
every console message, uncaught exception, log entry and network request, runs
a JavaScript check in the page and saves a screenshot. Used by the report's
browser test; no dependency beyond the standard library and a ``chromium``
binary (Debian's package; ``scripts/install-chromium`` installs it).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """Path of a Chromium binary on PATH, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """The Chromium binary; without one the calling test is skipped, or fails when $CI is set
    (CI must never pass without the browser test)."""
    import pytest

    path = find_chromium()
    if path is not None:
        return path
    why = "chromium is not installed: scripts/install-chromium installs Debian's package"
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set: the browser test must run)")
    pytest.skip(why)


@dataclass
class PageResult:
    """What happened while a page loaded."""

    console: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    check: Any = None
    loaded: bool = False

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries, as text."""
        found = [
            " ".join(str(arg.get("value", arg.get("description", ""))) for arg in item["args"])
            for item in self.console
            if item.get("type") in ("error", "assert")
        ]
        found += [item["exceptionDetails"].get("text", "") + " " + json.dumps(item["exceptionDetails"].get("exception", {}).get("description", "")) for item in self.exceptions]
        found += [item["entry"]["text"] for item in self.log_entries if item["entry"]["level"] == "error"]
        return found


def _above(fd: int, lowest: int) -> int:
    """A duplicate of ``fd`` numbered at least ``lowest``; ``fd`` is closed."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return high


class _Pipe:
    def __init__(self, binary: str, profile: str) -> None:
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()
        # Move the child's ends above 4, so that dup2 onto 3 and 4 cannot clobber them.
        to_browser_read = _above(to_browser_read, 10)
        from_browser_write = _above(from_browser_write, 10)

        def child_fds() -> None:  # the protocol lives on the browser's fds 3 and 4
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,
            pass_fds=(3, 4),  # kept open after preexec_fn put the pipes there
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(event.get("method") == method for event in self.events):
                return True
            self.send("Browser.getVersion")  # pumps the pipe; events pile up in self.events
            time.sleep(0.05)
        return False

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


def render(
    page: Path,
    screenshot: Path | None = None,
    check: str = "true",
    width: int = 1280,
    height: int = 1500,
    timeout: float = 30.0,
) -> PageResult:
    """Load ``page`` offline in headless Chromium; evaluate ``check``; save a PNG screenshot."""
    binary = find_chromium()
    if binary is None:
        raise RuntimeError("no chromium binary on PATH (scripts/install-chromium installs it)")
    result = PageResult()
    with tempfile.TemporaryDirectory() as profile:
        pipe = _Pipe(binary, profile)
        try:
            targets = pipe.send("Target.getTargets")["targetInfos"]
            target = next(info["targetId"] for info in targets if info["type"] == "page")
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
                session=session,
            )
            pipe.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            result.loaded = pipe.wait_for("Page.loadEventFired", timeout)
            time.sleep(0.5)  # let charts finish drawing
            value = pipe.send(
                "Runtime.evaluate", {"expression": check, "returnByValue": True}, session=session
            )
            result.check = value.get("result", {}).get("value")
            if screenshot is not None:
                shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            pipe.send("Browser.getVersion")
        finally:
            pipe.close()
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            result.console.append(params)
        elif method == "Runtime.exceptionThrown":
            result.exceptions.append(params)
        elif method == "Log.entryAdded":
            result.log_entries.append(params)
        elif method == "Network.requestWillBeSent":
            result.requests.append(params["request"]["url"])
    return result


if __name__ == "__main__":  # python -m tests.browser PAGE.html SHOT.png [WIDTH HEIGHT]
    import sys

    size = [int(value) for value in sys.argv[3:5]] or [1280, 1500]
    outcome = render(Path(sys.argv[1]), Path(sys.argv[2]), width=size[0], height=size[1])
    print(f"loaded {outcome.loaded}; errors {outcome.errors}; requests {outcome.requests}")
    sys.exit(0 if outcome.loaded and not outcome.errors else 1)
