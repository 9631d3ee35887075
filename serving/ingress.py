"""The OpenAI ingress: Ray Serve LLM's `OpenAiIngress`, extended where it falls short.

Ray's ingress already speaks the protocol (vLLM's request models, SSE streaming, multiplexed
LoRA routing), and we keep all of that. Each request then passes through our steps in order:
  1. drain check: once SIGTERM has started a drain, new requests get a 503;
  2. resolution (`serving.routing`): `base`, `base:<adapter>` or an alias with A/B weights.
     Names are validated; adapters are checked against the store (an unknown one is a 404 that
     never echoes the store path, an unreachable store is a 503);
  3. admission (`serving.limits`): per-key token buckets, 429 with `Retry-After`;
  4. dispatch to the engine replicas. Replica failures are translated once (`_translate`);
  5. observation (`serving.observe`): metrics, the request log, quota settlement, and the
     `X-Model-Variant` header.
A background watcher polls the engine replicas (stats for `/metrics`, health for `/ready` and for
fast 503s while every engine is down) and the drain control actor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import HTTPException, Request
from ray import serve
from ray.llm._internal.serve.core.configs.openai_api_models import OpenAIHTTPException
from ray.llm._internal.serve.core.ingress.ingress import OpenAiIngress
from starlette.responses import JSONResponse, Response
from vllm.entrypoints.generate.base.protocol import StreamOptions

from serving import control
from serving.config import ServingConfig
from serving.errors import (
    InvalidRequest,
    ModelNotFound,
    RateLimited,
    ServiceUnavailable,
    ServingError,
)
from serving.limits import RateLimiter, estimate_tokens
from serving.metrics import UNRESOLVED, Metrics
from serving.observe import Observer, RequestRecord
from serving.protocol import ChatRequest, CompletionsRequest
from serving.routing import Route, route_alias, validate_table
from serving.store import AdapterCatalog, AdapterStore, StoreUnavailable, valid_adapter_name

log = logging.getLogger("serving.ingress")

WATCH_INTERVAL_S = 0.5
STATS_INTERVAL_S = 2.0
STATS_TIMEOUT_S = 3.0
ENGINE_DOWN_AFTER = 2  # consecutive failed polls (with nothing in flight) before fast 503s
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def _translate(exc: BaseException, model: str | None) -> ServingError | OpenAIHTTPException:
    """Map an exception from the LLM replica (often wrapped by Ray) to a client-facing error."""
    cause: BaseException | None = exc
    for _ in range(4):  # RayTaskError -> cause -> ...
        if isinstance(cause, ServingError | OpenAIHTTPException):
            return cause
        if isinstance(cause, HTTPException) and cause.status_code == 404:
            return ModelNotFound(f"The model `{model}` does not exist.")
        nxt = (getattr(cause, "cause", None) or cause.__cause__) if cause else None
        if nxt is None or nxt is cause:
            break
        cause = nxt
    if isinstance(exc, asyncio.TimeoutError):
        return ServiceUnavailable(
            "No engine replica answered in time; the request was cancelled. Retry shortly.",
            headers={"Retry-After": "5"},
        )
    text = f"{type(exc).__name__} {type(cause).__name__}"
    if any(
        s in text
        for s in (
            "ActorDied",
            "ActorUnavailable",
            "RayActorError",
            "EngineDead",
            "EngineGenerateError",
            "BackPressure",
            "Unavailable",
        )
    ):
        return ServiceUnavailable(
            "The model server is restarting or overloaded; retry shortly.",
            headers={"Retry-After": "5"},
        )
    log.error("request for %s failed: %r", model, exc)
    return ServingError("Internal server error.")


class SupportIngress(OpenAiIngress):
    def __init__(
        self,
        llm_deployments: dict[str, Any],
        model_cards: dict[str, Any],
        *,
        lora_paths: dict[str, str] | None = None,
        settings: dict[str, Any],
    ) -> None:
        super().__init__(llm_deployments, model_cards, lora_paths=lora_paths)
        self.cfg = ServingConfig.model_validate(settings)
        self.base_id = self.cfg.model.id
        self.store = AdapterStore(self.cfg.store)
        self.catalog = AdapterCatalog(self.store, self.cfg.store.catalog_ttl_s)
        self.metrics = Metrics()
        lim = self.cfg.limits
        self.limiter = RateLimiter(
            lim.requests_per_minute,
            lim.tokens_per_minute,
            per_key={
                k: (v.requests_per_minute, v.tokens_per_minute) for k, v in lim.per_key.items()
            },
        )
        self.observer = Observer(
            self.metrics, log_requests=self.cfg.logging.requests, settle=self.limiter.settle
        )
        self.started = int(time.time())
        self.draining = False
        self.engine_failures = 0
        self._aliases: tuple[float, dict[str, dict[str, int]]] = (0.0, {})
        self._watcher: asyncio.Task[None] | None = None

    # -- background watcher ------------------------------------------------------------------
    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        replica = serve.get_replica_context().replica_id.unique_id
        ctl: Any = None
        last_stats = last_lookup = 0.0
        while True:
            try:
                if ctl is None and time.monotonic() - last_lookup > 5:  # no actor in KubeRay
                    last_lookup = time.monotonic()
                    ctl = await asyncio.to_thread(control.lookup)
                if ctl is not None:
                    self.draining = await ctl.report.remote(replica, self.observer.active)
            except Exception:
                ctl = None  # no driver (KubeRay) or actor gone: not draining
            if time.monotonic() - last_stats >= STATS_INTERVAL_S:
                last_stats = time.monotonic()
                await self._poll_engine()
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def _poll_engine(self) -> None:
        handle = self._default_serve_handles[self.base_id]
        try:
            snap = await asyncio.wait_for(handle.engine_stats.remote(), STATS_TIMEOUT_S)
            self.metrics.engine.snapshots[snap["replica"]] = {**snap, "at": time.monotonic()}
            self.engine_failures = 0
        except Exception as exc:
            if not isinstance(exc, asyncio.TimeoutError) or self.observer.active == 0:
                self.engine_failures += 1
            log.info(
                "engine poll failed (%d in a row): %s", self.engine_failures, type(exc).__name__
            )
        stale = [
            r for r, s in self.metrics.engine.snapshots.items() if time.monotonic() - s["at"] > 30
        ]
        for r in stale:
            del self.metrics.engine.snapshots[r]

    # -- resolution --------------------------------------------------------------------------
    async def aliases(self) -> dict[str, dict[str, int]]:
        fetched, table = self._aliases
        if time.monotonic() - fetched > self.cfg.store.catalog_ttl_s:
            table = dict(self.cfg.aliases)
            try:
                table.update(validate_table(await asyncio.to_thread(self.store.aliases)))
            except (StoreUnavailable, ValueError) as exc:
                log.warning("alias file unusable, using config aliases: %s", exc)
            self._aliases = (time.monotonic(), table)
        return table

    async def _adapter_exists(self, adapter: str) -> bool:
        try:
            return await asyncio.to_thread(self.catalog.get, adapter) is not None
        except StoreUnavailable as exc:
            log.warning("adapter store unavailable while resolving %s: %s", adapter, exc)
            raise ServiceUnavailable(
                "The adapter store is unavailable; base-model requests still work.",
                headers={"Retry-After": "10"},
            ) from None

    async def resolve(self, model: str | None, sticky_key: str | None = None) -> Route:
        if not model or model == self.base_id:
            return Route(self.base_id, None)
        base, sep, adapter = model.partition(":")
        if not sep and (targets := (await self.aliases()).get(model)):
            route = route_alias(model, targets, self.base_id, sticky_key)
            if route.adapter is None or await self._adapter_exists(route.adapter):
                return route
            raise ServiceUnavailable(f"Alias `{model}` points at a missing adapter.")
        if not sep or base != self.base_id:
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        if not valid_adapter_name(adapter):
            raise InvalidRequest(
                "Adapter names use only letters, digits, '.', '_' and '-' "
                "(at most 64, starting with a letter or digit).",
                code="invalid_model_name",
                param="model",
            )
        if not await self._adapter_exists(adapter):
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        return Route(model, adapter)

    # -- the request path --------------------------------------------------------------------
    async def _process_llm_request(
        self, body: Any, call_method: str, raw_request: Request | None = None
    ) -> Response:
        self._ensure_watcher()
        headers = raw_request.headers if raw_request is not None else {}
        route: Route | None = None
        try:
            self._check_open(body)
            route = await self.resolve(
                body.model, getattr(body, "user", None) or headers.get("x-session-id")
            )
            rec = self._admit(body, route, raw_request)
        except ServingError as exc:  # refused before dispatch: counted here, with what we know
            labels = (
                (self.base_id, route.adapter or "", route.variant)
                if route
                else (UNRESOLVED, UNRESOLVED, UNRESOLVED)
            )
            self.metrics.requests.labels(*labels, str(exc.status_code)).inc()
            raise
        self.observer.begin(rec)
        try:
            response = await asyncio.wait_for(
                super()._process_llm_request(body, call_method, raw_request),
                self.cfg.deployment.first_response_timeout_s,
            )
        except BaseException as exc:
            translated = _translate(exc, body.model) if isinstance(exc, Exception) else None
            if isinstance(translated, ModelNotFound) and self.catalog.known(route.adapter or ""):
                # The catalog lists it but the replica could not fetch it: the store is down.
                translated = ServiceUnavailable(
                    "The adapter store is unavailable; this adapter is not loaded yet.",
                    headers={"Retry-After": "10"},
                )
            rec.status = getattr(translated, "status_code", 499)
            self.observer.finish(rec)
            if translated is None or translated is exc:
                raise
            raise translated from None
        self.engine_failures = 0  # an engine answered
        return self.observer.observe(rec, response)  # streams stay counted until they end

    def _check_open(self, body: Any) -> None:
        if self.draining:
            raise ServiceUnavailable(
                "The server is shutting down; retry on another instance.",
                headers={"Retry-After": "1"},
            )
        if self.engine_failures >= ENGINE_DOWN_AFTER:
            raise ServiceUnavailable(
                "The model server is restarting; retry shortly.", headers={"Retry-After": "5"}
            )
        if (getattr(body, "n", None) or 1) > self.cfg.limits.max_n:
            raise InvalidRequest(f"n may be at most {self.cfg.limits.max_n}.", param="n")
        for i, message in enumerate(getattr(body, "messages", None) or []):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in CHAT_ROLES:
                raise InvalidRequest(
                    f"messages[{i}].role must be one of {sorted(CHAT_ROLES)}.",
                    param=f"messages.{i}.role",
                )

    def _admit(self, body: Any, route: Route, raw_request: Request | None) -> RequestRecord:
        """Quota check, then the record that follows the request; rewrites `body` for dispatch."""
        body.model = route.model_id
        state = raw_request.scope.get("state", {}) if raw_request is not None else {}
        client = raw_request.client.host if raw_request and raw_request.client else "anonymous"
        key = state.get("key_id") or client
        estimate = estimate_tokens(body, self.cfg.limits.default_max_tokens)
        try:
            self.limiter.admit(key, estimate)
        except RateLimited as exc:
            self.metrics.rate_limited.labels(exc.code.removeprefix("rate_limit_")).inc()
            raise
        rid = raw_request.headers.get("x-request-id", "-") if raw_request is not None else "-"
        rec = RequestRecord(
            request_id=rid,
            key_id=key,
            route=route,
            base_id=self.base_id,
            stream=bool(body.stream),
            estimate=estimate,
        )
        if body.stream:  # always ask for usage (metrics, quotas); hide it if the client did not
            opts = body.stream_options
            rec.strip_usage = not (opts and opts.include_usage)
            body.stream_options = (
                StreamOptions(include_usage=True)
                if opts is None
                else opts.model_copy(update={"include_usage": True})
            )
        if self.cfg.logging.log_prompts:
            rec.prompt = getattr(body, "messages", None) or getattr(body, "prompt", None)
        return rec

    # -- routes (bound to paths in serving/app.py) ---------------------------------------------
    # FastAPI validates against the annotation: ours are the hardened subclasses (protocol.py).
    async def chat(self, body: ChatRequest, request: Request) -> Response:  # type: ignore[override]
        return await self._process_llm_request(body, "chat", request)

    async def completions(  # type: ignore[override]
        self, body: CompletionsRequest, request: Request
    ) -> Response:
        return await self._process_llm_request(body, "completions", request)

    def _entry(self, model_id: str, created: int, parent: str | None) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": "supportserve",
            "root": model_id,
            "parent": parent,
            "max_model_len": self.cfg.model.max_model_len,
        }

    async def list_models(self) -> JSONResponse:
        data = [self._entry(self.base_id, self.started, None)]
        try:
            adapters = await asyncio.to_thread(self.catalog.all)
        except StoreUnavailable as exc:
            log.warning("adapter store unavailable while listing models: %s", exc)
            adapters = []
        data += [
            self._entry(self.cfg.adapter_id(a.name), a.created, self.base_id) for a in adapters
        ]
        for alias, targets in sorted((await self.aliases()).items()):
            data.append({**self._entry(alias, self.started, self.base_id), "alias_of": targets})
        return JSONResponse({"object": "list", "data": data})

    async def retrieve_model(self, model: str) -> JSONResponse:
        route = await self.resolve(model)
        return JSONResponse(
            self._entry(
                model, self.started, None if route.model_id == self.base_id else self.base_id
            )
        )

    async def health(self) -> JSONResponse:
        self._ensure_watcher()
        return JSONResponse({"status": "ok"})

    async def ready(self) -> JSONResponse:
        self._ensure_watcher()
        if self.draining:
            raise ServiceUnavailable("The server is draining.")
        handle = self._default_serve_handles[self.base_id]
        try:
            await asyncio.wait_for(handle.check_health.remote(), STATS_TIMEOUT_S)
        except Exception as exc:
            log.info("not ready: %s", type(exc).__name__)
            raise ServiceUnavailable("The engine is not ready.") from None
        self.engine_failures = 0  # healthy now: stop fast-failing before the next poll says so
        return JSONResponse({"status": "ready", "model": self.base_id})

    async def metrics_endpoint(self) -> Response:
        self._ensure_watcher()
        await self._poll_engine()
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def engine_stats(self) -> JSONResponse:
        """Admin view of one engine replica's live state (behind the API key)."""
        handle = self._default_serve_handles[self.base_id]
        return JSONResponse(await asyncio.wait_for(handle.engine_stats.remote(), STATS_TIMEOUT_S))

    async def serve_status(self) -> JSONResponse:
        """Serve's own status API, asked from inside the cluster (behind the API key)."""
        return JSONResponse(await asyncio.to_thread(control.serve_status))
