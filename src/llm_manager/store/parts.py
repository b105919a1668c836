"""Content parts in the conversation store.

A message with parts (an image, a document, the model's signed reasoning …) keeps its text in ``content`` (previews,
``conversations show``) and its parts as JSON in ``parts``, where inline bytes are replaced by a reference to a row of
``llm_manager_blobs`` keyed by the bytes' SHA-256: an image sent in ten turns, or in ten conversations, is stored once.
``llm_manager_message_blobs`` says which message uses which blob, so a blob goes when the last message using it does.
Blobs are stored as base64 text, which both dialects take as a plain string parameter.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from llm_manager import _json
from llm_manager.content import digest
from llm_manager.store.migrations import SqlSession
from llm_manager.types import Part

__all__ = ["collect_blobs", "load_parts", "save_blobs", "stored_form"]

_PARTS: TypeAdapter[tuple[Part, ...]] = TypeAdapter(tuple[Part, ...])

_INSERT_BLOB = "INSERT INTO llm_manager_blobs (id, data, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"
_LINK = (
    "INSERT INTO llm_manager_message_blobs (message_id, blob_id) VALUES (?, ?)"
    " ON CONFLICT (message_id, blob_id) DO NOTHING"
)


def stored_form(parts: Sequence[Part]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """``parts`` as stored (inline bytes replaced by ``{"blob": "sha256:…"}``) and the blobs they reference. The
    stored form is also what a message's content address hashes, so the id does not depend on how bytes are kept."""
    stored: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for part in parts:
        fields = part.model_dump(exclude_none=True)
        data = fields.pop("data", None)
        if data is not None:
            ref = digest(data)
            blobs[ref] = data
            fields["blob"] = ref
        stored.append(fields)
    return stored, blobs


async def save_blobs(session: SqlSession, message_id: str, blobs: dict[str, bytes], now: datetime) -> None:
    """Store ``blobs`` (each once, whoever stored it first) and link them to ``message_id``."""
    for ref, data in blobs.items():
        await session.execute(_INSERT_BLOB, (ref, base64.b64encode(data).decode("ascii"), now))
        await session.execute(_LINK, (message_id, ref))


async def load_parts(session: SqlSession, stored: Sequence[str | None]) -> list[tuple[Part, ...] | None]:
    """The parts of each message's stored ``parts`` column (``None`` where the message is plain text), with their
    blobs read back in one query."""
    decoded = [_json.loads(s) if s else None for s in stored]
    refs = sorted({p["blob"] for parts in decoded if parts for p in parts if "blob" in p})
    blobs: dict[str, bytes] = {}
    if refs:
        marks = ", ".join("?" for _ in refs)
        rows = await session.fetchall(f"SELECT id, data FROM llm_manager_blobs WHERE id IN ({marks})", refs)
        blobs = {r[0]: base64.b64decode(r[1]) for r in rows}
    out: list[tuple[Part, ...] | None] = []
    for parts in decoded:
        if parts is None:
            out.append(None)
            continue
        for p in parts:
            ref = p.pop("blob", None)
            if ref is not None:
                p["data"] = blobs[ref]
        out.append(_PARTS.validate_python(parts))
    return out


async def collect_blobs(session: SqlSession) -> None:
    """After messages were deleted: drop their links, then the blobs no message uses any more."""
    await session.execute(
        "DELETE FROM llm_manager_message_blobs WHERE message_id NOT IN (SELECT id FROM llm_manager_messages)"
    )
    await session.execute(
        "DELETE FROM llm_manager_blobs WHERE id NOT IN (SELECT blob_id FROM llm_manager_message_blobs)"
    )
