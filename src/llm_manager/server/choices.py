"""Several choices in one request: chat's ``n``, and the legacy completions' ``n`` and prompt lists.

Each choice is a request of its own through the core — routed, budgeted and booked (a ledger row each) exactly like
that many separate requests — and they are answered concurrently. Copies of one prompt skip the response cache and
in-flight sharing, and with a ``seed`` get their own: ``n`` samples asked for are ``n`` calls, not one answer
repeated. The reply is one body whose ``choices`` are in order (``index``) and whose ``usage`` is their sum; its
headers are those every choice agrees on, with ``x-llm-cost`` and ``x-llm-attempts`` summed, ``x-llm-model`` naming
every deployment that answered and ``x-llm-dropped-params`` what any of them could not honour. The first choice to
fail stops the others and is the request's answer; the choices already answered are booked all the same (they were
paid for). Streams of several choices are refused by the parsers (a 400 naming ``n``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from llm_manager import _json
from llm_manager._tasks import unbroken
from llm_manager.server.asgi import send_whole
from llm_manager.server.lifecycle import Cut

if TYPE_CHECKING:
    from llm_manager.response_stream import Settle
    from llm_manager.server.asgi import Send
    from llm_manager.server.formats import Format
    from llm_manager.types import Request, Response

__all__ = ["MAX_CHOICES", "answer_all", "merged", "send_all", "several"]

log = logging.getLogger("llm_manager.server")

MAX_CHOICES = 128
"""OpenAI's own bound on ``n``: each choice is an upstream call."""


class Several(Protocol):
    """A parsed request that may ask for several choices (chat, legacy completions)."""

    prefs: dict[str, Any]
    n: int

    @property
    def count(self) -> int:
        """How many choices it asks for."""

    def choices(self) -> list[list[Any]]: ...


class ManyFormat(Protocol):
    """A wire format that can put several answers in one body."""

    def headers(self, resp: Response, /) -> dict[str, str]: ...

    def body_many(self, resps: list[Response], /) -> bytes: ...


class Gateway(Protocol):
    """What answering several choices needs of the gateway."""

    def request(self, messages: list[Any], prefs: dict[str, Any]) -> Request: ...

    async def answer_one(self, request: Request, rid: str) -> tuple[Response, Settle]: ...


class TokenHold(Protocol):
    async def settle_used(self, used: int) -> None: ...


def several(parsed: object) -> Several | None:
    """``parsed`` when it asks for more than one choice, else ``None`` (also for a format that never does)."""
    return parsed if getattr(parsed, "count", 1) > 1 else None  # type: ignore[return-value]


async def answer_all(gw: Gateway, parsed: Several, rid: str, hold: TokenHold | None) -> list[tuple[Response, Settle]]:
    """Every choice answered (concurrently), in order. The first failure stops the choices still running (no more
    is spent on an answer the client will not get) and is raised once the answered ones are booked."""
    requests = [gw.request(messages, _prefs(parsed, i)) for i, messages in enumerate(parsed.choices())]
    ended: list[asyncio.Future[tuple[Response, Settle]]] = []
    tasks = [asyncio.ensure_future(gw.answer_one(r, rid if i == 0 else f"{rid}-{i}")) for i, r in enumerate(requests)]
    for task in tasks:
        task.add_done_callback(ended.append)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:  # the request itself: what was answered is paid for, and booked
        await unbroken(_stop(tasks, hold))
        raise
    if all(t.done() and not t.cancelled() and t.exception() is None for t in tasks):
        return [t.result() for t in tasks]  # handed on in one piece: send_all books them once sent
    failed = next((e for t in ended if not t.cancelled() and (e := t.exception()) is not None), None)
    await unbroken(_stop(tasks, hold))
    # A choice cancelled by something other than this request (the server stopping) is this request's end too.
    raise failed if failed is not None else Cut("shutdown")


async def _stop(tasks: Sequence[asyncio.Future[tuple[Response, Settle]]], hold: TokenHold | None) -> None:
    """Stop the choices still running and book those answered."""
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    await _book([t.result() for t in tasks if not t.cancelled() and t.exception() is None], hold)


def _prefs(parsed: Several, i: int) -> dict[str, Any]:
    """Choice ``i``'s preferences: a copy of a prompt (not its first) skips the cache and in-flight sharing, and
    with a ``seed`` gets its own (``seed + copy``), so that ``n`` samples are not one answer repeated."""
    copy = i % parsed.n
    if copy == 0:
        return parsed.prefs
    prefs = {**parsed.prefs, "cache": False}
    if isinstance(seed := prefs.get("seed"), int):
        prefs["seed"] = seed + copy
    return prefs


async def send_all(send: Send, fmt: Format, answers: list[tuple[Response, Settle]], hold: TokenHold | None) -> None:
    """The answers as one body; then their bookkeeping, off the client's clock."""
    resps = [resp for resp, _settle in answers]
    many: ManyFormat = fmt  # type: ignore[assignment]  # only the formats whose parsers ask for several
    try:
        await send_whole(send, 200, _headers(many, resps), many.body_many(resps))
    finally:
        await _book(answers, hold)


async def _book(answers: list[tuple[Response, Settle]], hold: TokenHold | None) -> None:
    """Each answer's bookkeeping (one failing does not skip the others), then the tokens on the caller's key."""
    for resp, settle in answers:
        try:
            await settle()
        except Exception:
            log.exception("gateway: booking choice %s failed", resp.id)
    if hold is not None:
        try:
            await hold.settle_used(sum(r.usage.total_tokens for r, _settle in answers if not r.metadata.cached))
        except Exception:
            log.exception("gateway: charging the choices' tokens on the key failed")


def _headers(fmt: ManyFormat, resps: list[Response]) -> dict[str, str]:
    """The headers every choice agrees on, with cost and attempts summed, every deployment named and every dropped
    parameter listed; the request's own id."""
    each = [fmt.headers(r) for r in resps]
    out = {k: v for k, v in each[0].items() if all(h.get(k) == v for h in each[1:])}
    out["x-request-id"] = resps[0].id
    costs = [r.usage.cost for r in resps if r.usage.cost is not None]
    out["x-llm-cost"] = str(sum(costs, Decimal(0))) if len(costs) == len(resps) else "unknown"
    out["x-llm-attempts"] = str(sum(sum(1 for a in r.metadata.attempts if not a.skipped) for r in resps))
    out["x-llm-model"] = ",".join(dict.fromkeys(r.deployment for r in resps))
    dropped = [name for h in each for name in h.get("x-llm-dropped-params", "").split(",") if name]
    if dropped:
        out["x-llm-dropped-params"] = ",".join(dict.fromkeys(dropped))
    return out


def merged(documents: list[dict[str, Any]]) -> bytes:
    """One answer object from one per choice: the first's envelope, every choice in order, the usage summed."""
    out = documents[0]
    out["choices"] = [{**c, "index": i} for i, c in enumerate(c for d in documents for c in d["choices"])]
    out["usage"] = _summed([d["usage"] for d in documents if d.get("usage")])
    return _json.dumps(out)


def _summed(usages: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for usage in usages:
        for key, value in usage.items():
            if isinstance(value, dict):
                out[key] = _summed([out.get(key, {}), value])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
    return out
