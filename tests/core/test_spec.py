import time

import pytest
from pydantic import ValidationError

from core.spec import MAX_FILTER_INDEX, RenderSpec, parse_filters
from tests.timing import collector_paused


@pytest.mark.parametrize(
    "text, filters",
    [("3", [3]), ("0-19", list(range(20))), ("0,5,9", [0, 5, 9]), ("8, 0-3 ,2", [0, 1, 2, 3, 8]), ("4-4", [4])],
)
def test_filter_specs(text, filters):
    assert parse_filters(text) == filters


@pytest.mark.parametrize(
    "text, message",
    [
        ("a", "cannot read 'a' as a filter"),
        ("5-2", "runs backwards"),
        ("1,,2", "cannot read ''"),
        ("-3", "cannot read '-3'"),
        ("0-99999999", "beyond any layer's filter count"),
        ("0-1048576", "filter 1048576 is beyond any layer's filter count \\(at most 8191\\)"),
        ("\u0663", "cannot read '\u0663' as a filter"),
        ("\uff10-\uff13", "cannot read '\uff10-\uff13'"),
        ("1-\u0663", "cannot read"),
        ("3" * 5000, "the filter string is 5000 characters long; at most 4096"),
    ],
)
def test_bad_filter_specs_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_filters(text)


def test_a_spec_of_many_wide_ranges_is_read_in_time_proportional_to_it():
    text = ",".join([f"0-{MAX_FILTER_INDEX}"] * 585)  # 4 KB, every range as wide as any layer allows
    with collector_paused():
        started = time.perf_counter()
        assert parse_filters(text) == list(range(MAX_FILTER_INDEX + 1))
        assert time.perf_counter() - started < 0.1


def test_non_ascii_digits_are_not_filter_numbers():
    for filters in ("\u0663", "\uff10-\uff13", ["\u0663"]):
        with pytest.raises(ValidationError) as error:
            RenderSpec(layer="block1_conv1", filters=filters)
        assert error.value.errors()[0]["loc"][0] == "filters"


def test_a_filter_list_longer_than_any_layer_is_refused_before_its_numbers_are_read():
    with pytest.raises(ValidationError, match="1000000 filter numbers; at most 8192"):
        RenderSpec(layer="block1_conv1", filters=[0] * 1_000_000)


def test_a_spec_is_normalized():
    spec = RenderSpec(layer="block1_conv1", filters=[5, 1, 5], size=96)
    assert spec.filters == [1, 5]
    assert spec.size == (96, 96)
    assert spec.model == "vgg16" and spec.steps == 20 and spec.step_size == 1.0
    assert spec.init.mean == 127 and spec.init.std == 10


@pytest.mark.parametrize(
    "fields, location",
    [
        ({"filters": [-1]}, "filters"),
        ({"steps": 0}, "steps"),
        ({"step_size": float("nan")}, "step_size"),
        ({"size": [0, 5]}, "size"),
        ({"colour": "red"}, "colour"),
        ({"method": "magic"}, "method"),
        ({"init": {"type": "image", "image_id": "../etc/passwd"}}, "init.image.image_id"),
        ({"init": {"type": "noise", "std": -1}}, "init.noise.std"),
    ],
)
def test_bad_fields_are_named(fields, location):
    with pytest.raises(ValidationError) as error:
        RenderSpec(**{"layer": "block1_conv1", "filters": "0", **fields})
    assert location in [".".join(map(str, e["loc"])) for e in error.value.errors()]
