"""Structured output: extract a validated value from a model's reply, and partial values while it streams.

The manager's ``query_with_schema`` / ``stream_with_schema`` build on these pieces: :func:`schema_of` and
:func:`strict_schema` for native modes, :func:`instruction` for providers without one, :func:`extract` and
:func:`reask_message` for the validate-and-re-ask loop, :class:`PartialJSON` and :func:`partial_model` for streams.
"""

from __future__ import annotations

from llm_manager.structured.extract import (
    Extracted,
    ExtractionFailed,
    Target,
    candidates,
    extract,
    instruction,
    reask_message,
    schema_of,
    strict_schema,
)
from llm_manager.structured.partial import PartialJSON, partial_model

__all__ = [
    "ExtractionFailed",
    "Extracted",
    "PartialJSON",
    "Target",
    "candidates",
    "extract",
    "instruction",
    "partial_model",
    "reask_message",
    "schema_of",
    "strict_schema",
]
