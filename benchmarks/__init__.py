"""Benchmarks: our server against its baselines, same model, same load, same run.

    python -m benchmarks sweep --targets ours,vllm,vllm-lora,ray,naive --rounds 2 ...
    python -m benchmarks report benchmarks/results/<run> --out docs/benchmarks

Design:
- `targets.py` knows how to start and stop each server on the same model and engine args.
- `sweep.py` interleaves the targets round by round (A B C, then C B A) so that machine drift
  hits every target alike, and drives each (scenario, load) cell with headless Locust.
- `locustfile.py` is a streaming OpenAI client. Each request becomes one JSON line (TTFT, TPOT,
  E2E, inter-token latencies, token counts from the final `usage` chunk). The report computes
  exact percentiles from those lines, not from Locust's bucketed histograms.
- `report.py` turns a run folder into CSV, JSON, Markdown and PNG plots, with ratios computed
  only between targets measured in the same run.

This module holds the measurement contract shared by the load generator and the report, so
that both sides use one definition of each number. It must not import Locust (`import locust`
monkey-patches the whole process with gevent).

Per request (locustfile): SSE parsing; TTFT = request start to the first chunk with non-empty
`delta.content`; inter-token latencies between content chunks; E2E; output tokens from the final
`usage` chunk; TPOT = (E2E - TTFT) / (completion_tokens - 1), undefined for <= 1 token. A stream
is an error if the server sent an error event, or if it ended without `[DONE]` or without usage.

Per cell (report):
- Window: from Locust's test start + warmup to the moment Locust started stopping (`meta` lines
  in the records). Requests that *start* inside it are "measured"; latency percentiles are exact
  (linear interpolation between order statistics) over the measured successful requests.
- Output tok/s: tokens produced inside the window over its length. A successful request's
  `completion_tokens` are placed at its first token and spread evenly up to its end, so requests
  that straddle an edge count only for their share inside. (Locust's stop timeout lets the
  in-flight requests finish, so they are recorded.)
- req/s: successful measured requests over the window. Goodput: measured requests with
  TTFT <= SLO and TPOT <= SLO (TPOT unchecked when undefined); errors count against it.
- Pooled rows over rounds: measured requests of all rounds together, window lengths summed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DONE = "[DONE]"


def percentile(values: Sequence[float], q: float) -> float | None:
    """Exact percentile with linear interpolation between order statistics (numpy's default)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def tpot(e2e: float | None, ttft: float | None, completion_tokens: int | None) -> float | None:
    """Time per output token after the first: (E2E - TTFT) / (completion_tokens - 1).

    Undefined (None) when there is no first token or fewer than two output tokens."""
    if e2e is None or ttft is None or completion_tokens is None or completion_tokens <= 1:
        return None
    return (e2e - ttft) / (completion_tokens - 1)


def parse_sse_line(line: str | bytes) -> dict[str, Any] | str | None:
    """One line of a `text/event-stream` body: the JSON event, DONE, or None for anything else
    (blank separators, comments, `event:`/`id:` fields). Unparseable data becomes an error
    event so that it is counted, not silently dropped."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == DONE:
        return DONE
    try:
        event = json.loads(payload)
    except ValueError:
        return {"error": {"message": f"unparseable SSE data: {payload[:200]}"}}
    return event if isinstance(event, dict) else {"error": {"message": "SSE data is not a dict"}}


def _error_message(event: dict[str, Any]) -> str | None:
    err = event.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    if err:
        return str(err)
    if event.get("object") == "error":  # older vLLM stream errors
        return str(event.get("message") or event)
    return None


@dataclass
class StreamMetrics:
    """Accumulates one streamed chat completion. Times are `time.perf_counter()` seconds."""

    start: float
    first: float | None = None
    last: float | None = None
    itls: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    content_chunks: int = 0
    served_model: str | None = None  # the variant that answered (A/B aliases)
    done: bool = False
    error: str | None = None

    def on_event(self, event: dict[str, Any] | str, now: float) -> None:
        if event == DONE:
            self.done = True
            return
        assert isinstance(event, dict)
        if (message := _error_message(event)) is not None:
            self.error = self.error or message
            return
        self.served_model = self.served_model or event.get("model")
        if usage := event.get("usage"):
            self.prompt_tokens = usage.get("prompt_tokens")
            self.completion_tokens = usage.get("completion_tokens")
        for choice in event.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                self._content(now)
                break

    def _content(self, now: float) -> None:
        if self.first is None:
            self.first = now
        else:
            assert self.last is not None
            self.itls.append(now - self.last)
        self.last = now
        self.content_chunks += 1

    def finish(self, now: float) -> dict[str, Any]:
        """The per-request result. A stream is an error if the server sent an error event, or
        if it ended without `[DONE]` or without a usage chunk (the token counts come from it)."""
        error = self.error
        if error is None and not self.done:
            error = "stream ended without [DONE]"
        if error is None and self.completion_tokens is None:
            error = "no usage chunk (stream_options.include_usage ignored?)"
        e2e = now - self.start
        ttft = None if self.first is None else self.first - self.start
        return {
            "ttft": ttft,
            "tpot": None if error else tpot(e2e, ttft, self.completion_tokens),
            "e2e": e2e,
            "itl": summarize_itl(self.itls),
            "content_chunks": self.content_chunks,
            "served_model": self.served_model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "error": error,
        }


def summarize_itl(itls: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(itls),
        "mean": sum(itls) / len(itls) if itls else None,
        "p50": percentile(itls, 50),
        "p99": percentile(itls, 99),
    }


def prompt_of(conversation: dict[str, Any]) -> list[dict[str, str]] | None:
    """The conversation up to (not including) its last assistant message; None if it has none
    or if nothing precedes it."""
    messages = conversation.get("messages") or []
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if not last:
        return None
    return [{"role": m["role"], "content": m["content"]} for m in messages[:last]]


def load_prompts(path: str | Path) -> list[list[dict[str, str]]]:
    prompts = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and (prompt := prompt_of(json.loads(line))):
                prompts.append(prompt)
    if not prompts:
        raise ValueError(f"{path}: no conversation with an assistant turn to use as a prompt")
    return prompts


def chat_body(
    model: str,
    messages: list[dict[str, str]],
    *,
    output: str,
    max_tokens: int,
    user: str,
    temperature: float = 0.0,
) -> dict[str, Any]:
    """The request every target gets. `fixed` forces exactly `max_tokens` output tokens."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": temperature,
        "user": user,
    }
    if output == "fixed":
        body.update(ignore_eos=True, min_tokens=max_tokens)
    elif output != "natural":
        raise ValueError(f"BENCH_OUTPUT must be fixed or natural, not {output!r}")
    return body


