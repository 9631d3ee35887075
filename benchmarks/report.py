"""Report: a sweep folder -> results.csv, results.json, report.md and PNG plots.

    python -m benchmarks report benchmarks/results/<run> [--out docs/benchmarks]

Design: the per-request and per-window definitions (measurement window, output tok/s, goodput,
exact percentiles) live in `benchmarks/__init__.py`, shared with the load generator. Here we
load a run's cells, compute one row per (target, scenario, load, round) and one pooled row per
(target, scenario, load) over all rounds, then compare pooled rows *of the same run only*:
ratios between targets, the issue's fixed targets (pass/miss), round-to-round spread as the
noise estimate, and batch-1 decode against the memory-bandwidth ceiling. The Markdown carries
its own method section, machine, versions and exact command, so the numbers travel with how
they were made. Sections: loading and rows; comparisons; rendering (the plots are in plots.py).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks import percentile, spread_pct, summarize, window
from benchmarks.bandwidth import ceiling_tok_s

DEFAULT_SLO = {"ttft_ms": 2000.0, "tpot_ms": 200.0}
KEY = ("target", "scenario", "load", "users", "rate")
COLUMNS = [*KEY, "round", "rounds", "requests", "errors", "seconds", "output_tok_s", "req_s"]
COLUMNS += [f"ttft_ms_p{q}" for q in (50, 90, 99)] + [f"tpot_ms_p{q}" for q in (50, 90, 99)]
COLUMNS += ["e2e_ms_p50", "e2e_ms_p99", "goodput_frac", "goodput_req_s", "spread_pct"]
COLUMNS += ["status", "returncode", "error_examples"]

# ---------------------------------------------------------------- loading and statistics


def load_cells(run_dir: Path) -> list[dict[str, Any]]:
    """Every cell's run.json plus its request records and measurement window."""
    cells = []
    for run_json in sorted(run_dir.glob("cells/*/r*/*/*/run.json")):
        info = json.loads(run_json.read_text())
        requests, meta = [], defaultdict(list)
        for path in sorted(run_json.parent.glob("records-*.jsonl")):
            for line in path.read_text().splitlines():
                obj = json.loads(line) if line.strip() else {}
                if obj.get("kind") == "request":
                    requests.append(obj)
                elif obj.get("kind") == "meta":
                    meta[obj["event"]].append(obj["t"])
        info.update(requests=requests, window=window(meta, info))
        cells.append(info)
    return cells


def compute(cells: list[dict[str, Any]], slo: dict[str, float]) -> list[dict[str, Any]]:
    """Per-round rows, then one pooled row (round "all") per (target, scenario, load)."""
    rows, groups = [], defaultdict(list)
    for c in sorted(cells, key=lambda c: (c["target"], c["scenario"], c["users"], c["round"])):
        key = (c["target"], c["scenario"], c["label"], c["users"], c["rate"])
        parts = [(c["requests"], *c["window"])] if c["window"] else []
        row = dict(zip(KEY, key, strict=True)) | {"round": c["round"], "rounds": 1}
        row |= {"status": c.get("status"), "returncode": c.get("returncode")}
        rows.append(row | summarize(parts, slo))
        groups[key].append((parts, rows[-1]))
    for key, items in groups.items():
        tok = [row["output_tok_s"] for _, row in items if row["output_tok_s"] is not None]
        row = dict(zip(KEY, key, strict=True)) | {"round": "all", "rounds": len(items)}
        pooled = summarize([part for parts, _ in items for part in parts], slo)
        rows.append(row | pooled | {"spread_pct": spread_pct(tok)})
    return rows


Pooled = dict[tuple[str, str, str], dict[str, Any]]


def pooled_index(rows: list[dict[str, Any]]) -> Pooled:
    return {(r["target"], r["scenario"], r["load"]): r for r in rows if r["round"] == "all"}


def pooled_value(p: Pooled, target: str, scenario: str, c: int, field: str) -> float | None:
    return (p.get((target, scenario, f"c{c}")) or {}).get(field)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def concurrencies(p: Pooled) -> list[int]:
    return sorted({int(load[1:]) for _, _, load in p if load.startswith("c")})


# (numerator target, scenario, denominator target, scenario) for output tok/s ratios
RATIOS = [
    ("ours", "base", "vllm-lora", "base"),  # cost of our serving layer
    ("ours", "mix4", "vllm-lora", "mix4"),
    ("ours", "base", "vllm", "base"),
    ("vllm-lora", "base", "vllm", "base"),  # cost of LoRA being on
    ("ours", "base", "ray", "base"),
    ("ours", "base", "naive", "base"),
    ("ours", "mix4", "ours", "base"),  # cost of serving four adapters at once
    ("vllm-lora", "mix4", "vllm-lora", "base"),
]


