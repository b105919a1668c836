"""Cheap token estimates for planning (context-window checks, cost ordering) before a provider counts for real."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_manager.types import Request

__all__ = ["DEFAULT_OUTPUT_ESTIMATE", "estimate_prompt_tokens", "estimate_tokens"]

DEFAULT_OUTPUT_ESTIMATE = 256
"""Output tokens assumed when the caller sets no ``max_tokens``."""


def estimate_tokens(text_chars: int, turns: int = 1) -> int:
    """~4 characters per token, plus a few tokens of framing per turn (errs on the high side for English)."""
    return text_chars // 4 + 1 + 4 * turns


def estimate_prompt_tokens(request: Request) -> int:
    """Estimated input tokens of ``request``."""
    return estimate_tokens(request.prompt_chars, len(request.messages) + (1 if request.system else 0))
