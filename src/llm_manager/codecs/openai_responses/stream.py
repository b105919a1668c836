"""Responses API streams for a client (ingress): canonical stream pieces as the API's server-sent events.

The sequence, each event numbered by ``sequence_number``::

    response.created, response.in_progress
    per output item:  response.output_item.added
        reasoning:    response.reasoning_summary_part.added, response.reasoning_summary_text.delta …,
                      response.reasoning_summary_text.done, response.reasoning_summary_part.done
        a message:    response.content_part.added, response.output_text.delta …, response.output_text.done,
                      response.content_part.done
        a call:       response.function_call_arguments.delta …, response.function_call_arguments.done
                      response.output_item.done
    response.completed (response.incomplete when the answer was cut by max_output_tokens or a filter)

Items are opened as their first piece arrives and closed when the next item starts or the answer ends. The
reasoning streams as a summary; its signature (``encrypted_content``, what a client sends back to continue after a
tool call) is in the reasoning item's ``output_item.done`` when it came before the answer, as Anthropic and OpenAI
send it, and in the final response in any case. A failure once the stream has started is an ``error`` event
followed by ``response.failed``, whose error ``code`` is ``rate_limit_exceeded`` or ``server_error``.
"""

from __future__ import annotations

from typing import Any

from llm_manager import _json
from llm_manager.codecs.openai_responses.response import (
    Echo,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    response_object,
    text_part,
)
from llm_manager.types import Response, ToolCallDelta

__all__ = ["ResponseEvents", "error_code"]


def error_code(status: int) -> str:
    """The Responses error code for an HTTP status (the API's own list has no others that fit a gateway)."""
    return "rate_limit_exceeded" if status == 429 else "server_error"


