"""Memory bandwidth, and the ceiling it puts on batch-1 decode.

    python -m benchmarks bandwidth [--size-mb 512] [--repeats 5] [--out bandwidth.json]

At batch size 1 every weight is read once per generated token, so on a CPU decode speed is
bounded by memory bandwidth: ceiling tok/s = bandwidth / bytes of weights read per token.

- Bandwidth: numpy copies of an array far larger than the caches (512 MiB by default), counted
  as bytes read + bytes written, best of N repetitions (the first touch of the destination is
  not timed). "single_thread" is one copy; "all_threads" splits the array into one slice per
  core, copied by concurrent threads (numpy releases the GIL while copying).
- Bytes per token: the size of the model folder's *.safetensors. For SmolLM2 the output
  projection is tied to the embedding matrix and reads all of it, while the embedding lookup
  reads one row, so every stored weight is read once per token. KV-cache reads are left out:
  at these context lengths they are under 1% of the weights.

The ceiling uses the all-thread bandwidth: it is what the machine can do, whatever thread count
an engine picks. Copy bandwidth (read + write) is a proxy for pure read bandwidth, which is
usually a little higher, so the ceiling is, if anything, slightly low.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def copy_bandwidth(size_mb: int = 512, repeats: int = 5, threads: int = 1) -> float:
    """Best-of-`repeats` copy bandwidth in GB/s (10^9 bytes/s), read + write."""
    import numpy as np

    n = size_mb * (1 << 20) // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.zeros_like(src)
    bounds = [(i * n // threads, (i + 1) * n // threads) for i in range(threads)]

    def part(i: int) -> None:
        lo, hi = bounds[i]
        np.copyto(dst[lo:hi], src[lo:hi])

    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(part, range(threads)))  # warm: page faults, thread start
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(part, range(threads)))
            best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def measure(size_mb: int = 512, repeats: int = 5, threads: int | None = None) -> dict[str, Any]:
    threads = threads or len(os.sched_getaffinity(0))
    return {
        "single_thread_gbps": copy_bandwidth(size_mb, repeats, 1),
        "all_threads_gbps": copy_bandwidth(size_mb, repeats, threads),
        "threads": threads,
        "size_mb": size_mb,
        "repeats": repeats,
        "method": "numpy copyto, best of repeats, (read + write bytes) / time",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg": os.getloadavg(),
    }


def weights_bytes(model_dir: Path) -> int:
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {model_dir}")
    return sum(f.stat().st_size for f in files)


def ceiling_tok_s(bandwidth_gbps: float, bytes_per_token: int) -> float:
    return bandwidth_gbps * 1e9 / bytes_per_token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size-mb", type=int, default=512, help="array size (MiB)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: usable cores")
    parser.add_argument("--model", type=Path, default=None, help="model folder for the ceiling")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")


def run(args: argparse.Namespace, default_model: Path) -> int:
    result = measure(args.size_mb, args.repeats, args.threads)
    model = args.model or default_model
    if model.is_dir():
        per_token = weights_bytes(model)
        result["model"] = str(model)
        result["weights_bytes"] = per_token
        for key in ("single_thread", "all_threads"):
            result[f"ceiling_tok_s_{key}"] = ceiling_tok_s(result[f"{key}_gbps"], per_token)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0
