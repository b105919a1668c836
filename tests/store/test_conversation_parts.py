"""Messages with content parts in the conversation store, against SQLite and PostgreSQL: parts come back as they
went in, inline bytes are stored once per content address, and go when the last message using them does. Also
through the manager: a conversation turn with an image, and a reasoning answer kept with its signature."""

from __future__ import annotations

from llm_manager import ImagePart, LLMManager, Reasoning, TextPart
from llm_manager.content import digest
from llm_manager.store import ConversationStore, message_id
from llm_manager.store.parts import stored_form
from llm_manager.types import ReasoningPart
from tests.helpers import sim_settings
from tests.store.conftest import count_rows

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
BLOBS = "llm_manager_blobs"


async def test_parts_round_trip_and_bytes_are_stored_once(store: ConversationStore) -> None:
    question = (TextPart(text="What is in it?"), ImagePart.from_bytes(PNG, detail="high"))
    a, b = await store.create(), await store.create()
    for cid in (a, b):
        async with store.turn(cid) as turn:
            await turn.commit([("user", question, None), ("assistant", "A cat.", {"model": "m"})])
            await turn.commit([("user", (TextPart(text="Again:"), ImagePart.from_bytes(PNG)), None)])
    conv = await store.get(a)
    first = conv.messages[0]
    assert first.content == "What is in it?" and first.parts == question
    assert conv.messages[1].parts is None and conv.messages[2].parts is not None
    assert await count_rows(store, BLOBS) == 1  # one image, three messages, two conversations
    form, blobs = stored_form(question)
    assert first.id == message_id("user", form, None) and list(blobs) == [digest(PNG)]
    assert form[1] == {"type": "image", "media_type": "image/png", "detail": "high", "blob": digest(PNG)}


async def test_blobs_go_with_the_last_message_using_them(store: ConversationStore) -> None:
    a, b = await store.create(), await store.create()
    async with store.turn(a) as turn:
        await turn.commit([("user", (ImagePart.from_bytes(PNG),), None)])
    async with store.turn(b) as turn:
        await turn.commit([("user", "first", None), ("user", (ImagePart.from_bytes(PNG),), None)])
    await store.delete(a)
    assert await count_rows(store, BLOBS) == 1  # b still shows it
    await store.delete(b)
    assert await count_rows(store, BLOBS) == 0


async def test_a_conversation_turn_with_an_image_and_reasoning() -> None:
    settings = sim_settings({"sim": {"family": "gpt"}})
    async with LLMManager(settings) as llm:
        cid = await llm.start_conversation("Be brief.")
        await llm.continue_conversation(cid, [TextPart(text="What is it?"), ImagePart.from_bytes(PNG)])
        await llm.continue_conversation(cid, "Think again.", reasoning=Reasoning(effort="low"))
        sent = llm.adapter("sim").requests[-1]  # type: ignore[attr-defined]
        assert sent.messages[0].content[1].data == PNG  # the stored image went back with the history
        conv = await llm.get_conversation(cid)
        answer = conv.messages[-1]
        assert answer.parts is not None and isinstance(answer.parts[0], ReasoningPart) and answer.content
