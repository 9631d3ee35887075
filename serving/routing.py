"""Model routing: `base`, `base:<adapter>`, aliases, and weighted A/B splits.

Design: an alias maps to weighted targets, e.g. `support -> {support-v1: 90, support-v2: 10}`.
A request for the alias picks one target. With a sticky key (the OpenAI `user` field, else the
`X-Session-ID` header), the pick is a pure function of (alias, key): SHA-256 of both, mapped onto
the cumulative weights in name order. The same user therefore always lands on the same variant,
and when the weights move, only the users whose point crosses a boundary change variant. Without
a key the pick is random. Aliases come from `_aliases.json` in the adapter store (what
`finetune publish --alias` writes), and the serving config's `aliases` fill in for any alias the
file lacks. Both are re-read without a restart.

This module is pure: the ingress feeds it the tables and the request, and it returns a `Route`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass

from serving.config import NAME_RE

BASE_VARIANT = "base"


@dataclass(frozen=True)
class Route:
    model_id: str  # what the engine is asked for: "base" or "base:<adapter>"
    adapter: str | None
    alias: str | None = None

    @property
    def variant(self) -> str:
        return self.adapter or BASE_VARIANT


def validate_table(table: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Check an alias table; raises ValueError naming the bad entry."""
    out: dict[str, dict[str, int]] = {}
    for alias, targets in table.items():
        if not NAME_RE.match(alias):
            raise ValueError(f"alias {alias!r} is not a valid name")
        if not isinstance(targets, Mapping) or not targets:
            raise ValueError(f"alias {alias!r} needs at least one target with a weight")
        clean = {}
        for target, weight in targets.items():
            if not NAME_RE.match(target):
                raise ValueError(f"alias {alias!r}: target {target!r} is not a valid name")
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                raise ValueError(f"alias {alias!r}: weight of {target!r} must be an integer >= 0")
            clean[target] = weight
        if sum(clean.values()) <= 0:
            raise ValueError(f"alias {alias!r}: weights sum to zero")
        out[alias] = clean
    return out


def pick(
    targets: Mapping[str, int], alias: str, sticky_key: str | None, rng: random.Random | None = None
) -> str:
    names = sorted(t for t, w in targets.items() if w > 0)
    total = sum(targets[n] for n in names)
    if sticky_key:
        digest = hashlib.sha256(f"{alias}\x00{sticky_key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") % total
    else:
        point = (rng or random).randrange(total)
    for name in names:
        point -= targets[name]
        if point < 0:
            return name
    return names[-1]  # unreachable: point < total


def route_alias(
    alias: str,
    targets: Mapping[str, int],
    base_id: str,
    sticky_key: str | None,
    rng: random.Random | None = None,
) -> Route:
    chosen = pick(targets, alias, sticky_key, rng)
    if chosen == BASE_VARIANT:
        return Route(base_id, None, alias)
    return Route(f"{base_id}:{chosen}", chosen, alias)
