"""Stock Ray Serve LLM, the baseline for "Ray Serve LLM as it ships".

    python -m benchmarks.stock_ray --port 8001 --model data/models/SmolLM2-135M-Instruct
    python -m benchmarks.stock_ray --port 8001 --model DIR --store-port 9001 \\
        --store-root /tmp/store --adapter support-v1=data/adapters/support-v1 ...

Nothing is tuned: `build_openai_app` with Ray's own ingress, stream batching at Ray's default
interval, default autoscaling and max_ongoing_requests. Only what a CPU-only machine needs is set,
and it is the same as ours: the engine args of targets.ENGINE_ARGS, a placement group of one CPU
bundle, and `ray.init(num_cpus=8)` so the ingress replica can be placed (see STACK_NOTES).

With --adapter, LoRA is on (targets.LORA_ARGS) and the adapters are served from the loopback
dev store (`python -m serving store`), published as s3://adapters/support/<name>/, which is how
Ray Serve LLM loads adapters (it accepts only cloud URIs). vLLM spawns its engine process, hence
the `__main__` guard. SIGTERM or SIGINT shuts Serve, Ray and the store down.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.targets import BASE, ENGINE_ARGS, LORA_ARGS

BUCKET, PREFIX = "adapters", "support"


def llm_config(model_dir: Path, *, lora: bool, store_env: dict[str, str]) -> dict[str, Any]:
    engine: dict[str, Any] = dict(ENGINE_ARGS)
    cfg: dict[str, Any] = {
        "model_loading_config": {"model_id": BASE, "model_source": str(model_dir.resolve())},
        "engine_kwargs": engine,
        "placement_group_config": {"bundles": [{"CPU": 1}]},
    }
    if lora:
        engine.update(enable_lora=True, **LORA_ARGS)
        cfg["lora_config"] = {
            "dynamic_lora_loading_path": f"s3://{BUCKET}/{PREFIX}",
            "max_num_adapters_per_replica": LORA_ARGS["max_loras"],
        }
        cfg["runtime_env"] = {"env_vars": store_env}
    return cfg


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


def start_store(port: int, root: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving", "store", "--port", str(port), "--root", str(root)]
    )
    _wait_http(endpoint, 60)
    env = {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "dev",
        "AWS_SECRET_ACCESS_KEY": "dev",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return proc, env


def publish(endpoint: str, adapters: dict[str, Path]) -> None:
    """Upload each adapter folder (no checkpoints; adapter_config.json last)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="dev",
        aws_secret_access_key="dev",
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    for name, folder in adapters.items():
        files = [p for p in folder.rglob("*") if p.is_file() and "checkpoint-" not in str(p)]
        for path in sorted(files, key=lambda p: p.name == "adapter_config.json"):
            key = f"{PREFIX}/{name}/{path.relative_to(folder).as_posix()}"
            s3.upload_file(str(path), BUCKET, key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stock_ray", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--num-cpus", type=int, default=8)
    parser.add_argument("--store-port", type=int, default=None)
    parser.add_argument("--store-root", type=Path, default=None)
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR")
    args = parser.parse_args(argv)
    lora = bool(args.adapter)
    if lora and not (args.store_port and args.store_root):
        parser.error("--adapter needs --store-port and --store-root")

    store, store_env = None, dict[str, str]()
    if lora:
        store, store_env = start_store(args.store_port, args.store_root)
        os.environ.update(store_env)
        adapters = {n: Path(d) for n, _, d in (a.partition("=") for a in args.adapter)}
        publish(store_env["AWS_ENDPOINT_URL_S3"], adapters)

    import ray
    from ray import serve
    from ray.serve.llm import LLMConfig, build_openai_app

    try:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.WARNING)
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        config = LLMConfig(**llm_config(args.model, lora=lora, store_env=store_env))
        serve.run(build_openai_app({"llm_configs": [config]}), name="stock", route_prefix="/")
        print(f"stock Ray Serve LLM on http://127.0.0.1:{args.port}/v1 (lora={lora})", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        serve.shutdown()
        ray.shutdown()
    finally:
        if store is not None:
            store.terminate()
            store.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
