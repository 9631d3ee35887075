"""The OpenAI ingress: Ray Serve LLM's `OpenAiIngress`, extended where it falls short.

Ray's ingress already speaks the protocol (vLLM's request models, SSE streaming, multiplexed
LoRA routing); we keep all of that and change three things:

* model resolution: names are validated (safe characters, no traversal) and checked against the
  adapter store *before* Ray tries to download anything, so an unknown adapter is a clean 404 and
  never echoes the store path, and an unreachable store is a 503, not "unknown model";
* `/v1/models` lists the base and every servable adapter with `parent` and `created`;
* errors: everything raised here is a `ServingError`, and failures that come back from the LLM
  replicas are translated once (`_translate`) into 404/503/500 without internals.

Liveness (`/health`) is the ingress itself; readiness (`/ready`) asks an engine replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import HTTPException, Request
from ray.llm._internal.serve.core.configs.openai_api_models import (
    ChatCompletionRequest,
    CompletionRequest,
    OpenAIHTTPException,
)
from ray.llm._internal.serve.core.ingress.ingress import OpenAiIngress
from starlette.responses import JSONResponse, Response

from serving.config import ServingConfig
from serving.errors import InvalidRequest, ModelNotFound, ServiceUnavailable, ServingError
from serving.store import AdapterCatalog, AdapterStore, StoreUnavailable, valid_adapter_name

log = logging.getLogger("serving.ingress")

READY_TIMEOUT_S = 5.0


def _translate(exc: BaseException, model: str | None) -> ServingError | OpenAIHTTPException:
    """Map an exception from the LLM replica (often wrapped by Ray) to a client-facing error."""
    cause: BaseException | None = exc
    for _ in range(4):  # RayTaskError -> cause -> ...
        if isinstance(cause, ServingError | OpenAIHTTPException):
            return cause
        if isinstance(cause, HTTPException) and cause.status_code == 404:
            return ModelNotFound(f"The model `{model}` does not exist.")
        nxt = getattr(cause, "cause", None) or cause.__cause__ if cause else None
        if nxt is None or nxt is cause:
            break
        cause = nxt
    name = type(exc).__name__
    if any(
        s in name
        for s in (
            "ActorDied",
            "ActorUnavailable",
            "RayActorError",
            "EngineDead",
            "EngineGenerateError",
            "BackPressure",
        )
    ):
        return ServiceUnavailable(
            "The model server is restarting or overloaded; retry shortly.",
            headers={"Retry-After": "5"},
        )
    log.error("request for %s failed: %s", model, exc)
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
        self.catalog = AdapterCatalog(AdapterStore(self.cfg.store), self.cfg.store.catalog_ttl_s)
        self.started = int(time.time())

    # -- model resolution ------------------------------------------------------------------
    async def resolve(self, model: str | None) -> str:
        if not model or model == self.base_id:
            return self.base_id
        base, sep, adapter = model.partition(":")
        if not sep or base != self.base_id:
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        if not valid_adapter_name(adapter):
            raise InvalidRequest(
                "Adapter names use only letters, digits, '.', '_' and '-' "
                "(at most 64, starting with a letter or digit).",
                code="invalid_model_name",
                param="model",
            )
        try:
            info = await asyncio.to_thread(self.catalog.get, adapter)
        except StoreUnavailable as exc:
            log.warning("adapter store unavailable while resolving %s: %s", adapter, exc)
            raise ServiceUnavailable(
                "The adapter store is unavailable; base-model requests still work.",
                headers={"Retry-After": "10"},
            ) from None
        if info is None:
            raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
        return model

    async def _process_llm_request(
        self, body: Any, call_method: str, raw_request: Request | None = None
    ) -> Response:
        body.model = await self.resolve(body.model)
        try:
            return await super()._process_llm_request(body, call_method, raw_request)
        except (ServingError, OpenAIHTTPException):
            raise
        except Exception as exc:
            raise _translate(exc, body.model) from None

    # -- routes (bound to paths in serving/app.py) -----------------------------------------
    async def chat(self, body: ChatCompletionRequest, request: Request) -> Response:
        return await self._process_llm_request(body, "chat", request)

    async def completions(self, body: CompletionRequest, request: Request) -> Response:
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
        return JSONResponse({"object": "list", "data": data})

    async def retrieve_model(self, model: str) -> JSONResponse:
        resolved = await self.resolve(model)
        if resolved == self.base_id:
            return JSONResponse(self._entry(self.base_id, self.started, None))
        info = await asyncio.to_thread(self.catalog.get, resolved.partition(":")[2])
        created = info.created if info else self.started
        return JSONResponse(self._entry(resolved, created, self.base_id))

    async def health(self) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(self) -> JSONResponse:
        handle = self._default_serve_handles[self.base_id]
        try:
            await asyncio.wait_for(handle.check_health.remote(), READY_TIMEOUT_S)
        except Exception as exc:
            log.info("not ready: %s", type(exc).__name__)
            raise ServiceUnavailable("The engine is not ready.") from None
        return JSONResponse({"status": "ready", "model": self.base_id})
