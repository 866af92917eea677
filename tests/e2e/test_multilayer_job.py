"""A job of several layers through the real API, Redis and worker: the seed's figure set's shape (the
first filters of conv layers) on EfficientNet-Lite0 at a small scale, one grid per layer, the result
cache shared with jobs of one layer, and `filterviz download` writing a folder per layer. ("all-conv"
is expanded and checked at submit: tests/api/test_multilayer_validation.py.)"""

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core.grid import encode_grid
from core.store import Stores
from filterviz.cli import main
from tests.service_fixtures import finished, submit, wait_for_job

# Seeds 57xx: every e2e test shares the session's cache, so pictures of another test's seeds would be found cached.
SMALL = {"model": "efficientnet_lite0", "steps": 2, "size": 32}


def succeeded(client: httpx.Client, body: dict) -> dict:
    job = wait_for_job(
        client, submit(client, body)["id"], finished, timeout=300
    )  # the first job of a session waits for the engine to warm up
    assert job["status"] == "succeeded", job["error"]
    return job


def png(client: httpx.Client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable" and response.headers["etag"]
    return response.content


def test_a_figure_set_of_conv_layers_renders_a_grid_per_layer(client: httpx.Client) -> None:
    catalog = client.get("/v1/models/efficientnet_lite0/layers").json()["layers"]
    conv = [layer["name"] for layer in catalog if layer["type"] == "Conv2d"][::12]  # 5 of its 49, shallow to deep
    assert len(conv) == 5

    job = succeeded(client, {**SMALL, "layers": [{"layer": name} for name in conv], "filters": "0-1", "seed": 5701})

    assert [part["layer"] for part in job["request"]["layers"]] == conv
    assert [(r["layer"], r["filter"]) for r in job["results"]] == [(name, f) for name in conv for f in (0, 1)]
    assert [grid["layer"] for grid in job["grids"]] == conv and job["grid_url"] is None
    assert job["progress"]["step"] == job["progress"]["steps"] > 0
    for result in job["results"]:
        assert result["url"] == f"/v1/jobs/{job['id']}/layers/{result['layer']}/filters/{result['filter']}.png"
        assert result["picture_url"].startswith(
            f"/v1/pictures/efficientnet_lite0/{result['layer']}/{result['filter']}.png?"
        )
        assert result["activation"] > result["start_activation"]
    for grid in job["grids"]:
        pictures = [png(client, r["url"]) for r in job["results"] if r["layer"] == grid["layer"]]
        assert [Image.open(io.BytesIO(picture)).size for picture in pictures] == [(32, 32)] * 2
        assert png(client, grid["url"]) == encode_grid(pictures, ["0", "1"])  # the layer's two tiles, labeled


def test_the_layers_of_a_job_are_fetched_by_their_names(client: httpx.Client) -> None:
    layers = [{"layer": "blocks.2", "filters": [1, 3]}, {"layer": "blocks.1.0.conv_dw"}]
    job = succeeded(client, {**SMALL, "layers": layers, "filters": [0], "seed": 5702})
    base = f"/v1/jobs/{job['id']}"

    assert [(r["layer"], r["filter"]) for r in job["results"]] == [
        ("blocks.2", 1),
        ("blocks.2", 3),
        ("blocks.1.0.conv_dw", 0),
    ]
    assert job["grids"] == [
        {"layer": "blocks.2", "url": f"{base}/layers/blocks.2/grid.png"},
        {"layer": "blocks.1.0.conv_dw", "url": f"{base}/layers/blocks.1.0.conv_dw/grid.png"},
    ]
    url = f"{base}/layers/blocks.2/filters/3.png"
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"if-none-match": etag}).status_code == 304

    for path, detail in [
        ("/grid.png", f"job {job['id']} rendered several layers (blocks.2, blocks.1.0.conv_dw): ask for its pictures"),
        ("/filters/1.png", f"job {job['id']} rendered several layers"),
        (
            "/layers/blocks.3/grid.png",
            f"job {job['id']} has no layer 'blocks.3'; it rendered blocks.2, blocks.1.0.conv_dw",
        ),
        ("/layers/blocks.2/filters/0.png", f"job {job['id']} has no filter 0 of blocks.2; it rendered 1, 3"),
        ("/layers/blocks.2/filters/1.webp", f"job {job['id']} kept no snapshots"),
    ]:
        response = client.get(base + path)
        assert response.status_code == 404 and response.json()["detail"].startswith(detail), (path, response.text)


def test_pictures_are_cached_across_jobs_of_one_and_of_several_layers(client: httpx.Client, stores: Stores) -> None:
    settings = {**SMALL, "seed": 5703}
    single = succeeded(client, {**settings, "layer": "blocks.2", "filters": "0-3"})
    before = stores.render_stats.read()

    several = succeeded(
        client, {**settings, "layers": [{"layer": "blocks.2", "filters": "2-5"}, {"layer": "blocks.1", "filters": [0]}]}
    )

    after = stores.render_stats.read()
    cached, rendered = (
        after.pictures_cached - before.pictures_cached,
        after.pictures_rendered - before.pictures_rendered,
    )
    assert (cached, rendered) == (2, 3)  # blocks.2's filters 2 and 3 from the cache; 4, 5 and blocks.1's 0 rendered
    of_single = {r["filter"]: r for r in single["results"]}
    for result in several["results"][:2]:  # filters 2 and 3 of blocks.2: the single job's pictures
        assert png(client, result["url"]) == png(client, of_single[result["filter"]]["url"])
        assert result["picture_url"] == of_single[result["filter"]]["picture_url"]
        assert result["activation"] == of_single[result["filter"]]["activation"]

    again = succeeded(client, {**settings, "layer": "blocks.1", "filters": [0]})  # the several-layer job's picture
    assert again["device"] == "cache" and "layers" not in again["request"]
    assert again["results"][0]["layer"] == "blocks.1" and again["grids"] == [
        {"layer": "blocks.1", "url": again["grid_url"]}
    ]
    assert png(client, again["results"][0]["url"]) == png(client, several["results"][-1]["url"])  # blocks.1, filter 0


def test_download_writes_a_folder_per_layer(api_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["--model", "efficientnet_lite0", "--filters", "0-1", "--steps", "2", "--size", "32", "--seed", "5704"]
    assert main(["submit", "--api", api_url, *argv, "--layer", "blocks.1", "--layer", "blocks.2"]) == 0
    job_id = capsys.readouterr().out.strip()
    assert main(["watch", "--api", api_url, job_id]) == 0
    capsys.readouterr()

    assert main(["download", "--api", api_url, job_id, "--out", str(tmp_path)]) == 0

    written = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.png"))
    names = ["filter_0000.png", "filter_0001.png", "grid.png"]
    assert written == [f"{layer}/{name}" for layer in ("blocks.1", "blocks.2") for name in names]
    assert Image.open(tmp_path / "blocks.2" / "filter_0001.png").size == (32, 32)
    assert capsys.readouterr().out.strip() == f"wrote 6 files to {tmp_path}"
