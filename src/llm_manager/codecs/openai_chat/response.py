"""Chat Completions answers: an upstream's ``chat.completion`` decoded into a canonical :class:`Completion`."""

from __future__ import annotations

from typing import Any

from llm_manager import _json
from llm_manager.codecs.base import Completion, as_int, as_str, text_of
from llm_manager.codecs.openai_chat.errors import decode_error_payload, malformed
from llm_manager.codecs.openai_chat.tools import calls_from_wire
from llm_manager.errors import ContentFilterError
from llm_manager.types import FinishReason, TokenLogprob, TopLogprob

__all__ = [
    "FINISH_REASONS",
    "decode_response",
    "finish_reason",
    "first_choice",
    "logprobs_of",
    "reasoning_of",
    "usage_of",
]

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the pre-tools name of the same thing
}


def decode_response(body: bytes) -> Completion:
    """Translate a 200 answer into a :class:`Completion`. Read leniently, as plain JSON (no model validation):
    compatible servers leave out, add and mistype fields, and a usable answer must not be refused for that.

    Raises:
        ModelUnavailableError: The body is not JSON or has no choices (a broken upstream or proxy).
        ContentFilterError: The filter stopped the answer before any text (or the model refused).
        ProviderError: The body is an error object despite the 200 status.
    """
    try:
        payload = _json.loads(body)
    except _json.JSONDecodeError as exc:
        raise malformed("malformed response: not JSON", body) from exc
    if isinstance(payload, dict) and payload.get("error"):
        raise decode_error_payload(payload["error"], headers={}, body=body)
    choice = first_choice(payload.get("choices") if isinstance(payload, dict) else None)
    if choice is None:
        raise malformed("malformed response: no choices", body)
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text = as_str(message.get("content")) or ""
    finish = finish_reason(choice.get("finish_reason"))
    calls = calls_from_wire(message.get("tool_calls"))
    if calls and finish == "stop":
        finish = "tool_calls"  # some compatible servers say "stop" after a tool call
    if not text and not calls and (finish == "content_filter" or as_str(message.get("refusal"))):
        reason = as_str(message.get("refusal")) or "completion blocked by the content filter"
        raise ContentFilterError(reason, status_code=200, body=text_of(body))
    prompt, completion, cached, reasoning_tokens = usage_of(payload.get("usage"))
    return Completion(
        text=text,
        finish_reason=finish,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        model=as_str(payload.get("model")),
        id=as_str(payload.get("id")),
        tool_calls=calls,
        reasoning=reasoning_of(message),
        reasoning_tokens=reasoning_tokens,
        logprobs=logprobs_of(choice.get("logprobs")),
        system_fingerprint=as_str(payload.get("system_fingerprint")),
    )


def reasoning_of(message: dict[str, Any]) -> str:
    """The reasoning text of a message or delta: ``reasoning_content`` (DeepSeek, vLLM, LiteLLM) or ``reasoning``
    (OpenRouter, newer vLLM); OpenAI itself returns none."""
    return as_str(message.get("reasoning_content")) or as_str(message.get("reasoning")) or ""


def logprobs_of(raw: Any) -> list[TokenLogprob] | None:
    """A choice's ``logprobs.content`` as canonical token log probabilities (``None`` when absent)."""
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list):
        return None
    out: list[TokenLogprob] = []
    for item in content:
        if isinstance(item, dict) and isinstance(token := item.get("token"), str):
            tops = item.get("top_logprobs")
            out.append(
                TokenLogprob(
                    token=token,
                    logprob=_float(item.get("logprob")),
                    bytes=item.get("bytes") if isinstance(item.get("bytes"), list) else None,
                    top_logprobs=[
                        TopLogprob(token=t["token"], logprob=_float(t.get("logprob")))
                        for t in (tops if isinstance(tops, list) else ())
                        if isinstance(t, dict) and isinstance(t.get("token"), str)
                    ],
                )
            )
    return out


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def first_choice(choices: Any) -> dict[str, Any] | None:
    """Choice 0 (with ``n`` > 1, possible through extra_body, only choice 0 is the answer)."""
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def usage_of(
    usage: Any, prompt: str = "prompt_tokens", completion: str = "completion_tokens"
) -> tuple[int | None, int | None, int, int]:
    """``(prompt, completion, cached, reasoning)`` token counts of a ``usage`` object (the Responses API names its
    counts ``input_tokens`` / ``output_tokens``, each with its ``…_details`` the same way)."""
    if not isinstance(usage, dict):
        return None, None, 0, 0
    details = usage.get(f"{prompt}_details")
    cached = as_int(details.get("cached_tokens")) if isinstance(details, dict) else None
    out_details = usage.get(f"{completion}_details")
    reasoning = as_int(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else None
    return as_int(usage.get(prompt)), as_int(usage.get(completion)), cached or 0, reasoning or 0


def finish_reason(raw: Any) -> FinishReason | None:
    """The canonical finish reason of an OpenAI one (``None`` for one we do not know)."""
    return FINISH_REASONS.get(raw) if isinstance(raw, str) else None
