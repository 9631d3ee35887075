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

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DATA_DIR", ROOT / "data"))
ADAPTER_DIR = DATA / "adapters" / "support-v1"
BASE_MODEL_DIR = DATA / "models" / "SmolLM2-135M-Instruct"
KEYS = ("sk-test-alpha", "sk-test-beta")
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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _write_config(tmp: Path, port: int, store_port: int) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "cpu-dev.yaml").read_text())
    cfg["model"]["source"] = str(BASE_MODEL_DIR)
    cfg["store"]["endpoint_url"] = f"http://127.0.0.1:{store_port}"
    cfg["store"]["catalog_ttl_s"] = 1.0
    cfg["http"]["port"] = port
    path = tmp / "serving.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not (ADAPTER_DIR / "adapter_config.json").exists():
        pytest.fail(f"{ADAPTER_DIR} is missing: run `make adapters` (make test does)")
    tmp = tmp_path_factory.mktemp("server")
    port, store_port = free_port(), free_port()
    config = _write_config(tmp, port, store_port)
    log_path = tmp / "server.log"
    env = {
        **os.environ,
        "API_KEYS": ",".join(KEYS),
        "HF_HUB_OFFLINE": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
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
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"server not ready after {START_TIMEOUT_S}s:\n{srv.log()[-5000:]}")
        time.sleep(1)
    yield srv
    _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it shuts Serve and Ray down), then reap whatever is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
