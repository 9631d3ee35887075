"""The fine-tuning pipeline against real models and the real store: eval, gate, publish, alias,
and the triage adapter under structured output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ADAPTER_DIR, DATA, ROOT

pytestmark = pytest.mark.integration

SUPPORT_TEST = DATA / "datasets/support/test.jsonl"
SUPPORT_VAL = DATA / "datasets/support/val.jsonl"
TRIAGE_TEST = DATA / "datasets/triage/test.jsonl"


def test_eval_command_on_any_chat_jsonl(tmp_path):
    plain = tmp_path / "plain.jsonl"  # bare OpenAI-style chat lines, none of our metadata
    rows = [json.loads(line) for line in SUPPORT_TEST.read_text().splitlines()[:10]]
    plain.write_text(
        "".join(
            json.dumps({"conversation_id": r["conversation_id"], "messages": r["messages"]}) + "\n"
            for r in rows
        )
    )
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "finetune",
            "eval",
            "--data",
            str(plain),
            "--adapter",
            str(ADAPTER_DIR),
            "--samples",
            "1",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["conversations"] == 10 and report["assistant_tokens"] > 500
    ppl = report["perplexity"]
    assert ppl["adapter"] < ppl["base"] * 0.8  # the trained adapter clears the default gate
    assert report["ratio"] == pytest.approx(ppl["adapter"] / ppl["base"], rel=1e-3)
    assert report["generations"][0]["base"] and report["generations"][0]["adapter"]
    assert "perplexity on 10 conversations" in proc.stdout


def test_gate_refuses_a_worse_adapter(server, short_adapter):
    from finetune.publish import GateRefused, publish

    store = server.store()
    with pytest.raises(GateRefused) as info:
        publish(short_adapter, "support", SUPPORT_VAL, store, limit=12)
    assert "FAIL" in str(info.value)
    assert not store.exists("support-v2")
    card = json.loads((short_adapter / "card.json").read_text())
    assert card["gate"]["passed"] is False


def test_publish_versions_card_and_alias(server, tmp_path):
    import shutil

    from finetune.publish import publish

    store = server.store()
    store.put_json({"support": {"support-v1": 100}}, "_aliases.json")
    candidate = tmp_path / "candidate"
    shutil.copytree(ADAPTER_DIR, candidate, ignore=shutil.ignore_patterns("checkpoint-*"))
    card = publish(
        candidate,
        "support",
        SUPPORT_VAL,
        store,
        limit=12,
        max_regression=0.01,
        alias="support",
        canary=10,
    )
    assert card["name"] == "support-v2" and card["gate"]["passed"]
    stored = store.card("support-v2")
    assert stored["base_model"]["source_sha256"] and stored["data"]["eval_sha256"]
    assert stored["metrics"]["perplexity"]["previous"] == pytest.approx(
        stored["metrics"]["perplexity"]["adapter"], rel=1e-3
    )
    assert store.aliases()["support"] == {"support-v1": 90, "support-v2": 10}
    assert "base:support-v2" in {m.id for m in server.client().models.list().data}


def test_triage_adapter_answers_valid_json(server):
    from finetune.triage import evaluate_served

    report = evaluate_served(
        server.api,
        "base:support-triage-v1",
        TRIAGE_TEST,
        api_key=server.keys[0],
        limit=24,
        concurrency=4,
    )
    assert report["json_valid"] == 1.0 and report["schema_valid"] == 1.0
    assert report["accuracy"]["language"] >= 0.8
    # Far below the 0.9 we want (README, "Measured"), but 4x chance (1/22): the adapter learned.
    assert report["accuracy"]["intent"] >= 0.2
