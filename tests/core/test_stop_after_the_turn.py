"""A player stops a reply after its turn ended (the reply was made faster than it plays):
``interrupt(played_seconds=...)`` cuts the history's newest reply to what was heard, once."""

from __future__ import annotations

from lexperience import Conversation, Message
from lexperience.heard import HEARD_TO_THE_END
from lexperience.testing import FakeLLM, FakeTTS

REPLY = "The moon is far away. It takes light about a second to get here. That is all."


async def finished() -> tuple[Conversation, float]:
    conv = Conversation(llm=FakeLLM(REPLY), tts=FakeTTS())
    reply = await conv.areply("How far is the moon?")
    assert reply.audio is not None and not reply.interrupted
    return conv, reply.audio.duration


async def test_a_stop_after_the_turn_keeps_what_was_heard() -> None:
    conv, seconds = await finished()
    # 60% of the audio: the first sentence (28% of the text) whole, the last not at all
    await conv.interrupt(played_seconds=0.6 * seconds)
    user, assistant = conv.history
    assert user == Message.user("How far is the moon?")
    assert assistant.interrupted and assistant.content.startswith("The moon is far away.")
    assert "That is all" not in assistant.content and assistant.content.endswith("…")
    # a second stop (a double click) changes nothing
    await conv.interrupt(played_seconds=0.1)
    assert conv.history == [user, assistant]


async def test_a_stop_before_any_word_drops_the_reply() -> None:
    conv, _ = await finished()
    await conv.interrupt(played_seconds=0.0)
    assert conv.history == [Message.user("How far is the moon?")]


async def test_what_does_not_cut_the_reply() -> None:
    conv, seconds = await finished()
    whole = conv.history
    await conv.interrupt()  # no position: nothing to cut
    await conv.interrupt(played_seconds=seconds)  # everything was heard
    # a player a frame short of the end (its position reports are coarse) heard it all too
    await conv.interrupt(played_seconds=seconds - 0.8 * HEARD_TO_THE_END)
    assert conv.history == whole and not whole[-1].interrupted
    await conv.areply("And the sun?")
    newest = conv.history
    conv.load_history(newest)  # a replaced history forgets the spoken reply
    await conv.interrupt(played_seconds=0.5)
    assert conv.history == newest


async def test_only_the_newest_reply_is_cut() -> None:
    conv, _ = await finished()
    await conv.areply("And the sun?")
    before = conv.history
    await conv.interrupt(played_seconds=0.3)
    after = conv.history
    assert after[:3] == before[:3] and after[3].interrupted and after[3] != before[3]
