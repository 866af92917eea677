"""The gallery's documents over plain HTTP: every page path answers the one page, and only its assets are served."""

import httpx


def test_every_page_path_answers_the_gallery(client: httpx.Client) -> None:
    for path in ("/", "/jobs", "/models/efficientnet_lite0/layers/blocks.4/filters/3", "/jobs/abc"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app.js">' in response.text


def test_only_the_gallery_assets_are_served(client: httpx.Client) -> None:
    script = client.get("/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    for name in ("index.html", "..%2Fgallery.py", "nothing.js"):
        missing = client.get(f"/static/{name}")
        assert missing.status_code == 404, name
        assert missing.headers["content-type"] == "application/problem+json"
