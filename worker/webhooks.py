"""Delivering webhook events from the outbox: signed POSTs, retried with backoff, at least once.

A thread in the worker's parent process (like the janitor) takes due events and hands each to a
pool of ``webhook_concurrency`` senders, at most ``webhook_per_target`` of them to one target (host and port):
a receiver that hangs holds only its own share, and every other target's events go out meanwhile.
An event whose target already has its share in flight is handed back untried, due again shortly.
Each event is POSTed as ``{"type", "timestamp", "data": <the job, as GET /v1/jobs/{id} shows it>}``
with the Standard Webhooks headers. A 2xx settles it; 410 Gone too (the receiver asks for no more);
anything else, a timeout or a refused connection is retried after the next of
``webhook_retry_seconds``; after the last it is dropped with an error in the log. Receivers dedupe
by ``webhook-id``.
"""

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from redis import RedisError

from core.errors import ForbiddenTarget
from core.job_view import Job
from core.jobs import JobRecord
from core.settings import Settings
from core.store.jobs import decode_record
from core.store.webhook_outbox import OutboxEvent, WebhookOutbox
from core.webhook_signing import signed_headers, signing_key
from core.webhook_targets import Target, resolve_target
from worker import metrics

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
BUSY_TARGET_DELAY_SECONDS = 0.5  # an event handed back because its target has its share in flight
LEASE_MARGIN_SECONDS = 30.0  # an event is handed to another sender only this long after its timeout
USER_AGENT = "filterviz-webhooks/1.0"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class WebhookSender:
    def __init__(self, outbox: WebhookOutbox, settings: Settings) -> None:
        assert settings.webhook_secret is not None  # started only where webhooks are configured
        self._outbox, self._settings = outbox, settings
        self._key = signing_key(settings.webhook_secret.get_secret_value())
        self._http = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False)
        self._pool = ThreadPoolExecutor(settings.webhook_concurrency, thread_name_prefix="filterviz-webhook")
        self._in_flight: Counter[str] = Counter()  # target -> deliveries under way
        self._lock = threading.Lock()
        self._stop, self._slot_freed = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="filterviz-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Take no more events; let the deliveries under way end (each within the webhook timeout)."""
        self._stop.set()
        self._slot_freed.set()
        if self._thread.ident is not None:
            self._thread.join()
        self._pool.shutdown(wait=True)
        self._http.close()

    def deliver_due(self) -> int:
        """Start delivering due events, as many as there are free senders; returns how many were taken.

        Taken events whose target has its share in flight are handed back for later, so the next call
        reaches the events behind them."""
        with self._lock:
            free = self._settings.webhook_concurrency - self._in_flight.total()
        if free <= 0:
            return 0
        lease = self._settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
        events = self._outbox.take_due(free, lease)
        for event in events:
            target = _target(event)
            if self._reserve(target):
                self._pool.submit(self._deliver, event, target)
            else:
                self._outbox.put_back(event.id, BUSY_TARGET_DELAY_SECONDS)
        return len(events)

    def _reserve(self, target: str) -> bool:
        with self._lock:
            if self._in_flight[target] >= self._settings.webhook_per_target:
                return False
            self._in_flight[target] += 1
            return True

    def _deliver(self, event: OutboxEvent, target: str) -> None:
        """One attempt in a pool thread; whatever happens, the target's slot is freed (a lost event's lease ends)."""
        try:
            self._attempt(event)
        except RedisError as exc:
            log.warning("webhook %s: %s; it is tried again when its lease ends", event.id, exc)
        except Exception:
            log.exception("webhook %s: delivery failed unexpectedly", event.id)
        finally:
            with self._lock:
                self._in_flight[target] -= 1
            self._slot_freed.set()

    def _attempt(self, event: OutboxEvent) -> None:
        record = decode_record(event.fields)
        assert record is not None and record.webhook is not None  # the outbox records only such jobs
        try:
            target = resolve_target(record.webhook, self._settings.webhook_allow_private)
            status = self._post(target, event.id, _body(event, record))
        except ForbiddenTarget as exc:
            log.error("webhook %s to %s dropped: %s", event.id, record.webhook, exc)
            metrics.webhook_attempted("refused")
            self._outbox.settle(event.id)
            return
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = f"HTTP {status}"
        if status is not None and (200 <= status < 300 or status == 410):
            metrics.webhook_attempted("gone" if status == 410 else "delivered")
            self._outbox.settle(event.id)
        elif event.attempt <= len(self._settings.webhook_retry_seconds):
            delay = self._settings.webhook_retry_seconds[event.attempt - 1]
            log.warning("webhook %s to %s failed (%s); retrying in %g s", event.id, record.webhook, error, delay)
            metrics.webhook_attempted("failed")
            self._outbox.retry_later(event.id, delay)
        else:
            log.error("webhook %s to %s dropped after %d attempts (%s)", event.id, record.webhook, event.attempt, error)
            metrics.webhook_attempted("dropped")
            self._outbox.settle(event.id)

    def _post(self, target: Target, msg_id: str, body: bytes) -> int:
        """POST to the address that was checked (not a fresh DNS answer), naming the host for HTTP and TLS."""
        url = httpx.URL(target.url).copy_with(host=target.address)
        headers = signed_headers(self._key, msg_id, int(time.time()), body)
        headers.update({"host": _host_header(target), "user-agent": USER_AGENT})
        response = self._http.post(url, content=body, headers=headers, extensions={"sni_hostname": target.host})
        return response.status_code

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                taken = self.deliver_due()
            except RedisError as exc:
                log.warning("webhook sender: %s", exc)
                taken = 0
            if not taken:
                self._slot_freed.wait(POLL_SECONDS)
                self._slot_freed.clear()


def _target(event: OutboxEvent) -> str:
    """Host and port an event goes to, as its job's webhook URL names them: the unit of per-target isolation."""
    parts = urlsplit(event.fields.get("webhook", ""))
    return f"{parts.hostname}:{parts.port or _DEFAULT_PORTS.get(parts.scheme)}"


def _body(event: OutboxEvent, record: JobRecord) -> bytes:
    timestamp = datetime.fromtimestamp(event.timestamp, UTC).isoformat().replace("+00:00", "Z")
    document = {"type": event.type, "timestamp": timestamp, "data": Job.from_record(record).model_dump(mode="json")}
    return json.dumps(document, separators=(",", ":")).encode()


def _host_header(target: Target) -> str:
    url = httpx.URL(target.url)
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if url.port is None else f"{host}:{url.port}"
