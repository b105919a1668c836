"""The Responses API as egress: what an adapter sends to an upstream that speaks it (``api: responses`` on an
OpenAI or OpenAI-compatible deployment), and how its answers and events read back.

Requests: the conversation is sent whole as input items (messages with ``input_text`` / ``input_image`` /
``input_file`` / ``input_audio`` parts, ``function_call`` and ``function_call_output`` items), the system prompt
as ``instructions``, structured output as ``text.format``, reasoning as ``reasoning.effort``. ``seed``, ``stop``,
penalties and ``top_k`` have no Responses field and are reported as not sent. Answers: ``output_text`` parts are
the text, ``function_call`` items the tool calls, ``reasoning`` summaries the reasoning (``encrypted_content`` its
signature); ``status: incomplete`` is a cut answer. Streams: ``response.output_text.delta``,
``response.output_item.added`` / ``response.function_call_arguments.delta`` for calls, and ``response.completed``
/ ``response.incomplete`` with the usage; ``error`` and ``response.failed`` raise the mapped error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager._sse import SSEEvent
from llm_manager.codecs.base import Chunk, Completion, as_int, as_str, event_object
from llm_manager.codecs.openai_chat.errors import decode_error_payload, malformed
from llm_manager.codecs.openai_chat.request import dropped_by, reasoning_fields
from llm_manager.codecs.openai_chat.response import usage_of as chat_usage_of
from llm_manager.codecs.openai_responses.request import LOGPROBS_INCLUDE, PROTOCOL
from llm_manager.codecs.params import Dropped, foreign_fields
from llm_manager.errors import InvalidRequestError, StreamInterruptedError
from llm_manager.types import FinishReason, ToolCall, ToolCallDelta

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Part, Request, ResponseFormat

__all__ = ["StreamDecoder", "decode_response", "encode_request", "unsupported"]


# -- egress: a canonical request for an upstream that speaks the Responses API ------------------------------------

_NOT_IN_RESPONSES = {
    "seed": "the Responses API has no seed",
    "stop": "the Responses API has no stop sequences",
    "frequency_penalty": "the Responses API has no frequency_penalty",
    "presence_penalty": "the Responses API has no presence_penalty",
    "top_k": "the Responses API has no top_k",
}
_SAMPLING_REFUSED_BY_REASONING = ("temperature", "top_p", "top_logprobs")


def encode_request(request: Request, target: Target, *, stream: bool) -> dict[str, Any]:
    """The ``POST /responses`` body for ``request`` on ``target``: the generated fields, then the client's own
    Responses fields (when it spoke this protocol; ``text.verbosity`` style paths nested), then ``extra_body``.

    ``store`` is false unless the client or config says otherwise: the gateway keeps its own responses, and the
    conversation is sent whole each time rather than by ``previous_response_id`` (any deployment may answer the
    next turn)."""
    body: dict[str, Any] = {"model": target.model, "input": _items(request), "store": False}
    if request.system:
        body["instructions"] = request.system
    body.update(_egress_params(request, target, None))
    body.update(_egress_tools(request))
    fmt = request.response_format
    if fmt is not None:
        body["text"] = {"format": _egress_format(fmt)}
    for name, value in foreign_fields(request, PROTOCOL, None).items():
        _nest(body, name, value)
    body.update(target.extra_body)
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def unsupported(request: Request, target: Target) -> Dropped:
    """What :func:`encode_request` leaves out for ``target``, and why."""
    return dropped_by(_egress_params, PROTOCOL, request, target)


def _nest(body: dict[str, Any], path: str, value: Any) -> None:
    """Set ``text.verbosity`` as ``body["text"]["verbosity"]`` (a passed-through leftover of a nested field)."""
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        child = node.get(key)
        node[key] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[leaf] = value


def _egress_params(request: Request, target: Target, dropped: Dropped | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.max_tokens is not None:
        cap = target.max_output_tokens
        out["max_output_tokens"] = min(request.max_tokens, cap) if cap is not None else request.max_tokens
    for name in ("temperature", "top_p", "service_tier", "user", "parallel_tool_calls"):
        value = getattr(request, name)
        if value is not None and (name != "parallel_tool_calls" or request.tools):
            out[name] = value
    if request.logprobs:
        out["include"] = [LOGPROBS_INCLUDE]
        if request.top_logprobs is not None:
            out["top_logprobs"] = request.top_logprobs
    for name, why in _NOT_IN_RESPONSES.items():
        if getattr(request, name) and dropped is not None:
            dropped.add(name, why)
    reasoning_fields(request, target, out, dropped, field="reasoning.effort", refused=_SAMPLING_REFUSED_BY_REASONING)
    return out


def _egress_tools(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.tools:
        out["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "parameters": t.parameters,
                **({"description": t.description} if t.description else {}),
                # The Responses API makes functions strict by default; a tool that did not ask stays loose.
                "strict": bool(t.strict),
            }
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None and (request.tools or choice == "none"):
        out["tool_choice"] = choice if isinstance(choice, str) else {"type": "function", "name": choice.name}
    return out


def _egress_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type == "json_object":
        return {"type": "json_object"}
    schema = fmt.json_schema
    if fmt.strict:
        from llm_manager.codecs.json_schema import strict_schema

        schema = strict_schema(schema)
    return {"type": "json_schema", "name": fmt.name, "schema": schema, "strict": fmt.strict}


def _items(request: Request) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "tool":
            output: str | list[dict[str, Any]] = (
                m.content if isinstance(m.content, str) else [_egress_part(p) for p in m.content]
            )
            items.append({"type": "function_call_output", "call_id": m.tool_call_id, "output": output})
            continue
        if m.role == "assistant":
            # Reasoning of earlier turns is not sent: its signature belongs to whichever provider wrote it.
            if m.text:
                items.append({"type": "message", "role": "assistant", "content": m.text})
            items += [
                {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
                for c in m.tool_calls
            ]
            continue
        content = m.content if isinstance(m.content, str) else [_egress_part(p) for p in m.content]
        items.append({"type": "message", "role": m.role, "content": content})
    return items


def _egress_part(part: Part) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "input_text", "text": part.text}
    if part.type == "image":
        image: dict[str, Any] = {"type": "input_image", "image_url": part.source_url(), "detail": part.detail or "auto"}
        return image
    if part.type == "audio":
        fmt = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}.get(
            (part.media_type or "").lower()
        )
        if fmt is None or part.data is None:
            raise InvalidRequestError("the Responses API takes audio as inline WAV or MP3 bytes only")
        return {"type": "input_audio", "input_audio": {"data": part.b64(), "format": fmt}}
    if part.type == "file":
        out: dict[str, Any] = {"type": "input_file"}
        if part.filename:
            out["filename"] = part.filename
        if part.file_id is not None:
            out["file_id"] = part.file_id
        elif part.data is not None:
            out["file_data"] = part.source_url()
        else:
            out["file_url"] = part.url
        return out
    raise InvalidRequestError(f"a {part.type} part cannot be sent in a Responses API message")


# -- the answers --------------------------------------------------------------------------------------------------

_INCOMPLETE: dict[str, FinishReason] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def decode_response(body: bytes) -> Completion:
    """A whole ``response`` object as a canonical completion. Raises the mapped error for a failed response, and a
    retryable error for a body that is not a response at all."""
    try:
        payload = _json.loads(body)
    except _json.JSONDecodeError as exc:
        raise malformed("malformed response: not JSON", body) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("output"), list):
        if isinstance(payload, dict) and payload.get("error"):
            raise decode_error_payload(payload["error"], headers={}, body=body)
        raise malformed("malformed response: no output", body)
    return completion_of(payload, body)


def completion_of(payload: dict[str, Any], body: bytes = b"") -> Completion:
    """The completion a ``response`` object holds (also the final object of a stream)."""
    if payload.get("status") == "failed" or payload.get("error"):
        raise decode_error_payload(payload.get("error") or {}, headers={}, body=body or _json.dumps(payload))
    texts: list[str] = []
    reasoning: list[str] = []
    signature = None
    calls: list[ToolCall] = []
    for item in payload["output"]:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            texts += [as_str(p.get("text")) or "" for p in item.get("content") or () if isinstance(p, dict)]
        elif kind == "function_call" and as_str(item.get("name")):
            calls.append(
                ToolCall(
                    id=as_str(item.get("call_id")) or as_str(item.get("id")) or f"call_{len(calls)}",
                    name=item["name"],
                    arguments=as_str(item.get("arguments")) or "{}",
                )
            )
        elif kind == "reasoning":
            reasoning += [as_str(s.get("text")) or "" for s in item.get("summary") or () if isinstance(s, dict)]
            signature = as_str(item.get("encrypted_content")) or signature
    prompt, completion, cached, reasoning_tokens = usage_of(payload.get("usage"))
    return Completion(
        text="".join(texts),
        finish_reason=_finish(payload, bool(calls)),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        model=as_str(payload.get("model")),
        id=as_str(payload.get("id")),
        tool_calls=calls,
        reasoning="\n\n".join(r for r in reasoning if r),
        reasoning_signature=signature,
        reasoning_tokens=reasoning_tokens,
    )


def _finish(payload: dict[str, Any], called: bool) -> FinishReason:
    details = payload.get("incomplete_details")
    if payload.get("status") == "incomplete" and isinstance(details, dict):
        return _INCOMPLETE.get(details.get("reason") or "", "length")
    return "tool_calls" if called else "stop"


def usage_of(usage: Any) -> tuple[int | None, int | None, int, int]:
    """``(prompt, completion, cached, reasoning)`` token counts of a Responses ``usage`` object."""
    return chat_usage_of(usage, "input_tokens", "output_tokens")


class StreamDecoder:
    """What one Responses stream has shown so far; turns each event into at most one chunk."""

    __slots__ = ("calls", "done", "finished", "headers")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers
        self.done = False
        self.finished = False
        """``response.completed`` (or ``.incomplete``) arrived: the answer is whole."""
        self.calls: dict[int, int] = {}
        """Output index of each function call → its tool-call index (the canonical chunks count calls apart)."""

    def decode(self, event: SSEEvent) -> Chunk | None:
        """The chunk of one event (``None`` for the events that carry nothing new)."""
        data = event.data.strip()
        if not data or data == "[DONE]":
            return None
        payload = event_object(data, "event")
        kind = payload.get("type") or event.event
        if kind == "response.output_text.delta":
            return Chunk(text=as_str(payload.get("delta")) or "")
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return Chunk(reasoning=as_str(payload.get("delta")) or "")
        if kind == "response.output_item.added":
            return self._call_started(payload)
        if kind == "response.function_call_arguments.delta":
            index = self.calls.get(as_int(payload.get("output_index")) or 0)
            if index is None:
                return None
            return Chunk(tool_calls=[ToolCallDelta(index=index, arguments=as_str(payload.get("delta")) or "")])
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            return self._end(payload)
        if kind == "error":
            raise decode_error_payload(payload, headers=self.headers, body=data.encode())
        return None

    def close(self) -> None:
        """The body ended: a stream without ``response.completed`` was cut short."""
        if not self.finished:
            raise StreamInterruptedError("stream ended before completion", status_code=200)

    def _call_started(self, payload: dict[str, Any]) -> Chunk | None:
        item = payload.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return None
        index = len(self.calls)
        self.calls[as_int(payload.get("output_index")) or 0] = index
        call_id = as_str(item.get("call_id")) or as_str(item.get("id")) or f"call_{index}"
        delta = ToolCallDelta(index=index, id=call_id, name=as_str(item.get("name")) or "", arguments="")
        return Chunk(tool_calls=[delta])

    def _end(self, payload: dict[str, Any]) -> Chunk:
        response = payload.get("response")
        if not isinstance(response, dict):
            raise StreamInterruptedError("malformed final event: no response", status_code=200)
        if response.get("status") == "failed" or response.get("error"):
            raise decode_error_payload(response.get("error") or {}, headers=self.headers, body=_json.dumps(payload))
        self.finished = self.done = True
        prompt, completion, cached, reasoning_tokens = usage_of(response.get("usage"))
        output = [i for i in response.get("output") or () if isinstance(i, dict)]
        calls = [i for i in output if i.get("type") == "function_call"]
        # The reasoning text came in deltas; its signature (encrypted_content) only in the final object.
        signature = next((as_str(i.get("encrypted_content")) for i in output if i.get("type") == "reasoning"), None)
        return Chunk(
            reasoning_signature=signature,
            finish_reason=_finish(response, bool(calls)),
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            model=as_str(response.get("model")),
            reasoning_tokens=reasoning_tokens,
        )
