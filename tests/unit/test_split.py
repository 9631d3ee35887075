from finetune.data.schema import Conversation, Message
from finetune.data.split import assign, split


def _conv(i: int) -> Conversation:
    return Conversation(
        conversation_id=f"c{i}",
        messages=[Message(role="user", content="hi"), Message(role="assistant", content="hello")],
    )


def test_split_is_a_function_of_the_id_only():
    convs = [_conv(i) for i in range(500)]
    a = split(convs)
    b = split(list(reversed(convs + [_conv(i) for i in range(500, 600)])))
    for name in a:
        ids_a = {c.conversation_id for c in a[name]}
        ids_b = {c.conversation_id for c in b[name]}
        assert ids_a <= ids_b


def test_no_conversation_crosses_splits_and_fractions_hold():
    parts = split([_conv(i) for i in range(2000)], val=0.1, test=0.1)
    ids = [c.conversation_id for p in parts.values() for c in p]
    assert len(ids) == len(set(ids)) == 2000
    assert 140 < len(parts["test"]) < 260 and 140 < len(parts["val"]) < 260


def test_bad_fractions_are_refused():
    import pytest

    with pytest.raises(ValueError):
        assign("x", val=0.6, test=0.5)
