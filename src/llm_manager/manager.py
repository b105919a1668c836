"""The async :class:`LLMManager`: the one place that wires config, adapters, planner and executor together."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError

from llm_manager import pipeline
from llm_manager._unclosed import LoopGuard, warn_unclosed
from llm_manager.config import Settings
from llm_manager.config_secrets import configured_secrets
from llm_manager.discovery import ConfigSource, resolve_settings
from llm_manager.errors import ConfigError, LLMManagerError
from llm_manager.introspection import HealthResult, Introspection, ModelInfo
from llm_manager.response_stream import ResponseStream, Settle
from llm_manager.routing.stats import LatencyStats
from llm_manager.types import Message, Part, Request, Response

if TYPE_CHECKING:
    from llm_manager._http import HttpClient
    from llm_manager.cache.semantic import SemanticCache
    from llm_manager.costs.forecast import Forecast, Forecaster
    from llm_manager.costs.ledger import Ledger
    from llm_manager.embedder import Embedder
    from llm_manager.embedding import EmbeddingInput, EmbeddingResponse, InputType
    from llm_manager.providers.base import ProviderAdapter
    from llm_manager.routing.planner import Deployment
    from llm_manager.state.base import StateBackend
    from llm_manager.store.base import Conversation, ConversationSummary
    from llm_manager.store.migrations import Database
    from llm_manager.structured.query import StructuredResult
    from llm_manager.sync import SyncLLMManager
    from llm_manager.telemetry import Telemetry
    from llm_manager.token_count import TokenCount
    from llm_manager.warmup import WarmupResult

__all__ = ["HealthResult", "LLMManager", "ModelInfo", "ResponseStream"]

M = TypeVar("M", bound=BaseModel)
Prompt = str | Sequence[Part] | Request | None
"""A prompt: text, content parts (text, images, audio, files) as one user turn, or a whole :class:`Request`."""


class LLMManager:
    """One API over many providers. Use ``async with LLMManager.from_config(...) as llm:``.

    Args:
        settings: validated settings (see :func:`~llm_manager.config.load_settings`).
        clock: monotonic clock for deadlines (injectable for tests).
        sleep: how to wait between retries (injectable for tests).
        rand: randomness for backoff jitter.
        adapters: ready adapters by deployment name, replacing the configured ones (tests, custom transports).
        state: where breakers, limits and the cache live (default: from ``state.redis_url``, else in-process).
        wall_clock: the shared clock of breakers, limiters and the cache (``time.time``; injectable for tests).
        telemetry: spans, metrics and request logs (default: from ``telemetry:`` in config; pass one built with
            your own OpenTelemetry tracer provider to join an existing setup).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] | None = None,
        adapters: Mapping[str, ProviderAdapter] | None = None,
        state: StateBackend | None = None,
        wall_clock: Callable[[], float] = time.time,
        telemetry: Telemetry | None = None,
    ) -> None:
        from llm_manager._http import HttpClient
        from llm_manager._redact import SecretSet
        from llm_manager.accounting import Accounting
        from llm_manager.cache.response_cache import Inflight, ResponseCache
        from llm_manager.cache.semantic_setup import semantic_cache
        from llm_manager.conversations import Conversations
        from llm_manager.costs.budgets import Budgets
        from llm_manager.deployments import deployments
        from llm_manager.executor import Executor
        from llm_manager.routing.admission import Admission
        from llm_manager.routing.keypool import KeyPool
        from llm_manager.state import make_state
        from llm_manager.telemetry import Telemetry

        self.settings = settings
        # First: from here on, every error, log line and status output masks this configuration's secrets.
        self._secrets = SecretSet(configured_secrets(settings))
        self.http: HttpClient = HttpClient()
        self.stats = LatencyStats()
        self.deployments: dict[str, Deployment] = deployments(settings, self.http, adapters or {})
        sc = settings.state
        options: dict[str, Any] = {
            "on_unavailable": sc.on_unavailable,
            "timeout_s": sc.timeout_s,
            "heartbeat_s": sc.heartbeat_s,
        }
        self.state = state if state is not None else make_state(sc.redis_url, sc.prefix, **options)
        self.wall_clock = wall_clock
        reprobe = settings.routing.key_reprobe_s
        self.pools = {n: KeyPool(n, d.config.keys, d.config.key_weights, reprobe) for n, d in self.deployments.items()}
        self.admission = Admission(self.state, settings.routing.circuit_breaker, self.pools, clock=wall_clock)
        self.executor = Executor(settings.routing, self.stats, self.admission, clock=clock, sleep=sleep, rand=rand)
        self.cache = ResponseCache(self.state, settings.cache, clock=wall_clock) if settings.cache.enabled else None
        self.inflight: Inflight[Response] = Inflight()
        self.semantic: SemanticCache | None = semantic_cache(
            settings, {n: d.config for n, d in self.deployments.items()}, self.embed, wall_clock
        )
        self.conversations = Conversations(self)
        self.budgets = Budgets(self.state, settings.budgets, clock=wall_clock)
        self._db: Database | None = None
        self._db_lock = asyncio.Lock()
        self.ledger: Ledger | None = None
        self.telemetry = telemetry or Telemetry(settings.telemetry)
        priced = {n: d.price is not None for n, d in self.deployments.items()}
        self.accounting = Accounting(self.budgets, self._open_ledger, priced, self.telemetry)
        self.accounting.configure(settings)
        self.introspection = Introspection(self)
        self.telemetry.on_collect(self.introspection.collect)
        self.telemetry.on_collect(lambda: {"state": self.state.health()})
        self._forecaster: Forecaster | None = None
        self.telemetry.on_collect(lambda: {"forecasts": self._forecaster.gauges() if self._forecaster else {}})
        self._closed = False
        self._embedder: Embedder | None = None
        self._guard: LoopGuard | None = None

    # -- construction -------------------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, source: ConfigSource = None, **kwargs: Any) -> LLMManager:
        """Build from a YAML path, a dict or :class:`Settings`.

        With no source: ``$LLM_MANAGER_CONFIG``, then ``./llm-manager.yaml``, then the environment's provider
        keys, then the simulated models (with a warning saying so).
        """
        return cls(resolve_settings(source), **kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> LLMManager:
        """Build from provider variables (``OPENAI_API_KEY`` …); simulated models when none is set."""
        from llm_manager.discovery import discover, warn_if_simulated

        settings = discover(env)
        warn_if_simulated(settings)
        return cls(settings, **kwargs)

    @classmethod
    def sync_from_config(cls, source: ConfigSource = None, **kwargs: Any) -> SyncLLMManager:
        """A blocking twin of :meth:`from_config` for scripts and notebooks."""
        from llm_manager.sync import SyncLLMManager

        return SyncLLMManager(lambda: cls.from_config(source, **kwargs))

    @classmethod
    def sync_from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> SyncLLMManager:
        """A blocking twin of :meth:`from_env`."""
        from llm_manager.sync import SyncLLMManager

        return SyncLLMManager(lambda: cls.from_env(env, **kwargs))

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> LLMManager:
        self._guarded()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has run (or started)."""
        return self._closed

    def _guarded(self) -> None:
        """Make sure the program can end without :meth:`aclose`: called where the manager starts using the running
        loop (its first request, store or probe). See :mod:`llm_manager._unclosed`."""
        if self._guard is None and not self._closed:
            self._guard = LoopGuard(self)

    def __repr__(self) -> str:
        return f"<LLMManager from {self.settings.source}: {', '.join(self.deployments)}>"

    def __del__(self) -> None:
        guard = getattr(self, "_guard", None)
        if guard is not None and not self._closed:
            warn_unclosed(self, "garbage-collected while its event loop still runs")
            guard.cancel()

    async def aclose(self) -> None:
        """Close connections, write what the ledger has buffered, close the store. Idempotent.

        A manager that is never closed is closed for you (with a :class:`ResourceWarning`) when its event loop is
        shut down by ``asyncio.run()``, or else at interpreter exit; prefer ``async with``.
        """
        if self._closed:
            return
        self._closed = True
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.release(self)
        for dep in self.deployments.values():
            await dep.adapter.aclose()
        await self.http.aclose()
        await self.state.aclose()
        if self._forecaster is not None:
            await self._forecaster.aclose()
        if self.semantic is not None:
            await self.semantic.aclose()
        if self.ledger is not None:
            await self.ledger.aclose()  # flushes what is buffered
        await self.conversations.aclose()
        if self._db is not None:
            await self._db.aclose()
        # Flushes spans still batched for OTLP; blocking, so in a worker thread, except at interpreter exit (an
        # unclosed manager closed by the atexit hook), when no worker thread can start: then here, synchronously.
        try:
            flushed = asyncio.get_running_loop().run_in_executor(None, self.telemetry.shutdown)
        except RuntimeError:
            self.telemetry.shutdown()
        else:
            await flushed

    async def database(self) -> Database:
        """The store's database (conversations and the ledger share it), opened on first use.

        ``store.url``, else ``$LLM_MANAGER_STORE_URL``, else a SQLite file in the user's data directory."""
        if self._db is not None:
            return self._db  # opened: no lock to take on every request
        self._guarded()
        async with self._db_lock:
            if self._db is None:
                from llm_manager.store import open_database

                self._db = await open_database(self._store_url())
            return self._db

    def _store_url(self) -> str | None:
        return self.settings.store.url or os.environ.get("LLM_MANAGER_STORE_URL")

    async def _open_ledger(self) -> Ledger | None:
        if self.ledger is None and self.settings.ledger.enabled and not self._closed:
            from llm_manager.costs.ledger import Ledger

            db = await self.database()
            if self.ledger is None:
                self.ledger = Ledger.configured(db, self.settings.ledger, self._store_url())
                await self.ledger.start()
                self._forecasts().watch()  # warns in the log when a budget's projection reaches its limit
        return self.ledger

    def _forecasts(self) -> Forecaster:
        if self._forecaster is None:
            from llm_manager.costs.forecast import Forecaster

            self._forecaster = Forecaster(self._open_ledger, lambda: self.budgets.configs, clock=self.wall_clock)
        return self._forecaster

    async def forecast(self, *, window_h: float = 6.0) -> list[Forecast]:
        """Each budget's spend projected from the ledger to the end of its period, with the basis (the rate of the
        last ``window_h`` hours, or the same hours of past weeks where there is history) and when it runs out;
        see :mod:`llm_manager.costs.forecast`. A projection that reaches its limit is also logged (a warning, once
        per budget and period).

        Raises:
            ConfigError: the ledger is disabled, or ``window_h`` is not between 1 and 672 hours.
        """
        self._guarded()
        try:
            return await self._forecasts().forecast(window_h=window_h)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    # -- requests -----------------------------------------------------------------------------------------------

    def request(
        self,
        prompt: Prompt = None,
        *,
        messages: Sequence[Message | Mapping[str, Any]] | None = None,
        **prefs: Any,
    ) -> Request:
        """Build and validate a :class:`Request` (raises :class:`ConfigError` naming the bad field)."""
        if isinstance(prompt, Request):
            return prompt.model_copy(update=prefs) if prefs else prompt
        data: dict[str, Any] = {k: v for k, v in prefs.items() if v is not None}
        if prompt is not None:
            data["prompt"] = prompt
        if messages is not None:
            data["messages"] = [m if isinstance(m, Message) else dict(m) for m in messages]
        try:
            return Request.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid request: {problems}") from None

    async def generate(
        self,
        prompt: Prompt = None,
        *,
        messages: Sequence[Message | Mapping[str, Any]] | None = None,
        request_id: str | None = None,
        **prefs: Any,
    ) -> Response:
        """Answer ``prompt`` (or ``messages``), routed by ``task`` with fallback and retries.

        Keyword preferences are :class:`Request` fields: ``task``, ``model``, ``system``, ``max_tokens``,
        ``temperature``, ``priority``, ``user``, ``project``, ``timeout_s`` … ``request_id`` sets the id used in the
        response, the ledger and traces (the gateway passes its own); by default one is made.
        """
        resp, settle = await self.answer(self.request(prompt, messages=messages, **prefs), request_id=request_id)
        await settle()
        return resp

    async def answer(self, request: Request, *, request_id: str | None = None) -> tuple[Response, Settle]:
        """:meth:`generate` for a caller that hands the answer on before doing the bookkeeping: returns the response
        and a coroutine function to await once, right after (telemetry, budget settlement, the ledger row and the
        cache entry). The gateway sends the answer to its client first. A failure is accounted before it is raised.
        """
        return await pipeline.answer(self, request, request_id)

    def stream(
        self,
        prompt: Prompt = None,
        *,
        messages: Sequence[Message | Mapping[str, Any]] | None = None,
        request_id: str | None = None,
        **prefs: Any,
    ) -> ResponseStream:
        """Stream the answer: ``async for event in llm.stream(...)``; ``event.delta`` is the new text.

        Falls back to the next candidate only until the first chunk has been delivered; a later failure raises
        :class:`~llm_manager.errors.StreamInterruptedError`. The final event (``type == "done"``) carries the
        whole :class:`Response`; it is also kept on :attr:`ResponseStream.response`. Its bookkeeping (telemetry,
        budgets, the ledger row, the cache entry) runs once that event is handed on: when the loop asks for the next
        event (and finds the end), or when the stream is closed.
        """
        return pipeline.stream(self, self.request(prompt, messages=messages, **prefs), request_id)

    # -- embeddings ---------------------------------------------------------------------------------------------

    async def embed(
        self,
        texts: str | Sequence[str] | None = None,
        *,
        tokens: Sequence[Sequence[int]] | None = None,
        dimensions: int | None = None,
        input_type: InputType | None = None,
        request_id: str | None = None,
        **prefs: Any,
    ) -> EmbeddingResponse:
        """Vectors for ``texts`` (one string or several; or ``tokens``, token-id arrays), one per input, in order.

        Routed like a chat request but among embedding models only: ``model`` (a deployment or alias, tried
        first), ``task`` (default ``embedding``: every embedding model), with fallback only to models whose
        vectors have the same size (``dimensions`` asks for a size). Retries, breakers, rate limits, key pools,
        budgets, the ledger and the cache apply as to a chat request. ``input_type`` (``query``, ``document`` …)
        is translated for models that embed differently per use; where it is not, ``dropped_params`` says so.
        Other keywords: ``fallback``, ``priority``, ``user``, ``project``, ``metadata``, ``cache``, ``timeout_s``.
        """
        inp, route = self.embedding_request(texts, tokens=tokens, dimensions=dimensions, input_type=input_type, **prefs)
        resp, settle = await self.answer_embedding(inp, route, request_id=request_id)
        await settle()
        return resp

    def embedding_request(
        self,
        texts: str | Sequence[str] | None = None,
        *,
        tokens: Sequence[Sequence[int]] | None = None,
        dimensions: int | None = None,
        input_type: InputType | None = None,
        **prefs: Any,
    ) -> tuple[EmbeddingInput, Request]:
        """Validate an :meth:`embed` call: what to embed, and the routing :class:`Request` (task ``embedding``)."""
        from llm_manager.embedder import build

        return build(texts, tokens, dimensions, input_type, prefs)

    async def answer_embedding(
        self, inp: EmbeddingInput, route: Request, *, request_id: str | None = None
    ) -> tuple[EmbeddingResponse, Settle]:
        """:meth:`embed` for a caller that hands the vectors on before the bookkeeping (as :meth:`answer`)."""
        if self._guard is None:
            self._guarded()
        if self._embedder is None:
            from llm_manager.embedder import Embedder

            self._embedder = Embedder(self)
        return await pipeline.released(self, *await self._embedder.answer(inp, route, request_id or pipeline.new_id()))

    # -- structured output and several models --------------------------------------------------------------------

    @overload
    async def query_with_schema(
        self,
        prompt: Prompt,
        schema: type[M],
        *,
        full: Literal[False] = ...,
        max_reasks: int = ...,
        budget_tokens: int | None = ...,
        budget_usd: Decimal | None = ...,
        **prefs: Any,
    ) -> M: ...

    @overload
    async def query_with_schema(
        self,
        prompt: Prompt,
        schema: type[M],
        *,
        full: Literal[True],
        max_reasks: int = ...,
        budget_tokens: int | None = ...,
        budget_usd: Decimal | None = ...,
        **prefs: Any,
    ) -> StructuredResult[M]: ...

    @overload
    async def query_with_schema(
        self,
        prompt: Prompt,
        schema: dict[str, Any],
        *,
        full: bool = ...,
        max_reasks: int = ...,
        budget_tokens: int | None = ...,
        budget_usd: Decimal | None = ...,
        **prefs: Any,
    ) -> Any: ...

    async def query_with_schema(
        self,
        prompt: Prompt,
        schema: type[BaseModel] | dict[str, Any],
        *,
        full: bool = False,
        max_reasks: int = 2,
        budget_tokens: int | None = None,
        budget_usd: Decimal | None = None,
        **prefs: Any,
    ) -> Any:
        """Answer as a validated instance of ``schema`` (a Pydantic model class, or a JSON schema → a dict).

        The provider's native mechanism is used where it has one; the reply is then extracted from whatever the
        model really returned (fenced blocks, JSON in prose, truncated or slightly malformed JSON). An invalid
        answer is sent back with its validation errors, up to ``max_reasks`` times and within ``budget_tokens``
        / ``budget_usd``; then :class:`~llm_manager.errors.ExtractionError` carries every try, the last reply
        and the usage spent. ``full=True`` returns a :class:`StructuredResult` (value, response, tries, usage).
        """
        from llm_manager.structured.query import ReaskPolicy, query

        request = self.request(prompt, **prefs)
        result = await query(self, request, schema, ReaskPolicy(max_reasks, budget_tokens, budget_usd))
        return result if full else result.value

    async def stream_with_schema(
        self,
        prompt: Prompt,
        schema: type[BaseModel] | dict[str, Any],
        *,
        max_reasks: int = 2,
        **prefs: Any,
    ) -> AsyncIterator[Any]:
        """Yield partially filled objects as the JSON streams in; the last item is the validated result."""
        from llm_manager.structured.query import ReaskPolicy, stream

        request = self.request(prompt, **prefs)
        async for item in stream(self, request, schema, ReaskPolicy(max_reasks)):
            yield item

    async def query_multiple(
        self,
        prompt: Prompt,
        models: Sequence[str],
        *,
        timeout_s: float | None = None,
        mode: Literal["all", "first", "confident"] = "all",
        **prefs: Any,
    ) -> list[Response | LLMManagerError]:
        """Ask several models in parallel, each exactly (no fallback), with a per-model timeout.

        ``mode="all"``: every result or error, in the order asked — a slow or failing model never sinks the
        others. ``mode="first"``: a one-element list with the first success; the other calls are cancelled.
        ``mode="confident"``: a one-element list with the answer of highest :attr:`Response.confidence` (log
        probabilities are requested for it; answers without them rank last, ties go to the earlier model).
        """
        from llm_manager.multi import query_multiple

        request = self.request(prompt, **prefs)
        return await query_multiple(self, request, models, timeout_s=timeout_s, mode=mode)

    # -- conversations ------------------------------------------------------------------------------------------

    async def start_conversation(
        self, system_prompt: str | None = None, *, title: str | None = None, metadata: dict[str, Any] | None = None
    ) -> str:
        """Create a stored conversation; returns its id."""
        return await self.conversations.start(system_prompt, title=title, metadata=metadata)

    async def continue_conversation(
        self, conversation_id: str, message: str | Sequence[Part], **prefs: Any
    ) -> Response:
        """Add ``message`` (text, or content parts such as an image), answer it with the whole history (trimmed to
        the model's window), store both (inline bytes once per content address)."""
        return await self.conversations.continue_(conversation_id, message, prefs)

    def stream_conversation(self, conversation_id: str, message: str | Sequence[Part], **prefs: Any) -> ResponseStream:
        """Like :meth:`continue_conversation`, streamed; the answer is stored when the stream completes."""
        return ResponseStream(self.conversations.stream(conversation_id, message, prefs))

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """The conversation with its messages, oldest first."""
        return await self.conversations.get(conversation_id)

    async def list_conversations(self, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        """Conversations, most recently updated first."""
        return await self.conversations.list_all(limit, offset)

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete a conversation; False when there was none."""
        return await self.conversations.delete(conversation_id)

    async def fork_conversation(self, conversation_id: str, at: int | None = None) -> str:
        """A new conversation sharing the history up to message index ``at`` (default: all of it)."""
        return await self.conversations.fork(conversation_id, at)

    # -- introspection ------------------------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        """Every configured deployment with its routing positions."""
        return self.introspection.models()

    def route(self, task: str = "general", **prefs: Any) -> list[str]:
        """The candidate order a request for ``task`` would get right now (skips included as ``name (skipped)``)."""
        return self.introspection.route(task, **prefs)

    async def count_tokens(self, prompt: Prompt = None, **prefs: Any) -> TokenCount:
        """The prompt's input tokens, counted by the provider of the deployment that would answer first where its
        API can count (Anthropic, Gemini), else estimated; ``source`` says which (see :mod:`llm_manager.token_count`).
        Takes what :meth:`request` takes."""
        from llm_manager.token_count import count_tokens

        self._guarded()
        return await count_tokens(self, self.request(prompt, **prefs))

    async def health(self, timeout_s: float = 5.0) -> list[HealthResult]:
        """Probe every deployment concurrently (a no-token call such as listing models)."""
        self._guarded()
        return await self.introspection.health(timeout_s)

    async def warmup(self, *, timeout_s: float = 5.0, requests: bool = True) -> list[WarmupResult]:
        """Open a connection (DNS, TCP, TLS) to every configured endpoint now, so the first requests skip the
        handshakes; deployments with ``warmup: request`` also get a one-token request (paid for, recorded) unless
        ``requests`` is false. Returns what each deployment took; a failure is reported, never raised."""
        from llm_manager.warmup import warm_up

        return await warm_up(self, timeout_s=timeout_s, requests=requests)

    async def status(self) -> dict[str, Any]:
        """Breakers (with cooldown left), rate-limit room, calls in flight, key-pool health, cache size and observed
        latency."""
        self._guarded()
        return await self.introspection.status()

    async def metrics(self) -> tuple[bytes, str]:
        """Prometheus metrics (payload, content type), with breaker and budget gauges refreshed when the state
        answers. Never raises for want of state or store: the gauges then keep their last values, and
        ``llm_manager_state_available`` says why."""
        return await self.introspection.metrics()

    def simulate(self, name: str, *outcomes: str) -> None:
        """Queue outcomes for simulated deployment ``name``'s next calls, in the syntax of its ``simulate.script``
        config (``ok``, ``503``, ``429:0.8``, ``slow:2``, ``cut:3`` …): how a demo or a test injects faults."""
        from llm_manager.providers.simulated import SimulatedAdapter

        adapter = self.adapter(name)
        if not isinstance(adapter, SimulatedAdapter):
            raise ConfigError(f"model {name!r} is not simulated (provider: {self.deployments[name].provider})")
        adapter.push(*outcomes)

    def adapter(self, name: str) -> ProviderAdapter:
        """The adapter behind deployment ``name``."""
        try:
            return self.deployments[name].adapter
        except KeyError:
            raise ConfigError(f"unknown model {name!r}. Available: {', '.join(self.deployments)}.") from None
