"""Recall and precision of the redactor on planted PII.

The synthetic generator knows every fake value it planted (`synth.compose`), so every occurrence
of a planted value is a ground-truth span with a type. A planted span counts as *caught* when
redaction spans cover all of its characters, and as *typed* when they also carry its label. A
redaction span is a *true positive* when it overlaps a planted span. Anything else it removed
(a product name, a date) is a false positive, and precision pays for it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from finetune.data.redact import Span, detect, find_names
from finetune.data.synth import compose

PII_SLOTS = {"customer_name": "NAME", "agent_name": "NAME", "email": "EMAIL", "phone": "PHONE",
             "card": "CARD", "iban": "IBAN", "address": "ADDRESS", "order_id": "ORDER_ID",
             "tracking_id": "TRACKING_ID"}


def _truth(text: str, slots: dict[str, str]) -> list[Span]:
    found = []
    for slot, label in PII_SLOTS.items():
        value, start = slots[slot], 0
        while (i := text.find(value, start)) >= 0:
            found.append(Span(i, i + len(value), label))
            start = i + len(value)
    return found


def _cover(t: Span, spans: list[Span]) -> list[Span] | None:
    """The detected spans that together cover all of `t`, or None if some of it is missed."""
    cover = [s for s in spans if s.start < t.end and s.end > t.start]
    covered = set().union(*(range(s.start, s.end) for s in cover)) if cover else set()
    return cover if set(range(t.start, t.end)) <= covered else None


def evaluate(n: int = 1000, seed: int = 12345) -> dict[str, Any]:
    truth_n, caught, typed = Counter(), Counter(), Counter()
    predicted, true_pos = Counter(), Counter()
    misses: list[str] = []
    for i in range(n):
        conv, slots = compose(seed, i)
        names: set[str] = set()
        for m in conv.messages:
            names |= find_names(m.content)
        for m in conv.messages:
            truth, spans = _truth(m.content, slots), detect(m.content, names)
            for t in truth:
                truth_n[t.label] += 1
                if (cover := _cover(t, spans)) is not None:
                    caught[t.label] += 1
                    typed[t.label] += all(s.label == t.label for s in cover)
                elif len(misses) < 20:
                    misses.append(f"{t.label}: {m.content[max(0, t.start - 30):t.end + 10]!r}")
            for s in spans:
                predicted[s.label] += 1
                true_pos[s.label] += any(s.start < t.end and s.end > t.start for t in truth)
    labels = sorted(truth_n)
    total_t, total_c = sum(truth_n.values()), sum(caught.values())
    total_p, total_tp = sum(predicted.values()), sum(true_pos.values())
    return {
        "conversations": n, "seed": seed, "planted": total_t,
        "recall": round(total_c / total_t, 4) if total_t else None,
        "precision": round(total_tp / total_p, 4) if total_p else None,
        "typed_recall": round(sum(typed.values()) / total_t, 4) if total_t else None,
        "by_type": {lab: {"planted": truth_n[lab], "recall": round(caught[lab] / truth_n[lab], 4),
                          "precision": round(true_pos[lab] / predicted[lab], 4)
                          if predicted[lab] else None} for lab in labels},
        "sample_misses": misses,
    }


def evaluate_labelled(path: Path) -> dict[str, Any]:
    """The same measures on hand-labelled messages: one JSON per line with `text` and
    `pii: [{"type", "value"}]` (tests/data/pii_holdout.jsonl, written apart from the redactor)."""
    truth_n, caught, predicted, true_pos = Counter(), Counter(), Counter(), Counter()
    misses, false_pos = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = row["text"]
        truth = []
        for item in row["pii"]:
            i = text.find(item["value"])
            truth.append(Span(i, i + len(item["value"]), item["type"]))
        spans = detect(text, find_names(text))
        for t in truth:
            truth_n[t.label] += 1
            if _cover(t, spans) is not None:
                caught[t.label] += 1
            else:
                misses.append(f"{t.label}: {text[t.start:t.end]!r} in {row['lang']}")
        for s in spans:
            predicted[s.label] += 1
            hit = any(s.start < t.end and s.end > t.start for t in truth)
            true_pos[s.label] += hit
            if not hit:
                false_pos.append(f"{s.label}: {text[s.start:s.end]!r}")
    total_t, total_p = sum(truth_n.values()), sum(predicted.values())
    return {
        "file": str(path), "planted": total_t,
        "recall": round(sum(caught.values()) / total_t, 4) if total_t else None,
        "precision": round(sum(true_pos.values()) / total_p, 4) if total_p else None,
        "by_type": {lab: {"planted": truth_n[lab], "recall": round(caught[lab] / truth_n[lab], 4)}
                    for lab in sorted(truth_n)},
        "misses": misses, "false_positives": false_pos,
    }
