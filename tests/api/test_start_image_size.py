"""A job from a photo keeps the photo's aspect ratio unless it names a size (the cat is 451x300)."""

import pytest

from tests.api_fixtures import AppClient
from tests.engine_fixtures import DATA

CAT = (DATA / "cat.jpg").read_bytes()
BLOCK = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0], "steps": 3}


def submit_from_cat(client, **fields: object) -> dict:
    upload = client.post("/v1/images", content=CAT, headers={"content-type": "image/jpeg"})
    assert upload.status_code == 201 and (
        upload.json()["width"],
        upload.json()["height"],
    ) == (451, 300)
    body = {
        **BLOCK,
        "init": {"type": "image", "image_id": upload.json()["id"]},
        **fields,
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.mark.parametrize(
    ("limits", "size"),
    [
        ({"min_size": 16, "max_size": 512}, [128, 192]),  # the short side at the default 128
        ({"min_size": 16, "max_size": 96}, [64, 96]),
    ],  # the long side at the limit, the aspect ratio kept
)
def test_a_photo_without_a_size_keeps_its_aspect_ratio(app_client: AppClient, limits: dict, size: list) -> None:
    job = submit_from_cat(app_client(**limits))
    assert job["request"]["size"] == size  # [height, width], in the job record


def test_a_size_asked_for_wins(app_client: AppClient) -> None:
    assert submit_from_cat(app_client(max_size=512), size=64)["request"]["size"] == [
        64,
        64,
    ]
    assert submit_from_cat(app_client(max_size=512), size=[96, 32])["request"]["size"] == [96, 32]


def test_noise_still_defaults_to_the_seeds_square(app_client: AppClient) -> None:
    response = app_client(max_size=512).post("/v1/jobs", json=BLOCK)
    assert response.json()["request"]["size"] == [128, 128]
