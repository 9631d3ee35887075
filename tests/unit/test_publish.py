"""The gate's rules, version numbering and the alias file, as pure functions."""

import pytest

from finetune.publish import decide, set_alias, versions


def _report(base, adapter, previous=None):
    ppl = {"base": base, "adapter": adapter}
    if previous is not None:
        ppl["previous"] = previous
    return {"perplexity": ppl, "previous_name": "support-v1"}


def test_gate_needs_the_margin_over_base():
    assert decide(_report(10.0, 7.9)).passed
    assert not decide(_report(10.0, 8.1)).passed
    assert decide(_report(10.0, 8.5), min_improvement=0.1).passed


def test_gate_refuses_a_regression_against_the_previous_version():
    worse = decide(_report(10.0, 6.0, previous=5.0))
    assert not worse.passed
    assert any(r.startswith("FAIL") and "support-v1" in r for r in worse.rules)
    assert decide(_report(10.0, 5.04, previous=5.0), max_regression=0.01).passed


def test_versions_parse_family_only():
    names = ["support-v1", "support-v10", "support-v2", "support-triage-v1", "supportv3"]
    assert versions(names, "support") == [(1, "support-v1"), (2, "support-v2"), (10, "support-v10")]


def test_alias_full_switch_and_canary():
    assert set_alias({}, "support", "support-v1", None) == {"support": {"support-v1": 100}}
    canary = set_alias({"support": {"support-v1": 100}}, "support", "support-v2", 10)
    assert canary["support"] == {"support-v1": 90, "support-v2": 10}
    with pytest.raises(ValueError):
        set_alias(canary, "support", "support-v3", 100)
