"""Shared fixtures: one real server per test session (Ray Serve + vLLM + the loopback store).

The server is the product as a user runs it (`python -m serving up`), in a subprocess on free
ports, with the real support adapter published to a fresh store. Tests talk to it over HTTP with
the official `openai` client. Its log is kept in the session's temp folder and printed on failure
to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from serving.auth import key_id

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DATA_DIR", ROOT / "data"))
ADAPTER_DIR = DATA / "adapters" / "support-v1"
TRIAGE_DIR = DATA / "adapters" / "support-triage-v1"
BASE_MODEL_DIR = DATA / "models" / "SmolLM2-135M-Instruct"
LIMITED_KEY = "sk-test-limited"
KEYS = ("sk-test-alpha", "sk-test-beta", LIMITED_KEY)
START_TIMEOUT_S = 420


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base_url: str
    store_url: str
    config_path: Path
    log_path: Path
    keys: tuple[str, ...]
    proc: subprocess.Popen[bytes]

    @property
    def api(self) -> str:
        return f"{self.base_url}/v1"

    def client(self, key: str | None = None, **kwargs: object):  # -> openai.OpenAI
        import openai

        return openai.OpenAI(
            base_url=self.api, api_key=key or self.keys[0], max_retries=0, timeout=120, **kwargs
        )

    def store(self):  # -> serving.store.AdapterStore, on the same bucket the server reads
        from serving.config import StoreConfig
        from serving.devstore import DEV_CREDENTIALS
        from serving.store import AdapterStore

        os.environ.update({k: v for k, v in DEV_CREDENTIALS.items() if k not in os.environ})
        cfg = yaml.safe_load(self.config_path.read_text())["store"]
        return AdapterStore(StoreConfig.model_validate(cfg))

    def runtime(self) -> dict:
        import json

        return json.loads((self.config_path.parent / "runtime.json").read_text())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _deep_update(base: dict, over: dict) -> dict:
    for k, v in over.items():
        base[k] = _deep_update(base.get(k, {}), v) if isinstance(v, dict) and k != "aliases" else v
    return base


def start_server(
    tmp: Path,
    overrides: dict | None = None,
    *,
    env: dict | None = None,
    extra_args: tuple[str, ...] = (),
) -> Server:
    """Start `python -m serving up` (store + Ray + Serve + vLLM) and wait until /ready."""
    port, store_port = free_port(), free_port()
    cfg = yaml.safe_load((ROOT / "configs" / "cpu-dev.yaml").read_text())
    cfg["model"]["source"] = str(BASE_MODEL_DIR)
    cfg["store"]["endpoint_url"] = f"http://127.0.0.1:{store_port}"
    cfg["store"]["catalog_ttl_s"] = 1.0
    cfg["http"]["port"] = port
    _deep_update(cfg, overrides or {})
    config = tmp / "serving.yaml"
    config.write_text(yaml.safe_dump(cfg))
    log_path = tmp / "server.log"
    full_env = {
        **os.environ,
        "API_KEYS": ",".join(KEYS),
        "HF_HUB_OFFLINE": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        **(env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "serving",
        "up",
        "--config",
        str(config),
        "--dev-store",
        str(tmp / "store"),
        "--seed",
        f"support-v1={ADAPTER_DIR}",
        "--seed",
        f"support-triage-v1={TRIAGE_DIR}",
        "--verbose",
        "--runtime-file",
        str(tmp / "runtime.json"),
        *extra_args,
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    srv = Server(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{store_port}", config, log_path, KEYS, proc
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{srv.log()[-5000:]}")
        try:
            if httpx.get(f"{srv.base_url}/ready", timeout=5).status_code == 200:
                return srv
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            pytest.fail(f"server not ready after {START_TIMEOUT_S}s:\n{srv.log()[-5000:]}")
        time.sleep(1)


# The shared server: aliases for the routing tests, a tight quota on one key for the 429 tests.
SHARED = {
    "aliases": {"support": {"support-v1": 100}, "ab-test": {"support-v1": 70, "base": 30}},
    "limits": {"per_key": {key_id(LIMITED_KEY): {"requests_per_minute": 3}}},
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not (ADAPTER_DIR / "card.json").exists() or not (TRIAGE_DIR / "card.json").exists():
        pytest.fail("gated adapters are missing: run `make adapters` (make test does)")
    srv = start_server(tmp_path_factory.mktemp("server"), SHARED)
    yield srv
    stop_server(srv.proc)


@pytest.fixture(scope="session")
def short_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deliberately under-trained adapter: 6 steps on 8 conversations (about 40 s)."""
    from finetune.train import run

    out = tmp_path_factory.mktemp("ft") / "adapter"
    rc = run(
        [
            "--config",
            str(ROOT / "finetune/recipes/support-v1.yaml"),
            "--model_name_or_path",
            str(BASE_MODEL_DIR),
            "--train_file",
            str(DATA / "datasets/support/train.jsonl"),
            "--max_train_samples",
            "8",
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            "1",
            "--num_train_epochs",
            "3",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--learning_rate",
            "0.002",
            "--lora_r",
            "8",
            "--adapter_name",
            "ft-smoke",
            "--output_dir",
            str(out),
        ]
    )
    assert rc == 0
    return out


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it shuts Serve and Ray down), then reap whatever is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def scorecard():
    """Record a measured figure for docs/reliability.md (`make reliability` renders it)."""
    import json
    from datetime import UTC, datetime

    out = Path(os.environ.get("SCORECARD_DIR", ROOT / "benchmarks" / "results" / "reliability"))

    def record(name: str, **data: object) -> None:
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        (out / f"{name}.json").write_text(
            json.dumps({"name": name, "at": stamp, **data}, indent=2, default=str)
        )

    return record
