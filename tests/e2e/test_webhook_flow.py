"""A job's webhook through the real API and worker: signed events for its start and its end."""

import json

import httpx
from standardwebhooks import Webhook

from testkit.services import WEBHOOK_SECRET, wait_until
from tests.service_fixtures import finished, submit, wait_for_job
from tests.webhook_receiver import webhook_receiver

SPEC = {"model": "efficientnet_lite0", "layer": "blocks.1", "filters": [4], "steps": 2, "size": 32}


def test_a_job_posts_its_start_and_its_success_signed(client: httpx.Client) -> None:
    with webhook_receiver(statuses=[503]) as receiver:  # the first attempt fails: retried
        job = submit(client, {**SPEC, "webhook": receiver.url})
        done = wait_for_job(client, job["id"], finished)
        wait_until(lambda: len(receiver.deliveries) >= 3, 30, "the webhook deliveries")

    verify = Webhook(WEBHOOK_SECRET).verify
    events: dict[str, list[dict]] = {}  # by webhook-id: a retry may arrive after a later event, order is not promised
    for delivery in receiver.deliveries:
        events.setdefault(delivery.headers["webhook-id"], []).append(verify(delivery.body, delivery.headers))
    assert events.keys() == {f"msg_{job['id']}_started_1", f"msg_{job['id']}_succeeded_1"}
    started, succeeded = events[f"msg_{job['id']}_started_1"], events[f"msg_{job['id']}_succeeded_1"]
    # the first delivery answered (of either event: a 2-step job may end before its start is delivered)
    # was refused, and only that one was sent again, with the same body
    (retried,) = [deliveries for deliveries in (started, succeeded) if len(deliveries) > 1]
    assert len(retried) == 2 and retried[0] == retried[1] and len(started) + len(succeeded) == 3
    assert {event["type"] for event in started} == {"job.started"}
    assert {event["type"] for event in succeeded} == {"job.succeeded"}
    assert succeeded[0]["data"] == done  # the job as GET /v1/jobs/{id} shows it
    assert done["status"] == "succeeded" and done["webhook"] == receiver.url


def test_a_canceled_queued_job_posts_its_cancel(client: httpx.Client) -> None:
    long = {**SPEC, "steps": 3000, "size": 96, "filters": "0-3", "layer": "blocks.2"}
    with webhook_receiver() as receiver:
        running = submit(client, long)
        waiting = submit(client, {**SPEC, "webhook": receiver.url})
        assert client.post(f"/v1/jobs/{waiting['id']}/cancel").status_code == 200
        client.post(f"/v1/jobs/{running['id']}/cancel")
        wait_until(lambda: receiver.deliveries, 30, "the cancel event")

    assert [json.loads(d.body)["type"] for d in receiver.deliveries] == ["job.canceled"]
    assert json.loads(receiver.deliveries[0].body)["data"]["id"] == waiting["id"]
