"""The eval gate, adapter cards, versioned publishing and the alias file.

    # gate only: evaluate on held-out data, write eval_report.json + card.json beside the adapter
    python -m finetune gate --adapter data/adapters/support-v1 --eval-data .../val.jsonl
    # publish: gate against the base *and* the latest published version, then upload as
    # <family>-v<N+1> with its card, and point an alias at it (optionally as a canary split)
    python -m finetune publish --adapter data/adapters/run-42 --family support \
        --eval-data data/datasets/support/val.jsonl --alias support --canary 10

Design: nothing reaches the store without a card, and no card says "passed" unless the numbers
in it do. The gate is a pure function of the evaluation report (`decide`), so its rules are unit
tested without a model. The previous version is downloaded and scored in the *same* run, on the
same batches, rather than trusting a number in its old card that may come from different data.
The store, its credentials and its endpoint come from the serving config, so training and serving
cannot disagree about where adapters live.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CARD = "card.json"


class GateRefused(Exception):
    """The candidate did not pass the gate; the message lists every failed rule."""


@dataclass
class Decision:
    passed: bool
    rules: list[str] = field(default_factory=list)  # one line per rule, "ok:" or "FAIL:"


def decide(
    report: dict[str, Any], *, min_improvement: float = 0.2, max_regression: float = 0.0
) -> Decision:
    """Pure gate: beat the base by `min_improvement`, and do not lose more than `max_regression`
    (relative perplexity) against the previous version when one was scored."""
    ppl = report["perplexity"]
    rules, passed = [], True
    need = ppl["base"] * (1 - min_improvement)
    ok = ppl["adapter"] <= need
    rules.append(
        f"{'ok' if ok else 'FAIL'}: adapter perplexity {ppl['adapter']:.3f} "
        f"{'<=' if ok else '>'} {need:.3f} (base {ppl['base']:.3f} - {min_improvement:.0%})"
    )
    passed &= ok
    if "previous" in ppl:
        limit = ppl["previous"] * (1 + max_regression)
        ok = ppl["adapter"] <= limit
        rules.append(
            f"{'ok' if ok else 'FAIL'}: adapter perplexity {ppl['adapter']:.3f} "
            f"{'<=' if ok else '>'} {limit:.3f} (previous version "
            f"{report.get('previous_name', '?')} {ppl['previous']:.3f})"
        )
        passed &= ok
    return Decision(passed, rules)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _base_model_identity(base: str) -> dict[str, Any]:
    manifest = Path(base) / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        return {
            "source": base,
            "name": m.get("model"),
            "source_sha256": m.get("source_sha256"),
            "weights_sha256": m["files"].get("model.safetensors"),
        }
    weights = Path(base) / "model.safetensors"
    return {"source": base, "weights_sha256": sha256_file(weights) if weights.is_file() else None}


def make_card(
    adapter: Path,
    report: dict[str, Any],
    decision: Decision,
    *,
    name: str | None = None,
    family: str | None = None,
) -> dict[str, Any]:
    summary_path = adapter / "training_summary.json"
    training = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    train_file = Path(training.get("data", {}).get("train_file", ""))
    eval_file = Path(report["data"])
    return {
        "name": name,
        "family": family,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "base_model": _base_model_identity(report["base_model"]),
        "adapter_sha256": sha256_file(adapter / "adapter_model.safetensors"),
        "data": {
            "train_file": str(train_file),
            "train_sha256": sha256_file(train_file) if train_file.is_file() else None,
            "eval_file": str(eval_file),
            "eval_sha256": sha256_file(eval_file),
        },
        "metrics": {
            k: report[k]
            for k in ("perplexity", "ratio", "reduction", "conversations", "assistant_tokens")
        },
        "gate": asdict(decision),
        "training": training,
        "synthetic_data": "syn-" in eval_file.read_text(encoding="utf-8")[:2000],
    }


def gate(
    adapter: Path,
    eval_data: Path,
    *,
    min_improvement: float,
    max_regression: float,
    previous: tuple[str, Path] | None = None,
    limit: int | None = None,
    base: str | None = None,
) -> tuple[dict[str, Any], Decision]:
    from finetune.evaluate import evaluate

    extra = {"previous": previous[1]} if previous else None
    report = evaluate(eval_data, adapter, extra_adapters=extra, limit=limit, samples=2, base=base)
    if previous:
        report["previous_name"] = previous[0]
    (adapter / "eval_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return report, decide(report, min_improvement=min_improvement, max_regression=max_regression)


def versions(names: list[str], family: str) -> list[tuple[int, str]]:
    pattern = re.compile(rf"^{re.escape(family)}-v(\d+)$")
    return sorted((int(m.group(1)), n) for n in names if (m := pattern.match(n)))


def set_alias(aliases: dict[str, Any], alias: str, new: str, canary: int | None) -> dict[str, Any]:
    """Point `alias` at `new`; with `canary`, send that % to `new` and the rest to the version the
    alias pointed at most before (the incumbent)."""
    current = aliases.get(alias) or {}
    if canary is None or not current:
        return {**aliases, alias: {new: 100}}
    if not 0 < canary < 100:
        raise ValueError("--canary must be between 1 and 99 (percent of traffic)")
    incumbent = max(current, key=lambda k: current[k])
    return {**aliases, alias: {incumbent: 100 - canary, new: canary}}


def publish(
    adapter: Path,
    family: str,
    eval_data: Path,
    store: Any,
    *,
    min_improvement: float = 0.2,
    max_regression: float = 0.0,
    alias: str | None = None,
    canary: int | None = None,
    limit: int | None = None,
    base: str | None = None,
) -> dict[str, Any]:
    existing = versions([a.name for a in store.list_adapters()], family)
    name = f"{family}-v{existing[-1][0] + 1 if existing else 1}"
    with tempfile.TemporaryDirectory() as tmp:
        previous = None
        if existing:
            prev_name = existing[-1][1]
            previous = (prev_name, store.download_adapter(prev_name, Path(tmp) / prev_name))
        report, decision = gate(
            adapter,
            eval_data,
            min_improvement=min_improvement,
            max_regression=max_regression,
            previous=previous,
            limit=limit,
            base=base,
        )
    card = make_card(adapter, report, decision, name=name, family=family)
    (adapter / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    if not decision.passed:
        raise GateRefused(f"{name} not published:\n  " + "\n  ".join(decision.rules))
    store.ensure_bucket()
    store.upload_adapter(adapter, name)
    if alias:
        store.put_json(set_alias(store.aliases(), alias, name, canary), "_aliases.json")
    return card
