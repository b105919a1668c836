"""Budgets: reserve an estimate before any provider is called, settle with the real cost afterwards.

Counters live in the state backend (in-process, or Redis shared by every replica) as integer nanodollars, one
counter per budget, scope value and period — the period is part of the counter's key, so a new UTC day, ISO week
or month simply starts a new counter. A reservation that would pass a hard limit is refused, so concurrent
requests can overshoot only by the difference between an estimate and the real cost of one request. Past a
budget's soft limit, requests are steered to the cheapest capable candidates.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

from llm_manager.costs.periods import period_bounds, period_start
from llm_manager.errors import BudgetExceededError
from llm_manager.state.base import CounterNotSeeded, Lease

if TYPE_CHECKING:
    from llm_manager.config import BudgetConfig
    from llm_manager.costs.ledger import Ledger
    from llm_manager.state.base import StateBackend
    from llm_manager.types import Request

__all__ = ["Budgets", "Hold", "from_nano", "period_bounds", "to_nano"]

log = logging.getLogger("llm_manager.budgets")
NANO = Decimal(10**9)


def to_nano(usd: Decimal) -> int:
    """Dollars → integer nanodollars, rounded up (a budget never under-counts)."""
    return int((usd * NANO).to_integral_value(rounding=ROUND_CEILING))


def from_nano(n: int) -> Decimal:
    """Integer nanodollars → dollars."""
    return Decimal(n) / NANO


@dataclass(slots=True)
class Hold:
    """A reservation on one budget counter."""

    budget: BudgetConfig
    key: str
    amount: int
    expire_at: float
    deployment: str | None = None
    """For a model-scope budget: the deployment whose own cost settles this hold (``None``: the request's)."""
    id: str | None = None
    """The hold's lease id in the state (``None``: a reservation without a lease)."""


class Budgets:
    """All configured budgets over one state backend."""

    def __init__(
        self, state: StateBackend, configs: Sequence[BudgetConfig], clock: Callable[[], float] = time.time
    ) -> None:
        self.state = state
        self.clock = clock
        self.ledger: Callable[[], Awaitable[Ledger | None]] | None = None
        """Where a lost counter's spend is read from (set by the manager; ``None``: counters start at zero)."""
        self._seeded: set[str] = set()
        """Counter keys this process seeded or saw seeded (so status pages do not query the ledger each time)."""
        self._warned: set[str] = set()
        self._keys: dict[tuple[str, str], tuple[str, float, float, float]] = {}
        self._index(list(configs))

    def _index(self, configs: list[BudgetConfig]) -> None:
        self.configs = configs
        self.request_scoped = [b for b in configs if b.scope != "model"]
        self.model_scoped = [b for b in configs if b.scope == "model"]
        self._limits = {b.name: to_nano(b.limit_usd) for b in configs}

    def __bool__(self) -> bool:
        return bool(self.configs)

    def ensure(self, config: BudgetConfig) -> bool:
        """Add a budget at run time (a gateway key's own limit), or update it if its settings changed; returns
        whether it is new. Counters are keyed by name, scope value and period, so an update keeps the spend."""
        configs = list(self.configs)
        for i, known in enumerate(configs):
            if known.name == config.name:
                if known != config:
                    configs[i] = config
                    self._index(configs)
                return False
        self._index([*configs, config])
        return True

    # -- keys ---------------------------------------------------------------------------------------------------

    def _scope_value(self, budget: BudgetConfig, request: Request | None, deployment: str | None) -> str | None:
        """The entity this request charges under ``budget`` (``None``: the budget does not apply)."""
        value: str | None
        if budget.scope == "global":
            return "*"
        if budget.scope == "model":
            value = deployment
        elif request is None:
            return None
        elif budget.scope == "user":
            value = request.user
        elif budget.scope == "project":
            value = request.project
        else:
            value = request.gateway_key
        if value is None or (budget.match is not None and value != budget.match):
            return None
        return value

    def _key(self, budget: BudgetConfig, value: str) -> tuple[str, float]:
        """The counter key of the current period and when it may expire (cached until the period ends: this is
        on every request's path, and calendar arithmetic is the slow part)."""
        t = self.clock()
        cached = self._keys.get((budget.name, value))
        if cached is not None and cached[2] <= t < cached[3]:
            return cached[0], cached[1]
        now = datetime.fromtimestamp(t, UTC)
        suffix, end = period_bounds(budget.period, now)
        expire_at = (end + timedelta(days=1)).timestamp() if end else now.timestamp() + 10 * 365 * 86400
        key = f"budget:{budget.name}:{budget.scope}={value}:{suffix}"
        begin = period_start(budget.period, now)
        start = begin.timestamp() if begin is not None else float("-inf")
        if len(self._keys) > 10_000:
            self._keys.clear()  # many users × periods: keep the memo bounded
        self._keys[(budget.name, value)] = (key, expire_at, start, end.timestamp() if end else float("inf"))
        return key, expire_at

    # -- before the call ----------------------------------------------------------------------------------------

    async def _hold(self, budget: BudgetConfig, value: str, amount: int, lease_s: float) -> tuple[bool, int, Hold]:
        """Reserve ``amount`` on ``budget``'s counter for ``value`` under a lease; a counter not seeded yet (a
        fresh process, Redis restarted or flushed) is first seeded from the ledger."""
        key, expire_at = self._key(budget, value)
        hold = Hold(budget, key, amount, expire_at, id=secrets.token_hex(8))
        limit = self._limits[budget.name]
        for _ in range(2):
            try:
                ok, total = await self.state.budget_reserve(
                    key, amount, limit, expire_at=expire_at, lease=Lease(hold.id, lease_s, seeded=True)
                )
            except CounterNotSeeded:
                if await self._seed(budget, value, key, expire_at):
                    continue
                # The ledger could not be read: admit against what the counter holds (the next request tries
                # seeding again) rather than refuse every request while the store is away.
                ok, total = await self.state.budget_reserve(
                    key, amount, limit, expire_at=expire_at, lease=Lease(hold.id, lease_s)
                )
            self._seeded.add(key)
            return ok, total, hold
        raise RuntimeError(f"budget counter {key!r} lost its seed twice in a row")  # pragma: no cover

    async def reserve(
        self, request: Request, estimate: Decimal | None, lease_s: float = 3600.0
    ) -> tuple[list[Hold], bool]:
        """Reserve ``estimate`` on every budget the request falls under, each hold leased for ``lease_s`` seconds;
        return the holds and whether any is past its soft limit. Raises :class:`BudgetExceededError` (releasing
        what was reserved) on a hard limit."""
        amount = to_nano(estimate) if estimate is not None else 0
        holds: list[Hold] = []
        soft = False
        for budget in self.request_scoped:
            value = self._scope_value(budget, request, None)
            if value is None:
                continue
            try:
                ok, total, hold = await self._hold(budget, value, amount, lease_s)
            except BaseException:  # the state refused (Redis away): what this request holds already goes back
                await self.release(holds)
                raise
            limit = self._limits[budget.name]
            if not ok:
                await self.release(holds)
                raise self._exceeded(budget, value, total, amount)
            holds.append(hold)
            if budget.soft_limit_pct is not None and total >= limit * budget.soft_limit_pct / 100:
                soft = True
                self._warn_soft(budget, value, total, limit)
        return holds, soft

    async def reserve_models(
        self, estimates: dict[str, Decimal | None], lease_s: float = 3600.0
    ) -> tuple[list[Hold], set[str]]:
        """Reserve on each candidate's own (model-scope) budgets that candidate's estimate, since any of them may
        answer; return the holds and the candidates refused (they are skipped, not called)."""
        holds: list[Hold] = []
        blocked: set[str] = set()
        if not self.model_scoped:
            return holds, blocked
        for name, estimate in estimates.items():
            amount = to_nano(estimate) if estimate is not None else 0
            mine: list[Hold] = []
            for budget in self.model_scoped:
                if self._scope_value(budget, None, name) is None:
                    continue
                ok, _, hold = await self._hold(budget, name, amount, lease_s)
                if not ok:
                    await self.release(mine)
                    blocked.add(name)
                    break
                hold.deployment = name
                mine.append(hold)
            else:
                holds.extend(mine)
        return holds, blocked

    # -- after the call -----------------------------------------------------------------------------------------

    async def settle(self, holds: Sequence[Hold], actual: Decimal, by_deployment: dict[str, Decimal]) -> None:
        """Replace the reservations by the real cost: the request's total on request budgets, each deployment's
        own cost on its model budgets (a deployment that cost money without a hold is charged all the same)."""
        spent = to_nano(actual)
        held: set[str] = set()
        for hold in holds:
            if hold.deployment is None:
                await self.state.budget_settle(hold.key, hold.amount, spent, expire_at=hold.expire_at, hold=hold.id)
            else:
                held.add(hold.key)
                own = to_nano(by_deployment.get(hold.deployment, Decimal(0)))
                await self.state.budget_settle(hold.key, hold.amount, own, expire_at=hold.expire_at, hold=hold.id)
        for budget in self.model_scoped:
            for name, cost in by_deployment.items():
                if cost and self._scope_value(budget, None, name) is not None:
                    key, expire_at = self._key(budget, name)
                    if key not in held:
                        await self.state.budget_add(key, to_nano(cost), expire_at=expire_at)

    async def release(self, holds: Sequence[Hold]) -> None:
        """Give reservations back (the request failed before costing anything)."""
        for hold in holds:
            await self.state.budget_settle(hold.key, hold.amount, 0, expire_at=hold.expire_at, hold=hold.id)

    # -- lost counters ------------------------------------------------------------------------------------------

    async def _seed(self, budget: BudgetConfig, value: str, key: str, expire_at: float) -> bool:
        """Seed a counter from the ledger's spend of its period (the store is the source of truth: in-process
        state starts empty, a restarted or flushed Redis forgets). Returns False when the ledger could not be
        read (logged; nothing seeded)."""
        spent = Decimal(0)
        ledger = await self.ledger() if self.ledger is not None else None
        if ledger is not None:
            try:
                await ledger.flush()  # this process's own rows not written yet count too
            except Exception as exc:  # the store is away: what is committed still counts
                log.warning("budgets: ledger rows not flushed before seeding %s: %s", key, exc)
            try:
                spent = await self._ledger_spent(ledger, budget, value)
            except Exception as exc:
                log.error("budgets: cannot read the ledger to seed %s (retried on the next request): %s", key, exc)
                return False
        if await self.state.budget_seed(key, to_nano(spent), expire_at=expire_at):
            log.info("budgets: counter %s seeded from the ledger with $%s", key, spent)
        return True

    async def _ledger_spent(self, ledger: Ledger, budget: BudgetConfig, value: str) -> Decimal:
        start = period_start(budget.period, datetime.fromtimestamp(self.clock(), UTC))
        if budget.scope == "global":
            return (await ledger.summary(since=start)).cost
        dimension = {"user": "user", "project": "project", "key": "key", "model": "deployment"}[budget.scope]
        return (await ledger.spent(dimension, value, since=start)).cost  # type: ignore[arg-type]

    async def _seeded_for_status(self, budget: BudgetConfig, value: str) -> None:
        key, expire_at = self._key(budget, value)
        if key not in self._seeded and await self._seed(budget, value, key, expire_at):
            self._seeded.add(key)

    # -- reporting ----------------------------------------------------------------------------------------------

    async def status(self, values: dict[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
        """Spend, reserved, limit and percentage per budget counter of the current period (global budgets, a
        budget's ``match``, and the entities named in ``values`` per scope, e.g. ``{"user": ["alice"]}``)."""
        rows = []
        for budget in self.configs:
            if budget.scope == "global":
                targets = ["*"]
            else:
                targets = [budget.match] if budget.match else list((values or {}).get(budget.scope, []))
            for v in targets:
                await self._seeded_for_status(budget, v)
            keyed = [(v, self._key(budget, v)[0]) for v in targets]
            views = await self.state.budget_view([k for _, k in keyed])
            for value, key in keyed:
                spent, reserved = views[key]
                used = from_nano(spent + reserved)
                rows.append(
                    {
                        "budget": budget.name,
                        "scope": budget.scope,
                        "value": value,
                        "period": budget.period,
                        "period_key": key.rsplit(":", 1)[-1],
                        "spent_usd": str(from_nano(spent)),
                        "reserved_usd": str(from_nano(reserved)),
                        "limit_usd": str(budget.limit_usd),
                        "used_pct": round(float(used / budget.limit_usd * 100), 2),
                        "soft_limit_pct": budget.soft_limit_pct,
                    }
                )
        return rows

    def _exceeded(self, budget: BudgetConfig, value: str, total: int, amount: int) -> BudgetExceededError:
        now = datetime.fromtimestamp(self.clock(), UTC)
        _, end = period_bounds(budget.period, now)
        who = "" if budget.scope == "global" else f" for {budget.scope} {value}"
        return BudgetExceededError(
            f"budget {budget.name!r}{who} would be exceeded: ${from_nano(total):.6f} of ${budget.limit_usd} "
            f"({budget.period}) already used or reserved, this request needs ~${from_nano(amount):.6f}"
            + (f"; it resets at {end.isoformat()}" if end else ""),
            budget=budget.name,
            scope=budget.scope,
            scope_value=value,
            limit_usd=budget.limit_usd,
            spent_usd=from_nano(total),
            resets_at=end.isoformat() if end else None,
        )

    def _warn_soft(self, budget: BudgetConfig, value: str, total: int, limit: int) -> None:
        period = period_bounds(budget.period, datetime.fromtimestamp(self.clock(), UTC))[0]
        tag = f"{budget.name}:{value}:{period}"
        if tag not in self._warned:
            self._warned.add(tag)
            log.warning(
                "budget %s%s is at %.0f%% of its limit: routing to the cheapest capable models",
                budget.name,
                "" if value == "*" else f" ({budget.scope} {value})",
                total / limit * 100,
            )
