"""From POST to PNG through the real API, Redis and a Celery worker running the real engine."""

import io
import time

import httpx
from PIL import Image

from core.store import Stores
from testkit.services import ServiceProcess, wait_until
from tests.service_fixtures import finished, submit, wait_for_job


def decode_png(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content), formats=["PNG"])
    image.load()
    return image


def test_a_job_goes_from_queued_through_running_to_pngs(client: httpx.Client) -> None:
    spec = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-3", "steps": 200, "size": [32, 48]}
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["progress"] == {"step": 0, "steps": 200}
    assert job["request"]["filters"] == [0, 1, 2, 3] and job["request"]["size"] == [32, 48]

    steps_seen: list[int] = []
    while not finished(job := client.get(f"/v1/jobs/{job['id']}").json()):
        if job["status"] == "running":
            steps_seen.append(job["progress"]["step"])
        time.sleep(0.05)
    assert len({step for step in steps_seen if 0 < step < 200}) >= 2, steps_seen  # progress moved
    assert steps_seen == sorted(steps_seen)

    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == {"step": 200, "steps": 200} and job["attempts"] == 1 and job["device"] == "cpu"
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert [result["filter"] for result in job["results"]] == [0, 1, 2, 3]
    for result in job["results"]:
        assert result["activation"] > result["start_activation"]  # the picture excites its filter
        image = decode_png(client.get(result["url"]))
        assert (image.mode, image.size) == ("RGB", (48, 32))
    grid = decode_png(client.get(job["grid_url"]))
    assert grid.width >= 2 * 48 and grid.height >= 2 * 32


