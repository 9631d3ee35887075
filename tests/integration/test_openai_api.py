"""The OpenAI surface of the real server, driven by the official `openai` client."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration

ADAPTER = "base:support-v1"
PROMPT = [{"role": "user", "content": "Hi, my order ORD-4417 has not arrived yet. Can you help?"}]


def test_models_lists_base_and_adapter(server):
    models = {m.id: m for m in server.client().models.list().data}
    assert {"base", ADAPTER} <= set(models)
    raw = httpx.get(f"{server.api}/models", headers={"Authorization": f"Bearer {server.keys[0]}"})
    entries = {m["id"]: m for m in raw.json()["data"]}
    assert entries[ADAPTER]["parent"] == "base"
    assert entries["base"]["parent"] is None
    assert entries[ADAPTER]["created"] > 1_700_000_000


def test_adapter_changes_greedy_output(server):
    client = server.client()
    outputs = {}
    for model in ("base", ADAPTER):
        resp = client.chat.completions.create(
            model=model, messages=PROMPT, max_tokens=40, temperature=0, seed=0
        )
        assert resp.model == model
        assert resp.usage.completion_tokens > 0
        outputs[model] = resp.choices[0].message.content
    assert outputs["base"] != outputs[ADAPTER]


def test_greedy_is_deterministic(server):
    client = server.client()
    texts = {
        client.chat.completions.create(model=ADAPTER, messages=PROMPT, max_tokens=24, temperature=0)
        .choices[0]
        .message.content
        for _ in range(2)
    }
    assert len(texts) == 1


def test_completions(server):
    resp = server.client().completions.create(
        model="base", prompt="Dear customer,", max_tokens=8, temperature=0
    )
    assert resp.choices[0].text
    assert resp.usage.completion_tokens == 8


def test_stream_with_usage(server):
    stream = server.client().chat.completions.create(
        model=ADAPTER,
        messages=PROMPT,
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    for chunk in stream:
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(text)
    assert usage is not None
    assert 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def _assert_openai_error(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code"} <= set(body["error"])
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_wrong_key_is_401(server):
    with pytest.raises(openai.AuthenticationError) as info:
        server.client(key="sk-wrong").models.list()
    assert info.value.status_code == 401
    resp = httpx.post(f"{server.api}/chat/completions", json={"model": "base", "messages": PROMPT})
    _assert_openai_error(resp, 401, "invalid_api_key")


def test_unknown_model_and_adapter_are_404(server):
    for model in ("gpt-4o", "base:no-such-adapter"):
        with pytest.raises(openai.NotFoundError):
            server.client().chat.completions.create(model=model, messages=PROMPT, max_tokens=4)
        resp = httpx.post(
            f"{server.api}/chat/completions",
            headers={"Authorization": f"Bearer {server.keys[1]}"},
            json={"model": model, "messages": PROMPT, "max_tokens": 4},
        )
        err = _assert_openai_error(resp, 404, "model_not_found")
        assert "s3://" not in err["message"] and "adapters/" not in err["message"]


def test_traversal_in_adapter_name_is_rejected(server):
    resp = httpx.post(
        f"{server.api}/chat/completions",
        headers={"Authorization": f"Bearer {server.keys[0]}"},
        json={"model": "base:../support-v1", "messages": PROMPT, "max_tokens": 4},
    )
    _assert_openai_error(resp, 400, "invalid_model_name")


def test_malformed_json_is_400(server):
    resp = httpx.post(
        f"{server.api}/chat/completions",
        content=b'{"model": "base", "mess',
        headers={"Authorization": f"Bearer {server.keys[0]}", "Content-Type": "application/json"},
    )
    _assert_openai_error(resp, 400, "invalid_json")


def test_missing_field_is_400_and_server_still_serves(server):
    resp = httpx.post(
        f"{server.api}/chat/completions",
        json={"model": "base"},
        headers={"Authorization": f"Bearer {server.keys[0]}"},
    )
    err = _assert_openai_error(resp, 400)
    assert "messages" in err["message"]
    ok = server.client().chat.completions.create(model="base", messages=PROMPT, max_tokens=2)
    assert ok.choices[0].message.content is not None


def test_health_and_ready_need_no_key(server):
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.base_url}/ready").json()["status"] == "ready"
