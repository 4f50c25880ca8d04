"""The lock files agree with pyproject.toml (a dependency added without `scripts/lock` fails).

Each lock must pin, with hashes, every requirement of the package (and of its
extras, for the extras' locks) at a version the requirement allows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11, as the locks are

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"requirements.lock": (), "requirements-test.lock": ("test",)}
LOCKS["requirements-distributed.lock"] = ("distributed",)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def read_lock(path: Path) -> dict[str, tuple[str, int]]:
    """``{name: (version, number of hashes)}`` of a lock file written by scripts/lock."""
    pins: dict[str, tuple[str, int]] = {}
    name = None
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            name = canonicalize_name(match[1])
            pins[name] = (match[2], 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            version, count = pins[name]
            pins[name] = (version, count + 1)
    return pins


@pytest.mark.parametrize("lock, extras", LOCKS.items())
def test_every_requirement_is_pinned_with_hashes(lock, extras):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        requirements += [Requirement(text) for text in project["optional-dependencies"][extra]]
    pins = read_lock(ROOT / lock)
    missing = [str(req) for req in requirements if canonicalize_name(req.name) not in pins]
    assert not missing, f"{lock} lacks {missing}: run scripts/lock and commit the lock files"
    for req in requirements:
        version, _ = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), (
            f"{lock} pins {req.name}=={version}, outside {req}: run scripts/lock"
        )
    assert all(count > 0 for _, count in pins.values()), f"{lock} has a pin without a hash"


def test_the_locks_pin_the_same_versions():
    """The base and distributed locks take their pins from the test lock."""
    full = read_lock(ROOT / "requirements-test.lock")
    for lock in ("requirements.lock", "requirements-distributed.lock"):
        for name, (version, _) in read_lock(ROOT / lock).items():
            assert full[name][0] == version, f"{lock}: {name} {version} != {full[name][0]}"
