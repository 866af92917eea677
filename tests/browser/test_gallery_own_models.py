"""The gallery in a real Chromium against a stack serving a deployment's own models file (the planted one: a
ResNet-18 with 10 classes from safetensors, a ViT, and a bad entry of each kind): what the models page says of
each entry, and a file model's filters rendered from the gallery."""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from testkit.planted_weights import BAD_MODELS

MODEL, LAYER = "my_resnet", "layer1"
HEIGHT, WIDTH = 48, 64  # not square: the picture's sides show the size asked was the size rendered
RENDER_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def api_url(own_api: httpx.Client) -> str:
    """The page fixture's stack: the API and worker serving the planted models file."""
    return str(own_api.base_url).rstrip("/")


def card(page: Page, model: str) -> Locator:
    return page.locator(".card").filter(has=page.get_by_role("heading", name=model, exact=True))


def test_the_models_page_shows_the_file_model_and_why_each_bad_entry_is_unavailable(
    page: Page, own_api: httpx.Client, screenshots: Path
) -> None:
    catalog = {model["name"]: model for model in own_api.get("/v1/models").json()}
    page.goto("/")

    good = card(page, MODEL)
    expect(good).to_contain_text(catalog[MODEL]["description"])
    expect(good.locator('[data-weights="true"]')).to_have_text("✓ weights available")
    expect(good.get_by_role("link", name=MODEL, exact=True)).to_have_attribute("href", f"/models/{MODEL}")
    for name in BAD_MODELS:
        bad = card(page, name)
        expect(bad.locator('[data-unavailable="true"]')).to_have_text(f"✗ unavailable: {catalog[name]['reason']}")
        expect(bad.get_by_role("link")).to_have_count(0)  # nothing to choose: no layers to browse
    page.screenshot(path=screenshots / "own-1-models.png", full_page=True)

    # a bad model's layer page reached by its URL explains itself with the same reason
    page.goto(f"/models/{BAD_MODELS[0]}/layers/conv1")
    expect(page.get_by_role("alert")).to_contain_text(f"name: model {BAD_MODELS[0]} is unavailable: ")
    expect(page.get_by_role("alert")).to_contain_text(catalog[BAD_MODELS[0]]["reason"])
    page.screenshot(path=screenshots / "own-2-unavailable-layer.png", full_page=True)


def test_a_file_model_renders_its_filters_in_the_gallery_and_on_a_filter_page(page: Page, screenshots: Path) -> None:
    page.goto("/")
    page.get_by_role("link", name=MODEL, exact=True).click()
    page.get_by_role("link", name=LAYER, exact=True).click()
    expect(page.locator("h1")).to_have_text(f"{MODEL} · {LAYER}")
    page.fill("#field-filters", "0-1")
    page.fill("#field-steps", "4")
    page.fill("#field-size", f"{HEIGHT},{WIDTH}")
    page.click("#submit")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=RENDER_TIMEOUT_MS)

    pictures = page.locator("#filters img[data-rendered]")
    expect(pictures).to_have_count(2)
    page.wait_for_function("() => [...document.querySelectorAll('#filters img[data-rendered]')].every(i => i.complete)")
    sides = "imgs => imgs.map(i => [i.naturalHeight, i.naturalWidth])"
    assert page.eval_on_selector_all("#filters img[data-rendered]", sides) == [[HEIGHT, WIDTH]] * 2
    png = page.request.get(pictures.first.get_attribute("src") or "")
    assert png.headers["content-type"] == "image/png" and png.body().startswith(b"\x89PNG\r\n\x1a\n")
    page.screenshot(path=screenshots / "own-3-rendered.png", full_page=True)

    page.locator('#filters .tile[data-filter="1"] a').click()
    expect(page.locator("h1")).to_have_text(f"{MODEL} · {LAYER} · filter 1")
    page.wait_for_function(f"() => document.querySelector('#filter-img')?.naturalWidth === {WIDTH}")
    expect(page.locator("#filter-info")).to_contain_text(f"4 steps, {HEIGHT}×{WIDTH} px")
    page.screenshot(path=screenshots / "own-4-filter.png", full_page=True)
