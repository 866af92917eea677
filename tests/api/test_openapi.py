"""The OpenAPI document describes every route, with request examples and problem+json errors."""

import httpx


def test_the_openapi_document_describes_the_service(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]

    assert set(paths) == {
        "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel", "/v1/jobs/{job_id}/filters/{n}.png",
        "/v1/jobs/{job_id}/filters/{n}.webp", "/v1/jobs/{job_id}/grid.png", "/v1/images", "/v1/models",
        "/v1/models/{name}/layers", "/healthz", "/readyz",
    }  # fmt: skip
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
                elif code[0] == "2":
                    assert response["content"], (method, path, code)  # a response model, or image/png