class ResponseEvents:
    """The events of one streamed response, as bytes. :attr:`final` is the finished ``response`` object."""

    __slots__ = ("_call", "_created", "_echo", "_id", "_items", "_model", "_reason", "_seq", "_text", "final")

    def __init__(self, response_id: str, created_at: int, model: str, echo: Echo) -> None:
        self._id, self._created, self._model, self._echo = response_id, created_at, model, echo
        self._seq = 0
        self._items: list[dict[str, Any]] = []
        """Output items so far, each as it will be when done."""
        self._text: dict[str, Any] | None = None
        """The open message item."""
        self._call: tuple[int, dict[str, Any]] | None = None
        """The open function call: its stream index and item."""
        self._reason: dict[str, Any] | None = None
        """The open reasoning item."""
        self.final: dict[str, Any] | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + _json.dumps(payload) + b"\n\n"

    def _snapshot(self, status: str) -> dict[str, Any]:
        obj = response_object(self._id, self._created, self._echo, None, status=status)
        obj["model"] = self._model
        return obj

    def opening(self) -> bytes:
        return self._event("response.created", response=self._snapshot("in_progress")) + self._event(
            "response.in_progress", response=self._snapshot("in_progress")
        )

    def delta(self, text: str) -> bytes:
        out = b"" if self._text is not None else self._close() + self._open_text()
        item = self._text
        assert item is not None
        item["content"][0]["text"] += text
        return out + self._event(
            "response.output_text.delta",
            item_id=item["id"],
            output_index=len(self._items) - 1,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def reasoning(self, text: str, signature: str = "") -> bytes:
        """A piece of the reasoning summary, or of its signature (which joins the reasoning item streamed last, or
        comes with the final one when none was)."""
        out = self._close() + self._open_reasoning() if text and self._reason is None else b""
        item = self._reason or next((i for i in reversed(self._items) if i["type"] == "reasoning"), None)
        if item is not None and signature:
            item["encrypted_content"] = item.get("encrypted_content", "") + signature
        if item is None or not text:
            return out
        item["summary"][0]["text"] += text
        index = len(self._items) - 1
        return out + self._event(
            "response.reasoning_summary_text.delta", item_id=item["id"], output_index=index, summary_index=0, delta=text
        )

    def tool_call(self, piece: ToolCallDelta) -> bytes:
        out = b""
        if self._call is None or self._call[0] != piece.index:
            out += self._close()
            item = function_call_item(
                new_id("fc"), piece.id or new_id("call"), piece.name or "", "", status="in_progress"
            )
            self._items.append(item)
            self._call = (piece.index, item)
            out += self._event("response.output_item.added", output_index=len(self._items) - 1, item=dict(item))
        item = self._call[1]
        if not piece.arguments:
            return out
        item["arguments"] += piece.arguments
        return out + self._event(
            "response.function_call_arguments.delta",
            item_id=item["id"],
            output_index=len(self._items) - 1,
            delta=piece.arguments,
        )

    def closing(self, resp: Response | None) -> bytes:
        out = self._close()
        if not any(i["type"] == "message" for i in self._items) and (resp is None or not resp.tool_calls):
            out += self._open_text() + self._close()  # an empty answer is still one message
        streamed = [i for i in self._items if i["type"] == "reasoning"]
        if streamed:
            # The whole signature, when the pieces did not come with the one reasoning item (a signature is one
            # block's; with several items, each keeps the pieces that came with it).
            if len(streamed) == 1 and resp is not None and resp.reasoning_signature:
                streamed[0]["encrypted_content"] = resp.reasoning_signature
        elif resp is not None and (resp.reasoning or resp.reasoning_signature):  # an answer that streamed none
            item = reasoning_item(new_id("rs"), resp.reasoning or "", resp.reasoning_signature)
            self._items.append(item)
            index = len(self._items) - 1
            out += self._event("response.output_item.added", output_index=index, item={**item, "summary": []})
            out += self._event("response.output_item.done", output_index=index, item=item)
        if resp is None:
            final = self._snapshot("completed")
            final["output"] = self._items
        else:
            final = response_object(self._id, self._created, self._echo, resp, output=self._items)
        self.final = final
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, response=final)

    def failed(self, status: int, message: str, param: str | None = None) -> bytes:
        """The ``error`` event and ``response.failed``: the stream's last events."""
        code = error_code(status)
        out = self._event("error", code=code, message=message, param=param)
        failed = self._snapshot("failed")
        failed.update(output=self._items, error={"code": code, "message": message})
        return out + self._event("response.failed", response=failed)

    def _open_text(self) -> bytes:
        item = message_item(new_id("msg"), "", "in_progress")
        self._items.append(item)
        self._text = item
        index = len(self._items) - 1
        added = self._event("response.output_item.added", output_index=index, item={**item, "content": []})
        part = self._event(
            "response.content_part.added", item_id=item["id"], output_index=index, content_index=0, part=text_part("")
        )
        return added + part

    def _open_reasoning(self) -> bytes:
        item: dict[str, Any] = {
            "id": new_id("rs"),
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": ""}],
        }
        self._items.append(item)
        self._reason = item
        index = len(self._items) - 1
        added = self._event("response.output_item.added", output_index=index, item={**item, "summary": []})
        part = self._event(
            "response.reasoning_summary_part.added",
            item_id=item["id"],
            output_index=index,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        )
        return added + part

    def _close(self) -> bytes:
        """Close the open item, if any: its ``done`` events, with the whole text or arguments."""
        index = len(self._items) - 1
        if self._reason is not None:
            item, self._reason = self._reason, None
            part = item["summary"][0]
            common = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            return (
                self._event("response.reasoning_summary_text.done", **common, text=part["text"])
                + self._event("response.reasoning_summary_part.done", **common, part=dict(part))
                + self._event("response.output_item.done", output_index=index, item=dict(item))
            )
        if self._text is not None:
            item, self._text = self._text, None
            item["status"] = "completed"
            part = item["content"][0]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            return (
                self._event("response.output_text.done", **common, text=part["text"], logprobs=[])
                + self._event("response.content_part.done", **common, part=part)
                + self._event("response.output_item.done", output_index=index, item=item)
            )
        if self._call is not None:
            item = self._call[1]
            self._call = None
            item["status"] = "completed"
            return self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            ) + self._event("response.output_item.done", output_index=index, item=item)
        return b""
