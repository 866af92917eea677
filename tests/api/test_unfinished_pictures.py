"""Pictures are served only once their job has succeeded: never a file a worker may still be writing."""

from core.settings import Settings
from core.store import Stores
from core.store.files import GRID_PNG, filter_png
from tests.api_fixtures import AppClient

JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": [0], "steps": 3, "size": 32}


def test_the_files_of_a_running_job_are_not_served(app_client: AppClient, scratch: tuple[Settings, Stores]) -> None:
    stores = scratch[1]
    client = app_client()
    job_id = client.post("/v1/jobs", json=JOB).json()["id"]
    stores.jobs.claim(job_id, "w1@test", 3, 30)
    stores.results.put(job_id, filter_png(0), b"written by an attempt that may yet die")
    stores.results.put(job_id, GRID_PNG, b"the same")

    for path in (f"/v1/jobs/{job_id}/filters/0.png", f"/v1/jobs/{job_id}/grid.png"):
        response = client.get(path)
        assert (
            response.status_code == 404
            and response.json()["detail"] == f"job {job_id} has no pictures (status: running)"
        )
