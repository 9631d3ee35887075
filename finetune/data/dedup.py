"""Exact and near-duplicate removal, run after redaction and before the split.

Design: duplicates are judged on the *redacted* text. Two tickets that differ only in the
customer's email are the same training example, and counting both would overweight it and let a
copy leak across the train/test boundary. Exact duplicates are found by hashing the normalised
text. Near-duplicates are found with MinHash LSH (datasketch) over word 3-gram shingles at a
Jaccard threshold: the first conversation seen is kept, and each one dropped is reported with the
id it duplicates.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from finetune.data.schema import Conversation

NUM_PERM = 64


def normalise(conv: Conversation) -> str:
    text = "\n".join(f"{m.role}: {m.content}" for m in conv.messages)
    return re.sub(r"\s+", " ", text.lower()).strip()


def shingles(text: str, k: int = 3) -> set[bytes]:
    words = re.findall(r"\w+|<[a-z_]+>", text)
    return {" ".join(words[i : i + k]).encode() for i in range(max(1, len(words) - k + 1))}


@dataclass
class DedupResult:
    kept: list[Conversation] = field(default_factory=list)
    exact: dict[str, str] = field(default_factory=dict)  # dropped id -> kept id
    near: dict[str, str] = field(default_factory=dict)


def deduplicate(conversations: list[Conversation], threshold: float = 0.9) -> DedupResult:
    from datasketch import MinHash, MinHashLSH

    result = DedupResult()
    seen: dict[str, str] = {}
    hashes: dict[str, MinHash] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for conv in conversations:
        text = normalise(conv)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in seen:
            result.exact[conv.conversation_id] = seen[digest]
            continue
        mh = MinHash(num_perm=NUM_PERM, seed=1)
        mh.update_batch(list(shingles(text)))
        # LSH gives candidates; keep only those whose estimated Jaccard really clears the bar.
        similar = sorted(c for c in lsh.query(mh) if mh.jaccard(hashes[c]) >= threshold)
        if similar:
            result.near[conv.conversation_id] = similar[0]
            continue
        seen[digest] = conv.conversation_id
        hashes[conv.conversation_id] = mh
        lsh.insert(conv.conversation_id, mh)
        result.kept.append(conv)
    return result
