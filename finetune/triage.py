"""The `support-triage` task: conversation in, JSON out (intent, sentiment, language, priority,
summary), served with `response_format: json_schema` so that every answer parses.

    python -m finetune triage-data --from data/datasets/support --out data/datasets/triage
    python -m finetune train --config finetune/recipes/support-triage-v1.yaml
    python -m finetune eval-triage --base-url http://127.0.0.1:8000/v1 \
        --model base:support-triage-v1 --data data/datasets/triage/test.jsonl

Design: the examples come from the *already redacted and split* reply data set, so triage
inherits the same split (a test conversation is test for both adapters) and never sees raw PII.
The prompt is fixed here (`triage_messages`): clients send the same system instruction and the
transcript, and the schema below constrains decoding. Structured output therefore guarantees the
*shape*, and the score measures the *content*: intent, sentiment and language accuracy against
the labels.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from finetune.data.schema import Conversation, Message, read_jsonl, write_jsonl
from finetune.data.split import SPLITS
from finetune.data.synth import INTENTS, LEVELS

INSTRUCTION = "Triage this support conversation. Answer in JSON."
SPEAKER = {"user": "Customer", "assistant": "Agent"}
MAX_TURNS = 1  # the customer's opening message carries the request


def schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": 160},
            "intent": {"type": "string", "enum": list(INTENTS)},
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "language": {"type": "string", "enum": ["en", "es", "pt", "fr", "de"]},
            "priority": {"type": "string", "enum": list(LEVELS)},
        },
        "required": ["summary", "intent", "sentiment", "language", "priority"],
        "additionalProperties": False,
    }


def transcript(conv: Conversation, turns: int | None = None) -> str:
    msgs = [m for m in conv.messages if m.role != "system"][:turns]
    return "\n".join(f"{SPEAKER[m.role]}: {m.content}" for m in msgs)


def triage_messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": text}]


def label(conv: Conversation) -> dict[str, str] | None:
    lab = conv.labels
    if not (conv.intent and conv.language and lab.sentiment and lab.priority and lab.summary):
        return None
    # The summary comes first: the model states the request in words, then names its label.
    return {
        "summary": lab.summary,
        "intent": conv.intent,
        "sentiment": lab.sentiment,
        "language": conv.language,
        "priority": lab.priority,
    }


def to_example(conv: Conversation, rng: random.Random) -> Conversation | None:
    target = label(conv)
    if target is None:
        return None
    turns = rng.randint(1, MAX_TURNS)  # short and longer transcripts alike
    msgs = [
        *triage_messages(transcript(conv, turns)),
        {"role": "assistant", "content": json.dumps(target, ensure_ascii=False)},
    ]
    return conv.model_copy(update={"messages": [Message(**m) for m in msgs]})  # type: ignore[arg-type]


def build(src: Path, out: Path, seed: int = 0) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for split in SPLITS:
        rng = random.Random(f"{seed}:{split}")
        convs = list(read_jsonl(src / f"{split}.jsonl"))
        examples = [e for c in convs if (e := to_example(c, rng)) is not None]
        write_jsonl(out / f"{split}.jsonl", examples)
        counts[split] = {
            "examples": len(examples),
            "skipped_unlabelled": len(convs) - len(examples),
        }
    return counts


def score(predictions: list[str | None], gold: list[dict[str, str]]) -> dict[str, Any]:
    """JSON validity, schema validity, and per-field accuracy (invalid answers count as wrong)."""
    import jsonschema

    valid_json = valid_schema = 0
    correct: Counter[str] = Counter()
    confusion: Counter[str] = Counter()
    for raw, want in zip(predictions, gold, strict=True):
        try:
            got = json.loads(raw or "")
        except ValueError:
            continue
        valid_json += 1
        if jsonschema.Draft202012Validator(schema()).is_valid(got):
            valid_schema += 1
        for key in ("intent", "sentiment", "language", "priority"):
            correct[key] += got.get(key) == want[key] if isinstance(got, dict) else 0
        if isinstance(got, dict) and got.get("intent") != want["intent"]:
            confusion[f"{want['intent']} -> {got.get('intent')}"] += 1
    n = len(gold)
    return {
        "examples": n,
        "json_valid": round(valid_json / n, 4) if n else None,
        "schema_valid": round(valid_schema / n, 4) if n else None,
        "accuracy": {
            k: round(correct[k] / n, 4) for k in ("intent", "sentiment", "language", "priority")
        }
        if n
        else {},
        "top_confusions": dict(confusion.most_common(8)),
    }


def evaluate_served(
    base_url: str,
    model: str,
    data: Path,
    *,
    api_key: str = "unused",
    limit: int | None = None,
    concurrency: int = 8,
) -> dict[str, Any]:
    """Ask the running server, exactly as a client would, with structured output."""
    from concurrent.futures import ThreadPoolExecutor

    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=1, timeout=300)
    examples = list(read_jsonl(data))[:limit]
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "triage", "schema": schema(), "strict": True},
    }

    def ask(conv: Conversation) -> str | None:
        prompt = [m.model_dump() for m in conv.messages[:-1]]
        resp = client.chat.completions.create(
            model=model,
            messages=prompt,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=96,
            response_format=fmt,
        )  # type: ignore[arg-type]
        return resp.choices[0].message.content

    with ThreadPoolExecutor(concurrency) as pool:
        predictions = list(pool.map(ask, examples))
    gold = [json.loads(c.messages[-1].content) for c in examples]
    return {
        "model": model,
        "data": str(data),
        **score(predictions, gold),
        "sample": [
            {"expected": g, "got": p} for g, p in zip(gold[:3], predictions[:3], strict=True)
        ],
    }
