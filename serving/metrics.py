"""Every metric the product exports, declared in one place (Prometheus naming, low cardinality).

Request metrics are observed at the ingress, where the whole request is visible. That includes
streams: first chunk (TTFT), the gaps between chunks (inter-token latency), end to end, and token
counts from `usage`. Labels are `model`, `adapter`, `variant` and `status`, and their values come
only from resolved routes (the store's adapters and the config's aliases), never from raw client
input. A flood of made-up model names therefore cannot blow up the series count: unresolved
requests are labelled "-".

Engine metrics (running/waiting requests, KV-cache usage, adapter loads and evictions) come from
the engine replicas on each scrape (`SupportLLMServer.engine_stats`), labelled by replica. In a
cluster, vLLM's own engine metrics are also exported per replica by Ray's metrics agent
(`ray_vllm:*` on each pod's metrics port); the chart scrapes both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

ROUTE_LABELS = ("model", "adapter", "variant")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
ITL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5)
UNRESOLVED = "-"


class EngineStatsCollector:
    """Turns the last `engine_stats` snapshots (one per replica) into metric families."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any]] = {}

    def collect(self) -> Iterable[Metric]:
        gauges: dict[str, GaugeMetricFamily] = {
            "running": GaugeMetricFamily(
                "supportserve_engine_requests_running",
                "Requests the engine is decoding.",
                labels=["replica"],
            ),
            "waiting": GaugeMetricFamily(
                "supportserve_engine_requests_waiting",
                "Requests queued in the engine.",
                labels=["replica"],
            ),
            "unfinished": GaugeMetricFamily(
                "supportserve_engine_requests_unfinished",
                "Requests the engine front end still tracks.",
                labels=["replica"],
            ),
            "kv_cache_usage": GaugeMetricFamily(
                "supportserve_engine_kv_cache_usage_ratio",
                "Fraction of KV-cache blocks in use.",
                labels=["replica"],
            ),
            "loaded_adapters": GaugeMetricFamily(
                "supportserve_engine_loaded_adapters",
                "Adapters resident on the replica.",
                labels=["replica"],
            ),
        }
        counters: dict[str, CounterMetricFamily] = {
            "adapter_loads": CounterMetricFamily(
                "supportserve_adapter_loads", "Adapters loaded into an engine.", labels=["replica"]
            ),
            "adapter_evictions": CounterMetricFamily(
                "supportserve_adapter_evictions",
                "Adapters evicted by the per-replica LRU.",
                labels=["replica"],
            ),
        }
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {**gauges, **counters}
        for replica, snap in sorted(self.snapshots.items()):
            for key, family in families.items():
                value = snap.get(key)
                if isinstance(value, list):
                    value = len(value)
                if value is not None:
                    family.add_metric([replica], float(value))
        yield from gauges.values()
        yield from counters.values()


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "supportserve_requests",
            "Requests by route and HTTP status.",
            [*ROUTE_LABELS, "status"],
            registry=r,
        )
        self.ttft = Histogram(
            "supportserve_time_to_first_token_seconds",
            "Time to the first streamed chunk.",
            ROUTE_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "supportserve_inter_token_latency_seconds",
            "Gap between streamed chunks.",
            ROUTE_LABELS,
            buckets=ITL_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "supportserve_request_duration_seconds",
            "End-to-end request latency.",
            ROUTE_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "supportserve_prompt_tokens", "Prompt tokens processed.", ROUTE_LABELS, registry=r
        )
        self.completion_tokens = Counter(
            "supportserve_completion_tokens",
            "Completion tokens generated.",
            ROUTE_LABELS,
            registry=r,
        )
        self.in_flight = Gauge(
            "supportserve_requests_in_flight", "Requests being served.", ROUTE_LABELS, registry=r
        )
        self.rate_limited = Counter(
            "supportserve_rate_limited_requests",
            "Requests refused with 429, by the limit that refused them.",
            ["limit"],
            registry=r,
        )
        self.engine = EngineStatsCollector()
        r.register(self.engine)

    def render(self) -> bytes:
        return generate_latest(self.registry)
