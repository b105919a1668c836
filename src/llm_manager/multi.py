"""One request to several models at once: every answer in order, or the first good one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from llm_manager.errors import AllCandidatesFailedError, LLMManagerError, ProviderTimeoutError

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager
    from llm_manager.types import Request, Response

__all__ = ["query_multiple"]


async def query_multiple(
    llm: LLMManager,
    request: Request,
    models: Sequence[str],
    *,
    timeout_s: float | None,
    mode: Literal["all", "first"],
) -> list[Response | LLMManagerError]:
    """See :meth:`LLMManager.query_multiple`. Each call goes through the normal path (limits, breakers, keys,
    retries on that model) but never falls back to another model: the caller asked for these models."""
    for name in models:
        llm.adapter(llm.settings.resolve_name(name) or name)  # unknown names fail before anything is sent
    calls = [_one(llm, request, m, timeout_s) for m in models]
    if mode == "all":
        return list(await asyncio.gather(*calls))
    tasks = [asyncio.create_task(c) for c in calls]
    errors: list[LLMManagerError] = []
    try:
        for next_done in asyncio.as_completed(tasks):
            result = await next_done
            if isinstance(result, LLMManagerError):
                errors.append(result)
                continue
            return [result]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    raise AllCandidatesFailedError(
        f"none of {', '.join(models)} answered: " + "; ".join(f"{e.deployment}: {e.code}" for e in errors),
        attempts=[a for e in errors for a in e.attempts],
        exceptions=errors,
    )


async def _one(llm: LLMManager, request: Request, model: str, timeout_s: float | None) -> Response | LLMManagerError:
    req = request.model_copy(update={"model": model, "fallback": False})
    try:
        if timeout_s is None:
            return await llm.generate(req)
        async with asyncio.timeout(timeout_s):
            return await llm.generate(req)
    except TimeoutError:
        return ProviderTimeoutError(
            f"{model} did not answer within {timeout_s:g}s",
            timeout_s=timeout_s,
            deployment=llm.settings.resolve_name(model) or model,
        )
    except LLMManagerError as exc:
        return exc
