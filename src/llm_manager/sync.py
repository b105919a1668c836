"""The blocking facade: the async manager driven on one background event loop.

Method names mirror :class:`~llm_manager.manager.LLMManager` exactly; streams come back as plain iterators.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from llm_manager.embedding import EmbeddingResponse
    from llm_manager.manager import HealthResult, LLMManager, ModelInfo
    from llm_manager.token_count import TokenCount
    from llm_manager.types import Response, StreamEvent
    from llm_manager.warmup import WarmupResult

__all__ = ["SyncLLMManager"]

T = TypeVar("T")


class SyncLLMManager:
    """Use as ``with LLMManager.sync_from_config(...) as llm: llm.generate("...")``."""

    def __init__(self, factory: Callable[[], LLMManager]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llm-manager-loop", daemon=True)
        self._thread.start()
        self._closed = False

        async def build() -> LLMManager:
            return factory()  # adapters may create loop-bound state: build them on the loop

        try:
            self.manager: LLMManager = self._run(build())
        except BaseException:
            self._stop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "SyncLLMManager was called inside a running event loop; "
                "use the async LLMManager and `await` it instead."
            )
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncLLMManager is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def generate(self, prompt: Any = None, **kwargs: Any) -> Response:
        """Blocking :meth:`LLMManager.generate`."""
        return self._run(self.manager.generate(prompt, **kwargs))

    def stream(self, prompt: Any = None, **kwargs: Any) -> Iterator[StreamEvent]:
        """Blocking :meth:`LLMManager.stream`: a plain iterator of events; closing it closes the upstream."""
        return self._iterate(self.manager.stream(prompt, **kwargs))

    def _iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator from this thread, one item per round trip to the loop."""
        done = object()

        async def step() -> Any:
            try:
                return await anext(source)
            except StopAsyncIteration:
                return done

        try:
            while (item := self._run(step())) is not done:
                yield item
        finally:
            closer = getattr(source, "aclose", None)
            if closer is not None and not self._closed:
                self._run(closer())

    def embed(self, texts: Any = None, **kwargs: Any) -> EmbeddingResponse:
        """Blocking :meth:`LLMManager.embed`."""
        return self._run(self.manager.embed(texts, **kwargs))

    def count_tokens(self, prompt: Any = None, **kwargs: Any) -> TokenCount:
        """Blocking :meth:`LLMManager.count_tokens`."""
        return self._run(self.manager.count_tokens(prompt, **kwargs))

    def query_with_schema(self, prompt: Any, schema: Any, **kwargs: Any) -> Any:
        """Blocking :meth:`LLMManager.query_with_schema`."""
        return self._run(self.manager.query_with_schema(prompt, schema, **kwargs))

    def stream_with_schema(self, prompt: Any, schema: Any, **kwargs: Any) -> Iterator[Any]:
        """Blocking :meth:`LLMManager.stream_with_schema`: partial values, then the validated one."""
        return self._iterate(self.manager.stream_with_schema(prompt, schema, **kwargs))

    def query_multiple(self, prompt: Any, models: Any, **kwargs: Any) -> list[Any]:
        """Blocking :meth:`LLMManager.query_multiple`."""
        return self._run(self.manager.query_multiple(prompt, models, **kwargs))

    def start_conversation(self, system_prompt: str | None = None, **kwargs: Any) -> str:
        """Blocking :meth:`LLMManager.start_conversation`."""
        return self._run(self.manager.start_conversation(system_prompt, **kwargs))

    def continue_conversation(self, conversation_id: str, message: str, **prefs: Any) -> Response:
        """Blocking :meth:`LLMManager.continue_conversation`."""
        return self._run(self.manager.continue_conversation(conversation_id, message, **prefs))

    def stream_conversation(self, conversation_id: str, message: str, **prefs: Any) -> Iterator[StreamEvent]:
        """Blocking :meth:`LLMManager.stream_conversation`."""
        return self._iterate(self.manager.stream_conversation(conversation_id, message, **prefs))

    def get_conversation(self, conversation_id: str) -> Any:
        """Blocking :meth:`LLMManager.get_conversation`."""
        return self._run(self.manager.get_conversation(conversation_id))

    def list_conversations(self, limit: int = 50, offset: int = 0) -> list[Any]:
        """Blocking :meth:`LLMManager.list_conversations`."""
        return self._run(self.manager.list_conversations(limit, offset))

    def delete_conversation(self, conversation_id: str) -> bool:
        """Blocking :meth:`LLMManager.delete_conversation`."""
        return self._run(self.manager.delete_conversation(conversation_id))

    def fork_conversation(self, conversation_id: str, at: int | None = None) -> str:
        """Blocking :meth:`LLMManager.fork_conversation`."""
        return self._run(self.manager.fork_conversation(conversation_id, at))

    def models(self) -> list[ModelInfo]:
        """Blocking :meth:`LLMManager.models`."""
        return self.manager.models()

    def route(self, task: str = "general", **prefs: Any) -> list[str]:
        """Blocking :meth:`LLMManager.route`."""
        return self.manager.route(task, **prefs)

    def health(self, timeout_s: float = 5.0) -> list[HealthResult]:
        """Blocking :meth:`LLMManager.health`."""
        return self._run(self.manager.health(timeout_s))

    def warmup(self, *, timeout_s: float = 5.0, requests: bool = True) -> list[WarmupResult]:
        """Blocking :meth:`LLMManager.warmup`."""
        return self._run(self.manager.warmup(timeout_s=timeout_s, requests=requests))

    def status(self) -> dict[str, Any]:
        """Blocking :meth:`LLMManager.status`."""
        return self._run(self.manager.status())

    def close(self) -> None:
        """Close connections and stop the background loop. Idempotent."""
        if self._closed:
            return
        try:
            self._run(self.manager.aclose())
        finally:
            self._stop()

    def _stop(self) -> None:
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> SyncLLMManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
