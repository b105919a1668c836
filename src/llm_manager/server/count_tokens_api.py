"""``POST /v1/messages/count_tokens``: how many input tokens a Messages request is, before sending it.

The body is a Messages request without ``max_tokens`` (the official SDK's ``messages.count_tokens``); it is read by
the Messages route's own parser, so routing (``model`` a deployment, an alias or ``task:<type>``), gateway keys (a
model outside the key's list is a 403) and errors (Anthropic's shape) are the Messages route's. The count comes from
:meth:`LLMManager.count_tokens`: the provider's own where the deployment that would answer has one (Anthropic's
``count_tokens``, Gemini's ``countTokens``), else our estimate — ``x-llm-token-count-source: provider | estimate``
says which, and ``x-llm-model`` for which deployment. Counting spends no tokens: it is not budgeted or booked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.server.anthropic_api import ParsedMessages, parse_messages
from llm_manager.server.asgi import Incoming, Receive, Scope, Send, send_whole
from llm_manager.server.formats import ANTHROPIC

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.server.app import _Gateway

__all__ = ["SOURCE_HEADER", "CountTokensRoute", "parse_count"]

SOURCE_HEADER = "x-llm-token-count-source"
"""``provider`` (counted by the deployment's API) or ``estimate`` (ours)."""


def parse_count(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedMessages:
    """A count request read as a Messages request, ``max_tokens`` not required (counting takes none)."""
    given = isinstance(body, dict) and "max_tokens" in body
    parsed = parse_messages(
        body if given or not isinstance(body, dict) else {**body, "max_tokens": 1}, headers, settings
    )
    if not given:
        parsed.prefs.pop("max_tokens", None)  # a placeholder would shrink a thinking budget in the encoding
    return parsed


class CountTokensRoute:
    """The handler (plain ASGI), over the gateway's authentication, body limits and key admission."""

    def __init__(self, gateway: _Gateway) -> None:
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from llm_manager.server.app import _new_id, _reply

        gw = self.gw
        rid = _new_id()
        hold = None
        try:
            parsed, hold = await gw._accept(Incoming(scope, receive), parse_count)
            request = gw.llm.request(messages=parsed.messages, **parsed.prefs)
            counted = await gw.life.run(gw.llm.count_tokens(request), gw._deadline(request))
        except Exception as exc:
            reply = _reply(exc, rid)
            await send_whole(send, reply.status, ANTHROPIC.error_headers(reply, rid), ANTHROPIC.error_body(reply, rid))
            return
        finally:
            if hold is not None:
                await hold.settle(None)  # nothing was generated: the key's held tokens go back
        headers = {"x-request-id": rid, "request-id": rid, SOURCE_HEADER: counted.source}
        if counted.deployment is not None:
            headers["x-llm-model"] = counted.deployment
        await send_whole(send, 200, headers, _json.dumps({"input_tokens": counted.input_tokens}))
