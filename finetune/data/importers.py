"""Importers: JSONL chat, CSV (one row per message), and Zendesk ticket exports -> `Conversation`.

Design: an importer never drops input silently. Every record is either *kept* (a valid
`Conversation`, plus any names the source already knows, which redaction uses) or *skipped*
with a reason and a `file:line` location, and `ImportReport` counts both. The pipeline prints
the summary and stores it in the data report. Lossy but valid fixes (merging consecutive turns
of the same speaker, dropping an agent's opening message on an outbound ticket) are counted as
`notes`, so nothing changes without a trace.

Formats:
- **jsonl**: one conversation per line, `{"messages": [{"role", "content"}, ...]}`, plus any of
  our metadata keys (finetune/data/schema.py). A missing `conversation_id` becomes `<file>:<line>`.
- **csv**: one row per message. Required columns: `conversation_id`, `role`, `content`
  (aliases: `author_role`/`sender`, `message`/`body`/`text`). Optional: `created_at`, `language`,
  `channel`, `intent`, `customer_name`. Rows of one conversation keep their file order.
- **zendesk**: what the Zendesk Support API returns. Either `{"tickets": [...], "users": [...]}`
  or JSONL of tickets, each with a `comments` array (Ticket Comments API objects). Only `public`
  comments become turns. A comment by the ticket's `requester_id` is the customer; anyone else
  is the agent. The requester's `locale` gives the language, `via.channel` the channel, and an
  `intent_<name>` tag the intent. User names are passed on for redaction.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from finetune.data.schema import Conversation

ROLE_ALIASES = {
    "user": "user", "customer": "user", "end-user": "user", "end_user": "user",
    "requester": "user", "client": "user", "assistant": "assistant", "agent": "assistant",
    "support": "assistant", "admin": "assistant", "system": "system",
}
CONTENT_COLUMNS = ("content", "message", "body", "text")
ROLE_COLUMNS = ("role", "author_role", "sender")
META_KEYS = ("language", "channel", "intent", "created_at")


@dataclass
class Imported:
    conversation: Conversation
    known_names: tuple[str, ...] = ()


@dataclass
class ImportReport:
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # first problems, with file:line

    def skip(self, where: str, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if len(self.examples) < 50:
            self.examples.append(f"{where}: {reason}{': ' + detail if detail else ''}")

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "skipped": sum(self.skipped.values()),
                "skipped_by_reason": dict(self.skipped), "notes": dict(self.notes),
                "examples": self.examples}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc + ': ' if loc else ''}{err.get('msg', 'invalid')}"


def _merge_turns(messages: list[dict[str, str]], report: ImportReport) -> list[dict[str, str]]:
    merged: list[dict[str, str]] = []
    for m in messages:
        if merged and merged[-1]["role"] == m["role"] and m["role"] != "system":
            merged[-1] = {"role": m["role"], "content": merged[-1]["content"] + "\n\n" + m["content"]}
            report.notes["merged_consecutive_turns"] += 1
        else:
            merged.append(dict(m))
    return merged


def _build(data: dict[str, Any], where: str, report: ImportReport,
           names: tuple[str, ...] = ()) -> Imported | None:
    try:
        conv = Conversation.model_validate(data)
    except ValidationError as exc:
        report.skip(where, "invalid_conversation", _first_error(exc))
        return None
    report.kept += 1
    return Imported(conv, names)


def read_chat_jsonl(path: Path, report: ImportReport) -> Iterator[Imported]:
    known = set(Conversation.model_fields)
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                report.skip(where, "invalid_json", str(exc))
                continue
            if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
                report.skip(where, "no_messages")
                continue
            extra = set(data) - known
            if extra:
                report.notes["ignored_keys"] += 1
            item = {k: v for k, v in data.items() if k in known}
            item.setdefault("conversation_id", f"{path.stem}:{lineno}")
            names = (data["customer_name"],) if isinstance(data.get("customer_name"), str) else ()
            built = _build(item, where, report, names)
            if built:
                yield built


def read_csv(path: Path, report: ImportReport) -> Iterator[Imported]:
    groups: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = {c.strip().lower(): c for c in reader.fieldnames or []}
        role_col = next((cols[c] for c in ROLE_COLUMNS if c in cols), None)
        text_col = next((cols[c] for c in CONTENT_COLUMNS if c in cols), None)
        if "conversation_id" not in cols or role_col is None or text_col is None:
            report.skip(f"{path}:1", "missing_columns",
                        "need conversation_id, role and content columns")
            return
        for row in reader:
            where = f"{path}:{reader.line_num}"
            cid = (row.get(cols["conversation_id"]) or "").strip()
            role = ROLE_ALIASES.get((row.get(role_col) or "").strip().lower())
            text = (row.get(text_col) or "").strip()
            if not cid:
                report.skip(where, "missing_conversation_id")
                continue
            if role is None:
                report.skip(where, "unknown_role", repr(row.get(role_col)))
                continue
            if not text:
                report.skip(where, "empty_message")
                continue
            group = groups.setdefault(cid, {"first": where, "messages": [], "meta": {},
                                            "names": set()})
            group["messages"].append({"role": role, "content": text})
            for key in META_KEYS:
                if key in cols and row.get(cols[key]) and key not in group["meta"]:
                    group["meta"][key] = row[cols[key]].strip()
            if "customer_name" in cols and row.get(cols["customer_name"]):
                group["names"].add(row[cols["customer_name"]].strip())
    for cid, group in groups.items():
        data = {"conversation_id": cid, "messages": _merge_turns(group["messages"], report),
                **group["meta"]}
        built = _build(data, group["first"], report, tuple(sorted(group["names"])))
        if built:
            yield built


def _zendesk_records(path: Path, report: ImportReport) -> tuple[list[tuple[str, Any]], dict]:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "tickets" in doc:
        users = {u.get("id"): u for u in doc.get("users", []) if isinstance(u, dict)}
        return [(f"{path}:tickets[{i}]", t) for i, t in enumerate(doc["tickets"])], users
    records: list[tuple[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((f"{path}:{lineno}", json.loads(line)))
        except ValueError as exc:
            report.skip(f"{path}:{lineno}", "invalid_json", str(exc))
    return records, {}


def read_zendesk(path: Path, report: ImportReport) -> Iterator[Imported]:
    records, users = _zendesk_records(path, report)
    for where, ticket in records:
        if not isinstance(ticket, dict) or "id" not in ticket:
            report.skip(where, "not_a_ticket")
            continue
        requester = ticket.get("requester_id")
        comments = ticket.get("comments")
        if requester is None or not isinstance(comments, list):
            report.skip(where, "missing_requester_or_comments")
            continue
        public = [c for c in comments if isinstance(c, dict) and c.get("public", True)]
        report.notes["private_comments_excluded"] += len(comments) - len(public)
        messages = []
        for c in public:
            body = (c.get("plain_body") or c.get("body") or "").strip()
            if body:
                role = "user" if c.get("author_id") == requester else "assistant"
                messages.append({"role": role, "content": body})
        while messages and messages[0]["role"] == "assistant":
            messages.pop(0)
            report.notes["leading_agent_comments_dropped"] += 1
        if not messages:
            report.skip(where, "no_public_customer_comments")
            continue
        requester_user = users.get(requester, {})
        locale = str(requester_user.get("locale") or ticket.get("locale") or "")
        tags = [t for t in ticket.get("tags") or [] if isinstance(t, str)]
        intent = next((t.removeprefix("intent_") for t in tags if t.startswith("intent_")), None)
        data = {"conversation_id": f"zd-{ticket['id']}",
                "messages": _merge_turns(messages, report),
                "language": locale.split("-")[0].lower() or None,
                "channel": (ticket.get("via") or {}).get("channel"),
                "intent": intent, "created_at": ticket.get("created_at")}
        authors = {c.get("author_id") for c in public} | {requester}
        names = tuple(sorted(str(users[a]["name"]) for a in authors
                             if a in users and users[a].get("name")))
        built = _build(data, where, report, names)
        if built:
            yield built


READERS = {"jsonl": read_chat_jsonl, "csv": read_csv, "zendesk": read_zendesk}


def guess_format(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        return "csv"
    head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    return "zendesk" if '"requester_id"' in head or '"tickets"' in head else "jsonl"


def import_files(paths: list[Path], fmt: str | None, report: ImportReport) -> list[Imported]:
    out: list[Imported] = []
    for path in paths:
        if not path.is_file():
            report.skip(str(path), "file_not_found")
            continue
        out.extend(READERS[fmt or guess_format(path)](path, report))
    return out
