"""The OpenAI embeddings wire protocol (``POST /v1/embeddings``), in both directions.

The gateway decodes what clients send with :func:`decode_request` and answers with :func:`encode_response`; the
OpenAI adapter (OpenAI itself and every server copying its API: Ollama, vLLM, LM Studio, llama.cpp, OpenRouter)
builds its upstream body with :func:`encode_request` and reads the answer with :func:`decode_response`. The wire
shapes are the typed models below, from which the gateway's OpenAPI document describes the route.

Wire facts this module relies on:

* ``input`` is a string, an array of strings, an array of token ids or an array of token-id arrays; strings may not
  be empty. ``dimensions`` shortens the vectors of models that support it (``text-embedding-3-*``).
* ``encoding_format`` is ``float`` (JSON numbers, the API's default) or ``base64`` (the little-endian float32 bytes
  of each vector, about a quarter of the size). The official Python SDK asks for ``base64`` whenever its caller
  does not choose, and decodes it itself.
* The answer is ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage":
  {"prompt_tokens", "total_tokens"}}``; ``data`` is matched to the inputs by ``index``, not by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llm_manager import _json
from llm_manager.codecs._float32 import VectorError, as_float32, pack_base64, unpack_base64
from llm_manager.embedding import EmbedCall, Embedded, InputType

__all__ = [
    "DecodeError",
    "EmbeddingObject",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "EmbeddingsUsage",
    "EncodingFormat",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "unknown_fields",
]

EncodingFormat = Literal["float", "base64"]
_KNOWN = frozenset({"input", "model", "encoding_format", "dimensions", "user", "input_type"})


class DecodeError(ValueError):
    """A body that is not what the protocol allows; ``param`` names the field (OpenAI's error ``param``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


# -- wire shapes --------------------------------------------------------------------------------------------------


_Text = Annotated[str, Field(min_length=1)]
_Token = Annotated[int, Field(ge=0)]
_Tokens = Annotated[list[_Token], Field(min_length=1)]


class EmbeddingsRequest(BaseModel):
    """The body of ``POST /v1/embeddings``."""

    model_config = ConfigDict(extra="allow", strict=True)

    input: _Text | Annotated[list[_Text], Field(min_length=1)] | _Tokens | Annotated[list[_Tokens], Field(min_length=1)]
    """The text to embed, or several; or token ids (one array, or one array per input). No empty string."""
    model: str
    """A deployment, an alias or ``task:<name>`` (on the gateway); the upstream's model id (egress)."""
    encoding_format: EncodingFormat = "float"
    dimensions: int | None = Field(default=None, gt=0)
    user: str | None = None
    input_type: InputType | None = None
    """An llm-manager extension: what the vectors are for (``query``, ``document`` …), translated for models that
    embed differently per purpose (Gemini's ``taskType``, nomic's prefixes)."""


class EmbeddingObject(BaseModel):
    """One vector of the answer."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str
    """JSON numbers, or base64 float32 bytes when ``encoding_format`` was ``base64``."""


class EmbeddingsUsage(BaseModel):
    """Tokens the inputs took (an embedding has no completion)."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    """The answer to ``POST /v1/embeddings``."""

    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: EmbeddingsUsage


# -- ingress: a client's request, the gateway's answer ------------------------------------------------------------


def decode_request(body: Any) -> tuple[EmbeddingsRequest, dict[str, Any]]:
    """Validate a client's body; return it and its canonical fields (``texts`` or ``tokens``, ``dimensions``,
    ``user``, ``input_type``). Raises :class:`DecodeError` naming the field."""
    if not isinstance(body, dict):
        raise DecodeError("the request body must be a JSON object")
    fields: dict[str, Any] = {}
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw)):
        texts = [raw] if isinstance(raw, str) else raw
        empty = next((i for i, t in enumerate(texts) if not t), None)
        if empty is not None:
            where = "input" if isinstance(raw, str) else f"input[{empty}]"
            raise DecodeError(f"{where} is an empty string: an empty string has no embedding", where)
        fields["texts"] = texts
    else:
        fields["tokens"] = _tokens(raw)
    try:
        # ``input`` was checked above, with messages naming the element; the model checks the other fields.
        req = EmbeddingsRequest.model_validate({k: v for k, v in body.items() if k != "input"} | {"input": "-"})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise DecodeError(f"{where}: {err['msg']}" if where else err["msg"], where or None) from None
    req.input = fields["texts"] if "texts" in fields else fields["tokens"]
    for name in ("dimensions", "user", "input_type"):
        value = getattr(req, name)
        if value is not None:
            fields[name] = value
    return req, fields


def _tokens(raw: Any) -> list[list[int]]:
    """Token ids: one array (one input) or an array of arrays; anything else is not a valid ``input``."""
    allowed = "input must be a non-empty string, array of strings, array of token ids or array of token-id arrays"
    if not isinstance(raw, list) or not raw:
        raise DecodeError(allowed, "input")
    if all(_is_token(x) for x in raw):
        return [list(raw)]
    out: list[list[int]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, list) or not item or not all(_is_token(x) for x in item):
            raise DecodeError(f"input[{i}]: {allowed} (and not mixed)", f"input[{i}]")
        out.append(list(item))
    return out


def _is_token(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def unknown_fields(body: dict[str, Any]) -> list[str]:
    """Fields of a client's body this protocol does not define (reported as dropped, never passed on silently)."""
    return sorted(k for k in body if k not in _KNOWN)


