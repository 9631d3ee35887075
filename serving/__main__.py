"""Command line: `python -m serving {run,up,store,check} --help`.

    python -m serving check --config configs/gpu.yaml      # validate a config, print the LLMConfig
    python -m serving run   --config configs/cpu-dev.yaml  # Ray + Serve + vLLM on 127.0.0.1:$PORT
    python -m serving store --port 9000 --root data/store  # loopback S3-compatible adapter store
    python -m serving status --runtime-file run.json       # Serve's replica counts
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

    from serving import control
    from serving.app import build_app

    cfg = _load(args)
    started = time.monotonic()
    ray.init(
        num_cpus=args.num_cpus,
        include_dashboard=False,
        log_to_driver=args.verbose,
        configure_logging=True,
        logging_level=logging.INFO if args.verbose else logging.WARN,
        # Each request is a few actor tasks whose events the GCS keeps (100k by default): a
        # slow, bounded memory climb under load that serving has no use for. Keep 1000.
        _system_config={"task_events_max_num_task_in_gcs": 1000},
    )
    ctl = control.create()
    serve.start(http_options={"host": cfg.http.host, "port": cfg.http.port})
    serve.run(build_app(cfg), name="supportserve", route_prefix="/", blocking=False)
    url = f"http://{cfg.http.host}:{cfg.http.port}"
    if args.runtime_file:
        Path(args.runtime_file).write_text(
            json.dumps(
                {
                    "gcs_address": ray.get_runtime_context().gcs_address,
                    # ray.init turns token auth on for the cluster it starts by setting this in
                    # our environment only; a second driver (`status`) must set it too.
                    "ray_auth_mode": os.environ.get("RAY_AUTH_MODE", "disabled"),
                    "url": url,
                    "pid": os.getpid(),
                }
            )
        )
    print(
        f"serving {cfg.model.id} on {url}/v1 (ready in {time.monotonic() - started:.0f}s)",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    drained = drain(ctl, cfg.deployment.graceful_shutdown_timeout_s)
    print(f"drain {'complete' if drained else 'timed out'}; shutting down", flush=True)
    serve.shutdown()
    ray.shutdown()
    return 0


def drain(ctl: object, timeout_s: float) -> bool:
    """Readiness off and new requests refused (the ingress watchers poll every 0.5 s), then wait
    for in-flight requests to finish, up to `timeout_s`. True if nothing was left running."""
    import ray

    ray.get(ctl.start_drain.remote())  # type: ignore[attr-defined]
    time.sleep(1.0)  # two watcher rounds: every replica has seen the flag and reported
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ray.get(ctl.total_in_flight.remote()) == 0:  # type: ignore[attr-defined]
            return True
        time.sleep(0.25)
    return False


def cmd_status(args: argparse.Namespace) -> int:
    """Serve's own view of the running application: deployment states and replica counts."""
    runtime = json.loads(Path(args.runtime_file).read_text()) if args.runtime_file else {}
    address = args.address or runtime["gcs_address"]
    if "ray_auth_mode" in runtime:  # read when ray is imported; the token is ~/.ray/auth_token
        os.environ.setdefault("RAY_AUTH_MODE", runtime["ray_auth_mode"])
    import ray

    from serving import control

    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        out = control.serve_status()
    finally:
        ray.shutdown()
    print(json.dumps(out, indent=2))
    return 0


def _require_gate(folder: Path) -> None:
    """Only adapters whose card says the eval gate passed may be seeded into the store."""
    card = folder / "card.json"
    try:
        passed = json.loads(card.read_text())["gate"]["passed"] is True
    except (OSError, ValueError, KeyError, TypeError):
        passed = False
    if not passed:
        raise SystemExit(
            f"{folder} has no passing card.json; run `make adapters` (or "
            "`python -m finetune gate --adapter ...`) first"
        )


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
                _require_gate(Path(folder))
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

    status = sub.add_parser("status", help="Serve's status: deployments and replica counts")
    where = status.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="the Ray GCS address (host:port)")
    where.add_argument("--runtime-file", help="the file `run --runtime-file` wrote")
    status.set_defaults(func=cmd_status)

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
        p.add_argument(
            "--runtime-file",
            default=None,
            help="write {gcs_address, url, pid} here once serving (for tools/tests)",
        )
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
