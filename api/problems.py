"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

The one place where core.errors' tree meets HTTP: a RequestError is a 422 naming its field
(``errors[].loc``), a ServerFault a 5xx by its class (:data:`FAULT_STATUS`); Redis or the broker
unreachable is a 503 with Retry-After.
"""

import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field
from redis import RedisError
from starlette.exceptions import HTTPException

from core.errors import (
    DamagedPicture,
    ForbiddenTarget,
    RequestError,
    ServerFault,
    StorageError,
    WeightsUnavailable,
)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5

_HEADER_DOCS = {  # the headers that come with a status, for the OpenAPI document
    401: {"WWW-Authenticate": "Bearer: send `Authorization: Bearer <API key>`"},
    429: {"Retry-After": "seconds to wait before trying again"},
    503: {"Retry-After": "seconds to wait before trying again"},
}
# Errors that come from no route of its own, listed on every operation where they can happen. Any request:
_ANY_REQUEST_ERRORS = {
    408: "Request Timeout: the request's headers, or then its body, did not arrive within "
    "FILTERVIZ_REQUEST_READ_TIMEOUT_SECONDS (api.slow_clients); the connection is closed",
}
# A request to a route behind the API-key guard (api.access.authorize, every /v1 route), which reads Redis:
_GUARDED_ERRORS = {
    401: "Unauthorized: where the deployment has API keys (FILTERVIZ_API_KEYS), the key is missing or unknown",
    429: "Too Many Requests: where rate limits are on (FILTERVIZ_RATE_LIMIT_PER_MINUTE, FILTERVIZ_MAX_ACTIVE_JOBS_"
    "PER_KEY), or after too many wrong API keys from one address; wait Retry-After seconds",
    503: "Service Unavailable: Redis or the queue is unreachable, the service is not ready yet, or one of this "
    "process's bounds is reached; try again after Retry-After seconds",
}


# status, title and problem type per server fault; a fault not listed (or a subclass of none) is a 500
FAULT_STATUS: dict[type[ServerFault], tuple[int, str, str]] = {
    StorageError: (507, "Insufficient Storage", "/problems/storage-unavailable"),
    DamagedPicture: (500, "Damaged picture", "/problems/damaged-picture"),
    WeightsUnavailable: (503, "Weights unavailable", "/problems/weights-unavailable"),
}
_OTHER_FAULT = (500, "Internal Server Error", "/problems/server-fault")
# where a request error's field is in an HTTP request, where that is not the JSON body's field of its name
_FIELD_LOCATIONS: dict[str, list[str | int]] = {"cursor": ["query", "cursor"], "image": ["body", "file"]}
# errors[].type of a request error, where it is not its class name in snake case
_ERROR_TYPES: dict[type[RequestError], str] = {ForbiddenTarget: "forbidden_webhook"}


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where the error is, e.g. ['body', 'layer']", examples=[["body", "layer"]])
    msg: str = Field(description="what is wrong and what is allowed")
    type: str = Field(examples=["unknown_layer"])


class ProblemDetail(BaseModel):
    type: str = Field(default="about:blank", description="a URI reference naming the kind of problem")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(default=None, description="for 422: every field at fault")


class Problem(Exception):
    """Raise anywhere in a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.body = ProblemDetail(type=type, title=title, status=status, detail=detail, errors=errors)
        self.headers = headers

    def response(self) -> JSONResponse:
        content = self.body.model_dump(exclude_none=True)
        return JSONResponse(content, status_code=self.body.status, headers=self.headers, media_type=PROBLEM_JSON)


def invalid(errors: list[FieldError]) -> Problem:
    detail = "; ".join(f"{'.'.join(str(part) for part in error.loc)}: {error.msg}" for error in errors)
    return Problem(422, "Invalid request", detail, type="/problems/invalid-request", errors=errors)


def field_error(error: RequestError) -> FieldError:
    """The ``errors[]`` entry of a request error: where its field is, what is wrong, and its kind."""
    loc: list[str | int] = _FIELD_LOCATIONS.get(error.field, ["body", error.field]) if error.field else ["body"]
    kind = _ERROR_TYPES.get(type(error)) or _snake_case(type(error).__name__)
    return FieldError(loc=loc, msg=str(error), type=kind)


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def not_found(detail: str) -> Problem:
    return Problem(404, "Not Found", detail)


def not_ready(detail: str) -> Problem:
    return unavailable("Service not ready", detail, "/problems/not-ready")


def unavailable(title: str, detail: str, type: str, retry_after: int = RETRY_AFTER_SECONDS) -> Problem:
    """503: try again later."""
    return Problem(503, title, detail, type=type, headers={"Retry-After": str(retry_after)})


def too_many(title: str, detail: str, type: str, retry_after: int = RETRY_AFTER_SECONDS) -> Problem:
    """429: this caller asked for more than its share."""
    return Problem(429, title, detail, type=type, headers={"Retry-After": str(retry_after)})


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses (their bodies become problem+json, see below)."""
    return {status: {"model": ProblemDetail, **_header_docs(status)} for status in statuses}


def _header_docs(status: int) -> dict[str, Any]:
    headers = _HEADER_DOCS.get(status)
    if headers is None:
        return {}
    return {"headers": {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}}


def install_problem_handlers(app: FastAPI) -> None:
    app.openapi = lambda: _problem_openapi(app)  # type: ignore[method-assign]
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(RedisError, _on_backend_down)
    app.add_exception_handler(OperationalError, _on_backend_down)
    app.add_exception_handler(RequestError, _on_request_error)
    app.add_exception_handler(ServerFault, _on_server_fault)


def _problem_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the errors no route declares itself (408 everywhere; 401, 429, 503 behind the
    API-key guard), and every error response (FastAPI's own 422s too) as a problem document."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}
        for operation in (op for path in document["paths"].values() for op in path.values()):
            guarded = "security" in operation  # FastAPI writes it for the guard's HTTPBearer dependency
            for status, text in {**_ANY_REQUEST_ERRORS, **(_GUARDED_ERRORS if guarded else {})}.items():
                _add_generic(operation["responses"].setdefault(str(status), {}), status, text)
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    response["content"] = problem
        for unused in ("HTTPValidationError", "ValidationError"):
            document["components"]["schemas"].pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema


def _add_generic(response: dict[str, Any], status: int, text: str) -> None:
    """A generic error's description and headers, where the route did not describe that status its own way."""
    if response.get("description") in (None, HTTPStatus(status).phrase):
        response["description"] = text
    response.update(_header_docs(status))


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response()


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(loc=list(e["loc"]), msg=e["msg"], type=e["type"]) for e in exc.errors()]
    return invalid(errors).response()


async def _on_http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    title = HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers) if exc.headers else None
    return Problem(exc.status_code, title, str(exc.detail), headers=headers).response()


async def _on_backend_down(_: Request, exc: Exception) -> JSONResponse:
    return not_ready(f"Redis is unreachable: {exc}").response()


async def _on_request_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestError)
    return invalid([field_error(exc)]).response()


async def _on_server_fault(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServerFault)
    return _fault_problem(exc).response()


def _fault_problem(fault: ServerFault) -> Problem:
    """The problem a server fault answers: its class's status (the nearest listed ancestor's), its message."""
    status, title, kind = next((FAULT_STATUS[cls] for cls in type(fault).__mro__ if cls in FAULT_STATUS), _OTHER_FAULT)
    return Problem(status, title, str(fault), type=kind)
