import json

from finetune.data.synth import generate
from finetune.triage import label, schema, score, to_example


def test_examples_carry_labels_as_json_matching_the_schema():
    import random

    import jsonschema

    conv = generate(1, seed=4)[0]
    ex = to_example(conv, random.Random(0))
    assert ex.messages[0].role == "system" and ex.messages[-1].role == "assistant"
    target = json.loads(ex.messages[-1].content)
    jsonschema.validate(target, schema())
    assert target == label(conv)


def test_score_counts_invalid_answers_as_wrong():
    gold = [
        {
            "intent": "refund_request",
            "sentiment": "neutral",
            "language": "en",
            "priority": "normal",
            "summary": "x",
        }
    ] * 2
    good = json.dumps(gold[0])
    result = score([good, "not json"], gold)
    assert result["json_valid"] == 0.5
    assert result["accuracy"]["intent"] == 0.5
