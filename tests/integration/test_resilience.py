"""Slow tests, each on its own real server: autoscaling 1 -> 2 -> 1, graceful drain on SIGTERM,
and recovery after the vLLM engine process is killed. They print the measured times, which the
reliability scorecard (docs/reliability.md) collects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from tests.conftest import ROOT, start_server, stop_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MSG = [{"role": "user", "content": "Hello, I need help with my order."}]


def _auth(server):
    return {"Authorization": f"Bearer {server.keys[0]}"}


def _replicas(server, deployment: str = "LLMServer") -> int:
    """RUNNING replicas, from Serve's own status API, asked in-cluster via /admin/status (a new
    Ray driver per poll is slow to start while two engines load both cores)."""
    resp = httpx.get(f"{server.base_url}/admin/status", headers=_auth(server), timeout=60)
    assert resp.status_code == 200, resp.text
    app = resp.json()["supportserve"]
    dep = next(v for k, v in app["deployments"].items() if deployment in k)
    return int(dep["replicas"].get("RUNNING", 0))


def _load(server, stop: threading.Event, concurrency: int) -> None:
    def worker() -> None:
        while not stop.is_set():
            try:
                httpx.post(
                    f"{server.api}/chat/completions",
                    headers=_auth(server),
                    timeout=120,
                    json={"model": "base", "messages": MSG, "max_tokens": 128, "ignore_eos": True},
                )
            except httpx.HTTPError:
                time.sleep(0.5)

    for _ in range(concurrency):
        threading.Thread(target=worker, daemon=True).start()


def test_autoscaling_up_under_load_and_back_down(tmp_path, scorecard):
    srv = start_server(
        tmp_path,
        {
            "model": {"engine_kwargs": {"kv_cache_memory_bytes": 268435456}},
            "deployment": {
                "autoscaling": {
                    "min_replicas": 1,
                    "max_replicas": 2,
                    "target_ongoing_requests": 2,
                    "upscale_delay_s": 2,
                    "downscale_delay_s": 10,
                    "metrics_interval_s": 1,
                    "look_back_period_s": 4,
                }
            },
        },
    )
    try:
        assert _replicas(srv) == 1
        stop, t0 = threading.Event(), time.monotonic()
        _load(srv, stop, concurrency=8)
        while _replicas(srv) < 2:
            assert time.monotonic() - t0 < 300, "did not scale up within 300 s"
            time.sleep(2)
        up = time.monotonic() - t0
        stop.set()
        t1 = time.monotonic()
        while _replicas(srv) > 1:
            assert time.monotonic() - t1 < 240, "did not scale down within 240 s"
            time.sleep(2)
        down = time.monotonic() - t1
        scorecard(
            "autoscaling",
            scale_up_s=round(up, 1),
            scale_down_s=round(down, 1),
            target_ongoing_requests=2,
            clients=8,
        )
    finally:
        stop_server(srv.proc)


def test_sigterm_drains_in_flight_streams(tmp_path, scorecard):
    srv = start_server(tmp_path, {"deployment": {"graceful_shutdown_timeout_s": 120}})
    chunks: list[str] = []
    done = threading.Event()

    def stream() -> None:
        with httpx.stream(
            "POST",
            f"{srv.api}/chat/completions",
            headers=_auth(srv),
            timeout=180,
            json={
                "model": "base",
                "messages": MSG,
                "max_tokens": 150,
                "ignore_eos": True,
                "stream": True,
            },
        ) as resp:
            chunks.extend(resp.iter_lines())
        done.set()

    threading.Thread(target=stream, daemon=True).start()
    while len(chunks) < 3:
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    ready = None
    while time.monotonic() - t0 < 5:
        ready = httpx.get(f"{srv.base_url}/ready", timeout=5).status_code
        if ready == 503:
            ready_at = time.monotonic() - t0
            break
        time.sleep(0.1)
    assert ready == 503, "readiness did not turn false"
    refused = httpx.post(
        f"{srv.api}/chat/completions",
        headers=_auth(srv),
        timeout=30,
        json={"model": "base", "messages": MSG, "max_tokens": 1},
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "service_unavailable"
    assert done.wait(120), "in-flight stream did not finish"
    assert any(c.strip() == "data: [DONE]" for c in chunks[-3:]), chunks[-3:]
    finals = [c for c in chunks if '"finish_reason":"length"' in c.replace(" ", "")]
    assert finals, "stream was cut before its last token"
    srv.proc.wait(timeout=120)
    scorecard(
        "drain",
        readiness_off_s=round(ready_at, 2),
        refused_status=refused.status_code,
        stream_chunks=len(chunks),
        stream_completed=True,
        exit_s=round(time.monotonic() - t0, 1),
    )
    stop_server(srv.proc)


def _engine_core_pids(server) -> list[int]:
    """vLLM's engine processes under *this* server (other servers may run in the session)."""
    found = []
    for p in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            if "EngineCore" in p.name() or any("EngineCore" in c for c in p.cmdline()):
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


