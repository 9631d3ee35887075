"""A short real fine-tune: the loss falls, and the adapter loads in peft and in the served vLLM."""

from __future__ import annotations

import json

import pytest

from tests.conftest import BASE_MODEL_DIR

pytestmark = pytest.mark.integration


def test_loss_goes_down(short_adapter):
    summary = json.loads((short_adapter / "training_summary.json").read_text())
    assert summary["steps"] == 6
    assert summary["last_loss"] < summary["first_loss"] * 0.9


def test_adapter_has_no_modules_to_save(short_adapter):
    cfg = json.loads((short_adapter / "adapter_config.json").read_text())
    assert not cfg.get("modules_to_save")
    assert set(cfg["target_modules"]) >= {"q_proj", "v_proj", "down_proj"}


def test_adapter_loads_in_peft(short_adapter):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(BASE_MODEL_DIR, dtype=torch.float32)
    ids = torch.tensor([[1, 4093, 28, 2]])
    before = base(ids).logits
    model = PeftModel.from_pretrained(base, short_adapter)
    after = model(ids).logits
    assert not torch.allclose(before, after)


def test_adapter_loads_in_served_vllm_without_restart(server, short_adapter):
    server.store().upload_adapter(short_adapter, "ft-smoke")
    client = server.client()
    assert "base:ft-smoke" in {m.id for m in client.models.list().data}
    resp = client.chat.completions.create(
        model="base:ft-smoke",
        messages=[{"role": "user", "content": "Where is my parcel?"}],
        max_tokens=8,
        temperature=0,
    )
    assert resp.model == "base:ft-smoke" and resp.usage.completion_tokens > 0
