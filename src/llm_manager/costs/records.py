"""Ledger rows from finished requests: one per provider call, plus one for an answer that needed none."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from llm_manager.errors import LLMManagerError

if TYPE_CHECKING:
    from llm_manager.costs.ledger import LedgerRow, LedgerStatus
    from llm_manager.types import Attempt, Request, Response

__all__ = ["ledger_rows"]


def ledger_rows(
    request: Request,
    request_id: str,
    started: datetime,
    response: Response | None,
    error: BaseException | None,
    request_key: str | None,
    priced: dict[str, bool],
) -> list[LedgerRow]:
    """The rows for one request. ``priced`` says per deployment whether its price is known: a failed call of a
    priced model cost $0 (providers do not bill errors), of an unpriced one the cost is unknown (null)."""
    from llm_manager.costs.ledger import LedgerRow

    def row(
        attempt_no: int,
        ts: datetime,
        status: LedgerStatus,
        dep: str,
        provider: str,
        model: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        cost: Decimal | None = None,
        latency_ms: float = 0.0,
        error_code: str | None = None,
        cached: bool = False,
        cache_similarity: float | None = None,
    ) -> LedgerRow:
        return LedgerRow(
            ts=ts,
            request_id=request_id,
            attempt=attempt_no,
            deployment=dep,
            provider=provider,
            model=model,
            status=status,
            user=request.user,
            project=request.project,
            api_key_id=request.gateway_key,
            task=request.task,
            request_key=request_key,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            cost=cost,
            latency_ms=latency_ms,
            error_code=error_code,
            cached=cached,
            cache_similarity=cache_similarity,
        )

    if response is not None and (response.metadata.cached or response.metadata.deduplicated):
        status: LedgerStatus = "cached" if response.metadata.cached else "deduplicated"
        return [
            row(
                1,
                started,
                status,
                response.deployment,
                response.provider,
                response.model,
                cost=Decimal(0),
                cached=response.metadata.cached,
                cache_similarity=response.metadata.cache_similarity,
            )
        ]
    attempts: Sequence[Attempt] = (
        response.metadata.attempts
        if response is not None
        else error.attempts
        if isinstance(error, LLMManagerError)
        else []
    )
    out: list[LedgerRow] = []
    at = started
    for a in attempts:
        at += timedelta(milliseconds=a.waited_ms)
        n = len(out) + 1
        if a.skipped:
            # Not called (breaker open, at its limit, window too small): no cost, but a request every candidate
            # refused still leaves a row, and how often a model is passed over can be counted.
            out.append(
                row(n, at, "skipped", a.deployment, a.provider, a.model, cost=Decimal(0), error_code=a.error_code)
            )
        elif a.ok and response is not None:
            u = response.usage
            out.append(
                row(
                    n,
                    at,
                    "ok",
                    a.deployment,
                    a.provider,
                    response.model,
                    prompt_tokens=u.prompt_tokens,
                    completion_tokens=u.completion_tokens,
                    cached_tokens=u.cached_tokens,
                    cost=u.cost,
                    latency_ms=a.latency_ms,
                )
            )
        else:
            # A lost hedge costs what it used; errors are not billed, but a stream the caller abandoned was (its
            # attempt carries the estimate).
            lost = a.error_code == "hedge_lost"
            out.append(
                row(
                    n,
                    at,
                    "hedge_lost" if lost else "error",
                    a.deployment,
                    a.provider,
                    a.model,
                    cost=a.cost if lost or a.cost is not None else Decimal(0) if priced.get(a.deployment) else None,
                    latency_ms=a.latency_ms,
                    error_code=a.error_code,
                )
            )
        at += timedelta(milliseconds=a.latency_ms)
    return out
