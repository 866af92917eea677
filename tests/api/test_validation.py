"""Checks of a render request against the limits, the published catalog and the uploads (no HTTP)."""

from api.deps import start_image
from api.validation import catalog_errors, limit_errors, upload_errors
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.files import UPLOAD_SOURCE
from tests.api_fixtures import CATALOG

MODELS = {CATALOG.name: CATALOG}
SETTINGS = Settings(max_filters=4, max_steps=50, min_size=32, max_size=96)


def spec(**changes: object) -> RenderSpec:
    request = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0], "size": 64, **changes}
    return RenderSpec.model_validate(request)


def messages(errors: list) -> list[tuple[list, str]]:
    return [(error.loc, error.msg) for error in errors]


def test_a_request_within_limits_and_catalog_passes() -> None:
    request = spec(layer="blocks.2.0", filters="36-39", steps=50, size=[32, 96])
    assert limit_errors(request, SETTINGS) == [] and catalog_errors(request, MODELS) == []


def test_every_limit_is_named_with_what_is_allowed() -> None:
    errors = limit_errors(spec(filters="0-4", steps=51, size=[31, 64]), SETTINGS)

    assert messages(errors) == [
        (["body", "filters"], "5 filters requested; at most 4 pictures per job"),
        (["body", "steps"], "51 steps requested; at most 50"),
        (["body", "size"], "size 31x64 is out of range: each side must be 32 to 96 pixels"),
    ]


def test_each_of_diversity_pictures_counts_against_the_limit() -> None:
    assert limit_errors(spec(filters="0-1", diversity=2), SETTINGS) == []
    assert messages(limit_errors(spec(filters="0-2", diversity=2), SETTINGS)) == [
        (["body", "filters"], "3 filters x diversity 2 requested; at most 4 pictures per job")
    ]


def test_classes_are_checked_against_the_model_output() -> None:
    request = RenderSpec(model="efficientnet_lite0", objective="class", filters=[281, 999])
    assert catalog_errors(request, MODELS) == []
    assert messages(catalog_errors(request.model_copy(update={"filters": [281, 1000]}), MODELS)) == [
        (["body", "filters"], "class 1000 out of range: efficientnet_lite0 has 1000 classes (0-999)")
    ]


def test_unknown_model_layer_and_filters_name_what_is_valid() -> None:
    assert messages(catalog_errors(spec(model="vgg16"), MODELS)) == [
        (["body", "model"], "unknown model 'vgg16'; available: efficientnet_lite0")
    ]
    assert messages(catalog_errors(spec(layer="blocks.9"), MODELS)) == [
        (["body", "layer"], "unknown layer 'blocks.9' of efficientnet_lite0; valid layers: blocks.2")
    ]
    assert messages(catalog_errors(spec(filters="38-41"), MODELS)) == [
        (["body", "filters"], "filter 40, 41 out of range: layer blocks.2 of efficientnet_lite0 has 40 filters (0-39)")
    ]


def test_a_start_image_must_have_been_uploaded_by_the_same_caller(scratch: tuple[Settings, Stores]) -> None:
    stores = scratch[1]
    image_id = "ab" * 16
    request = spec(init={"type": "image", "image_id": image_id})
    unknown = [(["body", "init", "image_id"], f"no uploaded image '{image_id}'; upload one with POST /v1/images")]

    def errors(caller: str | None) -> list:
        return upload_errors(request, start_image(stores, request, caller))

    assert messages(errors(None)) == unknown
    stores.upload_records.add(image_id, "alice")
    stores.uploads.put(image_id, UPLOAD_SOURCE, b"an image")
    assert errors("alice") == []
    assert messages(errors("bob")) == unknown  # another key's image
    assert messages(errors(None)) == unknown
    stores.uploads.delete(image_id)
    assert messages(errors("alice")) == unknown  # its file is gone
