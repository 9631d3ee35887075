"""Production serving on the shared real server: aliases and A/B, metrics, quotas, body limit,
cancellation, request logs and OpenAI conformance."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from tests.conftest import LIMITED_KEY

pytestmark = pytest.mark.integration

MSG = [{"role": "user", "content": "Hello, I need help with my order."}]


def _auth(server, key=None):
    return {"Authorization": f"Bearer {key or server.keys[0]}"}


def _chat(server, **body):
    payload = {"messages": MSG, "max_tokens": 1, **body}
    return httpx.post(
        f"{server.api}/chat/completions", json=payload, headers=_auth(server), timeout=120
    )


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(server) -> str:
    return httpx.get(f"{server.base_url}/metrics", timeout=30).text


# -- aliases and A/B ---------------------------------------------------------------------------
def test_alias_resolves_and_reports_the_variant(server):
    resp = _chat(server, model="support")
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == "base:support-v1"
    assert resp.headers["x-model-variant"] == "support-v1"


def test_ab_split_lands_within_tolerance_and_is_sticky(server):
    users = [f"user-{i}" for i in range(160)]
    with ThreadPoolExecutor(8) as pool:
        variants = list(
            pool.map(
                lambda u: _chat(server, model="ab-test", user=u).headers["x-model-variant"], users
            )
        )
    share = Counter(variants)["support-v1"] / len(users)
    # 70/30 split; binomial sd for n=160 is 0.036, so +-0.12 is more than 3 sd.
    assert 0.58 <= share <= 0.82, Counter(variants)
    for user, first in list(zip(users, variants, strict=True))[:12]:
        again = _chat(server, model="ab-test", user=user).headers["x-model-variant"]
        assert again == first
    session = {"X-Session-ID": "sess-42", **_auth(server)}
    seen = {
        httpx.post(
            f"{server.api}/chat/completions",
            headers=session,
            timeout=60,
            json={"model": "ab-test", "messages": MSG, "max_tokens": 1},
        ).headers["x-model-variant"]
        for _ in range(6)
    }
    assert len(seen) == 1


def test_alias_weights_change_without_restart(server):
    store = server.store()
    store.put_json({"ab-live": {"base": 100}}, "_aliases.json")
    time.sleep(1.5)  # catalog_ttl_s is 1 s in tests
    assert _chat(server, model="ab-live", user="u1").headers["x-model-variant"] == "base"
    store.put_json({"ab-live": {"support-v1": 100}}, "_aliases.json")
    time.sleep(1.5)
    assert _chat(server, model="ab-live", user="u1").headers["x-model-variant"] == "support-v1"
    listed = {
        m["id"]: m for m in httpx.get(f"{server.api}/models", headers=_auth(server)).json()["data"]
    }
    assert listed["ab-live"]["alias_of"] == {"support-v1": 100}


# -- metrics -------------------------------------------------------------------------------------
def test_metrics_move(server):
    before = _scrape(server)
    stream = server.client().chat.completions.create(
        model="support", messages=MSG, max_tokens=8, stream=True
    )
    chunks = [c for c in stream]
    assert not any(c.usage for c in chunks)  # usage was forced upstream, hidden from us
    _chat(server, model="base:no-such-adapter")
    after = _scrape(server)
    labels = {"model": "base", "adapter": "support-v1", "variant": "support-v1"}
    assert _metric(after, "supportserve_requests_total", status="200", **labels) > _metric(
        before, "supportserve_requests_total", status="200", **labels
    )
    assert _metric(after, "supportserve_requests_total", status="404") > _metric(
        before, "supportserve_requests_total", status="404"
    )
    for name in (
        "supportserve_time_to_first_token_seconds_count",
        "supportserve_inter_token_latency_seconds_count",
        "supportserve_request_duration_seconds_count",
        "supportserve_completion_tokens_total",
        "supportserve_prompt_tokens_total",
    ):
        assert _metric(after, name, **labels) > _metric(before, name, **labels), name
    assert _metric(after, "supportserve_adapter_loads_total") >= 1
    for gauge in (
        "supportserve_engine_requests_running",
        "supportserve_engine_requests_waiting",
        "supportserve_engine_kv_cache_usage_ratio",
        "supportserve_requests_in_flight",
    ):
        assert re.search(rf"^{gauge}{{", after, re.M), gauge
    series = [ln for ln in after.splitlines() if ln.startswith("supportserve_requests_total")]
    assert not any("no-such-adapter" in ln for ln in series)  # no label from raw client input


# -- quotas and limits -----------------------------------------------------------------------
def test_rate_limit_is_429_with_retry_after(server):
    statuses = [
        httpx.post(
            f"{server.api}/chat/completions",
            headers=_auth(server, LIMITED_KEY),
            json={"model": "base", "messages": MSG, "max_tokens": 1},
            timeout=60,
        )
        for _ in range(4)
    ]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    last = statuses[3]
    assert last.status_code == 429
    assert int(last.headers["retry-after"]) >= 1
    assert last.json()["error"]["type"] == "rate_limit_error"
    assert _chat(server, model="base").status_code == 200  # other keys are unaffected
    assert _metric(_scrape(server), "supportserve_rate_limited_requests_total") >= 1


def test_body_over_the_limit_is_413(server, scorecard):
    big = {"model": "base", "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    resp = httpx.post(f"{server.api}/chat/completions", json=big, headers=_auth(server), timeout=60)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "request_too_large"
    scorecard("security_body_limit", body_bytes=1_100_000, status=413)


# -- cancellation ------------------------------------------------------------------------------
def _engine(server) -> dict:
    return httpx.get(f"{server.base_url}/admin/engine", headers=_auth(server), timeout=10).json()


def _wait_busy(server, timeout: float = 30.0) -> None:
    """The scheduler's figures arrive with its next step: give them a moment."""
    deadline = time.monotonic() + timeout
    while _engine(server)["unfinished"] < 1:
        assert time.monotonic() < deadline, f"engine never busy: {_engine(server)}"
        time.sleep(0.05)


