import random
from collections import Counter

import pytest

from serving.routing import pick, route_alias, validate_table


def test_weights_are_honoured_without_a_sticky_key():
    rng = random.Random(1)
    counts = Counter(pick({"v1": 90, "v2": 10}, "support", None, rng) for _ in range(10_000))
    assert 8800 < counts["v1"] < 9200


def test_sticky_keys_split_by_weight_and_stay_put():
    picks = {f"user-{i}": pick({"v1": 70, "v2": 30}, "support", f"user-{i}") for i in range(5000)}
    share = sum(v == "v2" for v in picks.values()) / len(picks)
    assert 0.27 < share < 0.33
    assert all(pick({"v1": 70, "v2": 30}, "support", u) == v for u, v in list(picks.items())[:200])


def test_moving_weights_only_moves_users_across_the_boundary():
    before = {u: pick({"v1": 90, "v2": 10}, "a", u) for u in map(str, range(3000))}
    after = {u: pick({"v1": 80, "v2": 20}, "a", u) for u in before}
    assert all(after[u] == "v2" for u, v in before.items() if v == "v2")


def test_zero_weight_targets_are_never_picked():
    assert {pick({"v1": 0, "v2": 5}, "a", str(i)) for i in range(200)} == {"v2"}


def test_route_to_base_and_adapter():
    assert route_alias("a", {"base": 1}, "base", "u").model_id == "base"
    route = route_alias("a", {"v2": 1}, "base", "u")
    assert (route.model_id, route.variant, route.alias) == ("base:v2", "v2", "a")


@pytest.mark.parametrize(
    "table",
    [
        {"bad name": {"v1": 1}},
        {"a": {}},
        {"a": {"v1": 0}},
        {"a": {"../x": 1}},
        {"a": {"v1": -1}},
        {"a": {"v1": True}},
        {"a": ["v1"]},
    ],
)
def test_invalid_tables_are_refused(table):
    with pytest.raises(ValueError):
        validate_table(table)
