"""The admin API: ``/admin/status``, ``/admin/costs``, ``/admin/requests``, ``/admin/timeseries`` (read-only).

With gateway keys configured these need an admin key (``llm-manager keys create NAME --admin``); with no keys
at all the gateway is open for local development, admin routes included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from llm_manager import _json
from llm_manager._redact import redact
from llm_manager.errors import StateUnavailableError
from llm_manager.server import keys
from llm_manager.server.errors import ErrorReply, gateway_error, render_error
from llm_manager.server.timeseries import BadParameter, By, Grid
from llm_manager.server.timeseries import query as timeseries_query

if TYPE_CHECKING:
    from llm_manager.costs.ledger import Ledger, LedgerRow
    from llm_manager.server.app import _Gateway

__all__ = ["Admin"]

log = logging.getLogger("llm_manager.server")

_JSON = "application/json"
_MAX_OFFSET = 2**31 - 1
_DIMENSIONS = ("model", "deployment", "provider", "user", "project", "key", "task")


class Admin:
    """Admin routes over a :class:`~llm_manager.server.app.Gateway`."""

    def __init__(self, gateway: _Gateway) -> None:
        self.gw = gateway

    async def _allowed(self, http: HttpRequest) -> ErrorReply | None:
        """``None`` when the caller may use admin routes, else the error to send."""
        from llm_manager.server.app import _Reject

        try:
            key = await self.gw._authenticate(http.headers)
        except _Reject as rej:
            return rej.reply
        if key is not None and not key.admin:
            return gateway_error(
                403, "this route needs an admin key (llm-manager keys create NAME --admin)", code="admin_key_required"
            )
        return None

    async def _ledger(self) -> Ledger | None:
        ledger = await self.gw.llm._open_ledger()
        if ledger is not None:
            try:
                await ledger.flush()  # an admin looks at what has happened, including the last second
            except Exception as exc:  # the rows stay buffered; what is committed can still be shown
                log.warning("admin: the ledger could not be flushed before the query: %s", exc)
        return ledger

    async def status(self, http: HttpRequest) -> HttpResponse:
        if (denied := await self._allowed(http)) is not None:
            return _reply(denied)
        # Keys' own budgets are registered on their first request; an admin sees them before that too.
        for key in await keys.list_keys(await self.gw.llm.database()):
            await self.gw.register_budget(key)
        try:
            return _ok(await self.gw.llm.status())
        except StateUnavailableError as exc:  # Redis away under fail_closed: a 503 to retry, not a crash
            return _reply(render_error(exc, ""))

    async def costs(self, http: HttpRequest) -> HttpResponse:
        if (denied := await self._allowed(http)) is not None:
            return _reply(denied)
        by = http.query_params.get("by", "model")
        if by not in _DIMENSIONS:
            return _reply(gateway_error(400, f"by must be one of {', '.join(_DIMENSIONS)}", param="by"))
        try:
            since = _since(http.query_params.get("since"))
        except ValueError as exc:
            return _reply(gateway_error(400, str(exc), param="since"))
        ledger = await self._ledger()
        if ledger is None:
            return _reply(gateway_error(404, "the ledger is disabled (ledger.enabled: false)", code="no_ledger"))
        try:
            window_h = _forecast_window(http.query_params)
        except BadParameter as exc:
            return _reply(gateway_error(400, str(exc), param=exc.param))
        totals = await ledger.totals(by, since=since)  # type: ignore[arg-type]
        body: dict[str, Any] = {
            "by": by,
            "since": since,
            "totals": totals,
            "summary": await ledger.summary(since=since),
        }
        if window_h is not None:
            try:
                for key in await keys.list_keys(await self.gw.llm.database()):  # keys' own budgets, as status does
                    await self.gw.register_budget(key)
            except StateUnavailableError as exc:  # Redis away under fail_closed: a 503 to retry, not a crash
                return _reply(render_error(exc, ""))
            body["forecast"] = [f.as_dict() for f in await self.gw.llm.forecast(window_h=window_h)]
        return _ok(body)

    async def requests(self, http: HttpRequest) -> HttpResponse:
        """Recent requests, newest first, each with its attempts; ``limit`` (≤ 500) and ``offset`` paginate."""
        if (denied := await self._allowed(http)) is not None:
            return _reply(denied)
        try:
            limit = min(500, max(1, int(http.query_params.get("limit", "50"))))
            # Bounded like limit: the page echoes it, and a JSON number past 64 bits cannot be written.
            offset = min(_MAX_OFFSET, max(0, int(http.query_params.get("offset", "0"))))
            since = _since(http.query_params.get("since", "24h"))
        except ValueError as exc:
            return _reply(gateway_error(400, f"bad paging parameter: {exc}"))
        ledger = await self._ledger()
        if ledger is None:
            return _reply(gateway_error(404, "the ledger is disabled (ledger.enabled: false)", code="no_ledger"))
        total, page = await ledger.recent_requests(since, limit=limit, offset=offset)
        requests = [_request(rows) for rows in page]
        return _ok({"since": since, "total": total, "limit": limit, "offset": offset, "requests": requests})

    async def timeseries(self, http: HttpRequest) -> HttpResponse:
        """Requests, errors, latency p50 / p95 and cost per bucket over the last ``window`` (default ``15m``) in
        buckets of ``bucket`` (default ``15s``), overall and per ``by`` (``model`` or ``deployment``)."""
        if (denied := await self._allowed(http)) is not None:
            return _reply(denied)
        params = http.query_params
        by_text = params.get("by", "model")
        if by_text not in ("model", "deployment"):
            return _reply(gateway_error(400, "by must be model or deployment", param="by"))
        by: By = "deployment" if by_text == "deployment" else "model"
        try:
            grid = Grid.parse(params.get("window", "15m"), params.get("bucket", "15s"), time.time())
        except BadParameter as exc:
            return _reply(gateway_error(400, str(exc), param=exc.param))
        ledger = await self._ledger()
        if ledger is None:
            return _reply(gateway_error(404, "the ledger is disabled (ledger.enabled: false)", code="no_ledger"))
        return _ok(await timeseries_query(ledger.db, grid, by))


def _request(rows: list[LedgerRow]) -> dict[str, Any]:
    """One request of ``/admin/requests``: its first row's facts, the answering row's status, every attempt."""
    first = rows[0]
    req: dict[str, Any] = {
        "request_id": first.request_id,
        "ts": first.ts,
        "task": first.task,
        "user": first.user,
        "project": first.project,
        "key": first.api_key_id,
        "status": first.status,
        "deployment": first.deployment,
        "cost": Decimal(0),
        "attempts": [],
    }
    for r in rows:
        req["attempts"].append(
            {
                "attempt": r.attempt,
                "deployment": r.deployment,
                "status": r.status,
                "error_code": r.error_code,
                "latency_ms": r.latency_ms,
                "cost": r.cost,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
            }
        )
        if r.cost is not None:
            req["cost"] += r.cost
        if r.status in ("ok", "cached", "deduplicated"):
            req["status"], req["deployment"] = r.status, r.deployment
    return req


def _forecast_window(params: Mapping[str, str]) -> float | None:
    """``None`` without ``forecast=1``, else the rate's window in hours (``window_h``, default 6)."""
    flag = params.get("forecast", "0").strip().lower()
    if flag not in ("0", "1", "true", "false", ""):
        raise BadParameter("forecast", "use forecast=1 (or true) to add budget forecasts")
    if flag not in ("1", "true"):
        return None
    text = params.get("window_h", "6")
    try:
        window_h = float(text)
    except ValueError:
        raise BadParameter("window_h", f"{text[:40]!r} is not a number of hours") from None
    if not 1 <= window_h <= 672:  # NaN fails this too
        raise BadParameter("window_h", "must be between 1 and 672 hours")
    return window_h


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    from llm_manager.costs.ledger import parse_since

    try:
        return parse_since(text, datetime.now(UTC))
    except OverflowError:  # "99999999w": further back than a datetime reaches
        raise ValueError(f"{text[:40]!r} reaches back further than a date can") from None


def _ok(data: Any) -> HttpResponse:
    # Status quotes upstream text (a removed key's reason, errors): masked like every other output.
    return HttpResponse(redact(_json.dumps(data).decode()), media_type=_JSON)


def _reply(reply: ErrorReply) -> HttpResponse:
    return HttpResponse(
        _json.dumps(reply.body), status_code=reply.status, headers=dict(reply.headers), media_type=_JSON
    )
