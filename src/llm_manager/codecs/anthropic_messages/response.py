"""Messages answers: an upstream's ``message`` decoded into a canonical :class:`Completion`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llm_manager import _json
from llm_manager.codecs.anthropic_messages.errors import decode_error_payload, load_object
from llm_manager.codecs.base import Completion, as_str, text_of
from llm_manager.errors import ContentFilterError, ModelUnavailableError
from llm_manager.types import FinishReason, ToolCall

__all__ = ["FINISH", "Usage", "decode_response"]

FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    # A paused turn is a complete answer as far as a text caller is concerned.
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def decode_response(status: int, headers: Mapping[str, str], body: bytes, forced_tool: str | None = None) -> Completion:
    """Translate a 2xx Messages answer; raise a mapped error for anything that is not a usable message.

    With ``forced_tool`` (structured output), that tool's input is the answer; otherwise tool calls, like
    thinking blocks, are not part of the text."""
    data = load_object(body)
    if data is not None and data.get("type") == "error":
        raise decode_error_payload(data, headers=headers, body=body)
    content = data.get("content") if data is not None else None
    if data is None or not isinstance(content, list):
        raise ModelUnavailableError("malformed response", status_code=status, body=text_of(body))
    text = "".join(b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and "text" in b)
    stop_reason = data.get("stop_reason")
    tool_input = next(
        (
            b.get("input")
            for b in content
            if forced_tool and isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == forced_tool
        ),
        None,
    )
    if tool_input is not None:
        # A forced tool call is how structured output arrives: its input is the answer.
        text, stop_reason = _json.dumps(tool_input).decode(), "end_turn"
    calls = [
        ToolCall(
            id=str(b.get("id") or f"toolu_{i}"), name=b["name"], arguments=_json.dumps(b.get("input") or {}).decode()
        )
        for i, b in enumerate(content)
        if isinstance(b, dict)
        and b.get("type") == "tool_use"
        and isinstance(b.get("name"), str)
        and (forced_tool is None or b.get("name") != forced_tool)
    ]
    if stop_reason == "refusal" and not text:
        raise ContentFilterError("the model refused to answer", status_code=status, body=text_of(body))
    usage = Usage()
    usage.update(data.get("usage"))
    thinking = [b for b in content if isinstance(b, dict) and b.get("type") == "thinking"]
    return Completion(
        text=text,
        finish_reason=FINISH.get(stop_reason) if isinstance(stop_reason, str) else None,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.output,
        cached_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_creation,
        model=as_str(data.get("model")),
        id=as_str(data.get("id")),
        tool_calls=calls,
        reasoning="".join(as_str(b.get("thinking")) or "" for b in thinking),
        # One signature covers one block; a turn rarely has more than one, and the last one is what is sent back.
        reasoning_signature=next((s for b in reversed(thinking) if (s := as_str(b.get("signature")))), None),
    )


@dataclass(slots=True)
class Usage:
    """Token counts as the API splits them; the canonical prompt count is their sum."""

    input: int | None = None
    cache_read: int = 0
    cache_creation: int = 0
    output: int | None = None

    def update(self, raw: object) -> None:
        """Apply a ``usage`` object: stream usage is cumulative and partial, so only the fields present replace
        what is known."""
        if not isinstance(raw, dict):
            return
        if isinstance(v := raw.get("input_tokens"), int):
            self.input = v
        if isinstance(v := raw.get("cache_read_input_tokens"), int):
            self.cache_read = v
        if isinstance(v := raw.get("cache_creation_input_tokens"), int):
            self.cache_creation = v
        if isinstance(v := raw.get("output_tokens"), int):
            self.output = v

    @property
    def prompt_tokens(self) -> int | None:
        """Every input token: Anthropic reports cached input apart from ``input_tokens``."""
        if self.input is None:
            return None
        return self.input + self.cache_read + self.cache_creation
