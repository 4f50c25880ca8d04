"""Rendering helpers shared by commands: files, JSON and table cells.

Output destinations (``-o``, ``--plot``, ``--predictions``) follow one policy
(:func:`write_files`):

- a regular file, or a new one in an existing folder, is written atomically:
  a temporary file in the same folder, renamed into place (an existing file
  keeps its permission bits);
- a symbolic link is followed and its *target* is replaced the same way (the
  link stays a link);
- ``-``, ``/dev/stdout`` and ``/dev/stderr`` (and ``/dev/fd/N``) write to the
  stream itself; any other character device or a FIFO is opened and written
  to directly (a FIFO waits for its reader, as a shell redirection does);
- a folder, a missing parent folder, or any other kind of file (socket, block
  device) is an error naming it. Folders are never created.

Every destination is checked before anything is written (commands call
:func:`check_destinations` before their work starts); a write that fails
(e.g. ``ENOSPC`` on ``/dev/full``) is one :class:`~forecaster.errors.ConfigError`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from forecaster.errors import ConfigError

#: How many symbolic links are followed before giving up (as the kernel's ELOOP).
_MAX_LINKS = 40
#: ``/proc/self/fd/N`` or ``/dev/fd/N``: another name for this process's descriptor N.
_DESCRIPTOR = re.compile(r"^/(?:proc/(?:self|thread-self|(?P<pid>\d+))|dev)/fd/(?P<fd>\d+)$")


@dataclass(frozen=True)
class Destination:
    """Where one output goes, decided before anything is written.

    ``kind`` is ``"file"`` (atomic replace of ``path``), ``"stream"`` (open
    ``path`` and write) or ``"descriptor"`` (write to descriptor ``fd``).
    """

    name: str
    kind: str
    path: Path | None = None
    fd: int | None = None
    mode: int | None = None


def _fail(
    name: str, why: str, fix: str = "choose a file path in an existing, writable folder"
) -> ConfigError:
    return ConfigError(f"cannot write {name!r}: {why}; {fix}")


def _descriptor(path: str) -> int | None:
    """The descriptor that ``path`` names (``/proc/self/fd/1``), if it is one of ours."""
    found = _DESCRIPTOR.match(path)
    if found is None or (found["pid"] is not None and int(found["pid"]) != os.getpid()):
        return None
    return int(found["fd"])


def _follow(name: str) -> tuple[Path, int | None]:
    """``name`` with every symbolic link followed: (final path, descriptor it names or None).

    Links are followed one hop at a time so that a link to ``/dev/stdout``
    (itself a link to ``/proc/self/fd/1``) is recognised as descriptor 1 rather
    than resolved to whatever file the shell redirected it to.
    """
    current = Path(os.path.abspath(Path(name).expanduser()))
    for _ in range(_MAX_LINKS):
        fd = _descriptor(str(current))
        if fd is not None:
            return current, fd
        if not current.is_symlink():
            return current, None
        target = Path(os.readlink(current))
        joined = target if target.is_absolute() else current.parent / target
        # The folder part may hold links too; the last part is examined next round.
        current = Path(os.path.realpath(joined.parent)) / joined.name
    raise _fail(name, f"more than {_MAX_LINKS} symbolic links to follow", "fix the link")


def destination(name: str) -> Destination:
    """Check ``name`` as an output path and say how it will be written (nothing is written).

    Raises
    ------
    ConfigError
        A folder, a missing or unwritable parent folder, a socket or block
        device, a link loop, or a name the system refuses.
    """
    if not name.strip():
        raise _fail(name, "the path is empty", "give a file name, e.g. morning.html or out.json")
    if name == "-":
        return Destination(name, "descriptor", fd=1)
    if name in ("/dev/stdout", "/dev/stderr"):
        return Destination(name, "descriptor", fd=1 if name.endswith("out") else 2)
    try:
        path, fd = _follow(name)
        if fd is not None:
            return Destination(name, "descriptor", fd=fd)
        try:
            status = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            status = None
    except OSError as exc:
        raise _fail(name, exc.strerror or str(exc)) from None
    shown = (
        "" if str(path) == os.path.abspath(Path(name).expanduser()) else f" (link to {str(path)!r})"
    )
    if status is not None:
        if stat.S_ISDIR(status.st_mode):
            raise _fail(name, f"it is a folder{shown}", "give a file path inside it")
        if stat.S_ISCHR(status.st_mode) or stat.S_ISFIFO(status.st_mode):
            return Destination(name, "stream", path=path)
        if not stat.S_ISREG(status.st_mode):
            raise _fail(
                name,
                f"it is neither a regular file, a character device nor a FIFO{shown}",
                "choose a file path",
            )
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise _fail(
            name,
            f"folder {str(folder)!r} {what}{shown}",
            "create the folder first or choose a file in an existing one",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _fail(
            name,
            f"folder {str(folder)!r} is not writable{shown} (a file is replaced by writing a new "
            "one beside it and renaming it)",
        )
    mode = stat.S_IMODE(status.st_mode) if status is not None else None
    return Destination(name, "file", path=path, mode=mode)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def _write(target: Destination, payload: bytes) -> None:
    if target.kind == "file":
        from forecaster.files import replace_file

        replace_file(target.path, payload, target.mode)
    elif target.kind == "stream":
        fd = os.open(target.path, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        try:
            _write_all(fd, payload)
        finally:
            os.close(fd)
    elif target.fd in (1, 2):
        text_stream = sys.stdout if target.fd == 1 else sys.stderr
        text_stream.flush()  # keep the order of what was printed before
        binary = getattr(text_stream, "buffer", None)
        if binary is None:
            text_stream.write(payload.decode("utf-8", "replace"))
            text_stream.flush()
        else:
            binary.write(payload)
            binary.flush()
    else:
        _write_all(target.fd, payload)


def check_destinations(*names: str | None) -> None:
    """Check output paths before a command does its work (``None`` = not given)."""
    for name in names:
        if name is not None:
            destination(name)


def write_files(files: list[tuple[str, bytes]]) -> None:
    """Write each (path, payload) by the module's policy; check every destination first.

    A destination that cannot be written is a ConfigError naming it, and then
    nothing is written; a write that fails midway is a ConfigError too (files
    written before it stay; a regular file is never left half-written).
    """
    targets = [(destination(name), payload) for name, payload in files]
    for target, payload in targets:
        try:
            _write(target, payload)
        except OSError as exc:
            raise _fail(
                target.name, exc.strerror or str(exc), "choose another destination"
            ) from None
        if target.kind != "descriptor":
            click.echo(f"wrote {shown_path(target.name)}", err=True)


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as people should read it: relative to the current folder when it is under it."""
    text = str(path)
    try:
        relative = Path(text).resolve().relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        return text
    return str(relative) if Path(text).is_absolute() else text


