"""The engine replica: Ray Serve LLM's `LLMServer`, plus live stats and a real adapter LRU.

Ray keeps a per-replica LRU of adapters (`serve.multiplexed`). When that LRU evicts one, it calls
`__del__` on the loaded object. Ray's object is a plain config, so the adapter stays registered in
vLLM and in the engine's LoRA cache. We return a handle whose `__del__` unregisters the adapter
from vLLM's OpenAI layer and removes it from the engine, and we count loads and evictions.
Registering an adapter with vLLM is serialised per adapter: Ray's check-then-load lets two
concurrent first requests both try, and the loser gets a 500 (seen in our soak).

`engine_stats()` is what `/metrics` and the cancellation checks read: the scheduler's running,
waiting and KV-cache figures, taken from a stat logger we attach to vLLM's logger manager. The
scheduler reports after every step, so an aborted request leaves these counts within one step.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve
from ray.llm._internal.serve.utils.lora_serve_utils import LoraModelLoader
from ray.serve.llm.deployment import LLMServer

log = logging.getLogger("serving.engine")


class _LiveStats:
    """A duck-typed vLLM stat logger that keeps the latest scheduler figures."""

    def __init__(self) -> None:
        self.running = self.waiting = 0
        self.kv_cache_usage = 0.0

    def record(self, scheduler_stats: Any, iteration_stats: Any = None, **_: Any) -> None:
        if scheduler_stats is not None:
            self.running = scheduler_stats.num_running_reqs
            self.waiting = scheduler_stats.num_waiting_reqs
            self.kv_cache_usage = scheduler_stats.kv_cache_usage

    def record_sleep_state(self, *_: Any) -> None: ...

    def log(self) -> None: ...

    def log_engine_initialized(self) -> None: ...


class _LoadedAdapter:
    """What the multiplex LRU holds; eviction (`__del__`) unloads it from vLLM, exactly once.

    Ray's multiplexer calls a sync `__del__` in a worker thread when it evicts; the garbage
    collector may call it again later, so the first call schedules the unload on the replica's
    event loop and later calls do nothing."""

    def __init__(
        self, disk: Any, server: SupportLLMServer, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.disk, self._server, self._loop, self._unloaded = disk, server, loop, False

    def __del__(self) -> None:
        if self._unloaded or self._loop.is_closed():
            return
        self._unloaded = True
        asyncio.run_coroutine_threadsafe(self._server._unload(self.disk), self._loop)


class SupportLLMServer(LLMServer):
    async def start(self) -> None:
        self.adapter_loads = self.adapter_evictions = 0
        self.live = _LiveStats()
        self.resolve_locks: dict[str, asyncio.Lock] = {}
        await super().start()
        manager = getattr(self._client(), "logger_manager", None)
        if manager is not None and hasattr(manager, "stat_loggers"):
            manager.stat_loggers.append(self.live)
        else:
            log.warning("vLLM logger manager not found: running/waiting figures unavailable")

    def _client(self) -> Any:
        return getattr(self.engine, "_engine_client", None)

    def _init_multiplex_loader(self, model_downloader_cls: Any = None) -> None:
        mx = self._llm_config.multiplex_config()
        if mx is None:
            super()._init_multiplex_loader(model_downloader_cls)
            return
        downloader = (model_downloader_cls or LoraModelLoader)(
            download_timeout_s=mx.download_timeout_s, max_tries=mx.max_download_tries
        )

        async def load(lora_model_id: str) -> _LoadedAdapter:
            disk = await downloader.load_model_from_config(
                lora_model_id=lora_model_id, llm_config=self._llm_config
            )
            self.adapter_loads = getattr(self, "adapter_loads", 0) + 1
            return _LoadedAdapter(disk, self, asyncio.get_running_loop())

        self._load_model = serve.multiplexed(
            max_num_models_per_replica=mx.max_num_models_per_replica
        )(load)

    async def _maybe_resolve_lora_from_multiplex(self) -> None:
        model_id = serve.get_multiplexed_model_id()
        if model_id:
            if self.engine is None:
                raise RuntimeError("engine not started")
            loaded = await self._load_model(model_id)
            # Ray's resolve_lora checks "already loaded" and then awaits the load: two first
            # requests for one adapter both pass the check and the second fails. Serialise it.
            async with self.resolve_locks.setdefault(model_id, asyncio.Lock()):
                await self.engine.resolve_lora(loaded.disk)

    async def _unload(self, disk: Any) -> None:
        self.adapter_evictions += 1
        try:
            from vllm.entrypoints.serve.lora.protocol import UnloadLoRAAdapterRequest

            models = getattr(self.engine, "_oai_models", None)
            if models is not None and disk.model_id in models.lora_requests:
                await models.unload_lora_adapter(UnloadLoRAAdapterRequest(lora_name=disk.model_id))
            client = self._client()
            if client is not None:
                await client.remove_lora(disk.lora_assigned_int_id)
        except Exception:  # eviction must never take the replica down
            log.exception("unloading adapter %s failed", disk.model_id)

    async def engine_stats(self) -> dict[str, Any]:
        """Live figures; raises if the engine is dead (the ingress counts that as down)."""
        await self.check_health()
        live = getattr(self, "live", None)
        models = getattr(self.engine, "_oai_models", None)
        return {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "unfinished": live.running + live.waiting if live else None,
            "running": live.running if live else None,
            "waiting": live.waiting if live else None,
            "kv_cache_usage": live.kv_cache_usage if live else None,
            "loaded_adapters": sorted(models.lora_requests) if models is not None else [],
            "adapter_loads": getattr(self, "adapter_loads", 0),
            "adapter_evictions": getattr(self, "adapter_evictions", 0),
        }