def ratios(p: Pooled) -> list[dict[str, Any]]:
    """Every same-run comparison the data allows: tok/s ratios per c, TTFT overhead at low c."""
    cs, out = concurrencies(p), []
    for c in cs:
        for a, sa, b, sb in RATIOS:
            v = _ratio(
                pooled_value(p, a, sa, c, "output_tok_s"), pooled_value(p, b, sb, c, "output_tok_s")
            )
            name = f"{a} / {b} ({sa})" if sa == sb else f"{a}: {sa} / {sb}"
            out.append((f"output tok/s {name}", c, v, "x"))
    for b in ("vllm", "vllm-lora", "ray"):
        for c in cs[:1]:
            v = _diff(*(pooled_value(p, t, "base", c, "ttft_ms_p50") for t in ("ours", b)))
            out.append((f"TTFT p50 ours - {b} (base)", c, v, "ms"))
    fields = ("comparison", "c", "value", "unit")
    return [dict(zip(fields, r, strict=True)) for r in out if r[2] is not None]


def decode_speed(p: Pooled, target: str) -> float | None:
    """Batch-1 decode tokens/s: 1 / TPOT p50 at concurrency 1, base model."""
    tpot = pooled_value(p, target, "base", 1, "tpot_ms_p50")
    return 1000.0 / tpot if tpot else None


def ceilings(bw: dict[str, Any] | None, weights: int | None) -> dict[str, float]:
    if not bw or not weights:
        return {}
    return {k: ceiling_tok_s(bw[f"{k}_gbps"], weights) for k in ("single_thread", "all_threads")}


def evaluate(p: Pooled, ceiling: float | None) -> list[dict[str, Any]]:
    """The issue's fixed targets: measured value, target, pass/miss (n/a without data). When the
    run lacks c=16 (or c=1), the highest (lowest) concurrency stands in, and a note says so."""
    cs = concurrencies(p) or [0]
    hi, lo = (16 if 16 in cs else cs[-1]), (1 if 1 in cs else cs[0])

    def tok(t: str, s: str = "base") -> float | None:
        return pooled_value(p, t, s, hi, "output_tok_s")

    ttft = _diff(*(pooled_value(p, t, "base", lo, "ttft_ms_p50") for t in ("ours", "vllm")))
    decode = _ratio(decode_speed(p, "ours"), ceiling)
    mix = _ratio(tok("ours", "mix4"), tok("ours"))
    checks = [
        ("ours / vllm (bare) output tok/s", hi, 16, _ratio(tok("ours"), tok("vllm")), ">=", 0.95),
        ("TTFT p50 overhead ours - vllm (ms)", lo, 1, ttft, "<=", 15.0),
        ("ours / naive output tok/s", hi, 16, _ratio(tok("ours"), tok("naive")), ">=", 5.0),
        ("ours mix4 / base output tok/s", hi, 16, mix, ">=", 0.75),
        ("ours batch-1 decode / bandwidth ceiling", 1, 1, decode, ">=", 0.5),
    ]
    out = []
    for name, c, want, value, op, goal in checks:
        ok = value is not None and (value >= goal if op == ">=" else value <= goal)
        status = "n/a" if value is None else ("pass" if ok else "miss")
        note = f"at c={c}: the run has no c={want}" if c != want else ""
        row = {"check": name, "c": c, "value": value, "op": op, "target": goal}
        out.append(row | {"status": status, "note": note})
    return out


# ---------------------------------------------------------------- rendering


def fmt(v: Any, digits: int = 1) -> str:
    if v is None or v == "":
        return "–"
    return f"{v:,.{digits}f}" if isinstance(v, float) else str(v)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + [
        "| " + " | ".join(fmt(x) if not isinstance(x, str) else x for x in r) + " |" for r in rows
    ]


def _relative(path: str) -> str:
    """Show a path under the working directory relative to it, as a reader would type it."""
    p = Path(path)
    return (
        str(p.relative_to(Path.cwd())) if p.is_absolute() and p.is_relative_to(Path.cwd()) else path
    )


