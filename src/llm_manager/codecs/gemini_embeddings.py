"""The Gemini embeddings wire protocol (Generative Language API ``v1beta``), in both directions.

``models/{model}:embedContent`` embeds one content; ``models/{model}:batchEmbedContents`` embeds several in one
call, each request naming its model. The Gemini adapter always uses the batch method (as Google's own SDK does for
the Developer API), in slices of at most :data:`MAX_BATCH` requests. Wire facts this module relies on:

* A request is ``{"model": "models/…", "content": {"parts": [{"text": …}]}, "taskType": …, "title": …,
  "outputDimensionality": …}`` (camelCase); ``taskType`` tunes the vectors for their use (``RETRIEVAL_QUERY``,
  ``RETRIEVAL_DOCUMENT``, ``SEMANTIC_SIMILARITY`` …) and ``outputDimensionality`` shortens them
  (``gemini-embedding-001``: 3072 by default, 768 / 1536 recommended).
* The answer is ``{"embedding": {"values": […]}}`` (single) or ``{"embeddings": [{"values": […]}]}`` (batch, in
  request order), numbers only; ``usageMetadata.promptTokenCount`` is present on newer answers, absent on others.
* Errors are Google RPC statuses, mapped by the Gemini adapter's error mapping (shared with generateContent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llm_manager import _json
from llm_manager.codecs._float32 import VectorError, as_float32
from llm_manager.codecs.gemini_generate.request import model_path
from llm_manager.embedding import EmbedCall, Embedded, InputType

__all__ = [
    "INPUT_TYPE_TO_TASK",
    "MAX_BATCH",
    "BatchEmbedContentsRequest",
    "BatchEmbedContentsResponse",
    "ContentEmbedding",
    "DecodeError",
    "EmbedContentRequest",
    "EmbedContentResponse",
    "GeminiTaskType",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "model_path",
]

MAX_BATCH = 100
"""Most requests ``batchEmbedContents`` takes in one call."""

GeminiTaskType = Literal[
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
]
INPUT_TYPE_TO_TASK: dict[InputType, GeminiTaskType] = {
    "query": "RETRIEVAL_QUERY",
    "document": "RETRIEVAL_DOCUMENT",
    "similarity": "SEMANTIC_SIMILARITY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
    "question_answering": "QUESTION_ANSWERING",
    "fact_verification": "FACT_VERIFICATION",
}
_TASK_TO_INPUT_TYPE: dict[str, InputType] = {v: k for k, v in INPUT_TYPE_TO_TASK.items()}


class DecodeError(ValueError):
    """A body that is not what the protocol allows."""


# -- wire shapes --------------------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Part(_Wire):
    """A text part (the only kind the text embedding models take)."""

    text: str


class Content(_Wire):
    """What to embed: one content of text parts."""

    parts: list[Part] = Field(min_length=1)
    role: str | None = None


class EmbedContentRequest(_Wire):
    """The body of ``embedContent``, and one element of a batch (where ``model`` is required)."""

    model: str | None = None
    """``models/{model}``."""
    content: Content
    task_type: GeminiTaskType | None = Field(default=None, alias="taskType")
    title: str | None = None
    output_dimensionality: int | None = Field(default=None, gt=0, alias="outputDimensionality")


class BatchEmbedContentsRequest(_Wire):
    """The body of ``batchEmbedContents``."""

    requests: list[EmbedContentRequest] = Field(min_length=1)


class ContentEmbedding(_Wire):
    """One vector."""

    values: list[float]


class EmbeddingUsageMetadata(_Wire):
    """Tokens the inputs took, when the API reports them."""

    prompt_token_count: int | None = Field(default=None, alias="promptTokenCount")


class EmbedContentResponse(_Wire):
    """The answer to ``embedContent``."""

    embedding: ContentEmbedding
    usage_metadata: EmbeddingUsageMetadata | None = Field(default=None, alias="usageMetadata")


class BatchEmbedContentsResponse(_Wire):
    """The answer to ``batchEmbedContents``, in request order."""

    embeddings: list[ContentEmbedding]
    usage_metadata: EmbeddingUsageMetadata | None = Field(default=None, alias="usageMetadata")


# -- egress: our request to Gemini, its answer --------------------------------------------------------------------


def encode_request(model: str, call: EmbedCall) -> dict[str, Any]:
    """The ``batchEmbedContents`` body for ``call`` (at most :data:`MAX_BATCH` texts: the adapter slices)."""
    path = model_path(model)
    extra: dict[str, Any] = {}
    if call.input_type is not None:
        extra["taskType"] = INPUT_TYPE_TO_TASK[call.input_type]
    if call.dimensions is not None:
        extra["outputDimensionality"] = call.dimensions
    return {
        "requests": [{"model": path, "content": {"parts": [{"text": t}], "role": "user"}, **extra} for t in call.texts]
    }


def decode_response(body: bytes, expected: int) -> Embedded:
    """The vectors of a ``batchEmbedContents`` (or ``embedContent``) answer. Raises :class:`DecodeError` when the
    body does not hold ``expected`` vectors of one size."""
    try:
        payload = _json.loads(body)
    except _json.JSONDecodeError:
        raise DecodeError("malformed response: not JSON") from None
    if not isinstance(payload, dict):
        raise DecodeError("malformed response: not an object")
    items = payload.get("embeddings")
    if items is None and isinstance(payload.get("embedding"), dict):
        items = [payload["embedding"]]
    if not isinstance(items, list) or len(items) != expected:
        got = len(items) if isinstance(items, list) else "no"
        raise DecodeError(f"malformed response: {got} embeddings for {expected} inputs")
    vectors: list[list[float]] = []
    for i, item in enumerate(items):
        try:
            vectors.append(as_float32(item.get("values") if isinstance(item, dict) else None))
        except VectorError as exc:
            raise DecodeError(f"malformed response: embeddings[{i}].values: {exc}") from None
    if len({len(v) for v in vectors}) > 1:
        raise DecodeError("malformed response: vectors of different sizes")
    usage = payload.get("usageMetadata")
    tokens = usage.get("promptTokenCount") if isinstance(usage, dict) else None
    return Embedded(vectors=vectors, prompt_tokens=tokens if isinstance(tokens, int) and tokens >= 0 else None)


# -- ingress: a Gemini client's request, our answer ----------------------------------------------------------------


def decode_request(body: Any, *, batch: bool) -> EmbedCall:
    """A client's ``batchEmbedContents`` (``batch``) or ``embedContent`` body as one call. Every request of a batch
    must share its task type and dimensionality (one routed call answers them all). Raises :class:`DecodeError`."""
    try:
        reqs = (
            BatchEmbedContentsRequest.model_validate(body).requests
            if batch
            else [EmbedContentRequest.model_validate(body)]
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DecodeError(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
    tasks = {r.task_type for r in reqs}
    dims = {r.output_dimensionality for r in reqs}
    if len(tasks) > 1 or len(dims) > 1:
        raise DecodeError("every request of a batch must have the same taskType and outputDimensionality")
    task = tasks.pop()
    return EmbedCall(
        texts=["".join(p.text for p in r.content.parts) for r in reqs],
        dimensions=dims.pop(),
        input_type=_TASK_TO_INPUT_TYPE.get(task) if task else None,
    )


def encode_response(vectors: Sequence[Sequence[float]], *, batch: bool, prompt_tokens: int | None = None) -> bytes:
    """Our answer in Gemini's shape (``embeddings`` for a batch, ``embedding`` for one)."""
    out: dict[str, Any] = (
        {"embeddings": [{"values": list(v)} for v in vectors]} if batch else {"embedding": {"values": list(vectors[0])}}
    )
    if prompt_tokens is not None:
        out["usageMetadata"] = {"promptTokenCount": prompt_tokens}
    return _json.dumps(out)