def _wait_idle(server, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _engine(server)["unfinished"] == 0:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"engine still busy: {_engine(server)}")


LONG = {
    "model": "base",
    "messages": MSG,
    "max_tokens": 1500,
    "ignore_eos": True,
    "min_tokens": 1500,
    "temperature": 0,
}


def test_dropped_stream_aborts_the_engine_request(server, scorecard):
    with httpx.stream(
        "POST",
        f"{server.api}/chat/completions",
        headers=_auth(server),
        json={**LONG, "stream": True},
        timeout=60,
    ) as resp:
        lines = resp.iter_lines()  # kept open: leaving a for-loop early may close the stream
        for _ in range(20):
            next(lines)
        _wait_busy(server)
    took = _wait_idle(server)  # measured from the drop (leaving the with-block)
    scorecard("cancel_stream", seconds_to_idle=round(took, 3))
    assert took <= 1.5


def test_dropped_non_streaming_request_aborts_too(server, scorecard):
    """A client that hangs up on a non-streaming request frees its engine slot.

    The request goes over a raw socket so that the test, not a client timeout, decides when to
    hang up: only once the engine is seen working on it (a fixed timeout raced the scheduler's
    figures on a loaded machine)."""
    url = urlsplit(server.api)
    body = json.dumps(LONG).encode()
    head = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {server.keys[0]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(head.encode() + body)
        _wait_busy(server, timeout=60)
    took = _wait_idle(server)  # measured from the hang-up (leaving the with-block)
    scorecard("cancel_non_stream", seconds_to_idle=round(took, 3))
    assert took <= 1.5


# -- request logs ------------------------------------------------------------------------------
def test_request_log_is_structured_and_never_holds_a_key(server, scorecard):
    rid = f"req-{uuid.uuid4().hex[:12]}"
    secret_prompt = f"my password is hunter2-{rid}"
    resp = httpx.post(
        f"{server.api}/chat/completions",
        timeout=60,
        headers={"X-Request-ID": rid, **_auth(server)},
        json={
            "model": "support",
            "max_tokens": 2,
            "messages": [{"role": "user", "content": secret_prompt}],
        },
    )
    assert resp.headers["x-request-id"] == rid
    deadline, line = time.monotonic() + 15, None
    while line is None and time.monotonic() < deadline:
        line = next((ln for ln in server.log().splitlines() if rid in ln and '"event"' in ln), None)
        time.sleep(0.5)
    assert line, "no request log line"
    entry = json.loads(line[line.index("{") :])
    assert entry["request_id"] == rid and entry["variant"] == "support-v1"
    assert entry["status"] == 200 and entry["completion_tokens"] >= 1
    log = server.log()
    assert not any(k in log for k in server.keys)
    assert secret_prompt not in log
    scorecard("security_logs", log_bytes_scanned=len(log), keys_found=0, prompts_found=0)


# -- OpenAI conformance ------------------------------------------------------------------------
def test_n_stop_and_logprobs(server):
    client = server.client()
    resp = client.chat.completions.create(
        model="support",
        messages=MSG,
        max_tokens=12,
        n=2,
        temperature=1.0,
        seed=7,
        logprobs=True,
        top_logprobs=3,
    )
    assert len(resp.choices) == 2
    content = resp.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) == 3 for t in content)
    stopped = client.completions.create(
        model="base", prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=[","]
    )
    assert "," not in stopped.choices[0].text
    assert stopped.choices[0].finish_reason == "stop"


