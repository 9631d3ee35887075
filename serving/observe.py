"""Per-request observation at the edge: metrics, the structured request log, quota settlement.

Design: the ingress hands each upstream response to `observe()`, which returns a response to
send. A JSON body is read once to get `usage`. An SSE stream is wrapped, not buffered, and the
wrapper does four things:
- it timestamps the first chunk (TTFT) and the gaps between chunks (inter-token latency);
- it reads `usage` from the final chunk, which the ingress always asks vLLM for;
- it drops that chunk if the client did not ask for it;
- its `finally` runs when the stream ends, fails, or the client goes away (status 499), so every
  request is counted exactly once and the in-flight gauge cannot leak.

The log line is one JSON object per request: id, key id (never the key), route, tokens,
latencies, status. Prompt text is included only when `logging.log_prompts` is on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from serving.metrics import Metrics
from serving.routing import Route

log = logging.getLogger("serving.requests")
CLIENT_CLOSED = 499


@dataclass
class RequestRecord:
    request_id: str
    key_id: str
    route: Route
    base_id: str
    stream: bool
    estimate: int
    strip_usage: bool = False
    prompt: Any = None
    started: float = field(default_factory=time.monotonic)
    first_chunk: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: int = 200

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.base_id, self.route.adapter or "", self.route.variant)


def log_line(rec: RequestRecord, duration: float) -> str:
    line: dict[str, Any] = {
        "event": "request",
        "request_id": rec.request_id,
        "key_id": rec.key_id,
        "model": rec.route.model_id,
        "adapter": rec.route.adapter,
        "alias": rec.route.alias,
        "variant": rec.route.variant,
        "stream": rec.stream,
        "status": rec.status,
        "prompt_tokens": rec.prompt_tokens,
        "completion_tokens": rec.completion_tokens,
        "ttft_ms": round((rec.first_chunk - rec.started) * 1000, 1) if rec.first_chunk else None,
        "duration_ms": round(duration * 1000, 1),
    }
    if rec.prompt is not None:
        line["prompt"] = rec.prompt
    return json.dumps(line, ensure_ascii=False, default=str)


def configure_request_log() -> None:
    """Send request lines to the replica's stderr as bare JSON (Ray collects worker output)."""
    if not any(getattr(h, "_supportserve", False) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._supportserve = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


class Observer:
    def __init__(
        self, metrics: Metrics, *, log_requests: bool, settle: Callable[[str, int, int], None]
    ) -> None:
        self.metrics, self.log_requests, self._settle = metrics, log_requests, settle
        if log_requests:
            configure_request_log()
        self.active = 0  # requests begun and not yet finished (streams until their last chunk)

    def begin(self, rec: RequestRecord) -> None:
        self.active += 1
        self.metrics.in_flight.labels(*rec.labels).inc()

    def finish(self, rec: RequestRecord) -> None:
        self.active -= 1
        m, labels = self.metrics, rec.labels
        duration = time.monotonic() - rec.started
        m.in_flight.labels(*labels).dec()
        m.requests.labels(*labels, str(rec.status)).inc()
        m.duration.labels(*labels).observe(duration)
        if rec.prompt_tokens or rec.completion_tokens:
            m.prompt_tokens.labels(*labels).inc(rec.prompt_tokens)
            m.completion_tokens.labels(*labels).inc(rec.completion_tokens)
            self._settle(rec.key_id, rec.estimate, rec.prompt_tokens + rec.completion_tokens)
        if self.log_requests:
            log.info(log_line(rec, duration))

    def observe(self, rec: RequestRecord, response: Response) -> Response:
        headers = {"X-Model-Variant": rec.route.variant}  # Serve's proxy adds X-Request-ID
        if isinstance(response, StreamingResponse):
            return StreamingResponse(
                self._stream(rec, response.body_iterator),
                media_type="text/event-stream",
                headers=headers,
            )
        try:
            payload = json.loads(bytes(response.body))
            usage = payload.get("usage") or {}
            rec.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            rec.completion_tokens = int(usage.get("completion_tokens") or 0)
            rec.status = response.status_code
        finally:
            self.finish(rec)
        return JSONResponse(payload, status_code=response.status_code, headers=headers)

    async def _stream(self, rec: RequestRecord, chunks: AsyncIterable[Any]) -> AsyncIterator[str]:
        m, labels, last = self.metrics, rec.labels, None
        try:
            async for chunk in chunks:
                text = chunk.decode() if isinstance(chunk, bytes) else str(chunk)
                now = time.monotonic()
                if rec.first_chunk is None:
                    rec.first_chunk = now
                    m.ttft.labels(*labels).observe(now - rec.started)
                elif last is not None:
                    m.itl.labels(*labels).observe(now - last)
                last = now
                kept = [
                    e for e in text.split("\n\n") if e.strip() and not self._usage_event(rec, e)
                ]
                if kept:
                    yield "".join(e + "\n\n" for e in kept)
        except (GeneratorExit, asyncio.CancelledError):
            rec.status = CLIENT_CLOSED  # the client went away; Serve cancels the engine request
            raise
        except Exception:
            rec.status = 500
            raise
        finally:
            self.finish(rec)

    def _usage_event(self, rec: RequestRecord, event: str) -> bool:
        """Record usage from a final SSE event; True if the event should be dropped."""
        if event.startswith('data: {"error"'):
            rec.status = 500 if rec.status == 200 else rec.status
            return False
        if not event.startswith("data: {") or '"usage"' not in event:
            return False
        try:
            data = json.loads(event[len("data: ") :])
        except ValueError:
            return False
        usage = data.get("usage")
        if not usage:
            return False
        rec.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        rec.completion_tokens = int(usage.get("completion_tokens") or 0)
        return rec.strip_usage and not data.get("choices")
