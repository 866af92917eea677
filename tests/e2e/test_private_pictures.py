"""Pictures made from an uploaded photo are the uploader's alone: through the real API (with two API
keys) and worker, a second caller repeating the first one's request on the same photo renders it
anew and learns nothing of the first one's work."""

from pathlib import Path

import httpx

from testkit.services import wait_until
from tests.api_fixtures import ALICE, BOB, bearer
from tests.service_fixtures import finished

CAT = Path(__file__).parents[1] / "data" / "cat.jpg"
SPEC = {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": [0, 1], "steps": 2, "size": 32, "seed": 5300}


def render_from_cat(http: httpx.Client, key: str) -> dict:
    headers = bearer(key)
    image = http.post("/v1/images", content=CAT.read_bytes(), headers={"content-type": "image/jpeg", **headers})
    assert image.status_code == 201, image.text
    spec = {**SPEC, "init": {"type": "image", "image_id": image.json()["id"]}}
    job = http.post("/v1/jobs", json=spec, headers=headers)
    assert job.status_code == 202, job.text

    def done() -> dict | None:
        record = http.get(f"/v1/jobs/{job.json()['id']}", headers=headers).json()
        return record if finished(record) else None

    record = wait_until(done, 60, "the job from the cat", interval=0.1)
    assert record["status"] == "succeeded", record["error"]
    return record


def test_another_caller_with_the_same_photo_does_not_get_the_first_callers_pictures(keyed_api: str) -> None:
    with httpx.Client(base_url=keyed_api, timeout=60) as http:
        alices = render_from_cat(http, ALICE)
        bobs = render_from_cat(http, BOB)
        alices_again = render_from_cat(http, ALICE)

    assert alices["device"] == "cpu" and bobs["device"] == "cpu"  # bob's was rendered for him
    assert bobs["seconds"].keys() == alices["seconds"].keys()  # and reads like any first render
    assert alices_again["device"] == "cache"  # a caller's own repeat still comes from the cache
