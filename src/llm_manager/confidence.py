"""Confidence: how sure a model was of its answer, from the log probabilities of the tokens it chose.

``confidence = exp(mean(logprob))`` over the answer's tokens: the geometric mean of the probability the model gave
each token it produced, between 0 and 1. 1.0 means every token was certain; 0.5 means that on average each token
had even odds. The geometric mean (not the product) so that a long answer is not less confident than a short one
for its length alone, and not the arithmetic mean of probabilities so that one near-impossible token still pulls
the score down. A token of probability 0 (``-inf``) makes it 0.

It exists only where the provider returned log probabilities (the request asked for ``logprobs``; OpenAI-style
chat APIs, Gemini, the simulated models do; Anthropic's Messages API does not): otherwise ``None``, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llm_manager.types import Response, confidence_of

if TYPE_CHECKING:
    from llm_manager.errors import LLMManagerError

__all__ = ["confidence_of", "most_confident"]


def most_confident(results: Sequence[Response | LLMManagerError]) -> Response | None:
    """The answer with the highest confidence; answers without one rank after every answer with one, and ties
    go to the earlier result. ``None`` when no result is an answer."""
    answers = [(i, r) for i, r in enumerate(results) if isinstance(r, Response)]
    if not answers:
        return None
    _, best = max(answers, key=lambda ir: (ir[1].confidence is not None, ir[1].confidence or 0.0, -ir[0]))
    return best
