from collections import Counter

from finetune.data.fakes import iban_valid, luhn_valid
from finetune.data.schema import LANGUAGES
from finetune.data.synth import INTENTS, generate, make_conversation


def test_seeded_and_index_stable():
    assert make_conversation(3, 7) == make_conversation(3, 7)
    assert generate(20, seed=3)[7] == make_conversation(3, 7)
    assert generate(5, seed=1) != generate(5, seed=2)


def test_coverage_and_shape():
    convs = generate(600, seed=0)
    assert set(Counter(c.language for c in convs)) == set(LANGUAGES)
    assert len({c.intent for c in convs}) == len(INTENTS) >= 20
    assert all(2 <= len(c.messages) <= 8 for c in convs)
    assert all(c.synthetic and c.conversation_id.startswith("syn-") for c in convs)
    assert all(c.labels.sentiment and c.labels.priority and c.labels.summary for c in convs)


def test_fake_identifiers_are_valid_in_form():
    import random

    from finetune.data.fakes import Faker

    for lang in LANGUAGES:
        f = Faker(random.Random(lang), lang)
        for _ in range(50):
            assert luhn_valid(f.card())
            assert iban_valid(f.iban())