def encode_response(
    vectors: Sequence[Sequence[float]], *, model: str, prompt_tokens: int, encoding_format: EncodingFormat
) -> bytes:
    """The ``list`` object for ``vectors`` (built as bytes directly: a pydantic model per vector would cost more
    than the encoding)."""
    if encoding_format == "base64":
        data = [{"object": "embedding", "index": i, "embedding": pack_base64(v)} for i, v in enumerate(vectors)]
    else:
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return _json.dumps({"object": "list", "data": data, "model": model, "usage": usage})


# -- egress: our request to an upstream, its answer ---------------------------------------------------------------


def encode_request(model: str, call: EmbedCall, *, encoding_format: EncodingFormat = "base64") -> dict[str, Any]:
    """The upstream body for ``call``. ``base64`` by default: a quarter of the bytes of JSON numbers, and decoded
    without parsing a number per dimension (servers that ignore the field answer with numbers, which decode too)."""
    body: dict[str, Any] = {
        "model": model,
        "input": call.tokens if call.tokens is not None else call.texts,
        "encoding_format": encoding_format,
    }
    if call.dimensions is not None:
        body["dimensions"] = call.dimensions
    if call.user is not None:
        body["user"] = call.user
    return body


def decode_response(body: bytes, expected: int) -> Embedded:
    """The vectors of an upstream answer, in input order. Raises :class:`DecodeError` when the body is not an
    embeddings list of ``expected`` vectors of one size (a broken upstream or proxy)."""
    try:
        payload = _json.loads(body)
    except _json.JSONDecodeError:
        raise DecodeError("malformed response: not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise DecodeError("malformed response: no data array")
    vectors: list[list[float] | None] = [None] * expected
    for pos, item in enumerate(payload["data"]):
        if not isinstance(item, dict):
            raise DecodeError(f"malformed response: data[{pos}] is not an object")
        index = item.get("index", pos)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < expected:
            raise DecodeError(f"malformed response: data[{pos}].index {index!r} is not one of the {expected} inputs")
        if vectors[index] is not None:
            raise DecodeError(f"malformed response: two vectors for input {index}")
        raw = item.get("embedding")
        try:
            vectors[index] = unpack_base64(raw) if isinstance(raw, str) else as_float32(raw)
        except VectorError as exc:
            raise DecodeError(f"malformed response: data[{pos}].embedding: {exc}") from None
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing:
        raise DecodeError(f"malformed response: no vector for input(s) {missing[:5]} of {expected}")
    done = [v for v in vectors if v is not None]
    if len({len(v) for v in done}) > 1:
        raise DecodeError("malformed response: vectors of different sizes")
    usage = payload.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    model = payload.get("model")
    return Embedded(
        vectors=done,
        prompt_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None,
        model=model if isinstance(model, str) else None,
    )