METHOD = """\
- **Targets**, one at a time on the same machine: {targets}. Same model folder and engine args
  ({engine_args}); LoRA targets add {lora_args} and the same four adapters under the same names.
- **Interleaving**: {rounds} round(s); odd rounds run the targets in the order above, even rounds
  in reverse, so machine drift hits every target alike. Each target is started once per round.
- **Load**: Locust (FastHttpUser), streamed `/v1/chat/completions` with
  `stream_options.include_usage`; prompts from `{prompts}`, each conversation up to its
  last assistant turn; greedy; output {output}. Fixed concurrency C = C users without think time.
  Poisson cells (if any): N users with exponential think time (closed loop, approximate).
- **Window**: each cell runs {warmup_s} s warmup + {duration_s} s measured; requests that
  start in the window are measured; in-flight requests may finish (stop timeout
  {stop_timeout_s} s). Output tok/s counts the tokens produced inside the window (each
  request's tokens spread between its first and last).
- **Metrics**: TTFT = request start to first non-empty content chunk; TPOT = (E2E - TTFT) /
  (completion_tokens - 1) with completion_tokens from `usage`; exact percentiles over all
  measured requests of all rounds. Goodput: TTFT <= {slo[ttft_ms]:g} ms and
  TPOT <= {slo[tpot_ms]:g} ms.
- **Caveat**: Locust shares the {cores} cores with the server and uses more CPU at higher
  concurrency; that costs every target alike but lowers absolute numbers.
"""


def _md_head(manifest: dict[str, Any], slo: dict[str, float]) -> list[str]:
    m, n = manifest.get("machine", {}), manifest.get("max_tokens")
    fixed = manifest.get("output", "fixed") == "fixed"
    keys = ("rounds", "warmup_s", "duration_s", "stop_timeout_s", "engine_args", "lora_args")
    method = METHOD.format(
        **{k: manifest.get(k) for k in keys},
        targets=", ".join(manifest.get("targets", [])),
        output=f"fixed at {n} tokens (ignore_eos)" if fixed else f"natural, up to {n} tokens",
        slo=slo,
        cores=m.get("cores_usable", "?"),
        prompts=_relative(manifest.get("prompts", "?")),
    )
    versions = ", ".join(f"{k} {val}" for k, val in manifest.get("versions", {}).items())
    return [
        f"# Benchmark report ({manifest.get('started', '?')})\n",
        f"Sweep status: **{manifest.get('status', '?')}**.\n\n## Method\n\n{method}",
        "## Machine, versions, command\n",
        f"- CPU: {m.get('cpu_model')}, {m.get('cores_usable')} usable cores, "
        f"{m.get('ram_gib')} GiB RAM; {m.get('platform')}",
        f"- Load average at start / end: {m.get('loadavg_at_start')} / {m.get('loadavg_at_end')}",
        f"- Versions: {versions}\n- Command: `{manifest.get('command')}`",
    ]


def _md_checks(p: Pooled, ceiling: float | None) -> list[str]:
    rows = [
        [c["check"], c["c"], fmt(c["value"], 2), f"{c['op']} {c['target']:g}"]
        + [f"**{c['status']}**", c["note"]]
        for c in evaluate(p, ceiling)
    ]
    ratio_rows = [[r["comparison"], r["c"], f"{fmt(r['value'], 2)} {r['unit']}"] for r in ratios(p)]
    return (
        ["", "## Targets vs results", ""]
        + table(["check", "c", "measured", "target", "status", "note"], rows)
        + ["", "## Ratios (same run, pooled rounds)", ""]
        + table(["comparison", "c", "value"], ratio_rows)
    )


LAT = ("ttft", "tpot")


def _md_scenarios(manifest: dict[str, Any], p: Pooled) -> list[str]:
    head = ["target", "load", "rounds", "req", "err", "out tok/s", "req/s", "TTFT p50/90/99 ms"]
    head += ["TPOT p50/90/99 ms", "E2E p50/99 ms", "goodput", "spread"]
    md: list[str] = []
    scenarios = manifest.get("scenarios") or {s: [] for _, s, _ in p}
    for scenario, models in scenarios.items():
        body = []
        for (_, s, _), r in sorted(p.items(), key=lambda kv: (kv[0][0], kv[1]["users"])):
            if s != scenario:
                continue
            lat = {m: "/".join(fmt(r[f"{m}_ms_p{q}"], 0) for q in (50, 90, 99)) for m in LAT}
            good = f"{fmt((r['goodput_frac'] or 0) * 100, 0)}% ({fmt(r['goodput_req_s'], 2)}/s)"
            body.append(
                [r["target"], r["load"], r["rounds"], r["requests"], r["errors"], r["output_tok_s"]]
                + [fmt(r["req_s"], 2), lat["ttft"], lat["tpot"]]
                + ["/".join(fmt(r[f"e2e_ms_p{q}"], 0) for q in (50, 99)), good]
                + [f"{fmt(r['spread_pct'])}%"]
            )
        if body:
            md += ["", f"## Scenario `{scenario}` ({', '.join(models)})", ""] + table(head, body)
    return md


