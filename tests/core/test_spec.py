import pytest
from pydantic import ValidationError

from core.spec import RenderSpec, parse_filters


@pytest.mark.parametrize(
    "text, filters",
    [("3", [3]), ("0-19", list(range(20))), ("0,5,9", [0, 5, 9]), ("8, 0-3 ,2", [0, 1, 2, 3, 8]), ("4-4", [4])],
)
def test_filter_specs(text, filters):
    assert parse_filters(text) == filters


@pytest.mark.parametrize(
    "text, message",
    [("a", "cannot read 'a' as a filter"), ("5-2", "runs backwards"), ("1,,2", "cannot read ''"),
     ("-3", "cannot read '-3'"), ("0-99999999", "beyond any layer's filter count")],
)
def test_bad_filter_specs_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_filters(text)


def test_a_spec_is_normalized():
    spec = RenderSpec(layer="block1_conv1", filters=[5, 1, 5], size=96)
    assert spec.filters == [1, 5]
    assert spec.size == (96, 96)
    assert spec.model == "vgg16" and spec.steps == 20 and spec.step_size == 1.0
    assert spec.init.mean == 127 and spec.init.std == 10


@pytest.mark.parametrize(
    "fields, location",
    [({"filters": [-1]}, "filters"), ({"steps": 0}, "steps"), ({"step_size": float("nan")}, "step_size"),
     ({"size": [0, 5]}, "size"), ({"colour": "red"}, "colour"), ({"method": "magic"}, "method"),
     ({"init": {"type": "image", "image_id": "../etc/passwd"}}, "init.image.image_id"),
     ({"init": {"type": "noise", "std": -1}}, "init.noise.std")],
)
def test_bad_fields_are_named(fields, location):
    with pytest.raises(ValidationError) as error:
        RenderSpec(**{"layer": "block1_conv1", "filters": "0", **fields})
    assert location in [".".join(map(str, e["loc"])) for e in error.value.errors()]
