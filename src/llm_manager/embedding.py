"""Canonical embedding types: what a caller asks for (:class:`EmbeddingInput`), what one provider call carries
(:class:`EmbedCall`, :class:`Embedded`) and what the caller gets back (:class:`EmbeddingResponse`).

Provider-neutral like :mod:`llm_manager.types`: the embedding codecs translate them to and from each wire format.
Vectors are plain ``list[float]`` holding float32 values (every provider computes float32 embeddings and the
base64 wire encoding is float32), so a vector survives a cache round trip or a base64 re-encoding exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_manager.types import ResponseMetadata, Usage

__all__ = [
    "INPUT_TYPES",
    "EmbedCall",
    "Embedded",
    "EmbeddingInput",
    "EmbeddingResponse",
    "InputType",
]

InputType = Literal[
    "query", "document", "similarity", "classification", "clustering", "question_answering", "fact_verification"
]
"""What the vectors are for. Models trained for it embed differently (Gemini's ``taskType``, nomic's
``search_query:`` prefixes); models without it ignore it, and the response says so in ``dropped_params``."""
INPUT_TYPES: tuple[InputType, ...] = (
    "query",
    "document",
    "similarity",
    "classification",
    "clustering",
    "question_answering",
    "fact_verification",
)


class EmbeddingInput(BaseModel):
    """What to embed: ``texts`` (or pre-tokenised ``tokens``), and how. Routing and attribution (``model``, ``task``,
    ``user``, ``project`` …) travel as a :class:`~llm_manager.types.Request`, like a chat request's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    texts: list[str] = Field(default_factory=list)
    """The inputs, one vector each, in order."""
    tokens: list[list[int]] | None = None
    """Pre-tokenised inputs instead of ``texts`` (OpenAI's token arrays): only deployments of the same model as the
    first candidate may answer, since token ids belong to one tokenizer."""
    dimensions: int | None = Field(default=None, gt=0)
    """Vector size wanted; only deployments that can produce it answer (``None``: the first candidate's size)."""
    input_type: InputType | None = None

    @model_validator(mode="after")
    def _one_input(self) -> EmbeddingInput:
        if self.tokens is not None:
            if self.texts:
                raise ValueError("give texts or tokens, not both")
            if not self.tokens or any(not t for t in self.tokens):
                raise ValueError("tokens must be a non-empty list of non-empty token arrays")
            if any(i < 0 for t in self.tokens for i in t):
                raise ValueError("token ids must be >= 0")
            return self
        if not self.texts:
            raise ValueError("texts must hold at least one string")
        empty = next((i for i, t in enumerate(self.texts) if not t), None)
        if empty is not None:
            raise ValueError(f"texts[{empty}] is empty: an empty string has no embedding")
        return self

    @property
    def count(self) -> int:
        """How many vectors are asked for."""
        return len(self.tokens) if self.tokens is not None else len(self.texts)

    @property
    def chars(self) -> int:
        """Characters of input (a token counts as four), for estimates before a provider counts."""
        if self.tokens is not None:
            return 4 * sum(len(t) for t in self.tokens)
        return sum(len(t) for t in self.texts)


@dataclass(slots=True)
class EmbedCall:
    """One call to one deployment, as its adapter needs it (built per candidate: the dimension to ask for
    depends on the model)."""

    texts: list[str]
    tokens: list[list[int]] | None = None
    dimensions: int | None = None
    """Sent to models that can shorten their vectors (``None``: the model's own size)."""
    size: int | None = None
    """The vector size the manager expects back (checked on the answer; the simulated model computes it)."""
    input_type: InputType | None = None
    user: str | None = None


@dataclass(slots=True)
class Embedded:
    """One call's answer: a vector per input, in input order."""

    vectors: list[list[float]]
    prompt_tokens: int | None = None
    """Tokens the provider counted (``None``: it reported none, and the manager estimates)."""
    model: str | None = None
    """The model as the provider named it."""
    dropped: list[str] = field(default_factory=list)
    """Request fields this deployment could not honour (e.g. ``input_type`` on a model without task types)."""


class EmbeddingResponse(BaseModel):
    """The vectors, in input order, and how they were obtained.

    Built without validating the vectors again (they were checked when decoded): ``model_construct`` keeps a
    large batch cheap.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    vectors: list[list[float]]
    model: str
    """The model that answered, as the provider names it."""
    deployment: str
    provider: str
    dimensions: int
    usage: Usage = Field(default_factory=Usage)
    """``prompt_tokens`` and ``total_tokens`` (an embedding has no completion), and the cost."""
    metadata: ResponseMetadata
    dropped_params: list[str] = Field(default_factory=list)
    """Request fields the answering deployment could not honour (the gateway sends them as
    ``x-llm-dropped-params``)."""

    @property
    def vector(self) -> list[float]:
        """The only vector, for a request with a single input."""
        if len(self.vectors) != 1:
            raise ValueError(f"this response has {len(self.vectors)} vectors: use .vectors")
        return self.vectors[0]

    def summary(self) -> dict[str, Any]:
        """Who answered, with what usage, for logs and the CLI (no vectors)."""
        return {
            "model": self.model,
            "deployment": self.deployment,
            "dimensions": self.dimensions,
            "count": len(self.vectors),
            "prompt_tokens": self.usage.prompt_tokens,
            "cost": self.usage.cost,
            "cached": self.metadata.cached,
            "latency_ms": self.metadata.latency_ms,
        }
