from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.config import ServingConfig

ROOT = Path(__file__).resolve().parents[2]


def _base(**over):
    cfg = {"model": {"id": "base", "source": "org/model"}, "store": {"uri": "s3://bucket/prefix"}}
    cfg.update(over)
    return cfg


@pytest.mark.parametrize("name", ["cpu-dev.yaml", "gpu.yaml"])
def test_shipped_configs_validate(name):
    cfg = ServingConfig.from_yaml(ROOT / "configs" / name)
    assert cfg.model.id == "base"


def test_unknown_key_is_refused_with_its_path():
    with pytest.raises(ValidationError) as info:
        ServingConfig.model_validate(_base(deployment={"acelerator": "cpu"}))
    assert "acelerator" in str(info.value)


@pytest.mark.parametrize("uri", ["file:///tmp/x", "s3://", "http://bucket/x", "s3://B@d/x"])
def test_store_uri_must_be_a_bucket(uri):
    with pytest.raises(ValidationError):
        ServingConfig.model_validate(_base(store={"uri": uri}))


def test_store_bucket_and_prefix():
    cfg = ServingConfig.model_validate(_base(store={"uri": "s3://adapters/support/v1/"}))
    assert (cfg.store.bucket, cfg.store.prefix) == ("adapters", "support/v1/")
    root = ServingConfig.model_validate(_base(store={"uri": "s3://adapters"}))
    assert root.store.prefix == ""


@pytest.mark.parametrize("model_id", ["base:x", "a/b", "", "-x"])
def test_model_id_must_be_a_plain_name(model_id):
    with pytest.raises(ValidationError):
        ServingConfig.model_validate(_base(model={"id": model_id, "source": "org/m"}))


def test_autoscaling_bounds():
    with pytest.raises(ValidationError, match="min_replicas"):
        ServingConfig.model_validate(
            _base(deployment={"autoscaling": {"min_replicas": 3, "max_replicas": 2}})
        )


def test_llm_config_for_cpu_is_cpu_only_and_has_lora():
    cfg = ServingConfig.model_validate(_base(deployment={"accelerator": "cpu"}))
    llm = cfg.to_llm_config()
    assert llm["placement_group_config"] == {"bundles": [{"CPU": 1.0}]}
    assert llm["engine_kwargs"]["enable_lora"] is True
    assert llm["engine_kwargs"]["max_loras"] == llm["lora_config"]["max_num_adapters_per_replica"]
    assert llm["lora_config"]["dynamic_lora_loading_path"] == "s3://bucket/prefix"
    assert llm["experimental_configs"]["stream_batching_interval_ms"] == 0


def test_llm_config_for_gpu_asks_for_gpus():
    cfg = ServingConfig.model_validate(
        _base(deployment={"accelerator": "gpu", "gpus_per_replica": 2, "accelerator_type": "H100"})
    )
    llm = cfg.to_llm_config()
    assert all(b["GPU"] == 1 for b in llm["placement_group_config"]["bundles"])
    assert len(llm["placement_group_config"]["bundles"]) == 2
    assert llm["accelerator_type"] == "H100"
    assert llm["engine_kwargs"]["tensor_parallel_size"] == 2


def test_local_source_must_exist(tmp_path):
    cfg = ServingConfig.model_validate(_base(model={"id": "base", "source": "./missing"}))
    with pytest.raises(ValueError, match="make base-model"):
        cfg.to_llm_config(tmp_path)


def test_ray_accepts_our_llm_config():
    from ray.serve.llm import LLMConfig

    cfg = ServingConfig.from_yaml(ROOT / "configs" / "gpu.yaml")
    llm = LLMConfig.model_validate(cfg.to_llm_config())
    assert llm.lora_config.max_num_adapters_per_replica == cfg.lora.max_adapters_per_replica
