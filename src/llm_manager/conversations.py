"""Persisted conversations over the manager: start, continue (whole or streamed), read, list, fork, delete.

A turn holds the conversation's lock from reading the history to committing the new user and assistant
messages, so concurrent ``continue`` calls on one conversation run one after another and never lose or
interleave messages. When the history no longer fits the chosen model's context window, the oldest turns are
left out of the request (the system prompt is kept, and nothing is deleted from the store); the response says
how many messages were left out in ``metadata.trimmed_messages``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from llm_manager.tokens import DEFAULT_OUTPUT_ESTIMATE, estimate_tokens
from llm_manager.types import Message, Part, Request, Response, StreamEvent

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager
    from llm_manager.store.base import Conversation, ConversationStore, ConversationSummary, StoredMessage

__all__ = ["Conversations", "trim_to_window"]


def trim_to_window(system: str | None, turns: list[Message], window: int, reserve: int) -> tuple[list[Message], int]:
    """Drop the oldest turns until the estimate fits ``window`` with ``reserve`` tokens left for the answer.

    The newest turn (the question being asked) is always kept, and the kept history starts with a user turn
    (several providers reject a conversation that opens with the assistant). Returns the kept turns and how many
    were dropped.
    """
    budget = window - reserve - (estimate_tokens(len(system), 1) if system else 0)
    costs = [estimate_tokens(m.chars, 1) for m in turns]
    start, total = 0, sum(costs)
    while start < len(turns) - 1 and total > budget:
        total -= costs[start]
        start += 1
    while start < len(turns) - 1 and turns[start].role != "user":
        start += 1
    return turns[start:], start


class Conversations:
    """The manager's conversation API (the store is opened on first use)."""

    def __init__(self, llm: LLMManager) -> None:
        self.llm = llm
        self._store: ConversationStore | None = None

    async def store(self) -> ConversationStore:
        if self._store is None:
            from llm_manager.store.base import SqlConversationStore

            # One database for conversations and the spend ledger; the manager closes it.
            self._store = SqlConversationStore(await self.llm.database(), owns_db=False)
        return self._store

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    async def start(
        self, system_prompt: str | None = None, *, title: str | None = None, metadata: dict[str, Any] | None = None
    ) -> str:
        return await (await self.store()).create(system_prompt, title=title, metadata=metadata)

    async def get(self, conversation_id: str) -> Conversation:
        return await (await self.store()).get(conversation_id)

    async def list_all(self, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        return await (await self.store()).list(limit=limit, offset=offset)

    async def delete(self, conversation_id: str) -> bool:
        return await (await self.store()).delete(conversation_id)

    async def fork(self, conversation_id: str, at: int | None = None) -> str:
        return await (await self.store()).fork(conversation_id, at=at)

    async def continue_(self, conversation_id: str, message: UserContent, prefs: dict[str, Any]) -> Response:
        """One turn: read the history under the lock, answer, store the question and the answer.

        With SQLite shared by two processes, a commit can find that the other process wrote first; the turn then
        runs again on the new history (nothing is lost, nothing interleaves)."""
        from llm_manager.store.base import ConversationConflictError

        store = await self.store()
        conflicts = 0
        while True:
            try:
                async with store.turn(conversation_id) as turn:
                    request, trimmed = self._request(turn.history, message, prefs)
                    resp = _with_trim(await self.llm.generate(request), trimmed)
                    await turn.commit([("user", _content(message), {}), ("assistant", _answer(resp), _meta(resp))])
                    return resp
            except ConversationConflictError:
                conflicts += 1
                if conflicts == 3:
                    raise

    async def stream(
        self, conversation_id: str, message: UserContent, prefs: dict[str, Any]
    ) -> AsyncIterator[StreamEvent]:
        """A streamed turn; the answer is stored once the stream has finished (a broken stream stores nothing)."""
        store = await self.store()
        async with store.turn(conversation_id) as turn:
            request, trimmed = self._request(turn.history, message, prefs)
            async for event in self.llm.stream(request):
                if event.type == "done" and event.response is not None:
                    resp = _with_trim(event.response, trimmed)
                    await turn.commit([("user", _content(message), {}), ("assistant", _answer(resp), _meta(resp))])
                    event = event.model_copy(update={"response": resp})
                yield event

    def _request(
        self, history: list[StoredMessage], message: UserContent, prefs: dict[str, Any]
    ) -> tuple[Request, int]:
        system = "\n\n".join(m.content for m in history if m.role == "system") or None
        turns = [Message(role=m.role, content=m.parts or m.content) for m in history if m.role != "system"]
        turns.append(Message(role="user", content=_content(message)))
        draft = self.llm.request(messages=turns, system=system, cache=False, **prefs)
        window = self._window(draft)
        kept, dropped = trim_to_window(system, turns, window, draft.max_tokens or DEFAULT_OUTPUT_ESTIMATE)
        if dropped:
            draft = draft.model_copy(update={"messages": kept})
        return draft, dropped

    def _window(self, request: Request) -> int:
        """The context window of the model that would answer first (explicit model, else the chain's head)."""
        settings = self.llm.settings
        name = settings.resolve_name(request.model) if request.model else None
        chain = [name] if name else settings.chain(request.task)
        deps = self.llm.deployments
        return max((deps[n].endpoint.context_window for n in chain[:1] if n in deps), default=8192)


UserContent = str | Sequence[Part]
"""A user turn: text, or content parts (text, images, audio, files)."""


def _content(message: UserContent) -> str | tuple[Part, ...]:
    return message if isinstance(message, str) else tuple(message)


def _answer(resp: Response) -> str | tuple[Part, ...]:
    """What is stored of an answer: its text, with the model's reasoning when it returned some (a signed thinking
    block has to go back to Anthropic with the turn)."""
    return resp.message().content


def _with_trim(resp: Response, trimmed: int) -> Response:
    if not trimmed:
        return resp
    return resp.model_copy(update={"metadata": resp.metadata.model_copy(update={"trimmed_messages": trimmed})})


def _meta(resp: Response) -> dict[str, Any]:
    return {
        "deployment": resp.deployment,
        "model": resp.model,
        "request_id": resp.metadata.request_id,
        "prompt_tokens": resp.usage.prompt_tokens,
        "completion_tokens": resp.usage.completion_tokens,
        "cost": str(resp.usage.cost) if resp.usage.cost is not None else None,
    }
