"""generateContent answers: an upstream's ``GenerateContentResponse`` decoded into a canonical :class:`Completion`.

A refused prompt is a 200 with no candidates and ``promptFeedback.blockReason``; a refused answer is a candidate whose
``finishReason`` is ``SAFETY`` (or a sibling) and whose text is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_manager import _json
from llm_manager.codecs.base import Completion, as_str
from llm_manager.errors import ContentFilterError, ModelUnavailableError
from llm_manager.types import FinishReason, TokenLogprob, ToolCall, TopLogprob

__all__ = [
    "candidate_text",
    "calls_of",
    "decode_response",
    "finish_reason",
    "first_candidate",
    "logprobs_of",
    "raise_if_blocked",
    "thoughts_of",
    "usage_of",
]

_FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    # The model produced a tool call it could not express: the answer is unusable, not merely cut short.
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}
"""Gemini ``finishReason`` → canonical reason. Absent (``OTHER``, ``LANGUAGE``, unknown values) means ``None``."""


def decode_response(payload: Any, *, body: str = "") -> Completion:
    """Translate a ``GenerateContentResponse`` into a :class:`Completion`.

    Args:
        payload: The decoded JSON answer.
        body: The raw answer, kept on errors for diagnosis.

    Returns:
        The first candidate's text, finish reason, usage, model version and response id.

    Raises:
        ContentFilterError: The prompt was blocked, or the answer was filtered before any text was produced.
        ModelUnavailableError: The answer is not a ``GenerateContentResponse`` or has no candidate.
    """
    if not isinstance(payload, dict):
        raise ModelUnavailableError("malformed response", status_code=200, body=body)
    candidate = first_candidate(payload)
    if candidate is None:
        raise_if_blocked(payload, body)
        raise ModelUnavailableError("response has no candidates", status_code=200, body=body)
    text = candidate_text(candidate)
    finish = finish_reason(candidate.get("finishReason"))
    calls = calls_of(candidate, 0)
    if calls and finish == "stop":
        finish = "tool_calls"  # Gemini ends a turn that calls functions with STOP
    if finish == "content_filter" and not text:
        raise ContentFilterError(f"answer blocked: {candidate.get('finishReason')}", status_code=200, body=body)
    prompt_tokens, completion_tokens, cached_tokens, thoughts = usage_of(payload)
    reasoning, signature = thoughts_of(candidate)
    return Completion(
        text=text,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        model=as_str(payload.get("modelVersion")) or None,
        id=as_str(payload.get("responseId")) or None,
        tool_calls=calls,
        reasoning=reasoning,
        reasoning_signature=signature,
        reasoning_tokens=thoughts,
        logprobs=logprobs_of(candidate),
    )


def finish_reason(raw: Any) -> FinishReason | None:
    """Map a Gemini ``finishReason`` to the canonical one (``None`` when it has no canonical equivalent)."""
    return _FINISH_REASONS.get(raw) if isinstance(raw, str) else None


def first_candidate(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """Candidate 0: only one is ever requested; ``index`` is omitted when 0 (proto3 JSON drops default values)."""
    candidates = payload.get("candidates")
    if not isinstance(candidates, list):
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("index", 0) == 0:
            return candidate
    return None


def candidate_text(candidate: Mapping[str, Any]) -> str:
    """The answer's text: thought summaries (``thought: true``) are the model's reasoning, not its answer."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    )


def thoughts_of(candidate: Mapping[str, Any]) -> tuple[str, str | None]:
    """The candidate's thought summaries (``thought: true`` parts) and the last thought signature it carries."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    text, signature = "", None
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("thought") and isinstance(part.get("text"), str):
            text += part["text"]
        signature = as_str(part.get("thoughtSignature")) or signature
    return text, signature


def logprobs_of(candidate: Mapping[str, Any]) -> list[TokenLogprob] | None:
    """``logprobsResult`` (chosen tokens, with their top alternatives) as canonical log probabilities."""
    result = candidate.get("logprobsResult")
    chosen = result.get("chosenCandidates") if isinstance(result, dict) else None
    if not isinstance(chosen, list):
        return None
    tops = result.get("topCandidates") if isinstance(result, dict) else None
    tops = tops if isinstance(tops, list) else []
    out: list[TokenLogprob] = []
    for i, item in enumerate(chosen):
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            continue
        alternatives = tops[i].get("candidates") if i < len(tops) and isinstance(tops[i], dict) else None
        out.append(
            TokenLogprob(
                token=item["token"],
                logprob=_number(item.get("logProbability")),
                top_logprobs=[
                    TopLogprob(token=a["token"], logprob=_number(a.get("logProbability")))
                    for a in (alternatives if isinstance(alternatives, list) else ())
                    if isinstance(a, dict) and isinstance(a.get("token"), str)
                ],
            )
        )
    return out


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def calls_of(candidate: Mapping[str, Any], first: int) -> list[ToolCall]:
    """The candidate's function calls; ``first`` numbers them on from earlier stream fragments. Gemini sends
    each call whole (arguments as an object) and may leave out its id."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    calls: list[ToolCall] = []
    for part in parts if isinstance(parts, list) else ():
        call = part.get("functionCall") if isinstance(part, dict) else None
        if isinstance(call, dict) and isinstance(name := call.get("name"), str):
            args = call.get("args")
            calls.append(
                ToolCall(
                    id=as_str(call.get("id")) or f"call_{first + len(calls)}",
                    name=name,
                    arguments=_json.dumps(args if isinstance(args, dict) else {}).decode(),
                )
            )
    return calls


def usage_of(payload: Mapping[str, Any]) -> tuple[int | None, int | None, int, int]:
    """``(prompt, completion, cached, thoughts)`` from ``usageMetadata``; thinking tokens are billed as output, so
    they count as completion tokens too."""
    meta = payload.get("usageMetadata")
    if not isinstance(meta, dict):
        return None, None, 0, 0
    # proto3 JSON omits zero counts, so a missing field inside usageMetadata means 0, not "unknown".
    prompt = _count(meta.get("promptTokenCount"))
    thoughts = _count(meta.get("thoughtsTokenCount"))
    completion = _count(meta.get("candidatesTokenCount")) + thoughts
    return prompt, completion, _count(meta.get("cachedContentTokenCount")), thoughts


def raise_if_blocked(payload: Mapping[str, Any], body: str) -> None:
    """Raise :class:`ContentFilterError` when ``promptFeedback`` says the prompt was blocked."""
    feedback = payload.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise ContentFilterError(f"prompt blocked: {reason}", status_code=200, body=body[:4000])


def _count(value: Any) -> int:
    # Counts are int64, which proto3 JSON may render as strings.
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0