def test_engine_kill_recovers_and_nothing_hangs(tmp_path, scorecard):
    srv = start_server(
        tmp_path,
        {
            "deployment": {
                "health_check_period_s": 2,
                "health_check_timeout_s": 5,
                "first_response_timeout_s": 20,
            }
        },
    )
    try:
        pids = _engine_core_pids(srv)
        assert pids, "no vLLM EngineCore process found"
        for pid in pids:
            psutil.Process(pid).kill()
        t0, statuses, recovered = time.monotonic(), [], None
        while time.monotonic() - t0 < 120:
            start = time.monotonic()
            try:
                resp = httpx.post(
                    f"{srv.api}/chat/completions",
                    headers=_auth(srv),
                    timeout=30,
                    json={"model": "base", "messages": MSG, "max_tokens": 2},
                )
                statuses.append(resp.status_code)
                assert resp.status_code in (200, 503), resp.text
                if resp.status_code == 503:
                    assert resp.json()["error"]["type"] == "service_unavailable_error"
            except httpx.TimeoutException:
                pytest.fail(f"a request hung past its 30 s timeout after {start - t0:.0f} s")
            if statuses[-1] == 200:
                recovered = time.monotonic() - t0
                break
            time.sleep(1)
        # The test bounds recovery at 120 s (the loop); the 60 s target is judged in the
        # scorecard, so a loaded CI machine cannot turn a slow restart into a red build.
        assert recovered is not None, f"not back within 120 s: {statuses}"
        scorecard(
            "engine_kill",
            recovery_s=round(recovered, 1),
            requests=len(statuses),
            status_503=statuses.count(503),
            hung=0,
        )
    finally:
        stop_server(srv.proc)


def _children(server, *needles: str) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            text = p.name() + " " + " ".join(p.cmdline())
        except psutil.Error:
            continue
        if all(n in text for n in needles):
            found.append(p)
    return found


def _wait_dead(proc: psutil.Process, timeout: float = 10) -> None:
    """Not our child, so psutil cannot reap it: a zombie counts as dead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {proc.pid} still alive {timeout}s after SIGKILL")


def _ask(server, model: str, timeout: float = 60) -> int:
    return httpx.post(
        f"{server.api}/chat/completions",
        headers=_auth(server),
        timeout=timeout,
        json={"model": model, "messages": MSG, "max_tokens": 2},
    ).status_code


def test_store_outage_then_replica_kill(tmp_path, scorecard):
    srv = start_server(
        tmp_path, {"deployment": {"health_check_period_s": 2, "first_response_timeout_s": 30}}
    )
    try:
        assert _ask(srv, "base:support-v1") == 200  # loaded on the replica
        assert _ask(srv, "base") == 200
        (store,) = _children(srv, "serving", "store")
        store_port = srv.store_url.rsplit(":", 1)[1]
        store.kill()
        _wait_dead(store)
        time.sleep(1.5)  # past the catalog TTL: the next look-up hits the dead store
        during = {
            m: _ask(srv, m)
            for m in ("base", "base:support-v1", "base:support-triage-v1", "base:never-published")
        }
        assert during["base"] == 200 and during["base:support-v1"] == 200
        assert during["base:support-triage-v1"] == 503  # listed before, not loaded: store needed
        assert during["base:never-published"] == 503  # cannot tell missing from unreachable
        restarted = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                "store",
                "--port",
                store_port,
                "--root",
                str(tmp_path / "store"),
            ],
            cwd=ROOT,
            env=dict(os.environ),
            start_new_session=True,
        )
        try:
            t0 = time.monotonic()
            while _ask(srv, "base:support-triage-v1") != 200:
                assert time.monotonic() - t0 < 60, "adapter did not come back with the store"
                time.sleep(1)
            store_back = time.monotonic() - t0
            (replica,) = _children(srv, "ServeReplica", "LLMServer")
            replica.kill()
            t1, statuses = time.monotonic(), []
            while time.monotonic() - t1 < 150:
                try:
                    statuses.append(_ask(srv, "base", timeout=45))
                except httpx.TimeoutException:
                    pytest.fail("a request hung past its 45 s timeout after a replica kill")
                assert statuses[-1] in (200, 503)
                if statuses[-1] == 200 and time.monotonic() - t1 > 1:
                    break
                time.sleep(1)
            recovery = time.monotonic() - t1
            assert statuses[-1] == 200
            scorecard(
                "store_outage",
                during=during,
                adapter_back_after_store_restart_s=round(store_back, 1),
            )
            scorecard(
                "replica_kill",
                recovery_s=round(recovery, 1),
                requests=len(statuses),
                status_503=statuses.count(503),
            )
        finally:
            restarted.terminate()
    finally:
        stop_server(srv.proc)
