"""Stored ``/v1/responses`` answers: the response object and the conversation it answered, by response id.

The gateway keeps a response when the client asked for ``store`` (the default, as at OpenAI), to serve ``GET`` and
``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items`` and ``previous_response_id``. Each row has an
owner: the gateway key that created it, or none when the gateway had no keys. A response is visible to its owner
only (another key gets "not found", as for a response that never existed).

Both columns hold wire-format JSON (the Responses codec's items), so what is read back is what the client was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llm_manager import _json
from llm_manager.store.migrations import Database, from_db_json

__all__ = ["StoredResponse", "delete_response", "load_response", "save_response"]


def _owned(response_id: str, owner: str | None) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause and parameters for ``response_id`` as seen by ``owner`` (PostgreSQL cannot type a bare
    ``? IS NULL``, so the two cases are two clauses)."""
    if owner is None:
        return "id = ? AND owner IS NULL", (response_id,)
    return "id = ? AND owner = ?", (response_id, owner)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored response: the ``response`` object and the input items it answered (oldest first)."""

    response: dict[str, Any]
    input: list[dict[str, Any]]


async def save_response(db: Database, response: dict[str, Any], items: list[dict[str, Any]], owner: str | None) -> None:
    """Keep ``response`` (its ``id`` is the key) with the ``items`` it answered."""
    async with db.transaction(write=True) as session:
        await session.execute(
            "INSERT INTO llm_manager_responses (id, owner, created_at, response, input) VALUES (?, ?, ?, ?, ?)",
            (
                response["id"],
                owner,
                datetime.now(UTC),
                _json.dumps(response).decode(),
                _json.dumps(items).decode(),
            ),
        )


async def load_response(db: Database, response_id: str, owner: str | None) -> StoredResponse | None:
    """The response ``response_id`` if ``owner`` may see it, else ``None``."""
    where, params = _owned(response_id, owner)
    async with db.transaction(write=False) as session:
        rows = await session.fetchall(f"SELECT response, input FROM llm_manager_responses WHERE {where}", params)
    if not rows:
        return None
    return StoredResponse(from_db_json(rows[0][0]), from_db_json(rows[0][1]))


async def delete_response(db: Database, response_id: str, owner: str | None) -> bool:
    """Delete the response ``response_id`` if ``owner`` may; whether there was one."""
    where, params = _owned(response_id, owner)
    async with db.transaction(write=True) as session:
        changed = await session.execute(f"DELETE FROM llm_manager_responses WHERE {where}", params)
    return changed > 0
