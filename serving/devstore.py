"""A loopback S3-compatible adapter store for development and tests, persisted to a folder.

Design: moto's S3 server is a faithful, well-kept S3 implementation that installs from PyPI, but
it keeps objects in memory only. We add the one thing a dev store needs on top: the bucket
contents survive restarts. On start, `<root>/<bucket>/<key>` files are loaded into the server; a
background thread then mirrors the buckets back to that folder every `sync_s` seconds and once
more on shutdown. Everything else (uploads, listings, the downloader in Ray) is plain S3 over HTTP.

It binds to 127.0.0.1 only, accepts any credentials, and is not for production: point
`store.endpoint_url` at S3, GCS (interop) or MinIO there.

    python -m serving store --port 9000 --root data/store
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEV_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "dev", "AWS_SECRET_ACCESS_KEY": "dev"}


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="dev",
        aws_secret_access_key="dev",
    )


def load(root: Path, endpoint: str) -> int:
    """Upload every file under root/<bucket>/ into the store; returns the object count."""
    s3, count = _client(endpoint), 0
    for bucket_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        s3.create_bucket(Bucket=bucket_dir.name)
        for path in sorted(bucket_dir.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                s3.upload_file(str(path), bucket_dir.name, path.relative_to(bucket_dir).as_posix())
                count += 1
    return count


def mirror(root: Path, endpoint: str, seen: dict[str, str]) -> None:
    """Bring root/ in line with the store: download changed objects, delete removed ones."""
    s3, live = _client(endpoint), {}
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                key = f"{name}/{obj['Key']}"
                live[key] = obj["ETag"]
                if seen.get(key) != obj["ETag"]:
                    target = root / key
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_name(target.name + ".part")
                    s3.download_file(name, obj["Key"], str(tmp))
                    tmp.replace(target)
        (root / name).mkdir(parents=True, exist_ok=True)
    for key in set(seen) - set(live):
        (root / key).unlink(missing_ok=True)
    seen.clear()
    seen.update(live)


def serve(port: int, root: Path, sync_s: float = 2.0, host: str = "127.0.0.1") -> None:
    from moto.server import ThreadedMotoServer

    root.mkdir(parents=True, exist_ok=True)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    endpoint = f"http://{host}:{port}"
    loaded = load(root, endpoint)
    seen: dict[str, str] = {}
    mirror(root, endpoint, seen)
    log.info("dev adapter store on %s (root %s, %d objects loaded)", endpoint, root, loaded)
    print(f"dev store ready on {endpoint} root={root} objects={loaded}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(sync_s):
        try:
            mirror(root, endpoint, seen)
        except Exception:  # keep serving; the next round retries
            log.exception("dev store mirror failed")
    mirror(root, endpoint, seen)
    server.stop()


def dev_env(endpoint: str) -> dict[str, str]:
    """Env for processes that talk to the dev store (boto3 and Ray's downloader)."""
    return {**DEV_CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}


def apply_dev_env(endpoint: str) -> None:
    for key, value in dev_env(endpoint).items():
        os.environ.setdefault(key, value)
