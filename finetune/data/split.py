"""Deterministic train/val/test split by conversation.

Design: a conversation's split is a pure function of its id (SHA-256 of the id, mapped to [0, 1)),
so it never moves when the data set grows, shrinks or is re-ordered, and no conversation can sit
in two splits. Near-duplicates are removed *before* splitting (see `dedup.py`), so a paraphrase
of a test conversation cannot leak into train either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from finetune.data.schema import Conversation

SPLITS = ("train", "val", "test")


def bucket(conversation_id: str, salt: str = "") -> float:
    digest = hashlib.sha256(f"{salt}:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(conversation_id: str, val: float = 0.1, test: float = 0.1, salt: str = "") -> str:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError("val and test fractions must be in [0, 1) and sum to less than 1")
    x = bucket(conversation_id, salt)
    return "test" if x < test else "val" if x < test + val else "train"


def split(conversations: Iterable[Conversation], val: float = 0.1, test: float = 0.1,
          salt: str = "") -> dict[str, list[Conversation]]:
    out: dict[str, list[Conversation]] = {name: [] for name in SPLITS}
    for conv in conversations:
        out[assign(conv.conversation_id, val, test, salt)].append(conv)
    return out
