"""Property-based requests against the whole OpenAPI surface (schemathesis), with API keys on.

Every operation gets a bounded number of generated requests, valid and invalid; every answer must
be documented, match its schema, and never be a 5xx.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import Receive, Scope, Send

from api.app import create_app
from core.settings import Settings
from core.store import Stores
from tests.api_fixtures import ALICE, CATALOG, KEY_DIGESTS, bearer

EXAMPLES_PER_OPERATION = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]


class DeferredApp:
    """An ASGI app that forwards to the one a fixture made: schemathesis wants its app at import time,
    the app wants a scratch Redis that exists only once the test runs."""

    def __init__(self) -> None:
        self.target: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None, "the fuzzed_app fixture sets the target"
        await self.target(scope, receive, send)


APP = DeferredApp()
DOCUMENT = create_app(Settings(redis_url="redis://127.0.0.1:1/0", api_keys=KEY_DIGESTS)).openapi()  # no I/O
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.app = APP
schema.config.generation.update(allow_extra_parameters=False)  # unknown query parameters are ignored, by design


@pytest.fixture(autouse=True)
def fuzzed_app(scratch: tuple[Settings, Stores]) -> Iterator[None]:
    settings, stores = scratch
    stores.catalog.publish(CATALOG)
    stores.workers.stamp("fuzz@test")  # ready (every served model published): any 5xx now is a bug
    changes = {"api_keys": KEY_DIGESTS, "describe_timeout_seconds": 0.05, "models": [CATALOG.name]}
    APP.target = create_app(settings.model_copy(update=changes))
    yield
    APP.target = None


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=bearer(ALICE), checks=CHECKS)
