"""A bounded soak on the shared server: `SOAK_SECONDS` (600 by default) at 32 concurrent clients
over a mix of base, adapters and aliases, streamed and not. It records errors, p99 latency per
minute, and every server process's RSS after warm-up and at the end (growth must stay < 5%), and
it checks that no engine request is left behind when the load stops."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import defaultdict

import httpx
import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODELS = ["base", "base:support-v1", "base:support-triage-v1", "support", "ab-test"]
ROLES = {
    "ServeReplica:supportserve:OpenAiIngress": "ingress",
    "ServeReplica:supportserve:SupportLLMServer": "engine replica",
    "EngineCore": "vLLM EngineCore",
    "ProxyActor": "Serve proxy",
    "ServeController": "Serve controller",
    "raylet": "raylet",
    "gcs_server": "GCS",
}


def _processes(server) -> dict[str, psutil.Process]:
    found = {}
    for p in [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(True)]:
        try:
            text = p.name() + " " + " ".join(p.cmdline())
        except psutil.Error:
            continue
        for needle, role in ROLES.items():
            if needle in text and role not in found:
                found[role] = p
    return found


def _rss(procs: dict[str, psutil.Process]) -> dict[str, int]:
    return {role: p.memory_info().rss for role, p in procs.items()}


def test_soak(server, scorecard):
    seconds, clients = int(os.environ.get("SOAK_SECONDS", "600")), 32
    warmup = min(120.0, seconds * 0.2)
    stop, lock = threading.Event(), threading.Lock()
    latencies: dict[int, list[float]] = defaultdict(list)
    outcomes: dict[int, int] = defaultdict(int)
    t0 = time.monotonic()

    def client(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {server.keys[1]}"}) as h:
            while not stop.is_set():
                body = {
                    "model": rng.choice(MODELS),
                    "max_tokens": rng.choice([8, 16, 32]),
                    "messages": [
                        {
                            "role": "user",
                            "content": f"Order {rng.randint(1, 9999)} "
                            "has not arrived, can you help?",
                        }
                    ],
                    "user": f"soak-{i}",
                }
                start = time.monotonic()
                try:
                    if rng.random() < 0.5:
                        with h.stream(
                            "POST", f"{server.api}/chat/completions", json={**body, "stream": True}
                        ) as resp:
                            status = resp.status_code
                            for _ in resp.iter_lines():
                                pass
                    else:
                        status = h.post(f"{server.api}/chat/completions", json=body).status_code
                except httpx.HTTPError:
                    status = -1
                with lock:
                    minute = int((start - t0) // 60)
                    latencies[minute].append(time.monotonic() - start)
                    outcomes[status] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    procs = _processes(server)
    before = _rss(procs)
    time.sleep(max(0.0, seconds - warmup))
    after = _rss(procs)
    stop.set()
    for t in threads:
        t.join(timeout=150)
    time.sleep(2)
    leaked = httpx.get(
        f"{server.base_url}/admin/engine",
        timeout=10,
        headers={"Authorization": f"Bearer {server.keys[0]}"},
    ).json()["unfinished"]
    p99 = {m: round(sorted(v)[int(0.99 * (len(v) - 1))], 3) for m, v in sorted(latencies.items())}
    growth = {r: round(after[r] / before[r] - 1, 4) for r in before}
    errors = sum(n for s, n in outcomes.items() if s != 200)
    scorecard(
        "soak",
        seconds=seconds,
        clients=clients,
        requests=sum(outcomes.values()),
        errors=errors,
        statuses=dict(outcomes),
        p99_latency_s_by_minute=p99,
        rss_mb_after_warmup={r: round(v / 2**20, 1) for r, v in before.items()},
        rss_mb_end={r: round(v / 2**20, 1) for r, v in after.items()},
        rss_growth=growth,
        leaked_engine_requests=leaked,
    )
    assert errors == 0, dict(outcomes)
    assert leaked == 0
    assert all(g < 0.05 for g in growth.values()), growth
