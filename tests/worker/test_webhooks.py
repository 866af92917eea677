"""Webhook events: recorded with each state change, delivered signed, retried with backoff, at least once."""

import json
import time

from standardwebhooks import Webhook

from core.jobs import JobError
from core.pictures import Picture
from core.settings import Settings
from core.spec import RenderSpec
from core.store import Stores
from testkit.services import WEBHOOK_SECRET
from tests.webhook_receiver import Receiver, webhook_receiver
from worker.webhooks import WebhookSender

SPEC = RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters=[3], steps=3, size=32)
FAST_DELIVERY_SECONDS = 2.0  # a receiver that answers at once gets its event within this, whatever others do


def deliver_all(sender: WebhookSender, stores: Stores, receiver: Receiver, expected: int) -> None:
    """Run the sender's loop by hand until ``expected`` deliveries arrived and nothing is pending (bounded)."""
    for _ in range(200):
        sender.deliver_due()
        if len(receiver.deliveries) >= expected and stores.webhooks.pending() == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{len(receiver.deliveries)} deliveries, {stores.webhooks.pending()} pending")


def test_each_start_and_end_is_posted_signed_with_the_job(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    with webhook_receiver() as receiver:
        job_id = stores.jobs.admit(SPEC, webhook=receiver.url).job.id
        token = stores.jobs.claim(job_id, "w1@test", 3, 30).token
        result = Picture(filter=3, activation=2.5, start_activation=0.5)
        stores.jobs.succeed(job_id, token, [result], "cpu", {"optimize": 1.0})
        stores.jobs.create(SPEC)  # no webhook: no event
        deliver_all(WebhookSender(stores.webhooks, settings), stores, receiver, 2)

    deliveries = sorted(receiver.deliveries, key=lambda d: d.headers["webhook-id"])  # sent concurrently: any order
    started, succeeded = (Webhook(WEBHOOK_SECRET).verify(d.body, d.headers) for d in deliveries)
    assert [d.headers["webhook-id"] for d in deliveries] == [
        f"msg_{job_id}_started_1",
        f"msg_{job_id}_succeeded_1",
    ]
    assert started["type"] == "job.started" and started["data"]["status"] == "running"
    assert succeeded["type"] == "job.succeeded" and succeeded["data"]["id"] == job_id
    assert succeeded["data"]["results"][0]["url"] == f"/v1/jobs/{job_id}/filters/3.png"
    assert succeeded["timestamp"].endswith("Z") and succeeded["data"]["webhook"] == receiver.url
    assert all(d.path == "/hooks" and d.headers["content-type"] == "application/json" for d in receiver.deliveries)
    assert len(receiver.deliveries) == 2


def test_failures_and_cancels_are_posted_too(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    with webhook_receiver() as receiver:
        queued = stores.jobs.admit(SPEC, webhook=receiver.url).job.id
        stores.jobs.cancel(queued)
        failing = stores.jobs.admit(SPEC, webhook=receiver.url).job.id
        token = stores.jobs.claim(failing, "w1@test", 3, 30).token
        stores.jobs.fail(failing, token, JobError(type="InternalError", message="boom"))
        deliver_all(WebhookSender(stores.webhooks, settings), stores, receiver, 3)

    events = [json.loads(d.body) for d in receiver.deliveries]
    assert sorted((e["data"]["id"], e["type"]) for e in events) == sorted(
        [(queued, "job.canceled"), (failing, "job.started"), (failing, "job.failed")]
    )
    assert next(e for e in events if e["type"] == "job.failed")["data"]["error"]["message"] == "boom"


def test_a_failed_delivery_is_retried_with_the_same_id_until_it_is_taken(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    with webhook_receiver(statuses=[500, 503]) as receiver:
        job_id = stores.jobs.admit(SPEC, webhook=receiver.url).job.id
        stores.jobs.cancel(job_id)
        deliver_all(WebhookSender(stores.webhooks, settings), stores, receiver, 3)

    assert [d.headers["webhook-id"] for d in receiver.deliveries] == [f"msg_{job_id}_canceled_0"] * 3
    assert len({d.body for d in receiver.deliveries}) == 1  # the same event every time
    assert stores.webhooks.pending() == 0


def test_delivery_gives_up_after_the_last_retry_and_on_410(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    sender = WebhookSender(stores.webhooks, settings)  # retries after 0.2 and 0.5 s
    with webhook_receiver(statuses=[500] * 10) as failing:
        stores.jobs.cancel(stores.jobs.admit(SPEC, webhook=failing.url).job.id)
        deliver_all(sender, stores, failing, 3)
    with webhook_receiver(statuses=[410]) as gone:
        stores.jobs.cancel(stores.jobs.admit(SPEC, webhook=gone.url).job.id)
        deliver_all(sender, stores, gone, 1)

    assert len(failing.deliveries) == 1 + len(settings.webhook_retry_seconds) and len(gone.deliveries) == 1


def test_an_event_taken_by_a_sender_that_died_is_due_again_after_its_lease(scratch: tuple[Settings, Stores]) -> None:
    stores = scratch[1]
    stores.jobs.cancel(stores.jobs.admit(SPEC, webhook="http://127.0.0.1:9/hook").job.id)
    taken = stores.webhooks.take_due(10, lease_seconds=0.3)  # ... and its sender was killed

    assert len(taken) == 1 and stores.webhooks.take_due(10, lease_seconds=0.3) == []
    time.sleep(0.4)
    again = stores.webhooks.take_due(10, lease_seconds=0.3)
    assert [(event.id, event.attempt) for event in again] == [(taken[0].id, 2)]


def test_an_unreachable_receiver_is_retried_not_lost(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    with webhook_receiver() as receiver:
        url = receiver.url
    stores.jobs.cancel(stores.jobs.admit(SPEC, webhook=url).job.id)  # nobody listens there now
    sender = WebhookSender(stores.webhooks, settings.model_copy(update={"webhook_retry_seconds": [60]}))

    assert sender.deliver_due() == 1
    sender.stop()  # the attempt ends (refused) before the test does: its reschedule cannot land in the next test
    assert stores.webhooks.pending() == 1  # scheduled for later, not lost
    assert stores.webhooks.take_due(10, lease_seconds=1) == []  # ... and not due now


def test_a_target_that_turned_internal_is_never_contacted(scratch: tuple[Settings, Stores]) -> None:
    settings, stores = scratch
    with webhook_receiver() as receiver:
        stores.jobs.cancel(stores.jobs.admit(SPEC, webhook=receiver.url).job.id)
        strict = settings.model_copy(update={"webhook_allow_private": False})  # as if DNS now said 127.0.0.1
        sender = WebhookSender(stores.webhooks, strict)
        sender.deliver_due()
        sender.stop()  # lets the attempt under way end

    assert receiver.deliveries == [] and stores.webhooks.pending() == 0


def test_a_hanging_receiver_delays_neither_another_targets_events_nor_more_than_its_share(
    scratch: tuple[Settings, Stores],
) -> None:
    settings, stores = scratch
    with webhook_receiver(hang_seconds=8) as slow, webhook_receiver() as fast:
        for _ in range(30):  # more than the sender takes at once
            stores.jobs.cancel(stores.jobs.admit(SPEC, webhook=slow.url).job.id)
        stores.jobs.cancel(stores.jobs.admit(SPEC, webhook=fast.url).job.id)  # due after all of the slow ones
        sender = WebhookSender(stores.webhooks, settings)
        started = time.monotonic()
        sender.start()
        try:
            while not fast.deliveries and time.monotonic() - started < FAST_DELIVERY_SECONDS:
                time.sleep(0.02)
            waited = time.monotonic() - started
        finally:
            slow.released.set()
            sender.stop()

    assert fast.deliveries, f"the fast receiver's event did not arrive within {FAST_DELIVERY_SECONDS} s"
    assert waited < FAST_DELIVERY_SECONDS, waited
    print(f"the fast receiver's event arrived after {waited:.2f} s")
    assert slow.most_in_flight == settings.webhook_per_target  # concurrent, but never more than its share
