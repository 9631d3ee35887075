"""Locust user: streamed OpenAI chat completions, measured per token.

    BENCH_MODELS=base,base:support-v1 locust -f benchmarks/locustfile.py --headless \\
        -u 4 -r 4 --run-time 35s --stop-timeout 120 --host http://127.0.0.1:8000

Each request POSTs /v1/chat/completions with `stream: true` and
`stream_options: {include_usage: true}`, reads the SSE body line by line, and measures:
- TTFT: request start to the first chunk with non-empty `delta.content`;
- inter-token latencies: between consecutive content chunks (a chunk may carry several tokens
  when a server batches its stream; the ITLs show that, TPOT does not);
- E2E: request start to the end of the body;
- output tokens: `usage.completion_tokens` of the final chunk, never a chunk count;
- TPOT = (E2E - TTFT) / (completion_tokens - 1), undefined for one token or fewer.

It fires custom Locust events per request, named by model, so the UI/CSV show them: request
types TTFT, TPOT (ms per token) and E2E (response_length = output tokens; failures are E2E
rows). Locust's "Aggregated" row therefore mixes the three: read the per-type rows. Every request
is also one JSON line in BENCH_RECORDS ("{pid}" is replaced by the process id), with the test's
start/stop times as "meta" lines; report.py computes exact percentiles and the measurement window
from those lines.

Environment: BENCH_PROMPTS (chat JSONL; each prompt is a conversation up to its last assistant
turn), BENCH_MODELS (comma list, one picked uniformly per request), BENCH_OUTPUT=fixed|natural,
BENCH_MAX_TOKENS (64), BENCH_RATE (requests/s in total; unset = fixed concurrency),
BENCH_API_KEY, BENCH_RECORDS, BENCH_SEED, BENCH_TEMPERATURE (0), BENCH_WARMUP_S and
BENCH_DURATION_S (only copied into the meta line).

Load modes. Fixed concurrency: `-u C` users, no wait between requests. Poisson: with BENCH_RATE,
each of the N users waits `expovariate(rate / N)` after each response. That is a closed loop with
exponential think time, an approximation of open-loop Poisson arrivals: once responses take a
noticeable share of the think time, the offered rate falls below BENCH_RATE. The report shows the
achieved req/s next to the nominal rate. Each user draws its prompts, models and waits from its
own seeded generator, so every target sees the same request sequence per user.

Streaming reads use geventhttpclient's `readline(b"\\n")` on FastHttpUser's raw response: its
public `iter_content(n)` waits for n bytes, which would delay and merge chunks.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from locust import FastHttpUser, events, task

from benchmarks import StreamMetrics, chat_body, load_prompts, parse_sse_line

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Settings:
    prompts: str
    models: tuple[str, ...]
    output: str
    max_tokens: int
    rate: float | None
    api_key: str
    records: str | None
    seed: str
    temperature: float
    warmup_s: float | None
    duration_s: float | None

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str] = os.environ) -> Settings:
        def num(name: str) -> float | None:
            return float(env[name]) if env.get(name) else None

        models = tuple(m.strip() for m in env.get("BENCH_MODELS", "base").split(",") if m.strip())
        return cls(
            prompts=env.get("BENCH_PROMPTS", "data/datasets/support/test.jsonl"),
            models=models or ("base",),
            output=env.get("BENCH_OUTPUT", "fixed"),
            max_tokens=int(env.get("BENCH_MAX_TOKENS", "64")),
            rate=num("BENCH_RATE"),
            api_key=env.get("BENCH_API_KEY", "unused"),
            records=env.get("BENCH_RECORDS") or None,
            seed=env.get("BENCH_SEED", "0"),
            temperature=float(env.get("BENCH_TEMPERATURE", "0")),
            warmup_s=num("BENCH_WARMUP_S"),
            duration_s=num("BENCH_DURATION_S"),
        )


class Records:
    """Append-only JSON lines, one file per process, line-buffered (gevent: one writer)."""

    def __init__(self, path: str | None) -> None:
        self.path = path.replace("{pid}", str(os.getpid())) if path else None
        self._fh: Any = None

    def write(self, obj: dict[str, Any]) -> None:
        if self.path is None:
            return
        if self._fh is None:
            self._fh = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._fh.write(json.dumps(obj) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


SETTINGS = Settings.from_env()
PROMPTS = load_prompts(SETTINGS.prompts)
RECORDS = Records(SETTINGS.records)
_USER_IDS = itertools.count()


def _users(environment: Any) -> int | None:
    opts = getattr(environment, "parsed_options", None)
    return getattr(opts, "num_users", None)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    RECORDS.write(
        {
            "kind": "meta",
            "event": "test_start",
            "t": time.time(),
            "users": _users(environment),
            "settings": {**SETTINGS.__dict__, "api_key": "<redacted>"},
        }
    )


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    RECORDS.write({"kind": "meta", "event": "test_stopping", "t": time.time()})


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    RECORDS.write({"kind": "meta", "event": "test_stop", "t": time.time()})
    RECORDS.close()


def _lines(resp: Any) -> Iterator[bytes]:
    readline = getattr(getattr(resp, "_response", None), "readline", None)
    if readline is None:
        raise RuntimeError("FastHttpUser's raw response has no readline(); locust changed?")
    while line := readline(b"\n"):
        yield line


def _release(resp: Any) -> None:
    """Give the connection back only if its response was read to the end; else close it, so
    a half-read body never leaks into the next request on the same keep-alive connection."""
    raw = getattr(resp, "_response", None)
    if raw is None:
        return
    try:
        if getattr(raw, "message_complete", True):
            raw.release()
        elif (pool := getattr(raw, "_pool", None)) and (sock := getattr(raw, "_sock", None)):
            pool.release_socket(sock)  # closes the socket
            raw._sock = raw._pool = None
    except Exception:  # noqa: S110 - best effort on a connection we are abandoning
        pass


def _status(resp: Any) -> int:
    """0 for a connection error: locust then wraps an ErrorResponse with no raw response."""
    try:
        return int(resp.status_code or 0)
    except Exception:
        return 0


def _error_text(resp: Any, status: int) -> str:
    if status == 0:
        return f"connection error: {getattr(resp, 'error', None)!r}"
    try:
        text = resp.text or ""
    except Exception as exc:
        text = f"<body unreadable: {exc!r}>"
    return f"HTTP {status}: {text[:300]}"


class ChatUser(FastHttpUser):
    network_timeout = 600.0  # a queued request on the naive server waits for all before it
    connection_timeout = 60.0

    def on_start(self) -> None:
        index = next(_USER_IDS)
        self.user_id = f"bench-user-{index}"
        self.rng = random.Random(f"{SETTINGS.seed}-{index}")
        self.headers = {
            "Authorization": f"Bearer {SETTINGS.api_key}",
            "Accept": "text/event-stream",
            "Accept-Encoding": "identity",
        }

    def wait_time(self) -> float:
        if SETTINGS.rate is None:
            return 0.0
        users = _users(self.environment) or self.environment.runner.user_count or 1
        return self.rng.expovariate(SETTINGS.rate / users)

    @task
    def chat(self) -> None:
        model = self.rng.choice(SETTINGS.models)
        body = chat_body(
            model,
            self.rng.choice(PROMPTS),
            output=SETTINGS.output,
            max_tokens=SETTINGS.max_tokens,
            user=self.user_id,
            temperature=SETTINGS.temperature,
        )
        wall, metrics = time.time(), StreamMetrics(start=time.perf_counter())
        status, resp = 0, None
        try:
            resp = self.client.post(
                PATH, json=body, headers=self.headers, stream=True, catch_response=True
            )
            status = _status(resp)
            if status != 200:
                metrics.error = _error_text(resp, status)
            else:
                for line in _lines(resp):
                    if (event := parse_sse_line(line)) is not None:
                        metrics.on_event(event, time.perf_counter())
        except Exception as exc:  # socket errors, timeouts; GreenletExit is not an Exception
            metrics.error = metrics.error or f"{type(exc).__name__}: {exc}"
        finally:
            _release(resp)
        self._report(model, wall, status, metrics.finish(time.perf_counter()))

    def _report(self, model: str, wall: float, status: int, result: dict[str, Any]) -> None:
        def fire(kind: str, seconds: float, length: int = 0, exc: Exception | None = None) -> None:
            self.environment.events.request.fire(
                request_type=kind,
                name=model,
                response_time=seconds * 1000.0,
                response_length=length,
                exception=exc,
                context={},
            )

        if result["error"]:
            fire("E2E", result["e2e"], exc=RuntimeError(result["error"][:300]))
        else:
            if result["ttft"] is not None:
                fire("TTFT", result["ttft"])
            if result["tpot"] is not None:
                fire("TPOT", result["tpot"])
            fire("E2E", result["e2e"], result["completion_tokens"] or 0)
        RECORDS.write(
            {
                "kind": "request",
                "start": wall,
                "model": model,
                "user": self.user_id,
                "status": status,
                **result,
            }
        )
