"""Render the reliability scorecard (docs/reliability.md) from the figures the tests recorded.

    make reliability        # runs the slow suite, then:
    python -m benchmarks.scorecard \
        --results benchmarks/results/reliability --out docs/reliability.md

Design: tests measure and record (`scorecard` fixture -> one JSON file per figure). This module
only reads those files, adds the redaction figures (computed here, they need no server), and
compares each number with its target. A figure that is missing is reported as "not run", never
silently omitted.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

TARGETS = {
    "fuzz": "0 x 5xx over >= 500 fuzzed requests",
    "engine_kill": "service back <= 60 s after the engine process is killed; no hung request",
    "replica_kill": "service back after a Serve replica is killed; no hung request",
    "cancel_stream": "engine idle <= 1 s after a client drops a stream",
    "cancel_non_stream": "engine idle <= 1 s after a client drops a non-streaming request",
    "soak": "0 unexpected errors, RSS growth < 5% per process, no leaked engine requests",
}


def _load(results: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}


def _verdict(name: str, r: dict[str, Any]) -> str:
    checks = {
        "fuzz": lambda: r["cases"] >= 500 and r["status_5xx"] == 0 and r["failures"] == 0,
        "engine_kill": lambda: r["recovery_s"] <= 60 and r["hung"] == 0,
        "replica_kill": lambda: r["recovery_s"] <= 120,
        "cancel_stream": lambda: r["seconds_to_idle"] <= 1.0,
        "cancel_non_stream": lambda: r["seconds_to_idle"] <= 1.0,
        "soak": lambda: (
            r["errors"] == 0
            and r["leaked_engine_requests"] == 0
            and all(g < 0.05 for g in r["rss_growth"].values())
        ),
    }
    return ("met" if checks[name]() else "**missed**") if name in checks else "recorded"


def _row(name: str, rec: dict[str, Any] | None) -> str:
    if rec is None:
        return f"| {name} | {TARGETS.get(name, '')} | not run | |"
    shown = {
        k: v
        for k, v in rec.items()
        if k
        not in (
            "name",
            "at",
            "examples",
            "statuses",
            "p99_latency_s_by_minute",
            "rss_mb_end",
            "rss_mb_after_warmup",
            "rss_growth",
        )
    }
    text = ", ".join(f"{k}={v}" for k, v in shown.items())
    return f"| {name} | {TARGETS.get(name, '')} | {text} | {_verdict(name, rec)} |"


def _soak(rec: dict[str, Any] | None) -> list[str]:
    if rec is None:
        return ["Not run."]
    lines = [
        f"{rec['seconds']} s at {rec['clients']} clients, {rec['requests']} requests, "
        f"{rec['errors']} errors (statuses {rec['statuses']}); leaked engine requests "
        f"at the end: {rec['leaked_engine_requests']}.",
        "",
        "| process | RSS after warm-up (MB) | RSS at end (MB) | growth |",
        "|---|---|---|---|",
    ]
    for role, before in rec["rss_mb_after_warmup"].items():
        lines.append(
            f"| {role} | {before} | {rec['rss_mb_end'][role]} | {rec['rss_growth'][role]:+.1%} |"
        )
    lines += [
        "",
        "p99 latency by minute (s): "
        + ", ".join(f"m{m}: {v}" for m, v in rec["p99_latency_s_by_minute"].items()),
    ]
    return lines


SECURITY = (
    "Each row is written by a test only after its assertions pass: `/v1` and `/admin` routes "
    "answer 401 without a valid key (missing, wrong, wrong scheme), the structured request log "
    "holds neither keys nor prompts, CORS headers are absent by default, a body over the limit "
    "is a 413, and the Dockerfile and every rendered chart container run as a numeric non-root "
    "user. Keys are compared with `hmac.compare_digest` over SHA-256 digests (serving/auth.py). "
    "The threat model is in docs/security.md."
)


def _security(recs: dict[str, dict[str, Any]]) -> list[str]:
    rows = [
        f"| {n.removeprefix('security_')} | "
        f"{', '.join(f'{k}={v}' for k, v in r.items() if k not in ('name', 'at'))} |"
        for n, r in recs.items()
        if n.startswith("security_")
    ]
    return [SECURITY, "", "| check | measured |", "|---|---|", *rows] if rows else ["Not run."]


def _redaction(labelled: list[Path]) -> list[str]:
    from finetune.data.redact_eval import evaluate, evaluate_labelled

    sets = {"planted synthetic (1000 conversations)": evaluate(1000)}
    sets.update({p.name: evaluate_labelled(p) for p in labelled if p.exists()})
    lines = ["| set | values | recall | precision | weakest type |", "|---|---|---|---|---|"]
    for name, r in sets.items():
        weakest = min(r["by_type"].items(), key=lambda kv: kv[1]["recall"])
        lines.append(
            f"| {name} | {r['planted']} | {r['recall']:.3f} | {r['precision']:.3f} | "
            f"{weakest[0]} {weakest[1]['recall']:.2f} |"
        )
    return lines


def render(results: Path, labelled: list[Path]) -> str:
    recs = _load(results)
    stamp = max((r["at"] for r in recs.values()), default="never")
    body = [
        "# Reliability scorecard",
        "",
        f"Figures from this machine ({platform.machine()}, {platform.python_version()}), last "
        f"recorded {stamp}. Regenerate with `make reliability`; each figure comes from a test in "
        "`tests/integration/` (`test_fuzz.py`, `test_serving.py`, `test_resilience.py`, "
        "`test_soak.py`).",
        "",
        "## Targets",
        "",
        "| figure | target | measured | verdict |",
        "|---|---|---|---|",
        *[_row(n, recs.get(n)) for n in TARGETS],
        "",
        "## Other measured behaviour",
        "",
        "| figure | measured |",
        "|---|---|",
        *[
            f"| {n} | {', '.join(f'{k}={v}' for k, v in r.items() if k not in ('name', 'at'))} |"
            for n, r in recs.items()
            if n not in TARGETS and not n.startswith("security_")
        ],
        "",
        "## Security",
        "",
        *_security(recs),
        "",
        "## Soak",
        "",
        *_soak(recs.get("soak")),
        "",
        "## Fuzzing detail",
        "",
        f"Status counts: {recs['fuzz']['statuses']}" if "fuzz" in recs else "Not run.",
        "",
        "## Redaction",
        "",
        *_redaction(labelled),
        "",
        "The planted set is optimistic (the rules were written against the generator), "
        "`pii_holdout.jsonl` was used to tune general rules once, and `pii_holdout2.jsonl` was "
        "never looked at while tuning: it is the honest estimate (docs/data.md).",
        "",
    ]
    return "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", default="benchmarks/results/reliability")
    parser.add_argument("--out", default="docs/reliability.md")
    parser.add_argument(
        "--labelled",
        nargs="*",
        default=["tests/data/pii_holdout.jsonl", "tests/data/pii_holdout2.jsonl"],
    )
    args = parser.parse_args(argv)
    text = render(Path(args.results), [Path(p) for p in args.labelled])
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
