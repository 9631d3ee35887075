"""The one serving configuration: YAML -> pydantic -> Ray Serve LLM's `LLMConfig`.

Design: the same document travels from Helm values (`serveConfigV2.applications[].args`) or a
local YAML file to `serving.app.build_app`, which validates it here and only then touches Ray.
Every model is `extra="forbid"`, so a misspelt key fails at deploy time with its path, never at
3 a.m. as a silently ignored default. We own the product-level knobs (store, auth, limits,
aliases, autoscaling) and pass engine tuning through to vLLM untouched in `model.engine_kwargs`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    id: str = Field("base", description="Model id clients send; adapters are `<id>:<adapter>`.")
    source: str = Field(description="Local folder or Hugging Face id of the base model.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    max_model_len: PositiveInt = 4096
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Passed to vLLM's engine args untouched."
    )

    @field_validator("id")
    @classmethod
    def _id_is_a_name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("model id must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} (no ':' or '/')")
        return value

    def resolved_source(self, base_dir: Path) -> str:
        """Local paths become absolute (Ray workers do not share our cwd); hub ids pass through."""
        looks_local = (
            self.source.startswith(("/", "./", "../", "~"))
            or "/" not in self.source
            or (base_dir / self.source).exists()
        )
        if not looks_local:
            return self.source
        path = (base_dir / Path(self.source).expanduser()).resolve()
        if not path.is_dir():
            raise ValueError(
                f"model.source {self.source!r} is not a folder; for the default "
                "SmolLM2 base run `make base-model` (python -m finetune base-model)"
            )
        return str(path)


class StoreConfig(_Strict):
    uri: str = Field(
        description="Adapter store prefix, s3://bucket/prefix (S3, MinIO, GCS interop)."
    )
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, dev store).")
    region: str = "us-east-1"
    catalog_ttl_s: float = Field(10.0, ge=0, description="How long an adapter listing is reused.")

    @field_validator("uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/[A-Za-z0-9._/-]*)?$", value):
            raise ValueError(
                "store.uri must look like s3://bucket/prefix (for GCS use its S3 "
                "interoperability endpoint: endpoint_url=https://storage.googleapis.com)"
            )
        return value.rstrip("/")

    @property
    def bucket(self) -> str:
        return self.uri.split("/", 3)[2]

    @property
    def prefix(self) -> str:
        parts = self.uri.split("/", 3)
        return parts[3].strip("/") + "/" if len(parts) > 3 and parts[3].strip("/") else ""


class LoraSettings(_Strict):
    max_adapters_per_replica: PositiveInt = Field(4, description="Per-replica LRU size.")
    max_lora_rank: PositiveInt = 16
    download_timeout_s: float = Field(60.0, gt=0)


class AutoscalingConfig(_Strict):
    min_replicas: int = Field(1, ge=0)
    initial_replicas: int | None = Field(None, ge=0)
    max_replicas: PositiveInt = 1
    target_ongoing_requests: float = Field(16, gt=0)
    upscale_delay_s: float = Field(10.0, ge=0)
    downscale_delay_s: float = Field(60.0, ge=0)
    metrics_interval_s: float = Field(2.0, gt=0)
    look_back_period_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.min_replicas must be <= max_replicas")
        if self.initial_replicas is not None and not (
            self.min_replicas <= self.initial_replicas <= self.max_replicas
        ):
            raise ValueError(
                "autoscaling.initial_replicas must lie in [min_replicas, max_replicas]"
            )
        return self

    def to_serve(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        return out


class DeploymentSpec(_Strict):
    accelerator: Literal["cpu", "gpu"] = "gpu"
    accelerator_type: str | None = Field(None, description="Ray accelerator type, e.g. H100.")
    cpus_per_replica: float = Field(1, gt=0)
    gpus_per_replica: int = Field(1, ge=0)
    max_ongoing_requests: PositiveInt = 64
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    stream_batching_interval_ms: float = Field(
        0, ge=0, description="Ray Serve LLM batches stream chunks (default 50 ms); 0 sends each."
    )
    graceful_shutdown_timeout_s: float = Field(
        30, ge=0, description="How long in-flight requests may run on drain or scale-down."
    )
    health_check_period_s: float = Field(5, gt=0, description="Engine health-check interval.")
    health_check_timeout_s: float = Field(10, gt=0, description="A check slower than this fails.")
    ingress_replicas: PositiveInt = Field(1, description="HTTP ingress replicas (cheap, CPU only).")
    first_response_timeout_s: float = Field(
        120, gt=0, description="No first token (or error) by then: 503, and the request is aborted."
    )

    @model_validator(mode="after")
    def _gpu_count(self) -> DeploymentSpec:
        if self.accelerator == "gpu" and self.gpus_per_replica < 1:
            raise ValueError("deployment.gpus_per_replica must be >= 1 when accelerator is gpu")
        if self.accelerator == "cpu" and self.accelerator_type:
            raise ValueError("deployment.accelerator_type only applies to accelerator: gpu")
        return self


class AuthConfig(_Strict):
    api_keys_env: str = Field("API_KEYS", description="Env var with comma-separated keys.")


class KeyLimits(_Strict):
    requests_per_minute: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None


class LimitsConfig(_Strict):
    requests_per_minute: PositiveInt | None = Field(None, description="Per API key; None = off.")
    tokens_per_minute: PositiveInt | None = Field(
        None, description="Per API key, prompt + completion tokens; None = off."
    )
    per_key: dict[str, KeyLimits] = Field(
        default_factory=dict,
        description="Overrides by key id (the 12-hex id in request logs; never the key itself).",
    )
    max_body_bytes: PositiveInt = Field(1_048_576, description="Larger bodies get 413.")
    max_n: PositiveInt = Field(8, description="Most choices (`n`) one request may ask for.")
    default_max_tokens: PositiveInt = Field(
        256, description="Completion budget assumed at admission when a request sets none."
    )


class LoggingConfig(_Strict):
    requests: bool = Field(True, description="One structured JSON line per request.")
    log_prompts: bool = Field(False, description="Include prompt text (off: PII).")


class CorsConfig(_Strict):
    allow_origins: list[str] = Field(default_factory=list, description="Empty = CORS off.")


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)


class ServingConfig(_Strict):
    model: ModelSpec
    store: StoreConfig
    lora: LoraSettings = Field(default_factory=LoraSettings)
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    cors: CorsConfig = Field(default_factory=CorsConfig)
    aliases: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="alias -> {adapter or 'base': weight}; the store's _aliases.json wins.",
    )
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        from serving.routing import validate_table

        return validate_table(value)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ServingConfig:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a YAML mapping at the top level")
        return cls.model_validate(data)

    def adapter_id(self, adapter: str) -> str:
        return f"{self.model.id}:{adapter}"

    def store_env(self) -> dict[str, str]:
        """Env the replicas need to reach the store (Ray's downloader and our catalog)."""
        env = {"AWS_DEFAULT_REGION": self.store.region}
        if self.store.endpoint_url:
            env["AWS_ENDPOINT_URL_S3"] = self.store.endpoint_url
        return env

    def to_llm_config(self, base_dir: Path = Path(".")) -> dict[str, Any]:
        """The `LLMConfig` dict for Ray Serve LLM (validated by Ray in `build_app`)."""
        dep = self.deployment
        engine = {
            "dtype": self.model.dtype,
            "max_model_len": self.model.max_model_len,
            "enable_lora": True,
            "max_lora_rank": self.lora.max_lora_rank,
            "max_loras": self.lora.max_adapters_per_replica,
            **self.model.engine_kwargs,
        }
        cfg: dict[str, Any] = {
            "model_loading_config": {
                "model_id": self.model.id,
                "model_source": self.model.resolved_source(base_dir),
            },
            "engine_kwargs": engine,
            "lora_config": {
                "dynamic_lora_loading_path": self.store.uri,
                "max_num_adapters_per_replica": self.lora.max_adapters_per_replica,
                "download_timeout_s": self.lora.download_timeout_s,
            },
            "deployment_config": {
                "autoscaling_config": dep.autoscaling.to_serve(),
                "max_ongoing_requests": dep.max_ongoing_requests,
                "graceful_shutdown_timeout_s": dep.graceful_shutdown_timeout_s,
                "health_check_period_s": dep.health_check_period_s,
                "health_check_timeout_s": dep.health_check_timeout_s,
            },
            "experimental_configs": {
                "stream_batching_interval_ms": dep.stream_batching_interval_ms
            },
            "runtime_env": {"env_vars": self.store_env()},
            "log_engine_metrics": True,
        }
        if dep.accelerator == "cpu":
            cfg["placement_group_config"] = {"bundles": [{"CPU": dep.cpus_per_replica}]}
        else:
            engine.setdefault("tensor_parallel_size", dep.gpus_per_replica)
            if engine["tensor_parallel_size"] != dep.gpus_per_replica:
                raise ValueError(
                    "model.engine_kwargs.tensor_parallel_size must equal "
                    "deployment.gpus_per_replica"
                )
            bundle = {"GPU": 1, "CPU": dep.cpus_per_replica}
            cfg["placement_group_config"] = {"bundles": [bundle] * dep.gpus_per_replica}
            if dep.accelerator_type:
                cfg["accelerator_type"] = dep.accelerator_type
        return cfg
