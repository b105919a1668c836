"""The request path, one way: cache → plan → attempts → book.

:meth:`LLMManager.answer <llm_manager.manager.LLMManager.answer>` (and so ``generate``) and
:meth:`~llm_manager.manager.LLMManager.stream` come here. A request is looked up in the response cache (exact, then
semantic); on a miss it is planned (:func:`~llm_manager.routing.planner.plan`, where every ordering decision is
made), reserved on its budgets and booked from then on (:class:`~llm_manager.accounting.Booking`: telemetry, budget
settlement, the ledger row), run through the attempt loop (:class:`~llm_manager.executor.Executor`), and cached. A
whole answer and a stream differ in the attempt loop's entry point, and in when their bookkeeping runs: after the
answer has been handed on.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from llm_manager._tasks import unbroken
from llm_manager.errors import ConfigError, LLMManagerError
from llm_manager.response_stream import ResponseStream, Settle, then
from llm_manager.types import PromptOptimization, Request, Response, StreamEvent

if TYPE_CHECKING:
    from llm_manager.cache.semantic import Probe
    from llm_manager.manager import LLMManager
    from llm_manager.routing.planner import Plan

__all__ = ["answer", "new_id", "released", "request_id", "stream"]

A = TypeVar("A")


async def answer(llm: LLMManager, request: Request, rid: str | None) -> tuple[Response, Settle]:
    """The answer and the bookkeeping it still owes (see :meth:`LLMManager.answer`)."""
    rid = request_id(rid)
    if request.max_prompt_tokens is not None:
        request, report = await _shrink(request)
        resp, settle = await _answer(llm, request, rid)
        resp = _with_prompt(resp, report)
    else:
        resp, settle = await _answer(llm, request, rid)
    return await released(llm, resp, settle)


async def released(llm: LLMManager, answer: A, settle: Settle) -> tuple[A, Settle]:
    """With ``ledger.durability: strict`` the bookkeeping runs before the answer is released: its ledger row is on
    disk (the spool's ``fsync``) before the caller can hand it on."""
    if llm.settings.ledger.durability == "strict" and llm.settings.ledger.enabled:
        await unbroken(settle())  # a caller cancelled meanwhile loses the answer, not its bookkeeping
        return answer, _settled
    return answer, settle


async def _answer(llm: LLMManager, request: Request, rid: str) -> tuple[Response, Settle]:
    key, hit, probe = await _lookup(llm, request, rid)
    if hit is not None:
        return hit, partial(llm.accounting.copied, request, rid, hit, key)
    if key is None or llm.cache is None:
        return await _complete(llm, request, rid, key)
    call = partial(_complete, llm, request, rid, key)
    resp, settle = await llm.inflight.once(key, rid, call) if llm.settings.cache.dedupe else await call()
    if settle is None:  # another caller's identical call answered
        return resp, partial(llm.accounting.copied, request, rid, resp, key)
    return resp, then(settle, partial(_store, llm, key, probe, resp))


async def _lookup(llm: LLMManager, request: Request, rid: str) -> tuple[str | None, Response | None, Probe | None]:
    """The request's cache key (``None``: not cacheable), a cached answer (exact, else semantic), and the semantic
    cache's probe to store the answer under."""
    if llm._guard is None:
        llm._guarded()  # the first request starts the manager's use of the running loop
    if llm.cache is None or not request.cache:
        return None, None, None
    from llm_manager.cache.keys import request_key

    key = request_key(request)
    hit = await llm.cache.get(key, rid)
    probe = None
    if hit is None and llm.semantic is not None and request.semantic_cache:
        hit, probe = await llm.semantic.lookup(request, rid)
    return key, hit, probe


async def _store(llm: LLMManager, key: str, probe: Probe | None, resp: Response) -> None:
    if llm.cache is not None:
        await llm.cache.put(key, resp)
    if probe is not None and llm.semantic is not None:
        await llm.semantic.put(probe, resp)


async def _complete(llm: LLMManager, request: Request, rid: str, key: str | None) -> tuple[Response, Settle]:
    booking = llm.accounting.booking(request, rid, key, stream=False)
    try:
        plan = await booking.reserve(_plan(llm, request))
        resp = await llm.executor.complete(request, plan, rid)
    except BaseException as exc:
        await booking.failed(exc)  # planning's failure too: the candidates passed over are in the ledger row
        raise
    return resp, partial(booking.answered, resp, time.perf_counter_ns())


def _plan(llm: LLMManager, request: Request) -> Plan:
    from llm_manager.routing.planner import plan

    return plan(request, llm.settings, llm.deployments, llm.stats)


def stream(llm: LLMManager, request: Request, rid: str | None) -> ResponseStream:
    """The events of the answer (see :meth:`LLMManager.stream`)."""
    feed = _stream if request.max_prompt_tokens is None else _stream_shrunk
    return ResponseStream.feeding(partial(feed, llm, request, request_id(rid)))


async def _stream_shrunk(
    llm: LLMManager, request: Request, rid: str, out: ResponseStream
) -> AsyncIterator[StreamEvent]:
    """:func:`_stream` of the request with its prompt shrunk to ``max_prompt_tokens``; the report is on the final
    response."""
    request, report = await _shrink(request)
    out.prompt = report
    async with aclosing(_stream(llm, request, rid, out)) as events:
        async for event in events:
            if event.response is not None:
                event = event.model_copy(update={"response": _with_prompt(event.response, report)})
            yield event


async def _stream(
    llm: LLMManager, request: Request, rid: str, out: ResponseStream
) -> AsyncGenerator[StreamEvent, None]:
    key, hit, probe = await _lookup(llm, request, rid)
    if hit is not None:
        out.cached = True
        out.cache_similarity = hit.metadata.cache_similarity
        await llm.accounting.record(request, rid, datetime.now(UTC), hit, None, key)
        for event in _replay(hit):
            yield event
        return
    booking = llm.accounting.booking(request, rid, key, stream=True)
    try:
        plan = await booking.reserve(_plan(llm, request))
    except BaseException as exc:
        await booking.failed(exc)
        raise
    settled = False
    events = llm.executor.stream(request, plan, rid, out.attempts)
    try:
        async for event in events:
            if event.response is None:
                yield event
                continue
            settled = True
            resp, ended = event.response, time.perf_counter_ns()
            try:
                yield event
            finally:
                # After the last event is handed on (the gateway has sent it): when the caller asks for more, or
                # closes the stream at this event.
                if key is not None:
                    await _store(llm, key, probe, resp)
                await booking.answered(resp, ended)
    except BaseException as exc:
        # Also a caller that stopped reading early (GeneratorExit): its reservation is settled by what the attempts
        # are known to have cost, and released otherwise.
        if not settled:
            settled = True
            err: BaseException = exc
            if not isinstance(exc, LLMManagerError):
                # Close the run now rather than at garbage collection: the upstream is released at once and the
                # answering attempt is recorded (with what it cost) before the ledger row is written.
                await events.aclose()
                err = LLMManagerError("the caller stopped reading the stream", request_id=rid)
                err.attempts = out.attempts
            await booking.failed(err)
        raise


def _replay(hit: Response) -> list[StreamEvent]:
    """A cached answer as a stream: its reasoning, one delta with the whole text, then the response."""
    name, model = hit.deployment, hit.model
    events: list[StreamEvent] = []
    if hit.reasoning or hit.reasoning_signature:
        signature = hit.reasoning_signature or ""
        events.append(
            StreamEvent(
                type="delta", reasoning=hit.reasoning or "", reasoning_signature=signature, deployment=name, model=model
            )
        )
    events.append(StreamEvent(type="delta", delta=hit.content, deployment=name, model=model, response=None))
    events.append(StreamEvent(type="done", delta="", deployment=name, model=model, response=hit))
    return events


async def _settled() -> None:
    """The bookkeeping of an answer whose bookkeeping already ran (``ledger.durability: strict``)."""


async def _shrink(request: Request) -> tuple[Request, PromptOptimization | None]:
    """The request with its prompt within ``max_prompt_tokens`` (tokenizing a long prompt takes tens of
    milliseconds: off the event loop)."""
    from llm_manager.prompts.requests import shrink_request

    return await asyncio.to_thread(shrink_request, request)


def _with_prompt(resp: Response, report: PromptOptimization | None) -> Response:
    """``resp`` with the prompt optimisation report in its metadata (a copy: the cache may hold ``resp``)."""
    if report is None:
        return resp
    return resp.model_copy(update={"metadata": resp.metadata.model_copy(update={"prompt": report})})


def request_id(given: str | None) -> str:
    """The caller's request id (checked: it is a ledger key) or a new one."""
    if not given:
        return new_id()
    from llm_manager.types import label_problem

    problem = label_problem("request_id", given)
    if problem is not None:
        raise ConfigError(problem)
    return given


def new_id() -> str:
    # 96 random bits: unique enough for request ids, and ~5x cheaper than uuid4() on the cache-hit path.
    return "req_" + os.urandom(12).hex()
