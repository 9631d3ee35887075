import asyncio
import json

import pytest

from serving.errors import RateLimited
from serving.limits import BodyLimitMiddleware, RateLimiter, estimate_tokens


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_requests_per_minute_with_retry_after():
    clock = Clock()
    lim = RateLimiter(3, None, clock=clock)
    for _ in range(3):
        lim.admit("k", 10)
    with pytest.raises(RateLimited) as info:
        lim.admit("k", 10)
    assert info.value.headers["Retry-After"] == "20"
    assert info.value.code == "rate_limit_requests"
    lim.admit("other-key", 10)  # buckets are per key
    clock.t += 20
    lim.admit("k", 10)


def test_tokens_per_minute_settles_on_actual_usage():
    clock = Clock()
    lim = RateLimiter(None, 1000, clock=clock)
    lim.admit("k", 900)
    lim.settle("k", 900, 100)  # refund 800
    lim.admit("k", 900)
    with pytest.raises(RateLimited) as info:
        lim.admit("k", 500)
    assert info.value.code == "rate_limit_tokens"


def test_per_key_override_and_open_default():
    lim = RateLimiter(None, None, per_key={"tight": (1, None)}, clock=Clock())
    for _ in range(50):
        lim.admit("anyone", 10)
    lim.admit("tight", 1)
    with pytest.raises(RateLimited):
        lim.admit("tight", 1)


def test_estimate_counts_prompt_and_budget():
    class Body:
        messages = [{"role": "user", "content": "x" * 400}]
        max_tokens = 50
        n = 2

    assert 100 + 100 <= estimate_tokens(Body(), 256) <= 130 + 100


def _run(mw, body: bytes, declared: bool = True):
    sent = []

    async def app(scope, receive, send):
        msg = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": msg["body"]})

    chunks = [body[i : i + 100] for i in range(0, len(body), 100)] or [b""]
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive():
        return messages.pop(0)

    async def send(msg):
        sent.append(msg)

    headers = [(b"content-length", str(len(body)).encode())] if declared else []
    mw.app = app
    asyncio.run(mw({"type": "http", "method": "POST", "headers": headers}, receive, send))
    return sent


@pytest.mark.parametrize("declared", [True, False])
def test_body_limit(declared):
    mw = BodyLimitMiddleware(None, max_bytes=1000)  # type: ignore[arg-type]
    ok = _run(mw, b"a" * 1000, declared)
    assert ok[0]["status"] == 200 and ok[1]["body"] == b"a" * 1000
    big = _run(mw, b"a" * 1001, declared)
    assert big[0]["status"] == 413
    assert json.loads(big[1]["body"])["error"]["code"] == "request_too_large"
