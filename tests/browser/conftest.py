"""A real Chromium for the gallery's tests: Debian's /usr/bin/chromium where installed, else Playwright's own.

The browser must start: a missing one is an error, never a skip (``make browser`` provides it).
Screenshots go to $FILTERVIZ_SCREENSHOT_DIR when set, else to a temporary directory.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="package")  # ended with these tests: while it runs, asyncio sees a running loop
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    executable = str(SYSTEM_CHROMIUM) if SYSTEM_CHROMIUM.exists() else None
    launched = playwright_driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page(browser: Browser, api_url: str) -> Iterator[Page]:
    """A fresh browser profile (no cookies, no session storage) at desktop size, on the test stack; after the
    test, no uncaught script error and no request to another site."""
    context = browser.new_context(base_url=api_url, viewport=DESKTOP)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []  # the gallery loads nothing from another site (no CDN)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "request", lambda sent: None if sent.url.startswith((api_url, "blob:", "data:")) else elsewhere.append(sent.url)
    )
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
    assert not elsewhere, f"requests to other sites: {elsewhere}"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("FILTERVIZ_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
