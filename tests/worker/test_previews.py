"""Preview encoding: thumbnails as data: URLs, the payload's cap, and what the job store keeps of previews."""

import asyncio
import base64
import io
import json

import numpy as np
from PIL import Image

from core.batching import batch_key
from core.cache_key import picture_keys
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from core.store.connection import connect
from core.store.job_events import PREVIEW_TTL_MS, JobEvent, JobEventHub, collapsed, preview_key
from worker.previews import MAX_PREVIEW_BYTES, THUMBNAIL_SIDE, PreviewPicture, encode_preview

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[0, 1], steps=3, size=32)


def texture(seed: int, height: int = 128, width: int = 128) -> np.ndarray:
    """A picture like a rendered filter's: stripes and noise (the worst case for a small WebP)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    stripes = 127 + 90 * np.sin(x[..., None] / (2 + seed % 5) + y[..., None] / 4 + np.arange(3))
    return np.clip(stripes + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)


def pictures(count: int, height: int = 128, width: int = 128) -> list[PreviewPicture]:
    return [PreviewPicture("blocks.4", n, 0, 7, texture(n, height, width)) for n in range(count)]


def decoded(image: str) -> Image.Image:
    mime, _, data = image.partition(";base64,")
    assert mime == "data:image/webp"
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_a_preview_is_json_with_a_tagged_thumbnail_per_picture() -> None:
    preview = json.loads(
        encode_preview(7, 40, pictures(3) + [PreviewPicture("blocks.4", 9, 1, 7, texture(9, 96, 192))])
    )

    assert (preview["step"], preview["steps"], preview["omitted"]) == (7, 40, 0)
    tags = [(p["layer"], p["filter"], p["variant"], p["step"]) for p in preview["pictures"]]
    assert tags == [("blocks.4", 0, 0, 7), ("blocks.4", 1, 0, 7), ("blocks.4", 2, 0, 7), ("blocks.4", 9, 1, 7)]
    sizes = [decoded(p["image"]).size for p in preview["pictures"]]
    assert sizes == [(THUMBNAIL_SIDE, THUMBNAIL_SIDE)] * 3 + [(THUMBNAIL_SIDE, THUMBNAIL_SIDE // 2)]  # long side
    small = np.asarray(decoded(preview["pictures"][0]["image"]).convert("RGB"), dtype=np.float32)
    expected = np.asarray(Image.fromarray(texture(0)).resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32)
    assert np.abs(small - expected).mean() < 20  # the picture itself, lossy but recognizable


def test_the_payload_is_capped_and_says_how_many_pictures_did_not_fit() -> None:
    for count in (16, 64):
        text = encode_preview(1, 2, pictures(count))
        print(f"\n{count} pictures of 128 px: a preview of {len(text)} bytes ({len(text) / count:.0f} a picture)")
        assert len(text) <= MAX_PREVIEW_BYTES and json.loads(text)["omitted"] == 0

    capped = encode_preview(1, 2, pictures(40), max_bytes=40_000)
    preview = json.loads(capped)
    assert len(capped) <= 40_000
    assert 0 < len(preview["pictures"]) < 40 and preview["omitted"] == 40 - len(preview["pictures"])
    assert [p["filter"] for p in preview["pictures"]] == list(range(len(preview["pictures"])))  # the first ones


def test_asking_for_previews_changes_no_cache_key_and_no_batch_key() -> None:
    with_previews = SPEC.model_copy(update={"previews": True})
    assert picture_keys(with_previews, "blocks.2", "w:1:2") == picture_keys(SPEC, "blocks.2", "w:1:2")
    assert batch_key(with_previews) == batch_key(SPEC)
    assert RenderSpec.model_validate({**SPEC.model_dump(), "previews": True}).previews


def test_only_the_running_jobs_owner_publishes_and_only_the_latest_preview_is_kept(
    scratch: tuple[Settings, Stores],
) -> None:
    settings, stores = scratch
    redis = connect(settings.redis_url or "")
    job = stores.jobs.create(SPEC.model_copy(update={"previews": True}))
    assert not stores.previews.publish(job.id, "nobody", '{"n": 0}')  # queued: nobody owns it yet
    claimed = stores.jobs.claim_next("w", 3, 30)
    assert claimed is not None
    assert not stores.previews.publish(job.id, "another token", '{"n": 0}')
    hub = JobEventHub(settings.redis_url or "", max_watchers=10)

    async def watch_while_publishing() -> list[JobEvent]:
        watcher = asyncio.create_task(_until_preview(hub, job.id, '{"n": 3}'))
        await asyncio.sleep(0.2)
        for n in (1, 2, 3):
            assert await asyncio.to_thread(stores.previews.publish, job.id, claimed[1], json.dumps({"n": n}))
        return await watcher

    live = [event for event in asyncio.run(watch_while_publishing()) if event.kind == "preview"]
    assert live and all(event.preview for event in live)  # delivered with their payload (or skipped)
    assert json.loads(redis.get(preview_key(job.id))) == {"n": 3}
    assert 0 < redis.pttl(preview_key(job.id)) <= PREVIEW_TTL_MS
    history = asyncio.run(hub.history(job.id, None))
    assert [event.kind for event in history] == ["state", "state", "preview", "preview", "preview"]
    replay = asyncio.run(_until_preview(hub, job.id, '{"n": 3}'))
    assert [(event.kind, event.preview) for event in replay] == [
        ("state", None),
        ("state", None),
        ("preview", '{"n": 3}'),  # the markers collapse to the latest, with its payload
    ]
    assert stores.jobs.succeed(job.id, claimed[1], [], "cpu", {})
    assert not stores.previews.publish(job.id, claimed[1], '{"n": 4}')  # finished: no more previews


async def _until_preview(hub: JobEventHub, job_id: str, last: str) -> list[JobEvent]:
    """A watcher's events from the start until the preview ``last``."""
    seen: list[JobEvent] = []
    async with asyncio.timeout(10):
        async for event in hub.follow(job_id, None):
            seen.append(event)
            if event.preview == last:
                break
    return seen


def test_a_replay_keeps_the_latest_preview_after_the_last_state_change() -> None:
    events = [
        JobEvent("1-0", "state", status="running"),
        JobEvent("2-0", "preview"),
        JobEvent("3-0", "state", status="queued"),  # handed back: the preview before it is stale
        JobEvent("4-0", "state", status="running"),
        JobEvent("5-0", "preview"),
        JobEvent("6-0", "progress", step=3, steps=9),
        JobEvent("7-0", "preview"),
        JobEvent("8-0", "progress", step=4, steps=9),
    ]
    assert [event.id for event in collapsed(events)] == ["1-0", "3-0", "4-0", "7-0", "8-0"]
