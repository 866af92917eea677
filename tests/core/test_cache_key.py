"""The result cache's key: what determines a picture, computed without torch or a model."""

import os
from pathlib import Path

import pytest

from core.cache_key import picture_keys, weights_identity
from core.spec import RenderSpec

WEIGHTS = "vgg16-397923af.pth:553433881:1700000000000000000"
PHOTO = {"type": "image", "image_id": "0" * 32}


def test_the_key_is_the_one_the_engine_computed_before_so_cache_entries_survive() -> None:
    spec = RenderSpec(layer="features.17", filters="3,5", diversity=2, method="robust", seed=7)
    keys = picture_keys(spec, "block4_conv1", WEIGHTS)
    assert sorted(keys) == [(3, 0), (3, 1), (5, 0), (5, 1)]
    assert keys[(5, 1)] == "a8818a48927ab1157918383bbad9c6ee"  # as core.engine.identity keyed it


def test_a_picture_has_its_key_whichever_filters_share_its_request() -> None:
    alone = picture_keys(RenderSpec(layer="block1_conv1", filters="4"), "block1_conv1", WEIGHTS)
    together = picture_keys(RenderSpec(layer="block1_conv1", filters="0-9"), "block1_conv1", WEIGHTS)
    assert alone[(4, 0)] == together[(4, 0)]
    assert len(set(together.values())) == 10


@pytest.mark.parametrize(
    "change",
    [{"seed": 1}, {"steps": 21}, {"method": "robust"}, {"precision": "bf16"}, {"size": (96, 96)}, {"snapshots": 4}],
)
def test_every_setting_that_changes_pixels_changes_the_key(change: dict[str, object]) -> None:
    base = RenderSpec(layer="block1_conv1", filters="4")
    assert picture_keys(base, "block1_conv1", WEIGHTS) != picture_keys(
        base.model_copy(update=change), "block1_conv1", WEIGHTS
    )


def test_other_weights_or_another_layer_give_other_keys() -> None:
    spec = RenderSpec(layer="block1_conv1", filters="4")
    key = picture_keys(spec, "block1_conv1", WEIGHTS)
    assert picture_keys(spec, "block1_conv1", "vgg16-397923af.pth:553433881:1800000000000000000") != key
    assert picture_keys(spec, "block1_conv2", WEIGHTS) != key


def test_a_photos_pictures_are_their_callers_alone_and_noises_are_shared() -> None:
    photo = RenderSpec(layer="block1_conv1", filters="4", init=PHOTO)
    assert picture_keys(photo, "block1_conv1", WEIGHTS, "alice") != picture_keys(photo, "block1_conv1", WEIGHTS, "bob")
    noise = RenderSpec(layer="block1_conv1", filters="4")
    assert picture_keys(noise, "block1_conv1", WEIGHTS, "alice") == picture_keys(noise, "block1_conv1", WEIGHTS, "bob")


def test_a_weight_files_identity_is_its_name_size_and_modification_time(tmp_path: Path) -> None:
    weights = tmp_path / "model.pth"
    weights.write_bytes(b"12345")
    os.utime(weights, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert weights_identity(weights) == "model.pth:5:1700000000000000000"
    weights.write_bytes(b"123456")
    assert weights_identity(weights) != "model.pth:5:1700000000000000000"
    with pytest.raises(FileNotFoundError):
        weights_identity(tmp_path / "missing.pth")
