"""Command line: `python -m serving {run,up,store,check} --help`.

    python -m serving check --config configs/gpu.yaml      # validate a config, print the LLMConfig
    python -m serving run   --config configs/cpu-dev.yaml  # Ray + Serve + vLLM on 127.0.0.1:$PORT
    python -m serving store --port 9000 --root data/store  # loopback S3-compatible adapter store
    python -m serving up    --config configs/cpu-dev.yaml --dev-store data/store \
                            --seed support-v1=data/adapters/support-v1     # what `make serve` runs

`run` starts a local Ray instance (with more *logical* CPUs than cores, so the ingress and the
engine replicas can all be placed on a small machine) and blocks until SIGINT/SIGTERM.
In a cluster, KubeRay imports `serving.app:build_app` instead and none of this runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from serving.config import ServingConfig

log = logging.getLogger("serving")


def _load(args: argparse.Namespace) -> ServingConfig:
    cfg = ServingConfig.from_yaml(args.config)
    http = cfg.http.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    return cfg.model_copy(update={"http": http})


def cmd_check(args: argparse.Namespace) -> int:
    cfg = ServingConfig.from_yaml(args.config)
    print(
        json.dumps(
            cfg.to_llm_config(Path.cwd()) if args.llm_config else cfg.model_dump(mode="json"),
            indent=2,
        )
    )
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    from serving.devstore import serve

    serve(args.port, Path(args.root))
    return 0


def _wait_for(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


def cmd_run(args: argparse.Namespace) -> int:
    import ray
    from ray import serve

    from serving.app import build_app

    cfg = _load(args)
    started = time.monotonic()
    ray.init(
        num_cpus=args.num_cpus,
        include_dashboard=False,
        log_to_driver=args.verbose,
        configure_logging=True,
        logging_level=logging.INFO if args.verbose else logging.WARN,
    )
    serve.start(http_options={"host": cfg.http.host, "port": cfg.http.port})
    serve.run(build_app(cfg), name="supportserve", route_prefix="/", blocking=False)
    print(
        f"serving {cfg.model.id} on http://{cfg.http.host}:{cfg.http.port}/v1 "
        f"(ready in {time.monotonic() - started:.0f}s)",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Dev bring-up: the loopback store, the default adapters in it, then `run`."""
    from serving.devstore import apply_dev_env
    from serving.store import AdapterStore

    cfg = _load(args)
    store_proc = None
    if args.dev_store:
        endpoint = cfg.store.endpoint_url or "http://127.0.0.1:9000"
        port = int(endpoint.rsplit(":", 1)[1].split("/")[0])
        apply_dev_env(endpoint)
        store_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                "store",
                "--port",
                str(port),
                "--root",
                args.dev_store,
            ]
        )
        _wait_for(endpoint, 30)
    try:
        store = AdapterStore(cfg.store)
        store.ensure_bucket()
        for seed in args.seed:
            name, _, folder = seed.partition("=")
            if not store.exists(name):
                store.upload_adapter(Path(folder), name)
                print(f"published {name} from {folder}", flush=True)
        return cmd_run(args)
    finally:
        if store_proc is not None:
            store_proc.terminate()
            store_proc.wait(timeout=30)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate a serving config and print it")
    check.add_argument("--config", required=True)
    check.add_argument("--llm-config", action="store_true", help="print Ray's LLMConfig instead")
    check.set_defaults(func=cmd_check)

    store = sub.add_parser("store", help="run the loopback S3-compatible dev adapter store")
    store.add_argument("--port", type=int, default=9000)
    store.add_argument("--root", default="data/store", help="folder the buckets persist to")
    store.set_defaults(func=cmd_store)

    for name, func, text in (
        ("run", cmd_run, "serve a config (blocks until SIGTERM)"),
        ("up", cmd_up, "dev: start the store, seed adapters, then serve"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", required=True, help="ServingConfig YAML (see configs/)")
        p.add_argument("--host", default=None, help="override http.host")
        p.add_argument("--port", type=int, default=None, help="override http.port")
        p.add_argument(
            "--num-cpus",
            type=int,
            default=int(os.environ.get("RAY_NUM_CPUS", 8)),
            help="logical CPUs for the local Ray instance",
        )
        p.add_argument("--verbose", action="store_true", help="forward Ray worker logs")
        p.set_defaults(func=func)
        if name == "up":
            p.add_argument(
                "--dev-store",
                metavar="ROOT",
                default=None,
                help="start the loopback store persisted under ROOT",
            )
            p.add_argument(
                "--seed",
                action="append",
                default=[],
                metavar="NAME=DIR",
                help="publish adapter DIR as NAME if the store lacks it",
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = make_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
