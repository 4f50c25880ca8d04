"""The registry owns promotion and its rollback.

``ModelRegistry.promoting`` is tested on a registry of stand-in versions (no
TensorFlow).
"""

from __future__ import annotations

import json

import pytest

from forecaster.errors import RegistryError
from forecaster.models.registry import ModelRegistry, new_version_id

META = {"horizon": 1, "init": "zeros", "estimator": "garman-klass", "options": {"window": 22}}


def stand_in(registry: ModelRegistry, ticker: str = "AAA") -> str:
    """Save a version with placeholder files (enough for the registry to accept it)."""
    version = new_version_id("zeros")
    registry.save(ticker, version, lambda path: path.write_bytes(b"stand-in"), META, False)
    return version


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def pointer(registry: ModelRegistry, ticker: str = "AAA"):
    return registry.models_dir / ticker / "champion.json"


# --- ModelRegistry.promoting ---------------------------------------------------------


def test_promoting_moves_the_pointer_for_the_body_and_keeps_it(registry):
    old, new = stand_in(registry), stand_in(registry)
    registry.promote("AAA", old)
    with registry.promoting("AAA", new, reason="nightly: test"):
        assert registry.champion_id("AAA") == new
    assert registry.champion_id("AAA") == new
    assert json.loads(pointer(registry).read_text())["reason"] == "nightly: test"


@pytest.mark.parametrize("failure", [RuntimeError("commit failed"), KeyboardInterrupt()])
def test_a_failing_body_puts_the_previous_pointer_back_byte_for_byte(registry, failure):
    old, new = stand_in(registry), stand_in(registry)
    registry.promote("AAA", old, reason="manual")
    before = pointer(registry).read_bytes()
    with pytest.raises(type(failure)):
        with registry.promoting("AAA", new, reason="nightly"):
            assert registry.champion_id("AAA") == new
            raise failure
    assert pointer(registry).read_bytes() == before
    assert sorted(p.name for p in pointer(registry).parent.iterdir()) == sorted(
        [old, new, "champion.json"]
    )


def test_a_failing_body_leaves_no_pointer_when_there_was_none(registry):
    new = stand_in(registry)
    with pytest.raises(RuntimeError, match="commit failed"):
        with registry.promoting("AAA", new, reason="nightly"):
            assert pointer(registry).exists()
            raise RuntimeError("commit failed")
    assert not pointer(registry).exists()
    assert registry.champion_id("AAA") is None


def test_promoting_a_version_that_does_not_load_changes_nothing(registry):
    old = stand_in(registry)
    registry.promote("AAA", old)
    before = pointer(registry).read_bytes()
    with pytest.raises(RegistryError, match=r"model version 'missing' of AAA not found"):
        with registry.promoting("AAA", "missing", reason="nightly"):
            pytest.fail("the body must not run")
    assert pointer(registry).read_bytes() == before
