"""Counting a prompt's input tokens before sending it: :meth:`LLMManager.count_tokens`.

The deployment that would answer first counts: the request's ``model`` when it names one, else the head of its task's
chain. Where that provider has a counting endpoint (Anthropic's ``count_tokens``, Gemini's ``countTokens``) the prompt
is encoded exactly as a generation would send it and counted there, with the deployment's key, for free; where it has
none (OpenAI, OpenAI-compatible servers, the simulated models), or the count fails (the failure is logged), the answer
is our estimate (about four characters a token, plus framing per turn), and says so: ``source`` is ``provider`` or
``estimate``. Counting is not a generation: it is not retried, cached, budgeted or written to the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from llm_manager.errors import ConfigError, LLMManagerError
from llm_manager.tokens import estimate_prompt_tokens

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager
    from llm_manager.types import Request

__all__ = ["TokenCount", "count_tokens"]

log = logging.getLogger("llm_manager.tokens")
_COUNT_TIMEOUT_S = 10.0
"""Longest wait for a provider's count (routing.timeout_s if shorter) before estimating instead."""


@dataclass(frozen=True, slots=True)
class TokenCount:
    """How many input tokens a prompt is, and who says so."""

    input_tokens: int
    source: Literal["provider", "estimate"]
    """``provider``: counted by the deployment's own API; ``estimate``: our estimate."""
    deployment: str | None
    """The deployment the count is for (``None``: no deployment could take the request's task)."""
    model: str | None
    """That deployment's model id."""


async def count_tokens(llm: LLMManager, request: Request) -> TokenCount:
    """Count ``request``'s prompt (see the module's docstring)."""
    estimate = estimate_prompt_tokens(request)
    name = llm.settings.resolve_name(request.model) if request.model else None
    if request.model and name is None:
        raise ConfigError(f"unknown model {request.model!r}. Available: {', '.join(llm.deployments)}.")
    chain = [name] if name else llm.settings.chain(request.task)
    dep = llm.deployments.get(chain[0]) if chain else None
    if dep is None:
        return TokenCount(estimate, "estimate", None, None)
    live = [e for e in llm.pools[dep.name].entries if e.usable(llm.wall_clock())]
    try:
        async with asyncio.timeout(min(_COUNT_TIMEOUT_S, llm.settings.routing.timeout_s)):
            counted = await dep.adapter.count_tokens(request, api_key=live[0].key if live else None)
    except (LLMManagerError, TimeoutError) as exc:
        why = exc.message if isinstance(exc, LLMManagerError) else "no answer in time"
        log.warning("count_tokens: %s could not count, estimating instead: %s", dep.name, why)
        counted = None
    if counted is None:
        return TokenCount(estimate, "estimate", dep.name, dep.endpoint.model)
    return TokenCount(counted, "provider", dep.name, dep.endpoint.model)
