"""``embed()``: an embedding request through the same parts as a chat request.

cache → in-flight de-dup → plan (embedding models of one vector size) → budgets → the executor's attempt loop
(admission: breakers, rate limits, key pools; retries and fallback) → book (telemetry, budgets, ledger, cache).

Routing and attribution travel as a :class:`~llm_manager.types.Request` whose task is ``embedding`` and whose one
user message is the input text: budgets, the ledger and telemetry read it as they read a chat request, so an
embedding call is reserved, settled, booked and traced by the same code, and appears in ``costs`` under the task
``embedding``. Only the call itself differs: the adapter's ``embed`` instead of ``complete``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from llm_manager.codecs.base import Completion
from llm_manager.embedding import EmbedCall, Embedded, EmbeddingInput, EmbeddingResponse
from llm_manager.embedding_profiles import EmbeddingSpec, embedding_spec
from llm_manager.errors import ConfigError, InvalidRequestError
from llm_manager.response_stream import Settle, then
from llm_manager.types import Response

if TYPE_CHECKING:
    from llm_manager.cache.embedding_cache import EmbeddingCache
    from llm_manager.cache.response_cache import Inflight
    from llm_manager.manager import LLMManager
    from llm_manager.routing.admission import Ticket
    from llm_manager.routing.embedding_plan import EmbeddingPlan
    from llm_manager.types import Request

__all__ = ["Embedder", "as_response", "build"]


class Embedder:
    """The embedding path of one manager (built on its first ``embed()``)."""

    def __init__(self, llm: LLMManager) -> None:
        from llm_manager.cache.embedding_cache import EmbeddingCache
        from llm_manager.cache.response_cache import Inflight

        self.llm = llm
        self.specs: dict[str, EmbeddingSpec] = {
            name: spec for name, dep in llm.deployments.items() if (spec := embedding_spec(dep.config)) is not None
        }
        """Every embedding deployment's facts (vector size, profile), worked out once."""
        self.cache: EmbeddingCache | None = (
            EmbeddingCache(llm.state, llm.settings.cache, clock=llm.wall_clock) if llm.cache is not None else None
        )
        self.inflight: Inflight[EmbeddingResponse] = Inflight()

    async def answer(self, inp: EmbeddingInput, route: Request, request_id: str) -> tuple[EmbeddingResponse, Settle]:
        """The vectors, and the bookkeeping still owed (see :meth:`LLMManager.answer`): from the cache, from an
        identical request in flight, or from a provider."""
        if self.cache is None or not route.cache:
            return await self._call(inp, route, request_id, None)
        from llm_manager.cache.embedding_cache import embedding_key

        cache, key = self.cache, embedding_key(inp, route)
        hit = await cache.get(key, request_id)
        if hit is not None:
            return hit, partial(self.llm.accounting.copied, route, request_id, as_response(hit), key)
        call = partial(self._call, inp, route, request_id, key)
        resp, settle = (
            await self.inflight.once(key, request_id, call) if self.llm.settings.cache.dedupe else await call()
        )
        if settle is None:  # another caller's identical call answered
            return resp, partial(self.llm.accounting.copied, route, request_id, as_response(resp), key)
        return resp, then(settle, partial(cache.put, key, resp))

    async def _call(
        self, inp: EmbeddingInput, route: Request, request_id: str, key: str | None
    ) -> tuple[EmbeddingResponse, Settle]:
        from llm_manager.routing.embedding_plan import plan_embedding

        llm = self.llm
        booking = llm.accounting.booking(route, request_id, key, stream=False)
        try:
            planned = plan_embedding(inp, route, llm.settings, llm.deployments, self.specs)
            plan = await booking.reserve(planned.plan)
            send = partial(self._send, inp, route, planned)
            envelope, embedded = await llm.executor.call(route, plan, request_id, send, _used)
        except BaseException as exc:
            await booking.failed(exc)  # planning's failure too: the candidates passed over are in the ledger row
            raise
        resp = EmbeddingResponse.model_construct(
            id=request_id,
            vectors=embedded.vectors,
            model=envelope.model,
            deployment=envelope.deployment,
            provider=envelope.provider,
            dimensions=planned.size,
            usage=envelope.usage,
            metadata=envelope.metadata,
            dropped_params=embedded.dropped,
        )
        return resp, partial(booking.answered, envelope, time.perf_counter_ns())

    async def _send(self, inp: EmbeddingInput, route: Request, planned: EmbeddingPlan, ticket: Ticket) -> Embedded:
        """One attempt at ``ticket``'s deployment, checked to have the planned vector size."""
        dep = ticket.dep
        call = EmbedCall(
            texts=inp.texts,
            tokens=inp.tokens,
            dimensions=self.specs[dep.name].wire_dimensions(planned.size),
            size=planned.size,
            input_type=inp.input_type,
            user=route.user,
        )
        out = await dep.adapter.embed(call, api_key=ticket.key.key if ticket.key else None)
        got = len(out.vectors[0]) if out.vectors else 0
        if got != planned.size or len(out.vectors) != inp.count:
            raise InvalidRequestError(
                f"{dep.name} returned {len(out.vectors)} vectors of {got} dimensions for {inp.count} inputs, where "
                f"{planned.size} dimensions were expected. Fix: set models.{dep.name}.dimensions to the size its "
                "vectors have",
                deployment=dep.name,
                provider=dep.provider,
                model=dep.endpoint.model,
            )
        return out


