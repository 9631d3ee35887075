"""API-key authentication for every `/v1` and `/admin` route (pure ASGI middleware).

Design: keys come from one env var (comma-separated, `API_KEYS` by default), read when the
replica starts, so they never travel through the Serve config, the Ray dashboard or the chart's
values. A request must send `Authorization: Bearer <key>`; comparison is constant-time over the
SHA-256 of the token against *every* key (no early exit, no length oracle). Downstream code sees
only a key *id* (the first 12 hex digits of the key's SHA-256) for quotas and logs, never the key.
With no keys configured the server is open, and says so once in its log.
`/health`, `/ready` and `/metrics` stay open: probes and scrapers carry no secrets, and the
chart's NetworkPolicy keeps them inside the cluster (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import error_body

log = logging.getLogger(__name__)

PROTECTED_PREFIXES = ("/v1", "/admin")


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_keys(raw: str) -> list[str]:
    return [k.strip() for k in raw.split(",") if k.strip()]


class KeyRing:
    def __init__(self, keys: list[str]) -> None:
        self._digests = [(hashlib.sha256(k.encode()).digest(), key_id(k)) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def match(self, token: str | None) -> str | None:
        """Return the key id for a valid token, else None; constant time in the token."""
        probe = hashlib.sha256((token or "").encode()).digest()
        found: str | None = None
        for digest, kid in self._digests:
            if hmac.compare_digest(probe, digest) and token:
                found = kid
        return found


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, env_var: str = "API_KEYS") -> None:
        self.app = app
        self.ring = KeyRing(parse_keys(os.environ.get(env_var, "")))
        if not self.ring.enabled:
            log.warning(
                "no API keys in $%s: /v1 routes are open to anyone who can reach them", env_var
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.ring.enabled:
            kid = self.ring.match(bearer_token(scope.get("headers", [])))
            if kid is None:
                await _reject(send)
                return
            scope.setdefault("state", {})["key_id"] = kid
        await self.app(scope, receive, send)


async def _reject(send: Send) -> None:
    import json

    body = json.dumps(
        error_body(
            401,
            "Invalid or missing API key. Send `Authorization: Bearer <key>`.",
            code="invalid_api_key",
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="supportserve"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