def test_response_format_json_schema(server):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    resp = server.client().chat.completions.create(
        model="base",
        max_tokens=40,
        temperature=0,
        messages=[{"role": "user", "content": "Which city is the Eiffel tower in? JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
    )
    assert set(json.loads(resp.choices[0].message.content)) == {"city"}


@pytest.mark.parametrize(
    "bad",
    [
        {"model": "base", "messages": MSG, "max_tokens": -1},
        {"model": "base", "messages": MSG, "n": 1000},
        {"model": "base", "messages": MSG, "temperature": "hot"},
        {"model": "base", "messages": [{"role": "wizard", "content": "hi"}]},
        {"model": "base", "messages": [{"role": "user", "content": "x " * 5000}]},
        {"model": "base", "messages": MSG, "max_tokens": 10**9},
        {"model": "base", "messages": None},  # vLLM's own validator raised TypeError here
    ],
)
def test_bad_input_is_an_openai_shaped_4xx(server, bad):
    resp = httpx.post(f"{server.api}/chat/completions", json=bad, headers=_auth(server), timeout=60)
    assert 400 <= resp.status_code < 500, resp.text
    assert set(resp.json()["error"]) >= {"message", "type", "code"}
    with pytest.raises(openai.BadRequestError):
        server.client().chat.completions.create(**bad)
    assert _chat(server, model="base").status_code == 200


# -- security ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/models/base"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/admin/engine"),
        ("GET", "/admin/status"),
        ("POST", "/v1/embeddings"),
    ],
)
def test_every_protected_route_needs_a_key(server, scorecard, method, path):
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": "Basic abc"}):
        resp = httpx.request(
            method,
            f"{server.base_url}{path}",
            headers=headers,
            timeout=30,
            json={"model": "base"} if method == "POST" else None,
        )
        assert resp.status_code == 401, (path, headers, resp.text)
        assert resp.json()["error"]["code"] == "invalid_api_key"
    scorecard(f"security_auth_{method}{path.replace('/', '_')}", tries=3, status=401)


def test_cors_is_off_by_default(server, scorecard):
    pre = httpx.options(
        f"{server.api}/chat/completions",
        timeout=30,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in pre.headers
    got = httpx.get(
        f"{server.api}/models",
        headers={"Origin": "https://evil.example", **_auth(server)},
        timeout=30,
    )
    assert "access-control-allow-origin" not in got.headers
    scorecard("security_cors", allow_origin_header=False)
