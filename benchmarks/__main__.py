"""Command line: `python -m benchmarks {sweep,report,bandwidth,smoke} --help`.

    python -m benchmarks sweep --targets ours,vllm,vllm-lora,ray,naive \\
        --scenarios base,adapter,mix4,ab --concurrency 1,4,16 --duration 30 --warmup 5 --rounds 2
    python -m benchmarks report benchmarks/results/<run> --out docs/benchmarks
    python -m benchmarks bandwidth --out bandwidth.json
    python -m benchmarks smoke            # one target, c=2, 10 s: does the harness work?

Targets: ours (python -m serving up), vllm and vllm-lora (vLLM's OpenAI server without and with
the four adapters), ray and ray-lora (stock Ray Serve LLM), naive (FastAPI + transformers, one
request at a time). Scenarios: base (model "base"), adapter ("base:support-v1"), mix4 (four
adapters, one picked per request), ab (the alias "support-ab", sticky per user; ours only).
A scenario runs only on targets that offer its models.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from benchmarks import bandwidth, report, sweep
from benchmarks.targets import MODEL_DIR, ROOT, TARGETS

SWEEP_HELP = """Start each target in turn, drive every applicable (scenario, load) with headless
Locust, stop it; repeat for --rounds, alternating the target order. Writes manifest.json, the
per-request records and Locust CSVs under --out, then the report. Bounded by --max-minutes."""
REPORT_HELP = """Turn a sweep folder into results.csv, results.json, report.md and PNG plots:
percentiles, throughput, goodput, ratios between targets of the same run, fixed targets."""
BANDWIDTH_HELP = """Measure memory copy bandwidth (one thread and all threads) and the batch-1
decode ceiling it implies for the model (bandwidth / bytes of weights per token)."""
SMOKE_HELP = """A quick end-to-end check of the harness: one target (ours by default), scenario
base, concurrency 2, 10 s measured after 2 s warmup, one round, then the report. Exit code 0 if
requests succeeded and none failed."""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sweep", help="run the benchmark sweep", description=SWEEP_HELP)
    sweep.add_arguments(p)
    p = sub.add_parser("report", help="render a run folder", description=REPORT_HELP)
    p.add_argument("run_dir", type=Path, help="a sweep's --out folder")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: run_dir)")
    p.add_argument("--slo-ttft-ms", type=float, default=None, help="override the run's TTFT SLO")
    p.add_argument("--slo-tpot-ms", type=float, default=None, help="override the run's TPOT SLO")
    p = sub.add_parser(
        "bandwidth", help="memory bandwidth and decode ceiling", description=BANDWIDTH_HELP
    )
    bandwidth.add_arguments(p)
    p = sub.add_parser(
        "smoke", help="a 10-second check of the whole harness", description=SMOKE_HELP
    )
    p.add_argument("--target", choices=TARGETS, default="ours")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--max-minutes", type=float, default=15.0)
    return parser


def cmd_report(args: argparse.Namespace) -> int:
    slo = {k: v for k, v in (("ttft_ms", args.slo_ttft_ms), ("tpot_ms", args.slo_tpot_ms)) if v}
    report.build(args.run_dir, args.out or args.run_dir, slo)
    return 0


def cmd_smoke(args: argparse.Namespace, argv: list[str]) -> int:
    out = args.out or ROOT / "benchmarks" / "results" / time.strftime("smoke-%Y%m%d-%H%M%S")
    sweep_argv = ["--targets", args.target, "--scenarios", "base", "--concurrency", "2"]
    sweep_argv += ["--duration", "10", "--warmup", "2", "--rounds", "1", "--stop-timeout", "30"]
    sweep_argv += ["--max-minutes", str(args.max_minutes), "--out", str(out)]
    sweep_args = make_parser().parse_args(["sweep", *sweep_argv])
    command = shlex.join([sys.executable, "-m", "benchmarks", *argv])
    sweep.run(sweep_args, command=f"{command}  (= sweep {shlex.join(sweep_argv)})")
    results_json = Path(out) / "results.json"
    rows = json.loads(results_json.read_text())["rows"] if results_json.exists() else []
    pooled = [r for r in rows if r["round"] == "all"]
    ok = bool(pooled) and all(r["requests"] > 0 and r["errors"] == 0 for r in pooled)
    print(f"smoke {'passed' if ok else 'FAILED'}: {Path(out) / 'report.md'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    args = make_parser().parse_args(argv)
    if args.command == "sweep":
        return sweep.run(args)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "bandwidth":
        return bandwidth.run(args, MODEL_DIR)
    return cmd_smoke(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
