"""The errors no route raises itself are in the OpenAPI document wherever they can happen, as problem+json:
408 (a slow client) on every operation, and 401, 429 and 503 (Redis or the queue down) on every /v1 one."""

from api.openapi import openapi_document

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}


def test_every_operation_lists_the_generic_errors_with_the_problem_schema() -> None:
    paths = openapi_document()["paths"]
    operations = [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]
    v1 = [(path, method, op) for path, method, op in operations if path.startswith("/v1/")]
    assert len(v1) >= 13

    for path, method, operation in operations:
        wanted = {"408", "401", "429", "503"} if path.startswith("/v1/") else {"408"}
        responses = operation["responses"]
        for status in wanted:
            assert status in responses, (method, path, status)
            assert responses[status]["content"] == PROBLEM, (method, path, status)
            assert responses[status]["description"], (method, path, status)
    for path, method, operation in v1:
        responses = operation["responses"]
        assert "Retry-After" in responses["503"]["headers"], (method, path)
        assert "Retry-After" in responses["429"]["headers"], (method, path)
        assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)
    assert "FILTERVIZ_REQUEST_READ_TIMEOUT_SECONDS" in paths["/healthz"]["get"]["responses"]["408"]["description"]
    assert "Redis" in paths["/v1/jobs"]["post"]["responses"]["503"]["description"]


def test_the_health_routes_have_no_key_errors_and_readiness_keeps_its_own_503() -> None:
    paths = openapi_document()["paths"]
    for path in ("/healthz", "/readyz"):
        responses = paths[path]["get"]["responses"]
        assert "401" not in responses and "429" not in responses, path  # not behind the API-key guard
    assert paths["/readyz"]["get"]["responses"]["503"]["content"] == PROBLEM
    assert "503" not in paths["/healthz"]["get"]["responses"]  # liveness reads no Redis
