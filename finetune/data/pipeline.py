"""The data pipeline: sources -> redact -> de-duplicate -> split -> files + report.

    python -m finetune data --synthetic 800 --seed 0 --out data/datasets/support
    python -m finetune data --input tickets.json --format zendesk --out data/datasets/acme

Design: each stage is a small function over `Conversation`s, and this module only wires them.
The output folder gets `train.jsonl`, `val.jsonl` and `test.jsonl`, plus `report.json` and
`report.md`. The report shows every count a reviewer needs to trust the set: imported, skipped
with reasons, redactions by type, duplicates removed, split sizes, counts by intent and language,
and token-length percentiles. Files are rewritten only when their content changes.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from finetune.data.dedup import deduplicate
from finetune.data.importers import Imported, ImportReport
from finetune.data.redact import PLACEHOLDER, redact_conversation
from finetune.data.schema import Conversation, write_if_changed, write_jsonl
from finetune.data.split import split

PERCENTILES = (50, 90, 99, 100)


def _token_counter(tokenizer_dir: Path | None) -> tuple[str, Any]:
    if tokenizer_dir and (tokenizer_dir / "tokenizer.json").exists():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer_dir)

        def count(c: Conversation) -> int:
            msgs = [m.model_dump() for m in c.messages]
            return len(tok.apply_chat_template(msgs, tokenize=True)["input_ids"])

        return f"tokenizer:{tokenizer_dir.name}", count
    return "whitespace", lambda c: sum(len(m.content.split()) for m in c.messages)


def _percentiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    ordered = sorted(values)
    return {f"p{p}": ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
            for p in PERCENTILES}


def build(items: list[Imported], out: Path, *, val: float = 0.1, test: float = 0.1,
          dedup_threshold: float = 0.9, imported: ImportReport | None = None,
          tokenizer_dir: Path | None = None, source: str = "") -> dict[str, Any]:
    redacted, placeholders = [], Counter()
    for item in items:
        conv = redact_conversation(item.conversation, item.known_names)
        for m in conv.messages:
            placeholders.update(p.strip("<>") for p in PLACEHOLDER.findall(m.content))
        redacted.append(conv)
    dedup = deduplicate(redacted, threshold=dedup_threshold)
    parts = split(dedup.kept, val=val, test=test)
    for name, convs in parts.items():
        write_jsonl(out / f"{name}.jsonl", convs)

    counter_name, count = _token_counter(tokenizer_dir)
    kept = dedup.kept
    summary = {
        "source": source,
        "synthetic": all(c.synthetic for c in kept) if kept else None,
        "import": (imported or ImportReport(kept=len(items))).to_dict(),
        "redactions_by_type": dict(sorted(placeholders.items())),
        "duplicates_removed": {"exact": len(dedup.exact), "near": len(dedup.near),
                               "threshold": dedup_threshold},
        "conversations": len(kept),
        "splits": {name: len(convs) for name, convs in parts.items()},
        "by_language": dict(sorted(Counter(c.language or "?" for c in kept).items())),
        "by_intent": dict(sorted(Counter(c.intent or "?" for c in kept).items())),
        "messages_per_conversation": dict(sorted(Counter(len(c.messages) for c in kept).items())),
        "length": {"unit": counter_name, **_percentiles([count(c) for c in kept])},
    }
    write_if_changed(out / "report.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_if_changed(out / "report.md", to_markdown(summary))
    return summary


def to_markdown(r: dict[str, Any]) -> str:
    def table(title: str, counts: dict[str, Any]) -> list[str]:
        rows = [f"| {k} | {v} |" for k, v in counts.items()]
        return [f"| {title} | count |", "|---|---|", *rows, ""]

    imp = r["import"]
    lines = [
        "# Data report", "",
        f"Source: {r['source']}" + (" (synthetic: generated, no real person)" if r["synthetic"]
                                    else ""), "",
        f"- imported: {imp['kept']} kept, {imp['skipped']} skipped "
        f"{json.dumps(imp['skipped_by_reason']) if imp['skipped'] else ''}",
        f"- duplicates removed: {r['duplicates_removed']['exact']} exact, "
        f"{r['duplicates_removed']['near']} near (Jaccard >= {r['duplicates_removed']['threshold']})",
        f"- conversations: {r['conversations']} -> " +
        ", ".join(f"{k} {v}" for k, v in r["splits"].items()),
        f"- length ({r['length']['unit']}): " +
        ", ".join(f"{k} {v}" for k, v in r["length"].items() if k != "unit"), "",
        *table("placeholder", r["redactions_by_type"]),
        *table("language", r["by_language"]),
        *table("intent", r["by_intent"]),
    ]
    if imp["examples"]:
        lines += ["## First problems", "", *[f"- `{re.sub('`', '', e)}`" for e in imp["examples"]]]
    return "\n".join(lines) + "\n"
