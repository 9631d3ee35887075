"""Error mapping on a bare FastAPI app with our handlers (the real server is covered in
tests/integration/test_openai_api.py)."""

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from serving.errors import ModelNotFound, RateLimited, ServiceUnavailable, install_error_handlers


class Body(BaseModel):
    model: str
    n: int = 1


def _app() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(body: Body):
        return body.model_dump()

    @app.get("/missing")
    async def missing():
        raise ModelNotFound("The model `x` does not exist.")

    @app.get("/limited")
    async def limited():
        raise RateLimited("slow down", headers={"Retry-After": "3"})

    @app.get("/down")
    async def down():
        raise ServiceUnavailable("engine restarting")

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret internal path /var/lib/x")

    @app.get("/http")
    async def http():
        raise HTTPException(418, "teapot")

    return TestClient(app, raise_server_exceptions=False)


def _err(resp, status):
    assert resp.status_code == status
    body = resp.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])
    return body["error"]


def test_invalid_json():
    resp = _app().post("/echo", content=b"{nope", headers={"content-type": "application/json"})
    assert _err(resp, 400)["code"] == "invalid_json"


def test_wrong_content_type_is_415():
    resp = _app().post("/echo", content=b"model=x", headers={"content-type": "text/plain"})
    assert _err(resp, 415)["code"] == "unsupported_media_type"


def test_missing_and_wrong_type_fields_name_the_param():
    err = _err(_app().post("/echo", json={}), 400)
    assert err["param"] == "model"
    err = _err(_app().post("/echo", json={"model": "m", "n": "many"}), 400)
    assert err["param"] == "n"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/missing", 404, "model_not_found"),
        ("/limited", 429, "rate_limit_exceeded"),
        ("/down", 503, "service_unavailable"),
        ("/http", 418, None),
        ("/nope", 404, "not_found"),
    ],
)
def test_status_and_code(path, status, code):
    resp = _app().get(path)
    err = _err(resp, status)
    if code:
        assert err["code"] == code


def test_retry_after_header_survives():
    assert _app().get("/limited").headers["retry-after"] == "3"


def test_unexpected_error_hides_internals():
    err = _err(_app().get("/boom"), 500)
    assert "secret" not in err["message"] and "Traceback" not in err["message"]
