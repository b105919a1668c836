"""Prompt optimisation: shrink a prompt to a token budget while keeping what matters (see :mod:`.optimizer`)."""

from __future__ import annotations

from llm_manager.prompts.counter import ENCODINGS, Encoding, TokenCounter, token_counter
from llm_manager.prompts.optimizer import OptimizedPrompt, PromptOptimizer

__all__ = ["ENCODINGS", "Encoding", "OptimizedPrompt", "PromptOptimizer", "TokenCounter", "token_counter"]
