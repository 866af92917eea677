"""Dataset examples through the real service: an uploaded set, an index built by a real worker, served."""

import io

import httpx
from PIL import Image

from testkit.services import wait_until
from tests.core.test_image_sets import png, zipped


def test_an_uploaded_sets_examples_are_built_by_the_worker_and_served(client: httpx.Client) -> None:
    photos = {f"{n}.png": png((64, 64), seed=n) for n in range(3)}
    created = client.post("/v1/datasets", files=[("files", ("three.zip", zipped(photos)))])
    assert created.status_code == 201, created.text
    dataset = created.json()["id"]
    url = f"/v1/models/efficientnet_lite0/layers/blocks.1/examples?dataset={dataset}&filters=0-3"
    asked = client.get(url)
    assert asked.status_code == 202, asked.text

    def built() -> dict | None:
        state = client.get(asked.headers["location"]).json()
        return state if state["status"] in ("succeeded", "failed") else None

    state = wait_until(built, 180, "the examples build", interval=0.2)
    assert state is not None and state["status"] == "succeeded", state
    served = client.get(url)
    assert served.status_code == 200, served.text
    filters = served.json()["filters"]
    assert [f["filter"] for f in filters] == [0, 1, 2, 3]
    for entry in filters:
        assert sorted(e["image"] for e in entry["examples"]) == [
            "three.zip:0.png",
            "three.zip:1.png",
            "three.zip:2.png",
        ]
    crop = client.get(filters[0]["examples"][0]["crop_url"])
    assert crop.status_code == 200 and Image.open(io.BytesIO(crop.content)).format == "PNG"
    assert client.delete(f"/v1/datasets/{dataset}").status_code == 204
    assert client.get(filters[0]["examples"][0]["crop_url"]).status_code == 404  # the index went with its set
