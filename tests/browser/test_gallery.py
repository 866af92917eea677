"""The gallery in a real Chromium against a real stack (API, worker, Redis): what a person at / sees and does."""

import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE
from tests.service_fixtures import finished, submit, wait_for_job

CAT = Path(__file__).resolve().parent.parent / "data" / "cat.jpg"
MODEL, LAYER = "efficientnet_lite0", "blocks.4"
LAYER_PAGE = f"/models/{MODEL}/layers/{LAYER}"
RENDER_TIMEOUT_MS = 120_000


def fill_form(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        page.fill(f"#field-{name}", value)


def rendered_tiles(page: Page) -> list[int]:
    """The natural widths of the filter pictures the grid shows (0 for one that failed to load)."""
    widths = "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
    return page.eval_on_selector_all("#filters img[data-rendered]", widths)


def test_browse_to_a_layer_and_watch_four_filters_render(page: Page, worker: object, screenshots: Path) -> None:
    page.goto("/")
    expect(page.locator('[data-weights="true"]').first).to_be_visible()
    page.screenshot(path=screenshots / "1-models.png", full_page=True)
    page.get_by_role("link", name=MODEL, exact=True).click()
    expect(page.get_by_role("link", name=LAYER, exact=True)).to_be_visible()
    page.screenshot(path=screenshots / "2-layers.png")
    page.get_by_role("link", name=LAYER, exact=True).click()
    expect(page.locator("h1")).to_have_text(f"{MODEL} · {LAYER}")
    expect(page.locator("#filters .tile[data-filter]")).to_have_count(64)

    fill_form(page, filters="0-3", steps="400", size="64")
    asked: list[str] = []
    page.on("request", lambda sent: asked.append(sent.url))
    page.click("#submit")
    steps_seen = set()
    deadline = time.monotonic() + RENDER_TIMEOUT_MS / 1000
    while page.locator('#job-status[data-status="succeeded"]').count() == 0 and time.monotonic() < deadline:
        expect(page.locator("#job-status")).not_to_have_attribute("data-status", "failed")
        steps_seen.add(int(page.eval_on_selector("#progress", "bar => bar.value")))
        if len(steps_seen) == 3:
            page.screenshot(path=screenshots / "3-rendering.png")
        page.wait_for_timeout(100)
    expect(page.locator("#job-status")).to_have_text("succeeded")
    assert len({step for step in steps_seen if 0 < step < 400}) >= 2, f"the progress bar never moved: {steps_seen}"
    expect(page.locator("#filters img[data-rendered]")).to_have_count(4)
    page.wait_for_function("() => [...document.querySelectorAll('#filters img[data-rendered]')].every(i => i.complete)")
    assert rendered_tiles(page) == [64, 64, 64, 64]
    assert "job=" in page.url, "a reload would not find the job"
    assert any(url.endswith("/events") for url in asked), "the progress did not come from the event stream"
    polls = [url for url in asked if "/v1/jobs/" in url and not url.endswith("/events") and "/filters/" not in url]
    assert len([url for url in polls if not url.endswith("grid.png")]) == 0, polls
    page.screenshot(path=screenshots / "4-rendered.png", full_page=True)


def test_a_filter_page_opens_by_its_url(page: Page, client: httpx.Client, screenshots: Path) -> None:
    job = submit(client, {"model": MODEL, "layer": LAYER, "filters": [2, 3], "steps": 5, "size": 64, "snapshots": 1})
    done = wait_for_job(client, job["id"], finished, timeout=RENDER_TIMEOUT_MS / 1000)
    assert done["status"] == "succeeded", done
    picture = next(result for result in done["results"] if result["filter"] == 2)

    page.goto(f"{LAYER_PAGE}/filters/2")
    expect(page.locator("h1")).to_have_text(f"{MODEL} · {LAYER} · filter 2")
    expect(page.locator("#filter-img")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#filter-img').naturalWidth === 64")
    expect(page.locator("#activation")).to_have_text(f"{picture['activation']:.4g}".rstrip("."))
    expect(page.locator("#start-activation")).not_to_have_text("–")
    expect(page.locator("#animation")).to_be_visible()
    expect(page.get_by_role("link", name="PNG", exact=True)).to_have_attribute("href", picture["url"])
    expect(page.get_by_role("link", name="animated WebP")).to_have_attribute("href", picture["animation_url"])
    expect(page.locator("#filter-info")).not_to_contain_text("null")
    page.screenshot(path=screenshots / "5-filter.png", full_page=True)
    page.get_by_role("link", name="the job", exact=True).click()
    expect(page.locator("#job-status")).to_have_text("succeeded")
    page.wait_for_function("() => document.querySelector('#grid-img').naturalWidth > 0")
    page.screenshot(path=screenshots / "5c-job.png", full_page=True)
    page.go_back()
    share = page.locator("#share").get_attribute("href")
    assert share and "steps=5" in share and "size=64" in share, share

    someone_else = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        other = someone_else.new_page()
        with other.expect_response(lambda answer: "/v1/pictures/" in answer.url) as answer:
            other.goto(share)
        assert answer.value.status == 200, "the shared picture was not served from the cache"
        expect(other.locator("#filter-img")).to_be_visible()
        other.wait_for_function("() => document.querySelector('#filter-img').naturalWidth === 64")
        expect(other.locator("#activation")).to_have_text(f"{picture['activation']:.4g}".rstrip("."))
        other.screenshot(path=screenshots / "5b-shared-filter.png", full_page=True)
    finally:
        someone_else.close()


def test_start_from_an_uploaded_cat(page: Page, client: httpx.Client, worker: object, screenshots: Path) -> None:
    page.goto(LAYER_PAGE)
    page.set_input_files("#field-image", CAT)
    expect(page.locator("#start-preview")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#start-preview').naturalWidth === 451")
    fill_form(page, filters="0-1", steps="5", size="64", strength="0.5")
    page.screenshot(path=screenshots / "6-cat-form.png", full_page=True)
    page.click("#submit")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#filters img[data-rendered]")).to_have_count(2)
    job_id = page.locator("#job a code").inner_text()
    init = client.get(f"/v1/jobs/{job_id}").json()["request"]["init"]
    assert init["type"] == "image" and init["strength"] == 0.5, init


def test_cancel_a_running_job(page: Page, worker: object, screenshots: Path) -> None:
    page.goto(LAYER_PAGE)
    fill_form(page, filters="0-7", steps="3000", size="96")
    page.click("#submit")
    expect(page.locator("#job-status")).to_have_text("running", timeout=RENDER_TIMEOUT_MS)
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("canceled", timeout=30_000)
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#filters img[data-rendered]")).to_have_count(0)
    page.screenshot(path=screenshots / "7-canceled.png")


def test_a_422_is_explained_field_by_field(page: Page, screenshots: Path) -> None:
    page.goto(LAYER_PAGE)
    fill_form(page, filters="0", steps="5000", size="64")
    page.click("#submit")
    expect(page.locator("#form-problem [role=alert]")).to_contain_text("steps: 5000 steps requested; at most 3000")
    expect(page.locator('[data-field="steps"] .error')).to_have_text("5000 steps requested; at most 3000")
    expect(page.locator('[data-field="steps"]')).to_have_class("field invalid")
    expect(page.locator("#job")).to_be_empty()
    page.screenshot(path=screenshots / "8-problem.png", full_page=True)


def test_job_history_filters_by_status(page: Page, client: httpx.Client, screenshots: Path) -> None:
    for _ in range(2):
        submit(client, {"model": MODEL, "layer": LAYER, "filters": [0], "steps": 2, "size": 32})
    page.goto("/jobs")
    expect(page.locator("#jobs tbody tr").first).to_be_visible()
    page.screenshot(path=screenshots / "9-jobs.png", full_page=True)
    page.select_option("#status-filter", "succeeded")
    page.wait_for_url("**/jobs?status=succeeded")
    expect(page.locator("#status-filter")).to_have_value("succeeded")
    expect(page.locator("#jobs tbody tr").first).to_be_visible()
    statuses = page.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses and set(statuses) == {"succeeded"}, statuses


def test_job_history_pages(page: Page, client: httpx.Client) -> None:
    made = [submit(client, {"model": MODEL, "layer": LAYER, "filters": [n], "steps": 2, "size": 32}) for n in range(4)]
    newest = [job["id"] for job in reversed(made)]
    page.goto("/jobs?limit=2")
    shown = "rows => rows.map(r => r.querySelector('a').getAttribute('href').split('/').pop())"
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    assert page.locator("#jobs tbody tr").evaluate_all(shown) == newest[:2]
    page.click("#next-page")
    expect(page.locator("#newest")).to_be_visible()
    assert page.locator("#jobs tbody tr").evaluate_all(shown) == newest[2:]


def test_readable_and_usable_by_keyboard_on_a_phone(browser: object, api_url: str, screenshots: Path) -> None:
    context = browser.new_context(base_url=api_url, viewport=PHONE, is_mobile=True)  # type: ignore[attr-defined]
    try:
        phone = context.new_page()
        phone.goto(LAYER_PAGE)
        expect(phone.locator("#filters .tile[data-filter]").first).to_be_visible()
        assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"
        phone.screenshot(path=screenshots / "10-phone-layer.png", full_page=True)
        phone.goto("/")
        focusable = "m => [...document.querySelectorAll('a, button')].some(e => e.textContent === m)"
        phone.wait_for_function(focusable, arg=MODEL)  # the cards are drawn after GET /v1/models answers
        for _ in range(10):
            phone.keyboard.press("Tab")
            if phone.evaluate("() => document.activeElement.textContent") == MODEL:
                break
        phone.keyboard.press("Enter")
        phone.wait_for_url(f"**/models/{MODEL}")
    finally:
        context.close()
