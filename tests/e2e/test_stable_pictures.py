"""A stable picture URL over the real stack: concurrent asks share one job, then the cache serves the PNG."""

import io
from concurrent.futures import ThreadPoolExecutor

import httpx
from PIL import Image

from tests.service_fixtures import finished, wait_for_job

PICTURE = "/v1/pictures/efficientnet_lite0/blocks.2/3.png?steps=5&size=48x64&seed=4242"


def test_twenty_asks_share_one_job_then_the_picture_is_served(api_url: str, client: httpx.Client) -> None:
    def ask(_: int) -> httpx.Response:
        with httpx.Client(base_url=api_url, timeout=60) as http:
            return http.get(PICTURE)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert {answer.status_code for answer in answers} == {202}, [a.text for a in answers if a.status_code != 202]
    job_ids = {answer.json()["id"] for answer in answers}
    assert len(job_ids) == 1
    job_id = job_ids.pop()
    assert {answer.headers["location"] for answer in answers} == {f"/v1/jobs/{job_id}"}

    job = wait_for_job(client, job_id, finished, timeout=120)
    assert job["status"] == "succeeded", job
    picture_url = job["results"][0]["picture_url"]
    assert picture_url.startswith("/v1/pictures/efficientnet_lite0/blocks.2/3.png?") and "seed=4242" in picture_url

    for url in (PICTURE, picture_url):  # as asked, and as the job links it: the same picture
        picture = client.get(url)
        assert picture.status_code == 200, picture.text
        assert Image.open(io.BytesIO(picture.content)).size == (64, 48)  # (width, height)
        assert "immutable" in picture.headers["cache-control"]
    assert picture.content == client.get(job["results"][0]["url"]).content
    assert client.get(PICTURE, headers={"If-None-Match": picture.headers["etag"]}).status_code == 304
