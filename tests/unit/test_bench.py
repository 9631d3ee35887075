"""Benchmark harness: the pure logic (parsing, arithmetic, statistics, planning, reporting).

No server is started. The locustfile itself is not imported: `import locust` monkey-patches the
process with gevent, so everything it computes lives in `benchmarks/__init__.py`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from benchmarks import (
    DONE,
    StreamMetrics,
    chat_body,
    meets_slo,
    parse_sse_line,
    percentile,
    prompt_of,
    report,
    spread_pct,
    summarize,
    sweep,
    targets,
    tokens_in_window,
    tpot,
)
from benchmarks.naive_server import generation_params

SLO = {"ttft_ms": 500.0, "tpot_ms": 100.0}


def feed(lines: list[tuple[float, str]]) -> dict:
    """Run a scripted (time, line) stream through the parser; the request started at t=0."""
    m = StreamMetrics(start=0.0)
    end = 0.0
    for t, line in lines:
        if (event := parse_sse_line(line.encode())) is not None:
            m.on_event(event, t)
        end = t
    return m.finish(end + 0.01)


def chunk(content: str | None = None, **extra: object) -> str:
    delta = {} if content is None else {"content": content}
    return "data: " + json.dumps({"model": "base", "choices": [{"delta": delta}], **extra})


USAGE = "data: " + json.dumps(
    {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}
)


def test_sse_stream_gives_ttft_itl_and_tokens_from_usage() -> None:
    result = feed(
        [
            (0.05, ": keep-alive comment"),
            (0.10, 'data: {"choices": [{"delta": {"role": "assistant", "content": ""}}]}'),
            (0.20, chunk("Hel")),
            (0.21, ""),
            (0.30, chunk("lo")),
            (0.50, chunk("!")),
            (0.55, chunk(None, finish_reason="length")),
            (0.56, "event: ignored"),
            (0.58, USAGE),
            (0.59, "data: [DONE]"),
        ]
    )
    assert result["error"] is None
    assert result["ttft"] == pytest.approx(0.20)  # the empty role chunk does not count
    assert result["content_chunks"] == 3
    assert result["completion_tokens"] == 5  # from usage, not the 3 chunks
    assert result["prompt_tokens"] == 12
    assert result["itl"]["n"] == 2
    assert result["itl"]["mean"] == pytest.approx(0.15)
    assert result["e2e"] == pytest.approx(0.60)
    assert result["tpot"] == pytest.approx((0.60 - 0.20) / 4)
    assert result["served_model"] == "base"


def test_error_event_and_truncated_streams_are_errors() -> None:
    err = feed([(0.1, chunk("a")), (0.2, 'data: {"error": {"message": "boom"}}'), (0.3, DONE)])
    assert err["error"] == "boom" and err["tpot"] is None
    old = feed([(0.1, 'data: {"object": "error", "message": "old style"}')])
    assert old["error"] == "old style"
    assert feed([(0.1, chunk("a")), (0.2, USAGE)])["error"] == "stream ended without [DONE]"
    assert "no usage" in feed([(0.1, chunk("a")), (0.2, "data: [DONE]")])["error"]
    assert "unparseable" in feed([(0.1, "data: {not json"), (0.2, "data: [DONE]")])["error"]


def test_parse_sse_line_variants() -> None:
    assert parse_sse_line(b"data: [DONE]\n") == DONE
    assert parse_sse_line('data:{"a": 1}\r\n') == {"a": 1}
    assert parse_sse_line("\n") is None
    assert parse_sse_line(": ping") is None


def test_tpot_arithmetic() -> None:
    assert tpot(2.0, 0.5, 16) == pytest.approx(0.1)
    assert tpot(2.0, 0.5, 2) == pytest.approx(1.5)
    assert tpot(2.0, 0.5, 1) is None
    assert tpot(2.0, 0.5, 0) is None
    assert tpot(2.0, None, 10) is None
    assert tpot(2.0, 0.5, None) is None


def test_percentile_matches_numpy_linear() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    xs = [rng.expovariate(1.0) for _ in range(257)]
    for q in (0, 1, 50, 90, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0


def rec(start: float, ttft: float, e2e: float, n: int = 10, error: str | None = None) -> dict:
    return {
        "kind": "request",
        "start": start,
        "ttft": ttft,
        "e2e": e2e,
        "tpot": tpot(e2e, ttft, n) if not error else None,
        "completion_tokens": None if error else n,
        "error": error,
    }


def test_tokens_are_counted_only_inside_the_window() -> None:
    inside = rec(12.0, 1.0, 2.0, n=11)  # tokens from 13.0 to 14.0
    assert tokens_in_window(inside, 10.0, 20.0) == pytest.approx(11)
    straddle = rec(18.0, 1.0, 5.0, n=5)  # first token 19.0, last 23.0: 1 + 4 * (1/4)
    assert tokens_in_window(straddle, 10.0, 20.0) == pytest.approx(2.0)
    before = rec(7.0, 1.0, 5.0, n=5)  # first token at 8.0 (outside), 4 more over 8..12: half in
    assert tokens_in_window(before, 10.0, 20.0) == pytest.approx(2.0)
    assert tokens_in_window(rec(12.0, 1.0, 2.0, error="x"), 10.0, 20.0) == 0.0


def test_summarize_percentiles_goodput_and_errors() -> None:
    # 10 s window [100, 110): 8 measured requests, one error, one outside the window.
    reqs = [rec(100.0 + i, 0.1 * (i + 1), 0.1 * (i + 1) + 0.72, n=10) for i in range(7)]
    reqs.append(rec(108.0, 0.2, 0.3, error="HTTP 503"))
    reqs.append(rec(95.0, 0.1, 1.0))  # starts before the window: not measured
    row = summarize([(reqs, 100.0, 110.0)], SLO)
    assert (row["requests"], row["errors"]) == (8, 1)
    ttfts = [100.0 * (i + 1) for i in range(7)]
    assert row["ttft_ms_p50"] == pytest.approx(percentile(ttfts, 50))
    assert row["ttft_ms_p99"] == pytest.approx(percentile(ttfts, 99))
    assert row["tpot_ms_p50"] == pytest.approx(80.0)
    # TTFT <= 500 ms for the first five; TPOT is 80 ms for all: 5 good of 8 measured.
    assert row["goodput_frac"] == pytest.approx(5 / 8)
    assert row["goodput_req_s"] == pytest.approx(0.5)
    assert row["req_s"] == pytest.approx(0.7)
    assert row["output_tok_s"] == pytest.approx(7.0)  # 70 in-window tokens / 10 s
    assert "HTTP 503" in row["error_examples"]


def test_meets_slo_rules() -> None:
    assert meets_slo(rec(0, 0.5, 1.39, n=10), SLO)  # TTFT 500 ms (on the line), TPOT 99 ms
    assert not meets_slo(rec(0, 0.6, 1.5, n=10), SLO)
    assert not meets_slo(rec(0, 0.1, 2.0, n=10), SLO)  # TPOT 211 ms
    assert meets_slo(rec(0, 0.1, 0.2, n=1), SLO)  # TPOT undefined: only TTFT counts
    assert not meets_slo(rec(0, 0.1, 0.2, error="x"), SLO)


def test_spread() -> None:
    assert spread_pct([90.0, 110.0]) == pytest.approx(20.0)
    assert spread_pct([100.0]) is None


def pooled(**cells: dict) -> report.Pooled:
    """Keys like ours__base__c16 -> the pooled index the report uses."""
    return {tuple(k.split("__")): v for k, v in cells.items()}  # type: ignore[misc]


def test_ratios_and_fixed_targets() -> None:
    p = pooled(
        ours__base__c1={"output_tok_s": 14.0, "ttft_ms_p50": 160.0, "tpot_ms_p50": 50.0},
        vllm__base__c1={"output_tok_s": 15.0, "ttft_ms_p50": 150.0, "tpot_ms_p50": 48.0},
        ours__base__c16={"output_tok_s": 96.0},
        vllm__base__c16={"output_tok_s": 100.0},
        naive__base__c16={"output_tok_s": 12.0},
        ours__mix4__c16={"output_tok_s": 70.0},
    )
    by_name = {(r["comparison"], r["c"]): r["value"] for r in report.ratios(p)}
    assert by_name[("output tok/s ours / vllm (base)", 16)] == pytest.approx(0.96)
    assert by_name[("output tok/s ours / naive (base)", 16)] == pytest.approx(8.0)
    assert by_name[("output tok/s ours: mix4 / base", 16)] == pytest.approx(70 / 96)
    assert by_name[("TTFT p50 ours - vllm (base)", 1)] == pytest.approx(10.0)
    assert ("output tok/s ours / vllm-lora (base)", 16) not in by_name  # no data, no row
    checks = {c["check"]: c for c in report.evaluate(p, ceiling=46.0)}
    assert checks["ours / vllm (bare) output tok/s"]["status"] == "pass"
    assert checks["TTFT p50 overhead ours - vllm (ms)"]["status"] == "pass"
    assert checks["ours / naive output tok/s"]["status"] == "pass"
    mix = checks["ours mix4 / base output tok/s"]
    assert mix["status"] == "miss" and mix["value"] == pytest.approx(70 / 96)
    decode = checks["ours batch-1 decode / bandwidth ceiling"]
    assert decode["value"] == pytest.approx(20.0 / 46.0) and decode["status"] == "miss"
    assert report.evaluate(pooled(), None)[0]["status"] == "n/a"


def test_scenarios_apply_only_where_models_are_offered() -> None:
    assert targets.applies("naive", "base") and not targets.applies("naive", "adapter")
    assert targets.applies("vllm", "base") and not targets.applies("vllm", "mix4")
    assert targets.applies("ray", "base") and not targets.applies("ray", "adapter")
    assert targets.applies("vllm-lora", "mix4") and not targets.applies("vllm-lora", "ab")
    assert all(targets.applies("ours", s) for s in targets.SCENARIOS)
    assert len(set(targets.SCENARIOS["mix4"])) == 4


def test_plan_interleaves_rounds_and_skips_inapplicable_cells() -> None:
    assert sweep.round_order(["a", "b", "c"], 1) == ["a", "b", "c"]
    assert sweep.round_order(["a", "b", "c"], 2) == ["c", "b", "a"]
    args = Namespace(
        targets=["ours", "naive"],
        scenarios=["base", "mix4", "ab"],
        concurrency=[1, 16],
        rates=[2.0],
        rate_users=8,
        rounds=2,
    )
    steps = sweep.plan(args)
    assert [(r, t) for r, t, _ in steps] == [(1, "ours"), (1, "naive"), (2, "naive"), (2, "ours")]
    naive_cells = steps[1][2]
    assert {c.scenario for c in naive_cells} == {"base"}
    assert [c.label for c in naive_cells] == ["c1", "c16", "r2"]
    assert len(steps[0][2]) == 9  # ours: 3 scenarios x 3 loads


def test_target_commands_share_model_and_engine_args(tmp_path: Path) -> None:
    vllm = targets.build("vllm-lora", tmp_path / "v")
    cmd = " ".join(vllm.command)
    for flag in ("--dtype float32", "--max-model-len 2048", "--kv-cache-memory-bytes 1073741824"):
        assert flag in cmd
    assert "--enforce-eager" in cmd and "--enable-lora" in cmd
    assert f"base:support-v1-c={targets.adapter_dir('support-v1-c')}" in vllm.command
    assert "--enable-lora" not in targets.build("vllm", tmp_path / "b").command

    ours = targets.build("ours", tmp_path / "o")
    assert ours.ready_path == "/ready" and ours.env["API_KEYS"] == targets.API_KEY
    assert sum(a == "--seed" for a in ours.command) == 4
    from serving.config import ServingConfig

    cfg = ServingConfig.from_yaml(tmp_path / "o" / "serving.yaml")  # the product accepts it
    assert cfg.model.dtype == "float32" and cfg.model.max_model_len == 2048
    assert cfg.model.engine_kwargs == {"kv_cache_memory_bytes": 1 << 30, "enforce_eager": True}
    assert cfg.aliases == {"support-ab": {"support-v1": 50, "support-v1-b": 50}}
    assert cfg.lora.max_adapters_per_replica == 4 and cfg.lora.max_lora_rank == 16
    assert str(cfg.http.port) in ours.url


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    code = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    t = targets.Target("t", [], {}, "http://x", "/", frozenset(), tmp_path / "log")
    t.proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    assert t.proc.stdout is not None
    child = int(t.proc.stdout.readline())
    t.stop(grace_s=2)
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()


def test_prompt_and_request_body() -> None:
    conv = {
        "messages": [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "a2"},
        ]
    }
    assert [m["content"] for m in prompt_of(conv) or []] == ["q1", "a1", "q2"]
    assert prompt_of({"messages": [{"role": "assistant", "content": "hi"}]}) is None
    fixed = chat_body("base", [], output="fixed", max_tokens=32, user="u1")
    assert fixed["ignore_eos"] and fixed["min_tokens"] == fixed["max_tokens"] == 32
    assert fixed["stream_options"] == {"include_usage": True} and fixed["user"] == "u1"
    natural = chat_body("base", [], output="natural", max_tokens=32, user="u1")
    assert "ignore_eos" not in natural and "min_tokens" not in natural
    with pytest.raises(ValueError):
        chat_body("base", [], output="other", max_tokens=1, user="u")


def test_naive_server_generation_params() -> None:
    p = generation_params({"max_tokens": 64, "ignore_eos": True, "temperature": 0})
    assert p == {"max_new_tokens": 64, "min_new_tokens": 64, "do_sample": False}
    p = generation_params({"max_tokens": 8, "min_tokens": 3, "temperature": 0.7})
    assert p["min_new_tokens"] == 3 and p["do_sample"] and p["temperature"] == 0.7


def write_cell(run: Path, target: str, scenario: str, users: int, rnd: int, tok_s: float) -> None:
    """One synthetic cell: 20 s window, requests every second, 16 tokens each."""
    folder = run / "cells" / target / f"r{rnd}" / scenario / f"c{users}"
    folder.mkdir(parents=True)
    info = {"target": target, "round": rnd, "scenario": scenario, "users": users, "rate": None}
    info |= {"label": f"c{users}", "warmup_s": 5, "duration_s": 20, "status": "ok"}
    (folder / "run.json").write_text(json.dumps(info))
    t0 = 1000.0
    lines = [{"kind": "meta", "event": "test_start", "t": t0}]
    e2e = 16 / tok_s * users  # each of `users` streams gets tok_s / users tokens per second
    for i in range(int(25 * tok_s / 16)):  # steady state from the start of the test
        lines.append(rec(t0 + i * 16 / tok_s, 0.15, 0.15 + e2e, n=16))
    lines.append({"kind": "meta", "event": "test_stopping", "t": t0 + 25})
    (folder / "records-1.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_report_renders_from_a_tiny_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    speeds = {"ours": 90.0, "vllm": 100.0, "naive": 12.0}
    for rnd in (1, 2):
        for target, speed in speeds.items():
            for users in (1, 16):
                tok_s = speed * (rnd == 1 and 1.0 or 1.02) * (1 if users == 16 else 0.16)
                write_cell(run, target, "base", users, rnd, tok_s)
        write_cell(run, "ours", "mix4", 16, rnd, 72.0)
    manifest = {
        "command": "python -m benchmarks sweep --rounds 2",
        "started": "2026-01-01T00:00:00",
        "status": "complete",
        "targets": list(speeds),
        "scenarios": {"base": ["base"], "mix4": ["base:a", "base:b"]},
        "rounds": 2,
        "weights_bytes": 538_090_408,
        "machine": {"cpu_model": "Test CPU 9000", "cores_usable": 2},
        "versions": {"vllm": "0.29.0"},
        "slo": {"ttft_ms": 2000, "tpot_ms": 200},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    bw = {"single_thread_gbps": 25.0, "all_threads_gbps": 30.0, "threads": 2}
    (run / "bandwidth.json").write_text(json.dumps(bw))
    out = tmp_path / "out"
    md_path = report.build(run, out)
    md = md_path.read_text()
    for name in ("results.csv", "results.json", "throughput_vs_concurrency.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "latency_vs_concurrency.png").exists() and (out / "adapters_vs_base.png").exists()
    assert "Test CPU 9000" in md and "python -m benchmarks sweep --rounds 2" in md
    assert "## Scenario `base`" in md and "## Targets vs results" in md
    assert "46.5 tok/s (one thread)" in md  # 25 GB/s / 0.538 GB
    rows = json.loads((out / "results.json").read_text())["rows"]
    ours16 = next(r for r in rows if (r["target"], r["load"], r["round"]) == ("ours", "c16", "all"))
    assert ours16["rounds"] == 2 and ours16["errors"] == 0
    assert ours16["output_tok_s"] == pytest.approx(90 * 1.01, rel=0.05)
    assert ours16["spread_pct"] == pytest.approx(2.0, abs=1.0)
    assert f"{ours16['output_tok_s']:,.1f}" in md
    assert "**pass**" in md and "**miss**" in md  # ours/vllm 0.9 misses, ours/naive 7.5 passes


def test_streamed_lines_arrive_one_by_one_from_geventhttpclient() -> None:
    """The locustfile reads with the raw response's readline(b"\\n"): each SSE line must be
    available as soon as its chunk arrives, not after a buffer fills (no server: a socketpair)."""
    import socket

    response = pytest.importorskip("geventhttpclient.response")
    reader, writer = socket.socketpair()
    reader.settimeout(5)  # a readline that waited for more data would fail, not hang

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + b"\r\n"

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    writer.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(b"data: {}\n\n"))
    raw = response.HTTPSocketResponse(reader)
    assert raw.readline(b"\n") == b"data: {}\n"
    assert raw.readline(b"\n") == b"\n"
    writer.sendall(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    assert parse_sse_line(raw.readline(b"\n")) == DONE
    assert raw.readline(b"\n") == b"\n" and raw.readline(b"\n") == b""
    assert raw.message_complete
    reader.close()
    writer.close()
