"""The bookkeeping around every request: its budget reservations, and once it ends its telemetry trace, the budget
settlement and its ledger row (:class:`Booking`, one per request, the same for whole answers, streams and
embeddings). The budgets say which candidates they exclude; the plan's order is changed by the planner
(:meth:`Plan.without <llm_manager.routing.planner.Plan.without>`, :meth:`Plan.cheapest_first
<llm_manager.routing.planner.Plan.cheapest_first>`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from llm_manager.errors import LLMManagerError
from llm_manager.tokens import DEFAULT_OUTPUT_ESTIMATE, estimate_prompt_tokens
from llm_manager.types import Attempt, Request, Response

if TYPE_CHECKING:
    from llm_manager.config import BudgetConfig, Settings
    from llm_manager.costs.budgets import Budgets, Hold
    from llm_manager.costs.ledger import Ledger
    from llm_manager.routing.planner import Plan
    from llm_manager.telemetry import RequestTrace, Telemetry

__all__ = ["Accounting", "Booking", "attempt_costs"]

log = logging.getLogger("llm_manager.costs")


def attempt_costs(response: Response | None, attempts: Sequence[Attempt]) -> dict[str, Decimal]:
    """What each deployment cost for one request: the answer's usage, plus attempts that were paid for without
    answering (a hedge's loser). Failed attempts cost nothing: providers do not bill errors."""
    out: dict[str, Decimal] = {}
    for a in attempts:
        if a.cost is not None:
            out[a.deployment] = out.get(a.deployment, Decimal(0)) + a.cost
    if response is not None and response.usage.cost is not None and not response.metadata.cached:
        out[response.deployment] = out.get(response.deployment, Decimal(0)) + response.usage.cost
    return out


class Accounting:
    """Budgets, the spend ledger and telemetry for one manager."""

    def __init__(
        self,
        budgets: Budgets,
        ledger: Callable[[], Awaitable[Ledger | None]],
        priced: dict[str, bool],
        telemetry: Telemetry,
    ) -> None:
        self.budgets = budgets
        self._ledger = ledger
        self._priced = priced
        self.telemetry = telemetry
        self._unpriced: set[str] = set()
        self.hedge_tasks: Collection[str] = ()
        """Task types whose requests may be hedged (``routing.hedge.tasks``): their bound includes a loser's prompt."""
        self.deadline_s = 120.0
        self.lease_margin_s = 60.0
        budgets.ledger = ledger

    def configure(self, settings: Settings) -> None:
        """Take what the estimates and leases depend on from the manager's settings."""
        self.hedge_tasks = frozenset(settings.routing.hedge.tasks)
        self.deadline_s = settings.routing.deadline_s
        self.lease_margin_s = settings.state.budget_lease_margin_s

    def lease_s(self, request: Request) -> float:
        """How long a request's budget holds last at most: its deadline plus a margin. A replica killed with its
        requests in flight leaves holds that lapse by then instead of blocking the budget for the period."""
        return (request.timeout_s or self.deadline_s) + self.lease_margin_s

    def booking(self, request: Request, request_id: str, key: str | None, *, stream: bool) -> Booking:
        """Begin the bookkeeping of a request that will call providers (``key``: its cache key, if cacheable)."""
        return Booking(self, self.telemetry.request(request, request_id, stream=stream), request, request_id, key)

    async def copied(self, request: Request, request_id: str, response: Response, key: str | None) -> None:
        """The bookkeeping of an answer that made no call of its own (a cache hit, a de-duplicated call): a trace
        and a ledger row, at no cost."""
        ended = time.perf_counter_ns()
        self.telemetry.request(request, request_id, stream=False).finish(
            response, None, started_at_ns=ended, ended_at_ns=ended
        )
        await self.record(request, request_id, datetime.now(UTC), response, None, key)

    async def add_budget(self, config: BudgetConfig) -> None:
        """A budget known only at run time (a gateway key's own), or new settings for it. Its counter is seeded
        from the ledger on first use, like a configured one's."""
        self.budgets.ensure(config)

    async def record(
        self,
        request: Request,
        request_id: str,
        started: datetime,
        response: Response | None,
        error: BaseException | None,
        request_key: str | None = None,
    ) -> None:
        """Ledger rows for a finished request (off the request path: the ledger only buffers them, and with
        ``ledger.durability: strict`` waits for its spool's shared ``fsync``)."""
        ledger = await self._ledger()
        if ledger is None:
            return
        from llm_manager.costs.records import ledger_rows

        if request_key is None and request.cache:
            from llm_manager.cache.keys import request_key as key_of

            request_key = key_of(request)
        await ledger.record_durably(
            ledger_rows(request, request_id, started, response, error, request_key, self._priced)
        )

    async def before(self, request: Request, plan: Plan) -> tuple[Plan, list[Hold]]:
        """Reserve on each candidate's own model budget (a candidate refused there is skipped), then the request's
        upper-bound estimate on every budget it falls under (or raise); past a soft limit put the cheapest
        candidates first."""
        if not self.budgets:
            return plan, []
        estimates = self._estimates(request, plan)
        lease_s = self.lease_s(request)
        model_holds, blocked = await self.budgets.reserve_models(estimates, lease_s)
        try:
            plan = plan.without(blocked)
            holds, soft = await self.budgets.reserve(request, self._bound(request, plan, estimates), lease_s)
        except BaseException:
            await self.budgets.release(model_holds)
            raise
        return plan.cheapest_first(request) if soft else plan, [*model_holds, *holds]

    async def after(self, holds: list[Hold], response: Response | None, error: BaseException | None) -> None:
        """Settle the reservations with what the request really cost."""
        if not self.budgets:
            return
        attempts = (
            response.metadata.attempts
            if response is not None
            else (error.attempts if isinstance(error, LLMManagerError) else [])
        )
        by_dep = attempt_costs(response, attempts)
        await self.budgets.settle(holds, sum(by_dep.values(), Decimal(0)), by_dep)

    def _estimates(self, request: Request, plan: Plan) -> dict[str, Decimal | None]:
        """Each candidate's upper-bound cost: the prompt estimate plus ``max_tokens`` (or the model's default cap)
        of output. ``None`` for an unpriced one (budgets cannot count its spend: warned once)."""
        prompt = plan.prompt_tokens or estimate_prompt_tokens(request)
        out: dict[str, Decimal | None] = {}
        for dep in plan.candidates:
            output = request.max_tokens or max(dep.config.default_max_tokens, DEFAULT_OUTPUT_ESTIMATE)
            cost = out[dep.name] = dep.estimate_cost(prompt, output)
            if cost is None and dep.name not in self._unpriced:
                self._unpriced.add(dep.name)
                log.warning(
                    "no price known for %s (%s): budgets cannot count its spend; set input_price_per_mtok "
                    "and output_price_per_mtok on the model",
                    dep.name,
                    dep.endpoint.model,
                )
        return out

    def _bound(self, request: Request, plan: Plan, estimates: dict[str, Decimal | None]) -> Decimal | None:
        """What one request may cost at most, over the candidates that may answer (any of them can, by
        fallback): the dearest candidate's estimate, plus, when the request may be hedged, the dearest prompt
        (a hedge's loser is billed its prompt). Reserving this keeps a hard limit exact under concurrency; the
        unused part is released when the real cost is known."""
        priced = [c for d in plan.candidates if (c := estimates.get(d.name)) is not None]
        if not priced:
            return None
        bound = max(priced)
        if self._may_hedge(request, plan) and len(plan.candidates) > 1:
            prompt = plan.prompt_tokens or estimate_prompt_tokens(request)
            bound += max((c for d in plan.candidates if (c := d.estimate_cost(prompt, 0)) is not None), default=0)
        return bound

    def _may_hedge(self, request: Request, plan: Plan) -> bool:
        first = plan.candidates[0].config.hedge
        return first if first is not None else request.task in self.hedge_tasks


class Booking:
    """One request's bookkeeping, begun before it is planned and finished once, for whole answers and streams alike:
    the telemetry trace, the budget holds, and the ledger row. A caller books a failure (:meth:`failed`) from planning
    on, and an answer (:meth:`answered`) once it has been handed on."""

    __slots__ = ("accounting", "holds", "key", "request", "request_id", "started", "t0", "trace")

    def __init__(
        self, accounting: Accounting, trace: RequestTrace, request: Request, request_id: str, key: str | None
    ) -> None:
        self.accounting = accounting
        self.trace = trace
        self.request = request
        self.request_id = request_id
        self.key = key
        """The response-cache key, when the request is cacheable (a ledger column)."""
        self.started = datetime.now(UTC)
        self.t0 = time.perf_counter_ns()
        self.holds: list[Hold] | None = None
        """The budget reservations, once planned."""

    async def reserve(self, plan: Plan) -> Plan:
        """Reserve on the budgets (:meth:`Accounting.before`): the plan less what they exclude."""
        plan, self.holds = await self.accounting.before(self.request, plan)
        return plan

    async def failed(self, error: BaseException) -> None:
        """Book a request that ended without an answer."""
        self.trace.finish(None, error, started_at_ns=self.t0)
        if self.holds is not None:
            await self.accounting.after(self.holds, None, error)
        await self.accounting.record(self.request, self.request_id, self.started, None, error, self.key)

    async def answered(self, response: Response, ended_ns: int) -> None:
        """Book an answer, once it is handed on: telemetry (timed to when it was ready), the budgets' settlement
        and the ledger row."""
        self.trace.finish(response, None, started_at_ns=self.t0, ended_at_ns=ended_ns)
        await self.accounting.after(self.holds or [], response, None)
        await self.accounting.record(self.request, self.request_id, self.started, response, None, self.key)
