"""Responses API answers for a client (ingress): a canonical :class:`~llm_manager.types.Response` as a ``response``
object.

The object echoes the request's settings (instructions, tools, sampling, ``text``, ``store`` …) as OpenAI does, so
SDKs that read them back find them. Output items: the reasoning (when the model returned any; its signature travels
in ``encrypted_content``, so sending the item back continues an Anthropic or Gemini turn), the message with its
``output_text``, then one ``function_call`` per tool call. Usage splits as the API does: ``input_tokens`` with
``cached_tokens``, ``output_tokens`` with ``reasoning_tokens``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from llm_manager.codecs.openai_responses.wire import FunctionChoice, ResponsesRequest
from llm_manager.types import Response, TokenLogprob

__all__ = ["Echo", "new_id", "output_items", "response_object", "usage_object"]


def new_id(prefix: str) -> str:
    """A fresh id (``resp``, ``msg``, ``fc``, ``rs``): random, never derived from anything a client can repeat."""
    return f"{prefix}_{random.getrandbits(128):032x}"


@dataclass(slots=True)
class Echo:
    """What a response object repeats of its request."""

    request: ResponsesRequest
    store: bool

    def fields(self) -> dict[str, Any]:
        req = self.request
        text = req.text.model_dump(by_alias=True, exclude_none=True) if req.text is not None else None
        reasoning = req.reasoning.model_dump(exclude_none=True) if req.reasoning is not None else {}
        choice = req.tool_choice
        return {
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": req.previous_response_id,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "tool_choice": choice.model_dump() if isinstance(choice, FunctionChoice) else (choice or "auto"),
            "tools": [t.model_dump(exclude_none=True) for t in req.tools or ()],
            "text": text or {"format": {"type": "text"}},
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "store": self.store,
            "metadata": dict(req.metadata or {}),
            "user": req.user,
            "truncation": "disabled",
        }


def response_object(
    response_id: str,
    created_at: int,
    echo: Echo,
    resp: Response | None,
    *,
    output: list[dict[str, Any]] | None = None,
    status: str | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``response`` object; ``resp`` is ``None`` while a stream has not finished (``status`` says how far)."""
    if resp is not None:
        output = output if output is not None else output_items(resp)
        incomplete = _incomplete(resp)
        status = status or ("incomplete" if incomplete else "completed")
    else:
        incomplete = None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status or "in_progress",
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": resp.model if resp is not None else echo.request.model,
        "output": output or [],
        **echo.fields(),
        "usage": usage_object(resp) if resp is not None else None,
    }


def _incomplete(resp: Response) -> str | None:
    if resp.finish_reason == "length":
        return "max_output_tokens"
    if resp.finish_reason == "content_filter":
        return "content_filter"
    return None


def output_items(resp: Response) -> list[dict[str, Any]]:
    """The output items of a whole answer: reasoning, the message, function calls (each with a fresh id)."""
    out: list[dict[str, Any]] = []
    if resp.reasoning or resp.reasoning_signature:
        out.append(reasoning_item(new_id("rs"), resp.reasoning or "", resp.reasoning_signature))
    if resp.content or not resp.tool_calls:
        status = "incomplete" if resp.finish_reason == "length" else "completed"
        out.append(message_item(new_id("msg"), resp.content, status, resp.logprobs))
    for call in resp.tool_calls:
        out.append(function_call_item(new_id("fc"), call.id, call.name, call.arguments))
    return out


def reasoning_item(item_id: str, text: str, signature: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if signature:
        item["encrypted_content"] = signature
    return item


def message_item(
    item_id: str, text: str, status: str = "completed", logprobs: list[TokenLogprob] | None = None
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [text_part(text, logprobs)],
    }


def text_part(text: str, logprobs: list[TokenLogprob] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs_of(logprobs)}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def logprobs_of(logprobs: list[TokenLogprob] | None) -> list[dict[str, Any]]:
    """Token log probabilities in the Responses shape (``bytes`` always present, as the API sends them)."""
    return [
        {
            "token": t.token,
            "logprob": t.logprob,
            "bytes": t.bytes if t.bytes is not None else list(t.token.encode()),
            "top_logprobs": [
                {
                    "token": top.token,
                    "logprob": top.logprob,
                    "bytes": top.bytes if top.bytes is not None else list(top.token.encode()),
                }
                for top in t.top_logprobs
            ],
        }
        for t in logprobs or ()
    ]


def usage_object(resp: Response) -> dict[str, Any]:
    u = resp.usage
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }
