"""Damaged pictures, through the real API and worker: a damaged cache entry is rendered again, never
copied or choked on; a damaged stored picture is an error that says so, never a broken 200."""

import io
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core.settings import Settings
from core.store.files import PICTURES
from tests.service_fixtures import finished, submit, wait_for_job

SPEC = {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": [0, 1], "steps": 2, "size": 32}


def entries(settings: Settings) -> set[str]:
    return set(os.listdir(settings.cache_dir)) if settings.cache_dir.exists() else set()


def picture_path(settings: Settings, entry: str) -> Path:
    """The stored PNG a cache entry names."""
    record = json.loads((settings.cache_dir / entry / "entry").read_bytes())
    return settings.storage_dir / PICTURES / record["pictures"]["png"]["sha256"]


def decodes(response: httpx.Response) -> bool:
    try:
        Image.open(io.BytesIO(response.content), formats=["PNG"]).load()
    except OSError:
        return False
    return response.status_code == 200


def first_render(client: httpx.Client, settings: Settings, seed: int) -> tuple[dict, list[str]]:
    """A job of new pictures, and the cache entries of its two filters."""
    known = entries(settings)
    job = wait_for_job(client, submit(client, {**SPEC, "seed": seed})["id"], finished)
    assert job["status"] == "succeeded", job["error"]
    made = [entry for entry in entries(settings) - known if "png" in (settings.cache_dir / entry / "entry").read_text()]
    assert len(made) == 2, made  # one per filter (the grid's entry names no "png")
    return job, made


DAMAGES = {"truncated": lambda data: data[:50], "zero bytes": lambda data: b""}


@pytest.mark.parametrize(("damage", "seed"), [("truncated", 5101), ("zero bytes", 5102), ("garbage entry", 5103)])
def test_a_damaged_cache_entry_is_rendered_again(
    client: httpx.Client, service_settings: Settings, damage: str, seed: int
) -> None:
    _, made = first_render(client, service_settings, seed)
    for entry in made:
        if damage == "garbage entry":
            (service_settings.cache_dir / entry / "entry").write_bytes(b'{"pictures": {"png": 7}, garbage')
        else:
            path = picture_path(service_settings, entry)
            path.write_bytes(DAMAGES[damage](path.read_bytes()))

    started = time.monotonic()
    again = wait_for_job(client, submit(client, {**SPEC, "seed": seed})["id"], finished, timeout=30)
    elapsed = time.monotonic() - started

    assert again["status"] == "succeeded" and again["attempts"] == 1, again  # no hung worker, no WorkerLost
    assert again["device"] == "cpu"  # rendered, not copied from the damaged entry
    assert all(decodes(client.get(result["url"])) for result in again["results"])
    assert decodes(client.get(again["grid_url"]))
    assert elapsed < service_settings.stale_after_seconds * 5, elapsed


@pytest.mark.parametrize(("damage", "seed"), [("truncated", 5201), ("zero bytes", 5202)])
def test_a_damaged_stored_picture_is_an_error_that_says_so(
    client: httpx.Client, service_settings: Settings, damage: str, seed: int
) -> None:
    job, _ = first_render(client, service_settings, seed)
    listed = json.loads((service_settings.storage_dir / job["id"] / "pictures").read_bytes())
    for ref in listed.values():
        path = service_settings.storage_dir / PICTURES / ref["sha256"]
        path.write_bytes(DAMAGES[damage](path.read_bytes()))

    urls = {f"filter_{r['filter']:04d}.png": r["url"] for r in job["results"]} | {"grid.png": job["grid_url"]}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"].startswith(f"{name} of job {job['id']} is damaged: ")
        assert response.json()["type"] == "/problems/damaged-picture"
