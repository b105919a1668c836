"""Structured output over the manager: ask, extract, validate, re-ask with the errors, within a budget.

The provider-native mechanism (OpenAI JSON schema, Anthropic forced tool, Gemini response schema, or the schema
in the prompt for servers without one) is chosen by each adapter from ``Request.response_format``; this module
only runs the loop and never assumes the reply is clean JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from llm_manager.errors import ExtractionError
from llm_manager.types import Message, Request, Response, ResponseFormat, Usage

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

__all__ = ["ReaskPolicy", "StructuredResult", "query", "response_format_for", "stream"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReaskPolicy:
    """How hard to try for a valid answer."""

    max_reasks: int = 2
    """Re-asks after the first answer (so at most ``max_reasks + 1`` calls)."""
    budget_tokens: int | None = None
    """Stop re-asking once the tries so far plus another like the last would pass this many tokens."""
    budget_usd: Decimal | None = None
    """The same, in money (only for models with a known price)."""


@dataclass(slots=True)
class StructuredResult(Generic[T]):
    """The validated value with the evidence of how it was obtained."""

    value: T
    response: Response
    """The response whose content validated."""
    tries: list[dict[str, Any]] = field(default_factory=list)
    """Failed tries before it: ``{"reply", "errors", "deployment", "request_id"}``."""
    usage: Usage = field(default_factory=Usage)
    """Tokens and cost of every try together."""
    repaired: bool = False
    """True when the JSON needed repair (truncation, trailing commas, quotes …) before it validated."""


def response_format_for(target: Any) -> ResponseFormat:
    """The request's ``response_format`` for a Pydantic model class or a JSON-schema dict."""
    from llm_manager.structured.extract import schema_of

    schema = schema_of(target)
    raw_name = target.__name__ if isinstance(target, type) else str(schema.get("title") or "response")
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in raw_name)[:64] or "response"
    return ResponseFormat(
        name=name, json_schema=schema, strict=isinstance(target, type) and issubclass(target, BaseModel)
    )


async def query(llm: LLMManager, request: Request, target: Any, policy: ReaskPolicy) -> StructuredResult[Any]:
    """Ask until the reply validates against ``target`` or the re-ask budget is spent."""
    from llm_manager.structured.extract import ExtractionFailed, extract, reask_message

    req = request.model_copy(update={"response_format": response_format_for(target)})
    tries: list[dict[str, Any]] = []
    total = Usage(cost=Decimal(0))
    for attempt in range(policy.max_reasks + 1):
        resp = await llm.generate(req)
        total = _add(total, resp.usage)
        try:
            got = extract(resp.content, target)
        except ExtractionFailed as failed:
            tries.append(
                {
                    "reply": resp.content,
                    "errors": failed.errors,
                    "deployment": resp.deployment,
                    "request_id": resp.metadata.request_id,
                }
            )
            if attempt == policy.max_reasks or _over_budget(policy, total, resp.usage):
                break
            # Re-ask on the same conversation: the model sees its answer and exactly what was wrong with it.
            messages = [
                *req.messages,
                Message(role="assistant", content=resp.content or "(empty)"),
                Message(role="user", content=reask_message(resp.content, failed.errors)),
            ]
            req = req.model_copy(update={"messages": messages, "cache": False})
            continue
        return StructuredResult(got.value, resp, tries, total, got.repaired)
    last = tries[-1]
    raise ExtractionError(
        f"no valid {req.response_format.name if req.response_format else 'value'} after {len(tries)} "
        f"tr{'y' if len(tries) == 1 else 'ies'}: {'; '.join(last['errors'][:3])}",
        response=last["reply"],
        tries=tries,
        usage=total,
        deployment=last["deployment"],
        request_id=last["request_id"],
    )


async def stream(llm: LLMManager, request: Request, target: Any, policy: ReaskPolicy) -> AsyncIterator[Any]:
    """Yield partially filled values as the JSON streams in, then the validated value (always last).

    If the streamed answer does not validate, the re-ask loop runs (not streamed) and its result is yielded.
    """
    from llm_manager.structured.extract import ExtractionFailed, extract
    from llm_manager.structured.partial import PartialJSON, partial_model

    req = request.model_copy(update={"response_format": response_format_for(target)})
    parser = PartialJSON()
    last: Any = None
    s = llm.stream(req)
    async with s:
        async for event in s:
            if not event.delta:
                continue
            value = parser.feed(event.delta)
            if value is not None and value != last:
                last = value
                yield partial_model(value, target)
    resp = s.response
    if resp is not None:
        try:
            yield extract(resp.content, target).value
            return
        except ExtractionFailed:
            pass
    result = await query(llm, req, target, policy)
    yield result.value


def _add(a: Usage, b: Usage) -> Usage:
    # Unknown stays unknown: a sum with one unpriced try is not a price.
    cost = a.cost + b.cost if a.cost is not None and b.cost is not None else None
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        cost=cost,
        estimated=a.estimated or b.estimated,
    )


def _over_budget(policy: ReaskPolicy, spent: Usage, last: Usage) -> bool:
    """Would one more try like the last one pass a budget? (A re-ask is larger than the ask, never smaller.)"""
    if policy.budget_tokens is not None and spent.total_tokens + last.total_tokens > policy.budget_tokens:
        return True
    if policy.budget_usd is not None and spent.cost is not None and last.cost is not None:
        return spent.cost + last.cost > policy.budget_usd
    return False
