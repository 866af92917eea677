"""The filter page's dataset examples in a real Chromium against a real stack: asked for, built, shown."""

from pathlib import Path

from playwright.sync_api import Page, expect

BUILD_TIMEOUT_MS = 180_000


def test_a_filter_page_finds_and_shows_the_demo_sets_examples(page: Page, worker: object, screenshots: Path) -> None:
    page.goto("/models/efficientnet_lite0/layers/blocks.1/filters/3")
    button = page.locator("#find-examples")
    expect(button).to_be_visible(timeout=30_000)  # no index yet: nothing is built until asked
    button.click()
    crops = page.locator("#examples img.example-crop")
    expect(crops).to_have_count(9, timeout=BUILD_TIMEOUT_MS)
    loaded = "() => [...document.querySelectorAll('#examples img.example-crop')].every(i => i.naturalWidth > 0)"
    page.wait_for_function(loaded)
    values = [float(text) for text in page.locator("#examples .example-activation").all_inner_texts()]
    assert values == sorted(values, reverse=True) and values[0] > 0, values
    page.screenshot(path=screenshots / "9-filter-examples.png", full_page=True)
    page.reload()  # the index exists now: shown at once, no button
    expect(crops).to_have_count(9, timeout=30_000)
    expect(page.locator("#find-examples")).to_have_count(0)