def write_output(text: str, output: str | None) -> None:
    """Print ``text``, or write it to ``output`` (see :func:`write_files`)."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_files([(output, text.encode())])


def json_text(payload: Any, **options: Any) -> str:
    """``json.dumps(payload, **options)`` that refuses NaN and infinity.

    Bare ``NaN``/``Infinity`` are not JSON: a payload holding one is an error
    (nothing is written), never a file other programs cannot parse.
    """
    try:
        return json.dumps(payload, allow_nan=False, **options)
    except ValueError as error:
        from forecaster.errors import EvaluationError

        raise EvaluationError(
            f"the result holds a number that is not finite (NaN or infinity), which JSON cannot "
            f"carry ({error}); nothing was written; run again with --debug and report it"
        ) from error


def echo_json(payload: Any, sort_keys: bool = False) -> None:
    """Print ``payload`` as indented JSON (NaN and infinity refused, see :func:`json_text`)."""
    click.echo(json_text(payload, indent=2, sort_keys=sort_keys))


#: Names listed in full in one error line; beyond, "and N more".
MAX_LISTED = 10
#: Widest table cell of free text (an error message); the full text is in the JSON.
MAX_CELL = 60


def summarize(names: list[str], limit: int = MAX_LISTED) -> str:
    """``names`` joined by ", ", the first ``limit`` only and then "and N more"."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def cell(text: str, width: int = MAX_CELL) -> str:
    """``text`` on one line, cut to ``width`` characters with "…" (tables stay readable)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def annualized_vol(variance: float) -> float:
    """Annualized volatility of a mean daily variance."""
    from forecaster.units import to_vol

    return float(to_vol(variance))


def percent(value: float | None) -> str:
    """``value`` as a percentage with two decimals, "-" when missing."""
    return "-" if value is None else f"{value:.2%}"


def number(value: float | None, spec: str = ".4f") -> str:
    """``value`` formatted with ``spec``, "-" when missing."""
    return "-" if value is None else format(value, spec)


def risk_text(risk: dict[str, Any], detail: bool = False) -> str:
    """One forecast's VaR/ES as one line, worded the same by ``predict`` and ``nightly``.

    ``1-day log return VaR 1% -4.18% ES -5.04%, VaR 5% -2.77% ES -3.65% (t)``, or
    ``VaR/ES (t): n/a — reason`` when there are none. ``detail`` adds the fit
    (``t``: degrees of freedom and scale; the number of training days) and the
    overnight factor, as ``predict`` shows them.
    """
    if risk["levels"] is None:
        return f"VaR/ES ({risk['distribution']}): n/a — {risk['reason']}"
    days = f"{risk['horizon']}-day"
    cells = ", ".join(
        f"VaR {float(key) * 100:g}% {values['var']:.2%} ES {values['es']:.2%}"
        for key, values in risk["levels"].items()
    )
    fit = ""
    if detail:
        params = (risk.get("fit") or {}).get("params") or {}
        if risk["distribution"] == "t" and params:
            fit = f"; dof {params['dof']:.1f}, scale {params['scale']:.2f}"
        if risk["distribution"] != "normal":
            fit += f", fit on {risk['fit']['n']} training days before {risk['fit']['before']}"
    line = f"{days} log return {cells} ({risk['distribution']}{fit})"
    factor = (risk.get("overnight") or {}).get("factor")
    if detail and factor is not None and factor != 1.0:
        line += (
            f"; close-to-close variance = {factor:.3f} x forecast (overnight gap, "
            "Hansen-Lunde factor of the pre-test days)"
        )
    return line
