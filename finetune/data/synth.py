"""Seeded generator of synthetic, multilingual customer-support transcripts.

Design: wording lives in data (`phrases/<lang>.yaml`, one phrase bank per language, see
`phrases/SPEC.md`); this module owns only the *shape* of a support conversation, the way real
teams work a ticket:

    customer opener -> agent greeting + identity check -> customer verifies (planted PII)
    -> agent: policy, resolution or escalation -> optional follow-up Q&A -> optional sign-off

Each conversation draws from its own `random.Random(seed, index)`, so conversation *i* is the same
whatever `n` is, and the whole set is reproducible from the seed. Every record carries
`synthetic: true` and an id starting with `syn-`; nothing here describes a real person.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from finetune.data.fakes import Faker
from finetune.data.schema import LANGUAGES, Conversation, Labels, Message

PHRASES_DIR = Path(__file__).parent / "phrases"

# Triage ground truth: base priority per intent; a negative customer raises it one step.
PRIORITY = {
    "order_status": "low", "refund_request": "normal", "billing_dispute": "high",
    "cancel_subscription": "normal", "account_access": "high", "two_factor_reset": "high",
    "shipping_address_change": "high", "damaged_item": "normal", "warranty_claim": "normal",
    "api_error": "high", "gdpr_data_request": "high", "return_label": "low",
    "payment_failed": "high", "invoice_request": "low", "plan_upgrade": "low",
    "promo_code": "low", "missing_item": "normal", "delivery_delayed": "normal",
    "password_reset": "normal", "product_question": "low", "account_deletion": "normal",
    "feature_request": "low",
}
SUMMARY = {
    "order_status": "Customer asks where their order is.",
    "refund_request": "Customer requests a refund for a purchase.",
    "billing_dispute": "Customer disputes a charge on their bill.",
    "cancel_subscription": "Customer wants to cancel their subscription.",
    "account_access": "Customer cannot access their account.",
    "two_factor_reset": "Customer needs two-factor authentication reset.",
    "shipping_address_change": "Customer wants to change the shipping address of an order.",
    "damaged_item": "Customer received a damaged item.",
    "warranty_claim": "Customer makes a warranty claim for a faulty product.",
    "api_error": "Customer reports errors from the developer API.",
    "gdpr_data_request": "Customer requests a copy of their personal data (GDPR).",
    "return_label": "Customer needs a return label.",
    "payment_failed": "Customer's payment was declined.",
    "invoice_request": "Customer requests an invoice.",
    "plan_upgrade": "Customer wants to upgrade their plan.",
    "promo_code": "Customer's promo code does not work.",
    "missing_item": "Customer's order arrived with an item missing.",
    "delivery_delayed": "Customer's delivery is late.",
    "password_reset": "Customer cannot reset their password.",
    "product_question": "Customer asks a question about a product.",
    "account_deletion": "Customer wants their account deleted.",
    "feature_request": "Customer suggests a new feature.",
}
INTENTS = tuple(PRIORITY)
LEVELS = ("low", "normal", "high", "urgent")
# Intents where a real team hands off to a specialist more often than it resolves at tier 1.
ESCALATION_PRONE = {"billing_dispute", "api_error", "gdpr_data_request", "account_access",
                    "warranty_claim", "account_deletion"}
CHANNELS = ("chat", "chat", "chat", "email", "web")


@cache
def phrase_bank(lang: str) -> dict[str, Any]:
    data = yaml.safe_load((PHRASES_DIR / f"{lang}.yaml").read_text(encoding="utf-8"))
    if data.get("language") != lang:
        raise ValueError(f"phrase bank {lang}.yaml declares language {data.get('language')!r}")
    missing = set(INTENTS) - set(data["intents"])
    if missing:
        raise ValueError(f"phrase bank {lang}.yaml lacks intents {sorted(missing)}")
    return data


def _pick(rng: random.Random, lines: list[str], slots: dict[str, str]) -> str:
    return rng.choice(lines).format(**slots)


def make_conversation(seed: int, index: int) -> Conversation:
    return compose(seed, index)[0]


def compose(seed: int, index: int) -> tuple[Conversation, dict[str, str]]:
    """One conversation and the fake values planted in it (the redaction ground truth)."""
    rng = random.Random(f"{seed}:{index}")
    lang = rng.choice(LANGUAGES)
    intent = rng.choice(INTENTS)
    sentiment = rng.choices(["neutral", "negative", "positive"], weights=[55, 35, 10])[0]
    bank, slots = phrase_bank(lang), Faker(rng, lang).slots()
    common, it = bank["common"], bank["intents"][intent]
    say = lambda key_lines: _pick(rng, key_lines, slots)  # noqa: E731

    escalate = rng.random() < (0.55 if intent in ESCALATION_PRONE else 0.12)
    outcome = say(common["escalation"]) if escalate else say(it["resolution"])
    msgs: list[tuple[str, str]] = []
    if rng.random() < 0.25:  # short form: the opener already carries the details
        msgs += [("user", f"{say(it['openers'][sentiment])} {say(it['details'])}"),
                 ("assistant", f"{say(common['agent_greeting'])} {say(it['policy'])} {outcome}")]
    else:
        msgs += [("user", say(it["openers"][sentiment])),
                 ("assistant", f"{say(common['agent_greeting'])} {say(common['verification_request'])}"),
                 ("user", f"{say(common['verification_reply'])} {say(it['details'])}"),
                 ("assistant", f"{say(common['holding'])} {say(it['policy'])} {outcome}")]
    budget = 8 - len(msgs)
    if budget >= 2 and rng.random() < 0.45:
        msgs += [("user", say(it["followup_question"])), ("assistant", say(it["followup_answer"]))]
        budget -= 2
    if budget >= 2 and rng.random() < 0.5:
        msgs += [("user", say(common["thanks_customer"])), ("assistant", say(common["closing_agent"]))]

    base = LEVELS.index(PRIORITY[intent])
    priority = LEVELS[min(base + (sentiment == "negative"), len(LEVELS) - 1)]
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 300 * 24 * 60))
    conv = Conversation(
        conversation_id=f"syn-{seed}-{index:06d}",
        messages=[Message(role=r, content=c) for r, c in msgs],  # type: ignore[arg-type]
        language=lang,
        channel=rng.choice(CHANNELS),
        intent=intent,
        created_at=created,
        synthetic=True,
        labels=Labels(sentiment=sentiment, priority=priority, summary=SUMMARY[intent]),  # type: ignore[arg-type]
    )
    return conv, slots


def generate(n: int, seed: int = 0) -> list[Conversation]:
    return [make_conversation(seed, i) for i in range(n)]
