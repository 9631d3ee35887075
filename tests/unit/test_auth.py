import asyncio

import pytest

from serving.auth import ApiKeyMiddleware, KeyRing, bearer_token, key_id, parse_keys


def test_parse_keys_ignores_blanks():
    assert parse_keys(" a, ,b ,") == ["a", "b"]


def test_keyring_matches_only_exact_keys():
    ring = KeyRing(["sk-one", "sk-two"])
    assert ring.match("sk-two") == key_id("sk-two")
    for bad in (None, "", "sk-one ", "sk-on", "SK-ONE", "sk-one\x00"):
        assert ring.match(bad) is None


def test_key_id_does_not_reveal_the_key():
    kid = key_id("sk-secret-value")
    assert "secret" not in kid and len(kid) == 12


@pytest.mark.parametrize(
    ("header", "token"),
    [(b"Bearer abc", "abc"), (b"bearer abc ", "abc"), (b"Basic abc", None), (b"abc", None)],
)
def test_bearer_token(header, token):
    assert bearer_token([(b"authorization", header)]) == token


def _call(mw: ApiKeyMiddleware, path: str, auth: bytes | None) -> tuple[int, dict]:
    sent: list[dict] = []
    seen: dict = {}

    async def app(scope, receive, send):
        seen.update(scope.get("state", {}))
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(msg):
        sent.append(msg)

    mw.app = app
    headers = [(b"authorization", auth)] if auth else []
    asyncio.run(mw({"type": "http", "path": path, "headers": headers}, None, send))  # type: ignore[arg-type]
    return sent[0]["status"], seen


def test_middleware_guards_v1_only(monkeypatch):
    monkeypatch.setenv("TEST_KEYS", "sk-a,sk-b")
    mw = ApiKeyMiddleware(None, env_var="TEST_KEYS")  # type: ignore[arg-type]
    assert _call(mw, "/v1/models", None)[0] == 401
    assert _call(mw, "/v1/models", b"Bearer sk-x")[0] == 401
    status, state = _call(mw, "/v1/models", b"Bearer sk-b")
    assert status == 200 and state["key_id"] == key_id("sk-b")
    assert _call(mw, "/health", None)[0] == 200


def test_middleware_open_without_keys(monkeypatch):
    monkeypatch.delenv("TEST_KEYS", raising=False)
    mw = ApiKeyMiddleware(None, env_var="TEST_KEYS")  # type: ignore[arg-type]
    assert _call(mw, "/v1/models", None)[0] == 200
