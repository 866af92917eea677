"""Through the real service: the cat (451x300) without a size comes back with its aspect ratio."""

import io

import httpx
from PIL import Image

from tests.engine_fixtures import DATA
from tests.service_fixtures import submit, wait_for_job


def test_the_cat_comes_back_with_its_aspect_ratio(client: httpx.Client) -> None:
    upload = client.post(
        "/v1/images",
        content=(DATA / "cat.jpg").read_bytes(),
        headers={"content-type": "image/jpeg"},
    )
    image_id = upload.json()["id"]
    spec = {
        "model": "efficientnet_lite0",
        "layer": "blocks.2",
        "filters": [0],
        "steps": 2,
        "init": {"type": "image", "image_id": image_id},
    }
    job = submit(client, spec)
    done = wait_for_job(
        client,
        job["id"],
        lambda job: job["status"] in ("succeeded", "failed"),
        timeout=120,
    )

    assert done["status"] == "succeeded", done["error"]
    assert done["request"]["size"] == [
        64,
        96,
    ]  # the service tests' max_size is 96: the long side at it
    picture = Image.open(io.BytesIO(client.get(done["results"][0]["url"]).content))
    picture.load()
    assert (picture.format, picture.size) == ("PNG", (96, 64))  # (width, height)
