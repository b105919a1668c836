"""Browser access (CORS), off unless ``gateway.cors_origins`` lists the web pages allowed to call the gateway.

Starlette's :class:`~starlette.middleware.cors.CORSMiddleware` does the protocol (preflight ``OPTIONS`` answered
before any route, ``Access-Control-Allow-Origin`` added to every answer from an allowed page — event streams
included, since it wraps the ASGI ``send``); this module only chooses its settings:

- origins: the configured list, or ``*`` for any page (no credentials: gateway keys travel in headers, never in
  cookies, so nothing a browser would attach by itself is honoured);
- methods: what the gateway's routes take (``GET``, ``POST``, ``DELETE``, ``OPTIONS``);
- request headers: whatever the page asks to send. The origin list is the control; the clients that run in
  browsers (the ``openai`` and ``anthropic`` SDKs, the AI SDK) send ``authorization`` or ``x-api-key``,
  ``anthropic-version``, ``anthropic-beta``, their ``x-stainless-*`` telemetry and our ``x-llm-*`` steering
  headers, and a fixed list would break the next client that adds one;
- exposed response headers: every header the OpenAPI document says the gateway answers with (``x-request-id``,
  ``x-llm-*``, ``retry-after`` …), so a page's script can read who answered and at what cost;
- a listed page on a public origin may reach a gateway on a private network (Private Network Access preflights
  are answered yes);
- preflight answers are cached by the browser for ten minutes.

With CORS off the gateway's entry is the plain :class:`~llm_manager.server.asgi.Dispatch`: not a single check is
added to a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_manager.server.asgi import ASGIApp, Dispatch, Receive, Scope, Send

__all__ = ["ALLOWED_METHODS", "MAX_AGE_S", "CorsDispatch", "dispatch", "exposed_headers"]

ALLOWED_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
MAX_AGE_S = 600
_ALWAYS_EXPOSED = ("x-request-id", "request-id", "retry-after", "retry-after-ms", "x-should-retry")


def dispatch(app: Any, hot: Mapping[str, ASGIApp], origins: Sequence[str] | None) -> Dispatch:
    """The gateway's entry: plain, or behind the CORS middleware when ``origins`` are configured."""
    if not origins:
        return Dispatch(app, hot)
    from llm_manager.server.openapi import document

    return CorsDispatch(app, hot, origins, exposed_headers(document()))


def exposed_headers(document: Mapping[str, Any]) -> list[str]:
    """The response headers a page's script may read: those the OpenAPI ``document`` declares, and the request ids
    and retry hints every answer may carry."""
    declared = document.get("components", {}).get("headers", {})
    return sorted({*_ALWAYS_EXPOSED, *(name.lower() for name in declared)})


class CorsDispatch(Dispatch):
    """:class:`Dispatch` behind the CORS middleware (only built when origins are configured)."""

    __slots__ = ("_cors",)

    def __init__(self, app: Any, hot: Mapping[str, ASGIApp], origins: Sequence[str], expose: Sequence[str]) -> None:
        from starlette.middleware.cors import CORSMiddleware

        super().__init__(app, hot)
        self._cors = CORSMiddleware(
            self._dispatch,
            allow_origins=list(origins),
            allow_methods=ALLOWED_METHODS,
            allow_headers=["*"],  # mirrored: see the module's docstring
            expose_headers=list(expose),
            max_age=MAX_AGE_S,
            # A listed page on a public origin may call a gateway on a private network (Chrome's Private Network
            # Access asks in the preflight); the origin list is what decides, as for any other page.
            allow_private_network=True,
        )

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Dispatch.__call__(self, scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._cors(scope, receive, send)
