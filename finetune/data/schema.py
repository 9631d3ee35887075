"""The conversation schema every importer produces and every later stage consumes.

One JSON object per line (JSONL). `messages` follows the OpenAI chat format, so the same file
feeds TRL, our eval command and the benchmark prompts. Everything else is metadata used for
splitting, reporting and the triage labels:

    {"conversation_id": "syn-000042", "language": "de", "channel": "chat",
     "intent": "refund_request", "created_at": "2026-03-01T10:22:00Z", "synthetic": true,
     "labels": {"sentiment": "negative", "priority": "high", "summary": "..."},
     "messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

Validation is strict (unknown keys are refused) so that a typo in an importer fails loudly instead
of silently dropping a field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant"]
LANGUAGES = ("en", "es", "pt", "fr", "de")
SENTIMENTS = ("positive", "neutral", "negative")
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("chat", "email", "phone", "social", "web")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str = Field(min_length=1)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message content is blank")
        return value


class Labels(BaseModel):
    """Triage labels; optional on imported data, always present on synthetic data."""

    model_config = ConfigDict(extra="forbid")
    sentiment: Literal["positive", "neutral", "negative"] | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    summary: str | None = None


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=2)
    language: str | None = None
    channel: str | None = None
    intent: str | None = None
    created_at: datetime | None = None
    synthetic: bool = False
    labels: Labels = Field(default_factory=Labels)

    @model_validator(mode="after")
    def _dialogue_shape(self) -> Conversation:
        turns = [m for m in self.messages if m.role != "system"]
        if any(m.role == "system" for m in self.messages[1:]):
            raise ValueError("a system message may only come first")
        if not turns or turns[0].role != "user":
            raise ValueError("the first non-system message must come from the user")
        if not any(m.role == "assistant" for m in turns):
            raise ValueError("a conversation needs at least one assistant message")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


def read_jsonl(path: Path) -> Iterator[Conversation]:
    """Read a file already in our schema; raises ValueError naming file and line on bad input."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Conversation.model_validate_json(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc


def write_jsonl(path: Path, conversations: Iterable[Conversation]) -> int:
    """Write atomically, and only if the content changed (so `make` does not retrain on a no-op)."""
    lines = [conv.to_json() + "\n" for conv in conversations]
    write_if_changed(path, "".join(lines))
    return len(lines)


def write_if_changed(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True


def chat_messages(conv: Conversation) -> list[dict[str, str]]:
    return [m.model_dump() for m in conv.messages]


def dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
