"""The adapter store: a prefix in an S3-compatible bucket, one folder per adapter.

    s3://<bucket>/<prefix>/<adapter>/adapter_config.json     peft adapter (what vLLM loads)
    s3://<bucket>/<prefix>/<adapter>/adapter_model.safetensors
    s3://<bucket>/<prefix>/<adapter>/card.json               our adapter card (finetune/publish.py)
    s3://<bucket>/<prefix>/_aliases.json                     alias -> version(s) (A/B splits)

Design: Ray Serve LLM downloads adapters itself (boto3 under `dynamic_lora_loading_path`), but its
helpers turn every store failure into "missing". We need to tell "no such adapter" (404) from
"store unreachable" (503), so this client raises `StoreUnavailable` on transport errors and returns
None only for objects that really are absent. Everything speaks the S3 API: AWS S3, MinIO, the
loopback dev store, and Google Cloud Storage through its S3-interoperable endpoint
(`endpoint_url: https://storage.googleapis.com` with HMAC keys).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.config import NAME_RE, StoreConfig

log = logging.getLogger(__name__)

ALIASES_FILE = "_aliases.json"
CARD_FILE = "card.json"
REQUIRED_FILES = ("adapter_config.json",)


class StoreUnavailable(Exception):
    """The store could not be reached or refused us; says nothing about whether a key exists."""


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    created: int  # unix seconds: the card's date, else the adapter_config upload time


def valid_adapter_name(name: str) -> bool:
    return bool(NAME_RE.match(name)) and ".." not in name


class AdapterStore:
    def __init__(
        self,
        cfg: StoreConfig,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 10.0,
        retries: int = 1,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.cfg = cfg
        self._client = boto3.client(
            "s3",
            endpoint_url=cfg.endpoint_url,
            region_name=cfg.region,
            config=Config(
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
                retries={"max_attempts": retries, "mode": "standard"},
            ),
        )

    # -- reading -----------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return self.cfg.prefix + "/".join(parts)

    def _call(self, fn: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, fn)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise StoreUnavailable(f"adapter store refused {fn}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"adapter store unreachable: {type(exc).__name__}") from exc

    def list_adapters(self) -> list[AdapterInfo]:
        """Every adapter folder with an adapter_config.json, with its creation time."""
        found: dict[str, int] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.cfg.bucket, "Prefix": self.cfg.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            if page is None:  # the bucket itself is missing: nothing published yet
                return []
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(self.cfg.prefix) :]
                name, _, filename = rest.partition("/")
                if filename == "adapter_config.json" and valid_adapter_name(name):
                    found[name] = int(obj["LastModified"].timestamp())
            token = page.get("NextContinuationToken")
            if not token:
                break
        return [AdapterInfo(n, c) for n, c in sorted(found.items())]

    def read_json(self, *parts: str) -> Any | None:
        obj = self._call("get_object", Bucket=self.cfg.bucket, Key=self._key(*parts))
        if obj is None:
            return None
        try:
            return json.loads(obj["Body"].read())
        except ValueError as exc:
            raise StoreUnavailable(f"{'/'.join(parts)} in the store is not valid JSON") from exc

    def card(self, name: str) -> dict[str, Any] | None:
        return self.read_json(name, CARD_FILE)

    def aliases(self) -> dict[str, Any]:
        return self.read_json(ALIASES_FILE) or {}

    # -- writing (used by finetune/publish.py and the dev store seeding) ----------------------
    def ensure_bucket(self) -> None:
        if self._call("head_bucket", Bucket=self.cfg.bucket) is None:
            self._call("create_bucket", Bucket=self.cfg.bucket)

    def put_json(self, obj: Any, *parts: str) -> None:
        body = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        self._call(
            "put_object",
            Bucket=self.cfg.bucket,
            Key=self._key(*parts),
            Body=body,
            ContentType="application/json",
        )

    def upload_adapter(self, folder: Path, name: str) -> list[str]:
        """Upload an adapter folder; adapter_config.json goes last so readers never see half."""
        if not valid_adapter_name(name):
            raise ValueError(f"invalid adapter name {name!r}")
        files = sorted(p for p in folder.rglob("*") if p.is_file() and "checkpoint-" not in str(p))
        names = {p.relative_to(folder).as_posix() for p in files}
        missing = [f for f in REQUIRED_FILES if f not in names]
        if missing:
            raise ValueError(f"{folder} is not a peft adapter: missing {missing}")
        files.sort(key=lambda p: p.name == "adapter_config.json")
        uploaded = []
        for path in files:
            key = self._key(name, path.relative_to(folder).as_posix())
            self._call("upload_file", Filename=str(path), Bucket=self.cfg.bucket, Key=key)
            uploaded.append(key)
        return uploaded

    def download_adapter(self, name: str, dest: Path) -> Path:
        if not valid_adapter_name(name):
            raise ValueError(f"invalid adapter name {name!r}")
        prefix = self._key(name) + "/"
        page = self._call("list_objects_v2", Bucket=self.cfg.bucket, Prefix=prefix) or {}
        for obj in page.get("Contents", []):
            target = dest / obj["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            self._call(
                "download_file", Bucket=self.cfg.bucket, Key=obj["Key"], Filename=str(target)
            )
        if not (dest / "adapter_config.json").is_file():
            raise FileNotFoundError(f"adapter {name!r} is not in the store")
        return dest

    def exists(self, name: str) -> bool:
        head = self._call(
            "head_object", Bucket=self.cfg.bucket, Key=self._key(name, "adapter_config.json")
        )
        return head is not None


class AdapterCatalog:
    """A TTL cache over `list_adapters` (per ingress replica).

    A miss refreshes at most once per `min_refresh_s`, so a flood of unknown names cannot hammer
    the store. When the store is down, names from the last good listing still resolve (those
    adapters may be loaded on a replica and keep serving); anything else raises
    `StoreUnavailable`."""

    def __init__(self, store: AdapterStore, ttl_s: float, min_refresh_s: float = 1.0) -> None:
        self._store, self._ttl, self._min_refresh = store, ttl_s, min_refresh_s
        self._items: dict[str, AdapterInfo] = {}
        self._fetched = 0.0
        self.stale = False

    def _refresh(self, name: str | None = None) -> None:
        try:
            self._items = {a.name: a for a in self._store.list_adapters()}
            self.stale = False
        except StoreUnavailable:
            self._fetched = time.monotonic()  # back off for one TTL, keep the last listing
            self.stale = True
            if name is None or name not in self._items:
                raise
            return
        self._fetched = time.monotonic()

    def all(self) -> list[AdapterInfo]:
        if time.monotonic() - self._fetched > self._ttl:
            self._refresh()
        return list(self._items.values())

    def get(self, name: str) -> AdapterInfo | None:
        age = time.monotonic() - self._fetched
        if age > self._ttl or (name not in self._items and age > self._min_refresh):
            self._refresh(name)
        elif self.stale and name not in self._items:
            raise StoreUnavailable("adapter store unavailable (last listing failed)")
        return self._items.get(name)

    def known(self, name: str) -> bool:
        return name in self._items
