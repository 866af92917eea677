"""What the cache key needs from the engine, the layer's name and the weights' identity, without a model."""

import pytest

from core import cache_key
from core.engine import check_spec, models, weights_identity
from core.errors import WeightsUnavailable
from core.spec import RenderSpec


def test_the_keys_facts_come_without_loading_a_model(vgg16_home, monkeypatch) -> None:
    def no_model(*_: object) -> None:
        raise AssertionError("a cache key loaded the model")

    monkeypatch.setattr(models, "_load_model", no_model)
    by_alias, by_name = (RenderSpec(layer=name, filters="0-2") for name in ("features.17", "block4_conv1"))
    assert check_spec(by_alias).name == check_spec(by_name).name == "block4_conv1"
    weights = weights_identity("vgg16")
    assert weights.startswith("vgg16-397923af.pth:")
    keys = cache_key.picture_keys(by_alias, check_spec(by_alias).name, weights)
    assert keys == cache_key.picture_keys(by_name, "block4_conv1", weights)


def test_missing_weights_fail_the_key_as_they_would_fail_the_render(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="vgg16-397923af.pth"):
        weights_identity("vgg16")