def test_pngs_are_immutable_and_revalidate_with_etags(client: httpx.Client) -> None:
    job = submit(client, {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": [5], "steps": 2, "size": 32})
    job = wait_for_job(client, job["id"], finished)
    url = job["results"][0]["url"]

    first = client.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get(url).content == first.content and client.get(url).headers["etag"] == etag

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        revalidated = client.get(url, headers={"if-none-match": header})
        assert revalidated.status_code == 304 and revalidated.content == b"" and revalidated.headers["etag"] == etag
    assert client.get(url, headers={"if-none-match": '"other"'}).status_code == 200

    missing = client.get(f"/v1/jobs/{job['id']}/filters/6.png")
    assert missing.status_code == 404 and missing.json()["detail"] == f"job {job['id']} has no filter 6; it rendered 5"
    no_animation = client.get(f"/v1/jobs/{job['id']}/filters/5.webp")
    assert no_animation.status_code == 404 and "kept no snapshots" in no_animation.json()["detail"]
    assert job["results"][0]["animation_url"] is None


def test_each_variant_and_its_animation_can_be_downloaded(client: httpx.Client) -> None:
    spec = {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": [2], "steps": 3, "size": 32}
    job = submit(client, {**spec, "diversity": 2, "snapshots": 1})
    job = wait_for_job(client, job["id"], finished)

    assert job["status"] == "succeeded", job["error"]
    assert [(r["filter"], r["variant"]) for r in job["results"]] == [(2, 0), (2, 1)]
    assert job["results"][1]["url"] == f"/v1/jobs/{job['id']}/filters/2.png?variant=1"
    first, second = (decode_png(client.get(result["url"])) for result in job["results"])
    assert first.tobytes() != second.tobytes()
    animation = client.get(job["results"][1]["animation_url"])
    assert animation.status_code == 200 and animation.headers["content-type"] == "image/webp"
    frames = Image.open(io.BytesIO(animation.content), formats=["WEBP"])
    assert frames.is_animated and frames.n_frames >= 3 and frames.size == (32, 32)
    assert client.get(f"/v1/jobs/{job['id']}/filters/2.png", params={"variant": 2}).status_code == 404


def test_a_running_job_stops_when_canceled_and_a_queued_one_never_runs(
    client: httpx.Client, stores: Stores, worker: ServiceProcess
) -> None:
    long = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-3", "steps": 3000, "size": 96}
    running = submit(client, long)
    running = wait_for_job(client, running["id"], lambda job: job["progress"]["step"] > 0)
    waiting = submit(client, long)

    canceled = client.post(f"/v1/jobs/{waiting['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"

    asked = client.post(f"/v1/jobs/{running['id']}/cancel")
    assert asked.status_code == 202
    assert asked.json()["status"] == "running" and asked.json()["cancel_requested"]
    stopped = wait_for_job(client, running["id"], finished, timeout=10)
    assert stopped["status"] == "canceled" and stopped["progress"]["step"] < 3000
    assert stopped["results"] == [] and stopped["grid_url"] is None
    assert running["id"] not in stores.results.keys()
    assert client.get(f"/v1/jobs/{running['id']}/grid.png").status_code == 404

    # the worker takes the canceled job's message next, and lets it go
    wait_until(lambda: f"job {waiting['id']} not run here: finished" in worker.log(), 30, "the queued job's message")
    never_ran = client.get(f"/v1/jobs/{waiting['id']}").json()
    assert never_ran["status"] == "canceled" and never_ran["attempts"] == 0 and never_ran["started_at"] is None

    again = client.post(f"/v1/jobs/{running['id']}/cancel")
    assert again.status_code == 409
    assert (
        again.json()["detail"] == f"job {running['id']} already canceled; only queued or running jobs can be canceled"
    )


def test_a_model_without_weights_fails_its_job_with_the_reason(client: httpx.Client) -> None:
    job = submit(client, {"model": "vgg16", "layer": "block1_conv1", "filters": [0], "steps": 1, "size": 32})
    job = wait_for_job(client, job["id"], finished)

    assert job["status"] == "failed"
    assert job["error"]["type"] == "WeightsUnavailable" and job["error"]["field"] == "model"
    assert "vgg16-397923af.pth" in job["error"]["message"]
    response = client.get(f"/v1/jobs/{job['id']}/grid.png")
    assert (
        response.status_code == 404 and response.json()["detail"] == f"job {job['id']} has no pictures (status: failed)"
    )


def test_the_worker_checks_the_request_against_the_model_again(client: httpx.Client) -> None:
    # block5_pool exists (the API's check), but a 16-pixel input has no pixels left there (the engine's)
    job = submit(client, {"model": "vgg16", "layer": "block5_pool", "filters": [0], "steps": 1, "size": 16})
    job = wait_for_job(client, job["id"], finished)

    assert job["status"] == "failed" and job["error"]["type"] == "SizeOutOfRange" and job["error"]["field"] == "size"
    assert job["error"]["message"].startswith("at 16x16 pixels layer block5_pool of vgg16 has no pixels left")


def test_jobs_are_listed_newest_first_page_by_page(client: httpx.Client) -> None:
    spec = {"model": "vgg16", "layer": "block1_conv1", "filters": [0], "steps": 1, "size": 32}
    ids = [submit(client, spec)["id"] for _ in range(3)]
    for job_id in ids:
        wait_for_job(client, job_id, finished)

    first = client.get("/v1/jobs", params={"limit": 2, "status": "failed"}).json()
    second = client.get("/v1/jobs", params={"limit": 2, "status": "failed", "cursor": first["next_cursor"]}).json()
    assert [job["id"] for job in first["jobs"]] == ids[:0:-1]
    assert second["jobs"][0]["id"] == ids[0]

    everything, cursor = [], None
    while True:
        page = client.get("/v1/jobs", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        everything += page["jobs"]
        if (cursor := page["next_cursor"]) is None:
            break
    created = [job["created_at"] for job in everything]
    assert created == sorted(created, reverse=True) and len({job["id"] for job in everything}) == len(everything)
    assert {job["status"] for job in client.get("/v1/jobs", params={"status": "succeeded"}).json()["jobs"]} <= {
        "succeeded"
    }


def test_an_uploaded_image_is_the_start_of_a_render(client: httpx.Client, cat_jpeg: bytes) -> None:
    uploaded = client.post("/v1/images", files={"file": ("cat.jpg", cat_jpeg, "image/jpeg")})
    assert uploaded.status_code == 201
    image = uploaded.json()
    assert (image["width"], image["height"]) == Image.open(io.BytesIO(cat_jpeg)).size
    raw = client.post("/v1/images", content=cat_jpeg, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 201 and raw.json() == image  # the id is the content's

    spec = {"model": "efficientnet_lite0", "layer": "blocks.3", "filters": [7], "steps": 1, "size": 64}
    from_cat = wait_for_job(
        client, submit(client, {**spec, "init": {"type": "image", "image_id": image["id"]}})["id"], finished
    )
    from_noise = wait_for_job(client, submit(client, spec)["id"], finished)
    assert from_cat["status"] == from_noise["status"] == "succeeded"

    cat = Image.open(io.BytesIO(cat_jpeg)).convert("RGB").resize((64, 64), Image.Resampling.BICUBIC)
    assert correlation(decode_png(client.get(from_cat["results"][0]["url"])), cat) > 0.9
    assert abs(correlation(decode_png(client.get(from_noise["results"][0]["url"])), cat)) < 0.3


def correlation(a: Image.Image, b: Image.Image) -> float:
    """Pearson correlation of two same-sized images' pixel values."""
    x, y = list(a.tobytes()), list(b.tobytes())
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    cov = sum((p - mean_x) * (q - mean_y) for p, q in zip(x, y, strict=True))
    var_x, var_y = sum((p - mean_x) ** 2 for p in x), sum((q - mean_y) ** 2 for q in y)
    return cov / (var_x * var_y) ** 0.5
