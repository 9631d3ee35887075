"""The servers under test: how each starts, what it offers, how it stops.

Every target serves the same model folder (SmolLM2-135M-Instruct) with the same engine args
(ENGINE_ARGS: float32, max_model_len 2048, 1 GiB of KV cache, eager mode); the LoRA targets add
the same LORA_ARGS and the same four adapters under the same names, so one Locust scenario means
the same requests everywhere:

- ours:      `python -m serving up` (Ray Serve + our ingress + vLLM), a config generated from
             configs/cpu-dev.yaml, a fresh loopback store seeded with the four adapters, the
             A/B alias `support-ab` and API keys on (the production path).
- vllm:      vLLM's own OpenAI server, LoRA off (the floor for serving overhead).
- vllm-lora: the same with LoRA on and the four adapters registered. ours/vllm-lora is the cost
             of our serving layer; vllm-lora/vllm is the cost of LoRA itself.
- ray:       stock Ray Serve LLM, `build_openai_app` defaults (stock_ray.py); ray-lora adds the
             adapters from a dev store.
- naive:     FastAPI + transformers, one request at a time (naive_server.py).

A target is a process group: `start()` launches it with start_new_session=True and waits, with
a bound, for its readiness URL and then for one real completion per model (first requests compile
and load adapters; they must not land in a measured cell). `stop()` sends SIGTERM to the leader
(ours and ray shut Ray down gracefully on it), then SIGTERM and SIGKILL to the group, then kills
any recorded descendant that left the group, so nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DATA_DIR", ROOT / "data"))
MODEL_DIR = DATA / "models" / "SmolLM2-135M-Instruct"
BASE = "base"
AB_ALIAS = "support-ab"
API_KEY = "sk-bench-local"  # ours runs with API_KEYS set to this; the others ignore it
ENGINE_ARGS = {
    "dtype": "float32",
    "max_model_len": 2048,
    "kv_cache_memory_bytes": 1 << 30,
    "enforce_eager": True,
}
LORA_ARGS = {"max_lora_rank": 16, "max_loras": 4}
# Served name -> folder under data/adapters: two real adapters, two copies under new names.
ADAPTERS = {
    "support-v1": "support-v1",
    "support-triage-v1": "support-triage-v1",
    "support-v1-b": "support-v1",
    "support-v1-c": "support-v1",
}
SCENARIOS: dict[str, tuple[str, ...]] = {
    "base": (BASE,),
    "adapter": (f"{BASE}:support-v1",),
    "mix4": tuple(f"{BASE}:{name}" for name in ADAPTERS),
    "ab": (AB_ALIAS,),
}
_LORA_MODELS = frozenset({BASE, *SCENARIOS["mix4"]})
OFFERED: dict[str, frozenset[str]] = {
    "ours": _LORA_MODELS | {AB_ALIAS},
    "vllm": frozenset({BASE}),
    "vllm-lora": _LORA_MODELS,
    "ray": frozenset({BASE}),
    "ray-lora": _LORA_MODELS,
    "naive": frozenset({BASE}),
}
TARGETS = tuple(OFFERED)


class TargetError(RuntimeError):
    pass


def applies(target: str, scenario: str) -> bool:
    """A scenario runs on a target only if the target offers every model it asks for."""
    return set(SCENARIOS[scenario]) <= OFFERED[target]


def adapter_dir(name: str) -> Path:
    return DATA / "adapters" / ADAPTERS[name]


def missing_inputs(target: str, model_dir: Path = MODEL_DIR) -> list[str]:
    """Files a target needs that are not there (ours seeds only gated adapters: card.json)."""
    need = [model_dir / "config.json"]
    if OFFERED[target] & set(SCENARIOS["mix4"]):
        need += [adapter_dir(a) / "adapter_config.json" for a in ADAPTERS]
    if target == "ours":
        need += [adapter_dir(a) / "card.json" for a in ADAPTERS]
    return sorted({str(p) for p in need if not p.exists()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    name: str
    command: list[str]
    env: dict[str, str]
    url: str
    ready_path: str
    models: frozenset[str]
    log_path: Path
    cwd: Path = ROOT
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def ready_url(self) -> str:
        return self.url + self.ready_path

    def models_for(self, scenario: str) -> tuple[str, ...] | None:
        models = SCENARIOS[scenario]
        return models if set(models) <= self.models else None

    def start(self, timeout_s: float = 600.0) -> float:
        """Launch, wait for readiness and one answer per model; returns seconds taken."""
        started = time.monotonic()
        deadline = started + timeout_s
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.command)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._poll(deadline, lambda: _get_ok(self.ready_url), "ready")
            for model in sorted(m for m in self.models if m != AB_ALIAS):

                def answers(m: str = model) -> bool:
                    return _complete(self.url, m, max(5.0, deadline - time.monotonic()))

                self._poll(deadline, answers, f"serving {model}")
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - started

    def _poll(self, deadline: float, check: Callable[[], bool], what: str) -> None:
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise TargetError(f"{self.name} exited with {self.proc.returncode}\n{self.tail()}")
            if check():
                return
            if time.monotonic() > deadline:
                raise TargetError(f"{self.name} not {what} before the deadline\n{self.tail()}")
            time.sleep(1.0)

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace_s: float = 60.0) -> None:
        proc = self.proc
        if proc is None:
            return
        family = _descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if not _signal_group(proc.pid, sig, wait_s, reap=proc.poll):
                break
        for pid, start_tick in family.items():
            if _start_tick(pid) == start_tick:  # still the same process, not a reused pid
                _kill(pid)
        proc.wait()
        self.proc = None


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except Exception:
        return False


def _complete(url: str, model: str, timeout_s: float = 120.0) -> bool:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    req = urllib.request.Request(
        url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=min(120.0, timeout_s)) as resp:
            return bool(resp.status == 200 and json.load(resp).get("choices"))
    except Exception:
        return False


def _signal_group(pgid: int, sig: int, wait_s: float, reap: Callable[[], object]) -> bool:
    """Signal the group; True if some member is still alive after wait_s. `reap` collects the
    leader once it exits (a zombie leader would keep the group alive)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        reap()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.2)
    return True


