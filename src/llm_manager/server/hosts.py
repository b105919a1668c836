"""The ``Host`` allow-list of an open gateway (no API keys): a defence against DNS rebinding.

A web page on ``evil.example`` can make its own name resolve to 127.0.0.1 and then read what a gateway on the
user's machine answers — the browser sees one origin. It cannot change the ``Host`` header its requests carry: that
stays ``evil.example``. So while the gateway has no keys, a request is answered only when its ``Host`` (port aside)
is a name the operator allowed: by default the loopback names.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_manager.server.errors import ErrorReply, gateway_error

__all__ = ["host_allowed", "host_name", "host_refused"]


def host_name(header: str) -> str:
    """The name in a ``Host`` header, lower-case, without port, brackets or a trailing dot."""
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:4000
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        host = host.partition(":")[0]
    return host.rstrip(".")


def host_allowed(header: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request with this ``Host`` may be answered. No header at all (HTTP/1.0) cannot come from a
    browser, so it is let through."""
    if header is None:
        return True
    name = host_name(header)
    for entry in allowed:
        entry = entry.strip().lower().rstrip(".")
        if entry == "*" or name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    return False


def host_refused(header: str, allowed: Sequence[str]) -> ErrorReply:
    """The 403 for a request whose ``Host`` is not allowed, saying how to allow it."""
    msg = (
        f"Host {host_name(header)!r} is not allowed: a gateway without API keys answers only requests addressed to "
        f"{', '.join(allowed) or 'no host'} (a defence against DNS rebinding). Fix: add the name to "
        "gateway.allowed_hosts, or create a gateway key (llm-manager keys create NAME)."
    )
    return gateway_error(403, msg, type_="permission_error", code="host_not_allowed")
