"""Uploads of small files that declare huge pictures: decoding memory is bounded however many arrive at once."""

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from testkit.services import service_settings_for, settings_env, start_api
from tests.responsiveness import HealthProbe
from tests.service_fixtures import redis_db

SIDE = 6300  # 39.7 million pixels, within the default FILTERVIZ_MAX_IMAGE_PIXELS
UPLOADS = 20
BUDGET_PIXELS = 40_000_000  # one such picture decoded at a time (the default)
PEAK_GROWTH_BOUND_MB = 250  # the budget's pixels at 4 bytes each (160 MB), plus the API's own working memory


def uniform_png(side: int) -> bytes:
    """A gray ``side`` x ``side`` RGB PNG: 119 MB of pixels in ~116 KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + b"\x80" * (3 * side)  # filter byte, then the pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def test_concurrent_uploads_of_a_huge_picture_share_a_bounded_decode_budget(redis_server: str, tmp_path: Path) -> None:
    settings = service_settings_for(redis_db(redis_server, 2), tmp_path).model_copy(
        update={"max_upload_bytes": 200_000, "max_image_pixels": 40_000_000, "decode_pixel_budget": BUDGET_PIXELS}
    )
    picture = uniform_png(SIDE)
    api, url = start_api(settings_env(settings, tmp_path / "torch"), tmp_path / "api.log")
    try:
        before = peak_rss_mb(api.popen.pid)

        with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=UPLOADS)) as client:

            def upload(_: int) -> httpx.Response:
                return client.post("/v1/images", content=picture, headers={"content-type": "image/png"})

            with HealthProbe(url) as probe, ThreadPoolExecutor(UPLOADS) as pool:
                answers = list(pool.map(upload, range(UPLOADS)))
        growth = peak_rss_mb(api.popen.pid) - before
    finally:
        api.stop()

    print(
        f"peak RSS grew by {growth:.0f} MB; statuses {sorted(a.status_code for a in answers)}; "
        f"/healthz worst {probe.worst * 1000:.0f} ms; {sorted(round(x * 1000) for x in probe.latencies)[-10:]}"
    )
    assert {a.status_code for a in answers} <= {201, 503}, [a.text for a in answers if a.status_code not in (201, 503)]
    assert all(a.json()["width"] == SIDE for a in answers if a.status_code == 201)
    assert all(a.headers["retry-after"].isdigit() for a in answers if a.status_code == 503)
    assert sum(a.status_code == 201 for a in answers) >= 2  # the budget lets decodes through, a few at a time
    assert growth < PEAK_GROWTH_BOUND_MB, f"the API's peak memory grew by {growth:.0f} MB"
    probe.assert_responsive()
