"""The gallery where the deployment has API keys: a 401 asks for the key, and with it everything works.

A second API process, with keys on, shares the test stack's Redis and worker.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api_fixtures import ALICE

API_KEY = ALICE  # one of the keys the keyed API wants
LAYER_PAGE = "/models/efficientnet_lite0/layers/blocks.4"


@pytest.fixture
def keyed_page(browser: Browser, keyed_api: str) -> Iterator[Page]:
    context = browser.new_context(base_url=keyed_api)
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_401_asks_for_the_key_and_the_key_opens_everything(keyed_page: Page, screenshots: Path) -> None:
    page = keyed_page
    page.goto("/")
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Unauthorized")
    page.screenshot(path=screenshots / "11-api-key.png")
    page.fill("#api-key", API_KEY)
    page.click("#key-form button")
    expect(page.get_by_role("link", name="efficientnet_lite0", exact=True)).to_be_visible()

    page.goto(LAYER_PAGE)  # the key stays for the tab's session
    page.fill("#field-filters", "0-1")
    page.fill("#field-steps", "5")
    page.fill("#field-size", "64")
    with page.expect_response(lambda answer: answer.url.endswith("/events")) as stream:
        page.click("#submit")
    assert stream.value.status == 200, "the event stream refused the key"
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#filters img[data-rendered]")).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#filters img[data-rendered]')].every(i => i.naturalWidth === 64)"
    )
