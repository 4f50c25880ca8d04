"""Registry: atomic versions, champion pointer, errors that name the file."""

from __future__ import annotations

import json

import pytest

from forecaster.errors import RegistryError
from forecaster.models.registry import ModelRegistry, new_version_id
from tests.conftest import fake_record


def fake_model(path):
    path.write_bytes(b"weights")


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(tmp_path / "models")


def test_save_promote_and_read_back(registry):
    saved = registry.save(fake_record("SPY", "v1"), fake_model, promote=True)
    assert saved.model_path.read_bytes() == b"weights"
    assert registry.champion("SPY").version == "v1"
    assert registry.get("SPY", "v1").meta == {
        **fake_record("SPY", "v1").to_dict(),
        "manifest": "manifest.json",
    }
    assert registry.get("SPY", "v1").verified
    assert registry.get("SPY", "v1").record == fake_record("SPY", "v1")
    registry.save(fake_record("SPY", "v2"), fake_model, promote=False)
    assert registry.champion_id("SPY") == "v1" and registry.version_ids("SPY") == ["v1", "v2"]
    registry.promote("SPY", "v2")
    assert registry.champion_id("SPY") == "v2"
    assert (
        json.loads((registry.models_dir / "SPY" / "champion.json").read_text())["reason"]
        == "manual"
    )


def test_failure_mid_save_leaves_no_partial_version_and_champion_untouched(registry):
    registry.save(fake_record("SPY", "v1"), fake_model, promote=True)
    pointer = (registry.models_dir / "SPY" / "champion.json").read_bytes()

    def crash(path):
        path.write_bytes(b"half a model")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        registry.save(fake_record("SPY", "v2"), crash, promote=True)
    assert sorted(p.name for p in (registry.models_dir / "SPY").iterdir()) == [
        "champion.json",
        "v1",
    ]
    assert (registry.models_dir / "SPY" / "champion.json").read_bytes() == pointer


def test_corrupt_meta_names_the_file(registry):
    registry.save(fake_record("SPY", "v1"), fake_model, promote=True)
    meta = registry.models_dir / "SPY" / "v1" / "meta.json"
    meta.write_text("{not json")
    with pytest.raises(
        RegistryError, match=rf"model metadata '{meta}' is corrupt \(JSONDecodeError\)"
    ):
        registry.champion("SPY")


def test_missing_model_file_names_it(registry):
    registry.save(fake_record("SPY", "v1"), fake_model, promote=True)
    model = registry.models_dir / "SPY" / "v1" / "model.keras"
    model.unlink()
    with pytest.raises(RegistryError, match=rf"model file '{model}' is missing"):
        registry.get("SPY", "v1")


def test_corrupt_champion_pointer_names_it(registry):
    registry.save(fake_record("SPY", "v1"), fake_model, promote=True)
    pointer = registry.models_dir / "SPY" / "champion.json"
    pointer.write_text("[]")
    with pytest.raises(RegistryError, match=rf"champion pointer '{pointer}' is corrupt"):
        registry.champion("SPY")


def test_no_champion_says_to_train(registry):
    with pytest.raises(
        RegistryError, match=r"no champion model for QQQ .*forecast train --ticker QQQ"
    ):
        registry.champion("QQQ")


def test_unknown_version(registry):
    registry.save(fake_record("SPY", "v1"), fake_model, promote=False)
    with pytest.raises(RegistryError, match=r"model version 'v9' not found .*forecast models list"):
        registry.find("v9")
    with pytest.raises(
        RegistryError, match=r"model version 'v9' of SPY not found .*latest versions: v1"
    ):
        registry.promote("SPY", "v9")


def test_version_ids_are_unique_and_name_the_init():
    ids = {new_version_id("encoder") for _ in range(20)}
    assert len(ids) == 20 and all("-encoder-" in i for i in ids)
