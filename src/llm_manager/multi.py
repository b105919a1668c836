"""One request to several models at once: every answer in order, the first good one, or the most confident."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from llm_manager.confidence import most_confident
from llm_manager.errors import AllCandidatesFailedError, ConfigError, LLMManagerError, ProviderTimeoutError

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
    mode: Literal["all", "first", "confident"],
) -> list[Response | LLMManagerError]:
    """See :meth:`LLMManager.query_multiple`. Each call goes through the normal path (limits, breakers, keys,
    retries on that model) but never falls back to another model: the caller asked for these models."""
    for name in models:
        llm.adapter(llm.settings.resolve_name(name) or name)  # unknown names fail before anything is sent
    if mode == "confident":
        if request.logprobs is False:
            raise ConfigError("mode='confident' ranks answers by their log probabilities: do not set logprobs=False")
        # Log probabilities are asked for (they cost no tokens); a model that cannot return them ranks last.
        request = request.model_copy(update={"logprobs": True})
    calls = [_one(llm, request, m, timeout_s) for m in models]
    if mode == "all":
        return list(await asyncio.gather(*calls))
    if mode == "confident":
        results = list(await asyncio.gather(*calls))
        best = most_confident(results)
        if best is not None:
            return [best]
        raise _none_answered(models, [r for r in results if isinstance(r, LLMManagerError)])
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
    raise _none_answered(models, errors)


def _none_answered(models: Sequence[str], errors: list[LLMManagerError]) -> AllCandidatesFailedError:
    return AllCandidatesFailedError(
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
