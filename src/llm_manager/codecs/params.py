"""Portable parameters: the translations several codecs share, and how a parameter that cannot be sent is reported.

Reasoning is asked for as an *effort* by OpenAI (``reasoning_effort``) and as a *token budget* by Anthropic
(``thinking.budget_tokens``) and Gemini (``thinkingConfig.thinkingBudget``). One table converts between them:

| effort | budget (tokens) | a budget of … | is the effort |
| --- | ---: | --- | --- |
| ``none`` | 0 (thinking off) | 0 | ``none`` |
| ``minimal`` | 1,024 | 1 – 2,048 | ``low`` |
| ``low`` | 2,048 | 2,049 – 8,192 | ``medium`` |
| ``medium`` | 8,192 | above 8,192 | ``high`` |
| ``high`` | 24,576 | | |

A parameter the answering deployment cannot honour is left out of its request and named in
``Response.metadata.dropped_params`` (with a sentence in ``warnings``); the gateway repeats it in the
``x-llm-dropped-params`` header. Codecs collect those names with a :class:`Dropped`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_manager.types import Reasoning, ReasoningEffort, Request

__all__ = [
    "EFFORT_BUDGETS",
    "Dropped",
    "has_cache_breakpoints",
    "foreign_fields",
    "reasoning_effort",
    "thinking_budget",
]

EFFORT_BUDGETS: dict[str, int] = {"none": 0, "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
"""The thinking budget an effort stands for."""


def thinking_budget(reasoning: Reasoning) -> int:
    """Tokens of thinking ``reasoning`` asks for (0: none)."""
    if reasoning.budget_tokens is not None:
        return reasoning.budget_tokens
    return EFFORT_BUDGETS[reasoning.effort or "medium"]


def reasoning_effort(reasoning: Reasoning) -> ReasoningEffort:
    """The effort ``reasoning`` asks for."""
    if reasoning.effort is not None:
        return reasoning.effort
    budget = reasoning.budget_tokens or 0
    if budget == 0:
        return "none"
    if budget <= 2048:
        return "low"
    return "medium" if budget <= 8192 else "high"


class Dropped:
    """The parameters an encoding could not send, each with why (in the order found, each once)."""

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def add(self, name: str, why: str) -> None:
        """Record that ``name`` was not sent, and why."""
        self.reasons.setdefault(name, why)

    @property
    def names(self) -> list[str]:
        """The parameters not sent."""
        return list(self.reasons)

    def warnings(self, deployment: str) -> list[str]:
        """One sentence per parameter not sent, for ``Response.metadata.warnings``."""
        return [f"{name} was not sent to {deployment}: {why}" for name, why in self.reasons.items()]


def foreign_fields(request: Request, protocol: str, dropped: Dropped | None) -> dict[str, object]:
    """The client's provider-specific fields to merge into a ``protocol`` body: all of them when the client spoke
    ``protocol``, none otherwise (each then recorded in ``dropped``)."""
    passthrough = request.passthrough
    if passthrough is None:
        return {}
    if passthrough.protocol == protocol:
        return passthrough.fields
    if dropped is not None:
        for name in passthrough.fields:
            dropped.add(
                _REPORTED_AS.get(name, name),
                f"it belongs to the {passthrough.protocol} protocol, and this deployment speaks {protocol}",
            )
    return {}


_REPORTED_AS = {"system": "cache_control"}
"""A passed-through field reported by what in it could not be sent: Anthropic's ``system`` travels as blocks only
to keep their cache marks (its text is in the canonical system prompt, which every deployment receives)."""


def has_cache_breakpoints(request: Request) -> bool:
    """Whether any part or tool of ``request`` carries a prompt-caching breakpoint (``cache_control``)."""
    for m in request.messages:
        if not isinstance(m.content, str) and any(getattr(p, "cache_control", None) for p in m.content):
            return True
    return any(t.cache_control for t in request.tools or ())
