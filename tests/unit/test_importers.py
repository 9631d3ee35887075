"""Importers: every record is kept or counted as skipped with a file:line location."""

import json

from finetune.data.importers import ImportReport, guess_format, import_files


def _run(path, fmt=None):
    report = ImportReport()
    items = import_files([path], fmt, report)
    return items, report


def test_jsonl_keeps_valid_and_reports_bad_lines(tmp_path):
    f = tmp_path / "chats.jsonl"
    f.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": "hi"},
                            {"role": "assistant", "content": "hello"},
                        ],
                        "language": "en",
                        "customer_name": "Ana Costa",
                    }
                ),
                "{not json",
                json.dumps(
                    {
                        "messages": [
                            {"role": "assistant", "content": "hello first"},
                            {"role": "user", "content": "hi"},
                        ]
                    }
                ),
                json.dumps({"conversation_id": "x"}),
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": "  "},
                            {"role": "assistant", "content": "ok"},
                        ]
                    }
                ),
            ]
        )
        + "\n"
    )
    items, report = _run(f)
    assert report.kept == 1 and len(items) == 1
    assert items[0].conversation.conversation_id == "chats:1"
    assert items[0].known_names == ("Ana Costa",)
    assert report.skipped == {"invalid_json": 1, "invalid_conversation": 2, "no_messages": 1}
    assert any(e.startswith(f"{f}:2: invalid_json") for e in report.examples)


def test_csv_groups_rows_and_merges_turns(tmp_path):
    f = tmp_path / "export.csv"
    f.write_text(
        "conversation_id,role,content,language,customer_name\n"
        "t1,customer,My order is late,en,Jo Park\n"
        "t1,customer,It was due Monday,en,Jo Park\n"
        "t1,agent,Let me check,en,\n"
        "t2,robot,???,en,\n"
        "t3,agent,Hello?,de,\n"
    )
    items, report = _run(f)
    assert [i.conversation.conversation_id for i in items] == ["t1"]
    conv = items[0].conversation
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert "due Monday" in conv.messages[0].content and conv.language == "en"
    assert report.notes["merged_consecutive_turns"] == 1
    assert report.skipped == {"unknown_role": 1, "invalid_conversation": 1}


def test_csv_without_required_columns(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("id,text\n1,hello\n")
    items, report = _run(f)
    assert not items and report.skipped == {"missing_columns": 1}


def test_zendesk_public_comments_and_roles(tmp_path):
    export = {
        "users": [
            {"id": 10, "name": "Lena Vogel", "role": "end-user", "locale": "de-DE"},
            {"id": 20, "name": "Alex Kim", "role": "agent"},
        ],
        "tickets": [
            {
                "id": 501,
                "requester_id": 10,
                "via": {"channel": "email"},
                "tags": ["vip", "intent_refund_request"],
                "created_at": "2026-02-01T10:00:00Z",
                "comments": [
                    {
                        "id": 1,
                        "author_id": 10,
                        "body": "Ich möchte mein Geld zurück.",
                        "public": True,
                    },
                    {"id": 2, "author_id": 20, "body": "Internal: check fraud", "public": False},
                    {
                        "id": 3,
                        "author_id": 20,
                        "body": "Gern, die Erstattung läuft.",
                        "public": True,
                    },
                ],
            },
            {
                "id": 502,
                "requester_id": 11,
                "comments": [
                    {"id": 4, "author_id": 20, "body": "Proactive notice", "public": True}
                ],
            },
            {"id": 503, "requester_id": 12},
        ],
    }
    f = tmp_path / "zendesk.json"
    f.write_text(json.dumps(export))
    assert guess_format(f) == "zendesk"
    items, report = _run(f)
    assert len(items) == 1
    conv = items[0].conversation
    assert conv.conversation_id == "zd-501" and conv.language == "de"
    assert conv.intent == "refund_request" and conv.channel == "email"
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert "Internal" not in " ".join(m.content for m in conv.messages)
    assert set(items[0].known_names) == {"Lena Vogel", "Alex Kim"}
    assert report.notes["private_comments_excluded"] == 1
    assert report.skipped == {"no_public_customer_comments": 1, "missing_requester_or_comments": 1}


def test_missing_file_is_reported(tmp_path):
    items, report = _run(tmp_path / "nope.jsonl", "jsonl")
    assert not items and report.skipped == {"file_not_found": 1}