def _used(out: Embedded) -> Completion:
    """What an embedding call used: its prompt tokens (no completion); the model as the provider named it."""
    return Completion("", "stop", out.prompt_tokens, 0, 0, out.model)


def as_response(resp: EmbeddingResponse) -> Response:
    """An embedding response as the :class:`Response` budgets, the ledger and telemetry read (no text)."""
    return Response.model_construct(
        id=resp.id,
        content="",
        model=resp.model,
        deployment=resp.deployment,
        provider=resp.provider,
        finish_reason="stop",
        tool_calls=[],
        usage=resp.usage,
        metadata=resp.metadata,
    )


_ROUTE_FIELDS = frozenset(
    {"model", "task", "fallback", "priority", "user", "project", "gateway_key", "metadata", "cache", "timeout_s"}
)


def build(
    texts: str | Sequence[str] | None,
    tokens: Sequence[Sequence[int]] | None,
    dimensions: int | None,
    input_type: str | None,
    prefs: Mapping[str, Any],
) -> tuple[EmbeddingInput, Request]:
    """Validate an ``embed()`` call into what to embed and how to route it; raises :class:`ConfigError` naming the
    bad field (``embed()`` takes the routing and attribution fields of a request, not its sampling ones)."""
    from pydantic import ValidationError

    from llm_manager.types import Message
    from llm_manager.types import Request as RouteRequest

    extra = sorted(set(prefs) - _ROUTE_FIELDS)
    if extra:
        raise ConfigError(
            f"embed() does not take {', '.join(extra)}: it takes {', '.join(sorted(_ROUTE_FIELDS))}, "
            "tokens, dimensions and input_type"
        )
    given = [texts] if isinstance(texts, str) else list(texts or ())
    data: dict[str, Any] = {"texts": given, "dimensions": dimensions, "input_type": input_type}
    if tokens is not None:
        data["tokens"] = [list(t) for t in tokens]
    try:
        inp = EmbeddingInput.model_validate(data)
        shown = "\n".join(inp.texts) if inp.tokens is None else " ".join(str(i) for t in inp.tokens for i in t)
        route = RouteRequest.model_validate(
            {"task": "embedding", **{k: v for k, v in prefs.items() if v is not None}}
            | {"messages": [Message(role="user", content=shown)]}
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid embedding request: {problems}") from None
    return inp, route