# ---------------------------------------------------------------- per-window aggregates


def window(meta: dict[str, list[float]], info: dict[str, Any]) -> tuple[float, float] | None:
    if not meta.get("test_start"):
        return None
    start = min(meta["test_start"]) + info["warmup_s"]
    nominal = start + info["duration_s"]
    end = max(meta["test_stopping"]) if meta.get("test_stopping") else nominal
    return start, max(start, end)


def tokens_in_window(r: dict[str, Any], ws: float, we: float) -> float:
    n = r.get("completion_tokens") or 0
    if r.get("error") or n <= 0 or r.get("ttft") is None:
        return 0.0
    t1, t2 = r["start"] + r["ttft"], r["start"] + r["e2e"]
    first = 1.0 if ws <= t1 < we else 0.0
    if n == 1 or t2 <= t1:
        return first
    return first + (n - 1) * max(0.0, min(t2, we) - max(t1, ws)) / (t2 - t1)


def meets_slo(r: dict[str, Any], slo: dict[str, float]) -> bool:
    if r.get("error") or r.get("ttft") is None or r["ttft"] * 1000 > slo["ttft_ms"]:
        return False
    return r.get("tpot") is None or r["tpot"] * 1000 <= slo["tpot_ms"]


Part = tuple[list[dict[str, Any]], float, float]  # (records, window start, window end)


def summarize(parts: list[Part], slo: dict[str, float]) -> dict[str, Any]:
    measured = [r for reqs, ws, we in parts for r in reqs if ws <= r["start"] < we]
    ok = [r for r in measured if not r.get("error")]
    secs = sum(we - ws for _, ws, we in parts)
    tokens = sum(tokens_in_window(r, ws, we) for reqs, ws, we in parts for r in reqs)
    good = sum(meets_slo(r, slo) for r in measured)

    def per_s(x: float) -> float | None:
        return x / secs if secs > 0 else None

    row: dict[str, Any] = {
        "requests": len(measured),
        "errors": len(measured) - len(ok),
        "seconds": secs,
        "output_tok_s": per_s(tokens),
        "req_s": per_s(len(ok)),
        "goodput_frac": good / len(measured) if measured else None,
        "goodput_req_s": per_s(good),
        "error_examples": " | ".join(
            sorted({r["error"][:120] for r in measured if r.get("error")})[:3]
        ),
    }
    for name, qs in (("ttft", (50, 90, 99)), ("tpot", (50, 90, 99)), ("e2e", (50, 99))):
        xs = [r[name] * 1000 for r in ok if r.get(name) is not None]
        row.update({f"{name}_ms_p{q}": percentile(xs, q) for q in qs})
    return row


def spread_pct(values: list[float]) -> float | None:
    """(max - min) / mean, in percent; None for fewer than two values."""
    if len(values) < 2 or not sum(values):
        return None
    return (max(values) - min(values)) / (sum(values) / len(values)) * 100
