"""Per-key quotas (token buckets for requests/min and tokens/min) and the request-body limit.

Design: a request is admitted against two buckets per API key. It is charged one request, and a
token *estimate* (prompt characters / 4, plus its `max_tokens` or the configured default). When
the real usage is known (from `usage`, which the ingress always asks vLLM for), the difference is
settled: unused estimate is refunded, and an overrun is charged. A refused request gets a 429 in
the OpenAI shape with `Retry-After`, the seconds until the bucket holds enough again. Buckets
live in each ingress replica. With N ingress replicas, a key's real ceiling is N times the
configured limit; the config documents this, and the default deployment runs one ingress.

The body limit is ASGI middleware that reads at most `max_body_bytes` and answers 413 beyond
that, before any JSON parsing happens.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import RateLimited, error_body


@dataclass
class Bucket:
    capacity: float
    per_second: float
    level: float = -1.0
    updated: float = 0.0

    def _refill(self, now: float) -> None:
        if self.level < 0:
            self.level, self.updated = self.capacity, now
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` fits (0 if it fits now). Amounts above capacity wait for a full
        bucket, so a single huge request is slow but not impossible."""
        self._refill(now)
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.per_second

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount  # may go negative: an overrun is paid back before the next request


@dataclass
class KeyState:
    requests: Bucket | None
    tokens: Bucket | None


@dataclass
class RateLimiter:
    requests_per_minute: int | None
    tokens_per_minute: int | None
    per_key: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _keys: dict[str, KeyState] = field(default_factory=dict)

    def limits(self, key: str) -> tuple[int | None, int | None]:
        return self.per_key.get(key, (self.requests_per_minute, self.tokens_per_minute))

    def _state(self, key: str) -> KeyState:
        if key not in self._keys:
            rpm, tpm = self.limits(key)
            self._keys[key] = KeyState(
                Bucket(rpm, rpm / 60) if rpm else None, Bucket(tpm, tpm / 60) if tpm else None
            )
        return self._keys[key]

    def admit(self, key: str, token_estimate: int) -> None:
        """Charge one request and the estimate, or raise `RateLimited` charging nothing."""
        if not any(self.limits(key)):
            return
        state, now = self._state(key), self.clock()
        waits = {
            "requests": state.requests.wait_for(1, now) if state.requests else 0.0,
            "tokens": state.tokens.wait_for(token_estimate, now) if state.tokens else 0.0,
        }
        limit, wait = max(waits.items(), key=lambda kv: kv[1])
        if wait > 0:
            per_minute = self.limits(key)[0 if limit == "requests" else 1]
            raise RateLimited(
                f"Rate limit reached: {per_minute} {limit} per minute for this key. "
                f"Retry in {math.ceil(wait)} s.",
                code=f"rate_limit_{limit}",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if state.requests:
            state.requests.take(1, now)
        if state.tokens:
            state.tokens.take(token_estimate, now)

    def settle(self, key: str, estimate: int, actual: int) -> None:
        state = self._keys.get(key)
        if state and state.tokens:
            state.tokens.take(actual - estimate, self.clock())


def estimate_tokens(body: object, default_max_tokens: int) -> int:
    """Prompt characters / 4 (a generous token estimate) plus the completion budget."""
    prompt = getattr(body, "messages", None) or getattr(body, "prompt", None) or ""
    chars = len(json.dumps(prompt, default=str, ensure_ascii=False))
    completion = (
        getattr(body, "max_completion_tokens", None)
        or getattr(body, "max_tokens", None)
        or default_max_tokens
    )
    n = getattr(body, "n", None) or 1
    return chars // 4 + int(completion) * int(n)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the client's disconnect

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        payload = json.dumps(
            error_body(
                413, f"Request body exceeds {self.max_bytes} bytes.", code="request_too_large"
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
