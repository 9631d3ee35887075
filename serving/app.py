"""The builder: validated `ServingConfig` -> Ray Serve application.

    import_path: serving.app:build_app      # Serve YAML / KubeRay serveConfigV2
    args: {model: ..., store: ..., ...}      # exactly ServingConfig

Design: as `ray.serve.llm.build_openai_app` does, we validate first and wire second. We reuse
Ray's own pieces for the engine side (`LLMConfig`, `build_llm_deployment`, the multiplexed LoRA
loader) and put our ingress (`serving.ingress.SupportIngress`) in front, on a FastAPI app that we
own: our error handlers, API-key middleware, and no permissive CORS (Ray's default app allows
every origin). The route table below is the whole HTTP surface.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from serving.auth import ApiKeyMiddleware
from serving.config import ServingConfig
from serving.errors import install_error_handlers
from serving.limits import BodyLimitMiddleware

ROUTES: dict[str, Callable[[FastAPI], Callable[..., Any]]] = {
    "list_models": lambda app: app.get("/v1/models"),
    "retrieve_model": lambda app: app.get("/v1/models/{model:path}"),
    "chat": lambda app: app.post("/v1/chat/completions"),
    "completions": lambda app: app.post("/v1/completions"),
    "health": lambda app: app.get("/health"),
    "ready": lambda app: app.get("/ready"),
    "metrics_endpoint": lambda app: app.get("/metrics"),
    "engine_stats": lambda app: app.get("/admin/engine"),
    "serve_status": lambda app: app.get("/admin/status"),
}


def create_fastapi_app(cfg: ServingConfig) -> FastAPI:
    """Middleware runs outside-in: body limit, then keys, then (only if configured) CORS."""
    app = FastAPI(title="supportserve", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    if cfg.cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.cors.allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Session-ID"],
        )
    app.add_middleware(ApiKeyMiddleware, env_var=cfg.auth.api_keys_env)
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.limits.max_body_bytes)
    return app


def build_app(args: dict[str, Any] | ServingConfig, base_dir: Path | None = None) -> Any:
    """Serve builder: validate `args` as a `ServingConfig`, return the bound application."""
    from ray import serve
    from ray.llm._internal.serve.core.configs.openai_api_models import to_model_metadata
    from ray.llm._internal.serve.core.ingress.ingress import make_fastapi_ingress
    from ray.serve.llm import LLMConfig, build_llm_deployment

    from serving.engine import SupportLLMServer
    from serving.ingress import SupportIngress

    cfg = args if isinstance(args, ServingConfig) else ServingConfig.model_validate(args)
    llm_config = LLMConfig.model_validate(cfg.to_llm_config(base_dir or Path.cwd()))
    engine = build_llm_deployment(llm_config, deployment_cls=SupportLLMServer)
    ingress_cls = make_fastapi_ingress(
        SupportIngress, endpoint_map=ROUTES, app=create_fastapi_app(cfg)
    )
    options = copy.deepcopy(SupportIngress.get_deployment_options([llm_config]))
    options["ray_actor_options"] = {"num_cpus": 0.5, "runtime_env": {"env_vars": cfg.store_env()}}
    deployment: Any = serve.deployment(ingress_cls, name="OpenAiIngress", **options)
    return deployment.bind(
        llm_deployments={cfg.model.id: engine},
        model_cards={cfg.model.id: to_model_metadata(cfg.model.id, llm_config)},
        lora_paths={cfg.model.id: cfg.store.uri},
        settings=cfg.model_dump(mode="json"),
    )
