"""Drain control shared by every ingress replica: one small named Ray actor.

Design: `python -m serving run` creates the actor. On SIGTERM it calls `start_drain()`, and each
ingress replica's watcher (which polls `state()` every half second) flips to draining:
- `/ready` answers 503, so load balancers stop sending traffic;
- new `/v1` requests get a 503 in the OpenAI shape;
- requests already in flight carry on.
The replicas report their in-flight counts back, and the driver waits until the total is zero
(or the configured timeout passes) before it shuts Serve down. In KubeRay there is no driver and
no actor; the ingress then treats itself as not draining, and Serve's own graceful shutdown
(`graceful_shutdown_timeout_s`) covers scale-down and upgrades.
"""

from __future__ import annotations

import time
from typing import Any

import ray

ACTOR_NAME = "supportserve-control"
NAMESPACE = "supportserve"


class DrainControl:
    def __init__(self) -> None:
        self.draining_since: float | None = None
        self.in_flight: dict[str, tuple[int, float]] = {}

    def start_drain(self) -> None:
        self.draining_since = self.draining_since or time.time()

    def report(self, replica: str, in_flight: int) -> bool:
        self.in_flight[replica] = (in_flight, time.time())
        return self.draining_since is not None

    def total_in_flight(self, max_age_s: float = 5.0) -> int:
        now = time.time()
        return sum(n for n, at in self.in_flight.values() if now - at <= max_age_s)


def create() -> Any:
    remote: Any = ray.remote(num_cpus=0)(DrainControl)
    return remote.options(name=ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True).remote()


def lookup() -> Any:
    try:
        return ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
    except ValueError:
        return None


def serve_status() -> dict[str, Any]:
    """Serve's own status API (`serve.status()`) as JSON: per application, its state and each
    deployment's state and replica counts by state. Works from a driver and from a replica."""
    from ray import serve

    return {
        name: {
            "status": str(app.status),
            "deployments": {
                dep: {
                    "status": str(d.status),
                    "replicas": {str(k): v for k, v in d.replica_states.items()},
                }
                for dep, d in app.deployments.items()
            },
        }
        for name, app in serve.status().applications.items()
    }
