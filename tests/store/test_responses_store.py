"""Stored ``/v1/responses`` answers on SQLite and PostgreSQL: kept whole, seen by their owner only, deleted once."""

from __future__ import annotations

from llm_manager.store import open_database
from llm_manager.store.responses import delete_response, load_response, save_response

RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "output": [
        {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hé"}]}
    ],
}
ITEMS = [{"id": "msg_0", "type": "message", "role": "user", "content": "hi"}]


async def test_kept_whole_and_owned(store_url: str) -> None:
    db = await open_database(store_url)
    try:
        await save_response(db, RESPONSE, ITEMS, "key_a")
        await save_response(db, {**RESPONSE, "id": "resp_open"}, ITEMS, None)
        got = await load_response(db, "resp_1", "key_a")
        assert got is not None and got.response == RESPONSE and got.input == ITEMS
        # Another key, and the keyless gateway, see nothing; a keyless response is the keyless gateway's.
        assert await load_response(db, "resp_1", "key_b") is None
        assert await load_response(db, "resp_1", None) is None
        assert await load_response(db, "resp_open", None) is not None
        assert await load_response(db, "resp_open", "key_a") is None
        assert not await delete_response(db, "resp_1", "key_b")
        assert await delete_response(db, "resp_1", "key_a")
        assert not await delete_response(db, "resp_1", "key_a")
        assert await load_response(db, "resp_1", "key_a") is None
    finally:
        await db.aclose()
