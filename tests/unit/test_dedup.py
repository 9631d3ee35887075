from finetune.data.dedup import deduplicate
from finetune.data.schema import Conversation, Message

TEXT = (
    "Hello, my parcel <ORDER_ID> has not arrived and the tracking page has not moved for a "
    "week now, can you please check what is going on with it"
)


def _c(
    cid: str, user: str, agent: str = "Sorry about that, let me check the carrier for you."
) -> Conversation:
    return Conversation(
        conversation_id=cid,
        messages=[Message(role="user", content=user), Message(role="assistant", content=agent)],
    )


def test_exact_and_near_duplicates_are_removed_and_reported():
    convs = [
        _c("a", TEXT),
        _c("b", TEXT.upper()),
        _c("c", TEXT + " thanks"),
        _c("d", "I want to cancel my subscription before the next billing date."),
    ]
    result = deduplicate(convs, threshold=0.7)
    assert [c.conversation_id for c in result.kept] == ["a", "d"]
    assert result.exact == {"b": "a"}
    assert result.near == {"c": "a"}


def test_distinct_conversations_survive():
    convs = [
        _c(str(i), f"question number {i} about topic {i * 7} and more words {i * 13}")
        for i in range(50)
    ]
    assert len(deduplicate(convs).kept) == 50