def _start_tick(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> dict[int, str]:
    """{pid: start time} of every live descendant, from /proc (Linux)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(stat.parent.name))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and (tick := _start_tick(child)) is not None:
                found[child] = tick
                todo.append(child)
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _base_env(omp_threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEYS", "AWS_ENDPOINT_URL_S3")}
    env.update(
        HF_HUB_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    if omp_threads:
        env["OMP_NUM_THREADS"] = str(omp_threads)
    return env


def _ours_config(workdir: Path, model_dir: Path, port: int, store_port: int) -> Path:
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "cpu-dev.yaml").read_text())
    engine = {k: v for k, v in ENGINE_ARGS.items() if k not in ("dtype", "max_model_len")}
    cfg["model"].update(
        source=str(model_dir),
        dtype=ENGINE_ARGS["dtype"],
        max_model_len=ENGINE_ARGS["max_model_len"],
        engine_kwargs=engine,
    )
    cfg["lora"] = {
        **cfg.get("lora", {}),
        "max_adapters_per_replica": LORA_ARGS["max_loras"],
        "max_lora_rank": LORA_ARGS["max_lora_rank"],
    }
    cfg["store"]["endpoint_url"] = f"http://127.0.0.1:{store_port}"
    cfg["http"] = {"host": "127.0.0.1", "port": port}
    cfg["aliases"] = {AB_ALIAS: {"support-v1": 50, "support-v1-b": 50}}
    path = workdir / "serving.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _vllm_command(model_dir: Path, port: int, lora: bool) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        BASE,
        "--dtype",
        str(ENGINE_ARGS["dtype"]),
        "--max-model-len",
        str(ENGINE_ARGS["max_model_len"]),
        "--kv-cache-memory-bytes",
        str(ENGINE_ARGS["kv_cache_memory_bytes"]),
        "--enforce-eager",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if lora:
        cmd += ["--enable-lora", "--max-lora-rank", str(LORA_ARGS["max_lora_rank"])]
        cmd += ["--max-loras", str(LORA_ARGS["max_loras"]), "--lora-modules"]
        cmd += [f"{BASE}:{name}={adapter_dir(name)}" for name in ADAPTERS]
    return cmd


def build(
    name: str, workdir: Path, *, model_dir: Path = MODEL_DIR, omp_threads: int | None = None
) -> Target:
    """A ready-to-start Target on free ports; workdir holds its config, store and log."""
    if name not in OFFERED:
        raise ValueError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    workdir.mkdir(parents=True, exist_ok=True)
    port, env, py = free_port(), _base_env(omp_threads), sys.executable
    ready = "/health"
    if name == "ours":
        store_port = free_port()
        config = _ours_config(workdir, model_dir, port, store_port)
        cmd = [py, "-m", "serving", "up", "--config", str(config)]
        cmd += ["--dev-store", str(workdir / "store"), "--runtime-file", str(workdir / "rt.json")]
        for adapter in ADAPTERS:
            cmd += ["--seed", f"{adapter}={adapter_dir(adapter)}"]
        env.update(API_KEYS=API_KEY, RAY_NUM_CPUS="8")
        ready = "/ready"
    elif name in ("vllm", "vllm-lora"):
        cmd = _vllm_command(model_dir, port, lora=name == "vllm-lora")
    elif name in ("ray", "ray-lora"):
        cmd = [py, "-m", "benchmarks.stock_ray", "--port", str(port), "--model", str(model_dir)]
        if name == "ray-lora":
            cmd += ["--store-port", str(free_port()), "--store-root", str(workdir / "store")]
            for adapter in ADAPTERS:
                cmd += ["--adapter", f"{adapter}={adapter_dir(adapter)}"]
        ready = "/v1/models"
    else:
        cmd = [py, "-m", "benchmarks.naive_server", "--model", str(model_dir), "--port", str(port)]
    return Target(
        name=name,
        command=cmd,
        env=env,
        url=f"http://127.0.0.1:{port}",
        ready_path=ready,
        models=OFFERED[name],
        log_path=workdir / "server.log",
    )
