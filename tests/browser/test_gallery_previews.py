"""Live previews in a real Chromium: the layer's grid fills tile by tile as the pictures form, then the final
pictures replace them."""

import time
from pathlib import Path

from playwright.sync_api import Page, expect

MODEL, LAYER = "efficientnet_lite0", "blocks.4"
RENDER_TIMEOUT_S = 120
PREVIEWS = "#filters .tile.in-progress img[data-preview]"


def test_the_grid_shows_previews_before_the_job_succeeds_then_the_final_pictures(
    page: Page, worker: object, screenshots: Path
) -> None:
    page.goto(f"/models/{MODEL}/layers/{LAYER}")
    expect(page.locator("#field-previews")).to_be_checked()  # on by default in the gallery
    for name, value in {"filters": "0-3", "steps": "400", "size": "64", "seed": "8401"}.items():
        page.fill(f"#field-{name}", value)
    page.click("#submit")

    previews_seen: list[tuple[str, int]] = []  # (status when seen, tiles showing a preview)
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    while page.locator('#job-status[data-status="succeeded"]').count() == 0 and time.monotonic() < deadline:
        expect(page.locator("#job-status")).not_to_have_attribute("data-status", "failed")
        shown = page.eval_on_selector_all(PREVIEWS, "imgs => imgs.filter(i => i.src.startsWith('data:image/webp'))")
        status = page.locator("#job-status").get_attribute("data-status") or ""
        if shown and not previews_seen:
            page.wait_for_function(f"() => [...document.querySelectorAll('{PREVIEWS}')].every(i => i.naturalWidth)")
            page.screenshot(path=screenshots / "11-previews.png", full_page=True)
        if shown:
            previews_seen.append((status, len(shown)))
        page.wait_for_timeout(100)

    expect(page.locator("#job-status")).to_have_text("succeeded")
    assert any(status == "running" for status, _ in previews_seen), f"no preview before it succeeded: {previews_seen}"
    assert max(count for _, count in previews_seen) == 4, previews_seen
    expect(page.locator("#filters img[data-rendered]")).to_have_count(4)
    expect(page.locator("#filters img[data-preview]")).to_have_count(0)  # the final pictures replaced them
    expect(page.locator("#filters .tile.in-progress")).to_have_count(0)
    page.wait_for_function("() => [...document.querySelectorAll('#filters img[data-rendered]')].every(i => i.complete)")
    widths = page.eval_on_selector_all("#filters img[data-rendered]", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [64, 64, 64, 64]
    page.screenshot(path=screenshots / "12-previews-replaced.png", full_page=True)
