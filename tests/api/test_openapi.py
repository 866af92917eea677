"""The OpenAPI document describes every route, with request examples and problem+json errors."""

import httpx


def test_the_openapi_document_describes_the_service(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]

    assert set(paths) == {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/filters/{n}.png",
        "/v1/jobs/{job_id}/filters/{n}.webp",
        "/v1/jobs/{job_id}/grid.png",
        "/v1/jobs/{job_id}/layers/{layer}/filters/{n}.png",
        "/v1/jobs/{job_id}/layers/{layer}/filters/{n}.webp",
        "/v1/jobs/{job_id}/layers/{layer}/grid.png",
        "/v1/images",
        "/v1/models",
        "/v1/models/{name}/layers",
        "/v1/pictures/{model}/{layer}/{filter}.png",
        "/v1/datasets",
        "/v1/datasets/{dataset}",
        "/v1/datasets/{dataset}/images/{place}.png",
        "/v1/datasets/{dataset}/examples/{key}/{sha256}.png",
        "/v1/models/{model}/layers/{layer}/examples",
        "/v1/example-builds/{key}",
        "/healthz",
        "/readyz",
    }
    submit = paths["/v1/jobs"]["post"]
    assert set(submit["requestBody"]["content"]["application/json"]["examples"]) == {"seed", "small", "cat"}
    assert submit["responses"]["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
    assert set(paths["/v1/images"]["post"]["requestBody"]["content"]) == {
        "multipart/form-data",
        "image/png",
        "image/jpeg",
    }
    assert "image/png" in paths["/v1/jobs/{job_id}/grid.png"]["get"]["responses"]["200"]["content"]

    for path, operations in paths.items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (method, path, code)
                elif code[0] == "2" and code != "204":
                    assert response["content"], (method, path, code)  # a response model, or image/png


def test_the_openapi_document_describes_access_idempotency_webhooks_and_limits(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    submit = document["paths"]["/v1/jobs"]["post"]

    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key. Required on every /v1 route when the deployment configures keys "
        "(FILTERVIZ_API_KEYS).",
    }
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert (operation.get("security") == [{"HTTPBearer": []}]) == path.startswith("/v1"), path
            if path.startswith("/v1"):
                assert {"401", "429"} <= set(operation["responses"]), path
                assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert [p["name"] for p in submit["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
    assert set(submit["responses"]["202"]["headers"]) == {"Location", "Idempotent-Replayed"}
    assert "Retry-After" in submit["responses"]["503"]["headers"]
    webhook = document["components"]["schemas"]["JobRequest"]["properties"]["webhook"]
    assert "Standard Webhooks" in webhook["description"]
    assert "webhook" in document["components"]["schemas"]["Job"]["properties"]
    assert set(document["paths"]["/v1/jobs/{job_id}"]) == {"get", "delete"}
    assert "204" in document["paths"]["/v1/jobs/{job_id}"]["delete"]["responses"]
    assert "507" in document["paths"]["/v1/images"]["post"]["responses"]
