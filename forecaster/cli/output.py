"""Rendering helpers shared by commands: files, JSON and table cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def write_files(files: list[tuple[str, bytes]]) -> None:
    """Write each (path, payload) atomically; check every destination before writing any.

    An unwritable destination is a ConfigError naming it, and nothing is written.
    """
    import os

    from forecaster.data.store import atomic_write_bytes
    from forecaster.errors import ConfigError

    for name, _ in files:
        path = Path(name).expanduser()
        folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
        if path.is_dir() or folder is None or not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ConfigError(
                f"cannot write {name!r}: {'it is a folder' if path.is_dir() else 'its folder is not writable'}; "
                "choose a file path in a writable folder"
            )
    for name, payload in files:
        try:
            atomic_write_bytes(Path(name).expanduser(), payload)
        except OSError as exc:
            raise ConfigError(
                f"cannot write {name!r} ({exc.strerror or exc}); choose a file path in a writable folder"
            ) from None
        click.echo(f"wrote {name}", err=True)


def write_output(text: str, output: str | None) -> None:
    """Print ``text``, or write it atomically to ``output``."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_files([(output, text.encode())])


def echo_json(payload: Any, sort_keys: bool = False) -> None:
    """Print ``payload`` as indented JSON."""
    click.echo(json.dumps(payload, indent=2, sort_keys=sort_keys))


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
