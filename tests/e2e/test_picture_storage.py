"""Through the real API and worker: many jobs of a few distinct requests store each picture once."""

import httpx

from core.settings import Settings
from tests.service_fixtures import finished, stored_bytes, submit, wait_for_job

JOBS, DISTINCT = 60, 3
LIST_BYTES = 1024  # what a job of four filters adds on top of its pictures: the list of them


def test_repeated_requests_add_only_their_lists_of_pictures(client: httpx.Client, service_settings: Settings) -> None:
    specs = [
        {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": "0-3", "steps": 2, "size": 48, "seed": 5400 + i}
        for i in range(DISTINCT)
    ]
    before = stored_bytes(service_settings)
    firsts = [wait_for_job(client, submit(client, spec)["id"], finished) for spec in specs]
    distinct = stored_bytes(service_settings) - before

    repeats = [submit(client, specs[i % DISTINCT])["id"] for i in range(JOBS - DISTINCT)]
    done = [wait_for_job(client, job_id, finished, timeout=120) for job_id in repeats]
    added = stored_bytes(service_settings) - before - distinct

    assert all(job["status"] == "succeeded" for job in firsts + done)
    assert added < len(repeats) * LIST_BYTES, (added, distinct)  # a copy of the pictures would be ~distinct/3 each
    first, again = firsts[0], done[0]
    assert client.get(again["results"][2]["url"]).content == client.get(first["results"][2]["url"]).content
    assert client.get(again["grid_url"]).headers["etag"] == client.get(first["grid_url"]).headers["etag"]
