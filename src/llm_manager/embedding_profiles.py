"""What we know about embedding models, as data: vector size, whether it can be shortened, input limits, and how
the model wants to be told what its vectors are for.

A deployment is an embedding model when its profile is found here or its config says ``kind: embedding``; chat
routing never picks one and embedding routing never picks anything else. Prices are not here (they come from the
price table, like chat models').
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_manager.config import DeploymentConfig, Settings
    from llm_manager.embedding import InputType

__all__ = [
    "EmbeddingProfile",
    "EmbeddingSpec",
    "check_embedding_config",
    "check_task_kinds",
    "embedding_profile_for",
    "embedding_spec",
]


@dataclass(frozen=True, slots=True)
class EmbeddingProfile:
    """An embedding model's facts."""

    dimensions: int
    """Size of its vectors by default."""
    min_dimensions: int | None = None
    """Smallest size it can shorten its vectors to (Matryoshka models, through ``dimensions`` /
    ``outputDimensionality``); ``None``: it cannot."""
    max_input_tokens: int = 8192
    max_batch: int | None = None
    """Most inputs one call takes (``None``: no known limit); larger requests are sent in slices."""
    token_input: bool = False
    """Accepts token-id arrays instead of text (OpenAI's models)."""
    task_types: bool = False
    """Takes the input type as a request field (Gemini's ``taskType``)."""
    prefixes: Mapping[InputType, str] = field(default_factory=dict)
    """Text the model expects before each input, per input type (nomic's ``search_query: ``)."""


_NOMIC: dict[InputType, str] = {
    "query": "search_query: ",
    "document": "search_document: ",
    "classification": "classification: ",
    "clustering": "clustering: ",
}
_MXBAI: dict[InputType, str] = {"query": "Represent this sentence for searching relevant passages: "}

# Longest prefix wins; ``vendor/model`` ids match on the part after the slash, Ollama tags (``:latest``) match too.
_PROFILES: dict[str, EmbeddingProfile] = {
    "text-embedding-3-small": EmbeddingProfile(1536, 1, 8191, 2048, token_input=True),
    "text-embedding-3-large": EmbeddingProfile(3072, 1, 8191, 2048, token_input=True),
    "text-embedding-ada-002": EmbeddingProfile(1536, None, 8191, 2048, token_input=True),
    "gemini-embedding-001": EmbeddingProfile(3072, 128, 2048, 100, task_types=True),
    "text-embedding-004": EmbeddingProfile(768, 1, 2048, 100, task_types=True),
    "nomic-embed-text": EmbeddingProfile(768, None, 8192, prefixes=_NOMIC),
    "mxbai-embed-large": EmbeddingProfile(1024, None, 512, prefixes=_MXBAI),
    "all-minilm": EmbeddingProfile(384, None, 256),
    "bge-m3": EmbeddingProfile(1024, None, 8192),
    "mistral-embed": EmbeddingProfile(1024, None, 8192),
}
_ORDERED = sorted(_PROFILES, key=len, reverse=True)


@functools.lru_cache(maxsize=256)
def embedding_profile_for(model: str) -> EmbeddingProfile | None:
    """The embedding profile of ``model``, or ``None`` when it is not a known embedding model."""
    name = model.lower().rsplit("/", 1)[-1]
    for prefix in _ORDERED:
        if name.startswith(prefix):
            return _PROFILES[prefix]
    return None


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    """One embedding deployment's facts: its profile (if known) under its config."""

    dimensions: int
    """Size of the vectors it returns unless asked otherwise (config ``dimensions``, else the profile's)."""
    profile: EmbeddingProfile | None

    @property
    def native(self) -> int:
        """The model's own size (what it returns when no size is sent)."""
        return self.profile.dimensions if self.profile else self.dimensions

    def can_produce(self, size: int) -> bool:
        """Whether vectors of ``size`` can come from this deployment."""
        if size == self.dimensions:
            return True
        low = self.profile.min_dimensions if self.profile else None
        return low is not None and low <= size <= self.native

    def wire_dimensions(self, size: int) -> int | None:
        """The size to send for vectors of ``size`` (``None``: send none, the model's own size is it)."""
        return None if size == self.native else size

    def prefix(self, input_type: InputType | None) -> str:
        """Text to put before each input for ``input_type`` ("" when the model has no such convention)."""
        if input_type is None or self.profile is None:
            return ""
        return self.profile.prefixes.get(input_type, "")

    def honours(self, input_type: InputType | None) -> bool:
        """Whether ``input_type`` changes this deployment's vectors (a task-type field or a prefix)."""
        if input_type is None:
            return True
        return self.profile is not None and (self.profile.task_types or input_type in self.profile.prefixes)


def embedding_spec(dep: DeploymentConfig) -> EmbeddingSpec | None:
    """The spec of an embedding deployment (``None`` for a chat one, or one whose size is unknown: config
    validation reports that)."""
    if dep.resolved_kind != "embedding":
        return None
    profile = embedding_profile_for(dep.model_name)
    size = dep.dimensions or (profile.dimensions if profile else None)
    return EmbeddingSpec(size, profile) if size else None


def check_embedding_config(path: str, dep: DeploymentConfig) -> list[str]:
    """Config problems of an embedding deployment (or of ``dimensions`` set on a chat one)."""
    if dep.resolved_kind != "embedding":
        return (
            [f"{path}.dimensions: only embedding models have dimensions; set `kind: embedding`."]
            if dep.dimensions
            else []
        )
    profile = embedding_profile_for(dep.model_name)
    if dep.provider == "anthropic":
        return [f"{path}: Anthropic has no embedding API. Fix: use an OpenAI, Gemini or OpenAI-compatible model."]
    if profile is None:
        if dep.dimensions is None:
            return [
                f"{path}: the vector size of {dep.model_name!r} is not known. Fix: add `dimensions:` (e.g. 768), "
                "the size its vectors have."
            ]
        return []
    if dep.dimensions is not None and not EmbeddingSpec(profile.dimensions, profile).can_produce(dep.dimensions):
        low = profile.min_dimensions
        allowed = f"{low} to {profile.dimensions}" if low is not None else f"only {profile.dimensions}"
        return [f"{path}.dimensions: {dep.model_name} returns vectors of {allowed} dimensions, not {dep.dimensions}."]
    return []


def check_task_kinds(s: Settings, task: str, chain: list[str]) -> list[str]:
    """A task routes chat requests or embedding requests, never both: the built-in tasks route chat, ``embedding``
    routes embedding models, any other task one kind."""
    from llm_manager.types import TASK_TYPES

    kinds = {name: s.models[name].resolved_kind for ref in chain if (name := s.resolve_name(ref)) is not None}
    if task == "embedding":
        expected = "embedding"
    elif task in TASK_TYPES:
        expected = "chat"
    else:
        expected = next(iter(kinds.values()), "chat")
    misfits = sorted(n for n, k in kinds.items() if k != expected)
    if not misfits:
        return []
    if len(misfits) == 1:
        what, it = f"{misfits[0]} is not {'an' if expected == 'embedding' else 'a'} {expected} model", "it"
    else:
        what, it = f"{', '.join(misfits)} are not {expected} models", "them"
    return [
        f"routing.tasks.{task}: {what}, and this task routes {expected} requests. Fix: remove {it} (embed() finds "
        "embedding models by itself)."
    ]
