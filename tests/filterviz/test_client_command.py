"""``filterviz submit|status|watch|download|cancel`` against the real API, worker and Redis."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from filterviz.cli import main
from tests.api_fixtures import ALICE

CAT = Path(__file__).parents[1] / "data" / "cat.jpg"
SMALL = ["--model", "efficientnet_lite0", "--layer", "blocks.2", "--filters", "0-3", "--size", "64"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_submit_watch_download_and_status(api_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "submit", "--api", api_url, *SMALL, "--steps", "40", "--seed", "9201")
    assert code == 0, err
    job_id = out.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)

    code, out, err = run(capsys, "watch", "--api", api_url, job_id)
    assert code == 0, err
    assert out.strip() == f"{job_id}: succeeded"
    assert "40/40" in err  # the progress bar reached the last step

    code, out, err = run(capsys, "download", "--api", api_url, job_id, "--out", str(tmp_path))
    assert code == 0, err
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["filter_0000.png", "filter_0001.png", "filter_0002.png", "filter_0003.png", "grid.png"]
    assert Image.open(tmp_path / "filter_0000.png").size == (64, 64)

    code, out, _ = run(capsys, "status", "--api", api_url, job_id)
    assert code == 0 and json.loads(out)["status"] == "succeeded"


def test_a_refused_request_is_explained_field_by_field(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "submit",
        "--api",
        api_url,
        "--model",
        "efficientnet_lite0",
        "--layer",
        "blocks.99",
        "--filters",
        "0-3",
        "--steps",
        "5000",
    )
    assert code == 2 and out == ""
    assert err.startswith("filterviz: 422 ")
    assert re.search(r"^  body\.layer: .*blocks\.99", err, re.MULTILINE), err
    assert re.search(r"^  body\.steps: ", err, re.MULTILINE), err


def test_a_canceled_job_makes_watch_fail(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "submit", "--api", api_url, *SMALL, "--steps", "1000", "--seed", "9202")
    assert code == 0, err
    job_id = out.strip()
    code, out, err = run(capsys, "cancel", "--api", api_url, job_id)
    assert code == 0, err
    assert out.strip() in (f"{job_id}: canceled", f"{job_id}: asked to stop")

    code, out, _ = run(capsys, "watch", "--api", api_url, job_id)
    assert code == 1 and out.strip() == f"{job_id}: canceled"
    code, _, err = run(capsys, "cancel", "--api", api_url, job_id)
    assert code == 2 and "409 Conflict" in err


def test_the_api_key_comes_from_the_environment_and_a_start_image_is_uploaded(
    keyed_api: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "status", "--api", keyed_api, "0" * 32)
    assert code == 2 and err.startswith("filterviz: 401 ")

    monkeypatch.setenv("FILTERVIZ_API_KEY", ALICE)
    code, out, err = run(capsys, "submit", "--api", keyed_api, *SMALL, "--steps", "3", "--init-image", str(CAT))
    assert code == 0, err
    code, out, err = run(capsys, "watch", "--api", keyed_api, out.strip())
    assert code == 0, err