def _md_noise(rows: list[dict[str, Any]], p: Pooled) -> list[str]:
    per_round = defaultdict(list)
    for r in rows:
        if r["round"] != "all":
            per_round[(r["target"], r["scenario"], r["load"])].append(fmt(r["output_tok_s"]))
    spreads = sorted(r["spread_pct"] for r in p.values() if r.get("spread_pct") is not None)
    text = (
        f"Spread of output tok/s between rounds, (max - min) / mean: median "
        f"{fmt(percentile(spreads, 50))}%, max {fmt(spreads[-1])}%. "
        "Differences smaller than the spread are within noise."
        if spreads
        else "Only one round per cell: no noise estimate."
    )
    body = [[*k, " / ".join(x)] for k, x in sorted(per_round.items())]
    return ["", "## Noise: round to round", "", text, ""] + table(
        ["target", "scenario", "load", "output tok/s per round"], body
    )


def _md_ceiling(p: Pooled, bw: dict[str, Any] | None, weights: int | None) -> list[str]:
    md = ["", "## Memory-bandwidth ceiling for batch-1 decode", ""]
    ceil = ceilings(bw, weights)
    if not ceil or bw is None or weights is None:
        return md + ["Not measured: run `python -m benchmarks bandwidth --out RUN/bandwidth.json`."]
    md.append(
        f"Copy bandwidth (numpy, read + write): {bw['single_thread_gbps']:.1f} GB/s with one "
        f"thread, {bw['all_threads_gbps']:.1f} GB/s with {bw['threads']}. Weights read per "
        f"token: {weights / 1e9:.3f} GB (safetensors size). Ceiling: "
        f"{ceil['single_thread']:.1f} tok/s (one thread), {ceil['all_threads']:.1f} tok/s (all)."
    )
    body = []
    for t in sorted({t for t, _, _ in p}):
        if speed := decode_speed(p, t):
            share = [f"{fmt(speed / ceil[k] * 100, 0)}%" for k in ("all_threads", "single_thread")]
            body.append([t, speed, *share])
    head = ["target", "batch-1 decode tok/s (1 / TPOT p50, c=1)", "of ceiling (all)", "(one)"]
    return md + [""] + table(head, body)


PROBLEM_COLS = [*KEY[:3], "round", "status", "returncode", "requests", "errors", "error_examples"]


def _md_problems(rows: list[dict[str, Any]], failures: list[dict[str, Any]]) -> list[str]:
    """Targets that did not start, and cells that failed, timed out, erred or got no data."""
    md = [f"- round {f['round']}, {f['target']}: {f['error'].splitlines()[0]}" for f in failures]
    bad = [r for r in rows if r["round"] != "all" and (r["status"] != "ok" or r["errors"])]
    bad += [r for r in rows if r["round"] != "all" and r["status"] == "ok" and not r["requests"]]
    if bad:
        md += [""] + table(PROBLEM_COLS, [[r[k] for k in PROBLEM_COLS] for r in bad])
    return ["", "## Problems", "", *md] if md else []


def render(
    manifest: dict[str, Any],
    rows: list[dict[str, Any]],
    slo: dict[str, float],
    bw: dict[str, Any] | None,
    images: list[str],
) -> str:
    p = pooled_index(rows)
    weights = manifest.get("weights_bytes")
    md = _md_head(manifest, slo)
    md += _md_checks(p, ceilings(bw, weights).get("all_threads"))
    md += _md_scenarios(manifest, p) + _md_noise(rows, p) + _md_ceiling(p, bw, weights)
    md += _md_problems(rows, manifest.get("failures") or [])
    if images:
        md += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    return "\n".join(md) + "\n"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def build(run_dir: Path, out: Path, slo: dict[str, float] | None = None) -> Path:
    """Write results.json, results.csv, the plots and report.md for run_dir into out."""
    run_dir, out = Path(run_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _read_json(run_dir / "manifest.json") or {}
    slo = {**DEFAULT_SLO, **manifest.get("slo", {}), **(slo or {})}
    bw = _read_json(run_dir / "bandwidth.json")
    rows = compute(load_cells(run_dir), slo)
    (out / "results.json").write_text(
        json.dumps({"slo": slo, "bandwidth": bw, "rows": rows}, indent=2) + "\n"
    )
    with (out / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    from benchmarks.plots import plots  # matplotlib only when a report is written

    images = plots(pooled_index(rows), out) if rows else []
    (out / "report.md").write_text(render(manifest, rows, slo, bw, images))
    print(f"report: {out / 'report.md'}")
    return out / "report.md"
