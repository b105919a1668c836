"""Reading the ledger: evidence-based savings (``costs --recommend``) and what-if re-pricing (``replay``).

Both work only from recorded rows — no provider is called.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.costs.ledger import LedgerRow
    from llm_manager.costs.prices import ModelPrice

__all__ = ["Recommendation", "ReplayResult", "recommend", "replay"]

MIN_SAMPLES = 10
"""Fewer calls than this per model and task are too few to compare success rates."""


@dataclass(slots=True)
class Recommendation:
    """One finding, with the numbers behind it."""

    kind: str
    """``cache`` (repeated identical prompts), ``cheaper_model`` (a cheaper fallback did as well), ``failures``."""
    title: str
    detail: str
    savings_usd: Decimal | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def recommend(
    rows: Sequence[LedgerRow], *, cache_enabled: bool, cache_ttl_s: float, shared_cache: bool = False
) -> list[Recommendation]:
    """Findings from the ledger rows of a period, largest savings first. ``shared_cache``: the response cache is
    in Redis (``state.redis_url``), shared by every process, rather than in each process's memory."""
    out = [*_repeats(rows, cache_enabled, cache_ttl_s, shared_cache), *_cheaper(rows), *_failures(rows)]
    return sorted(out, key=lambda r: r.savings_usd or Decimal(0), reverse=True)


def _answers(rows: Sequence[LedgerRow]) -> list[LedgerRow]:
    return [r for r in rows if r.status == "ok"]


def _repeats(rows: Sequence[LedgerRow], cache_enabled: bool, ttl_s: float, shared: bool) -> list[Recommendation]:
    """Paid answers to a prompt already answered: what an exact cache would have saved."""
    groups: dict[str, list[LedgerRow]] = defaultdict(list)
    for r in _answers(rows):
        if r.request_key:
            groups[r.request_key].append(r)
    repeated = {k: g for k, g in groups.items() if len(g) > 1}
    if not repeated:
        return []
    wasted = [r for g in repeated.values() for r in g[1:]]
    savings = sum((r.cost or Decimal(0) for r in wasted), Decimal(0))
    hint = (
        _why_missed(repeated.values(), ttl_s, shared) if cache_enabled else "turn the response cache on (cache.enabled)"
    )
    return [
        Recommendation(
            "cache",
            f"{len(wasted)} paid answers repeated an identical prompt ({len(repeated)} distinct prompts)",
            f"an exact-match cache would have answered them for free: {hint}",
            savings,
            {"repeated_calls": len(wasted), "distinct_prompts": len(repeated)},
        )
    ]


def _why_missed(groups: Iterable[list[LedgerRow]], ttl_s: float, shared: bool) -> str:
    """Why the cache did not answer the repeats: each repeat against the previous answer to the same prompt."""
    within = beyond = 0
    for group in groups:
        ordered = sorted(group, key=lambda r: r.ts)
        for before, after in zip(ordered, ordered[1:], strict=False):
            if (after.ts - before.ts).total_seconds() <= ttl_s:
                within += 1
            else:
                beyond += 1
    reasons = []
    if within and not shared:
        reasons.append(
            f"{within} came within the cache TTL ({ttl_s:g}s) of the earlier answer, but the response cache lives in "
            "each process's memory (every CLI run and every gateway replica starts with an empty one), so a repeat "
            "from another process misses it; set state.redis_url to keep one cache in Redis for every process"
        )
    elif within:
        reasons.append(
            f"{within} came within the cache TTL ({ttl_s:g}s) but asked not to be cached (cache=False, "
            "x-llm-cache: no-store) or found it full (cache.max_entries)"
        )
    if beyond:
        reasons.append(
            f"{beyond} came more than the cache TTL ({ttl_s:g}s) apart: a longer cache.ttl_s would catch them"
        )
    return "; ".join(reasons)


def _cheaper(rows: Sequence[LedgerRow]) -> list[Recommendation]:
    """Per task: a cheaper model that succeeded as often as the dearest one it could replace."""
    stats: dict[tuple[str, str], list[LedgerRow]] = defaultdict(list)
    for r in rows:
        if r.status in ("ok", "error"):
            stats[(r.task, r.deployment)].append(r)
    out = []
    tasks = {t for t, _ in stats}
    for task in sorted(tasks):
        models = []
        for (t, dep), rs in stats.items():
            ok = [r for r in rs if r.status == "ok" and r.cost is not None]
            if t != task or len(rs) < MIN_SAMPLES or not ok:
                continue
            rate = len([r for r in rs if r.status == "ok"]) / len(rs)
            mean = sum((r.cost or Decimal(0) for r in ok), Decimal(0)) / len(ok)
            models.append((dep, rate, mean, len(ok)))
        if len(models) < 2:
            continue
        dear = max(models, key=lambda m: m[2])
        rivals = [m for m in models if m[2] < dear[2] and m[1] >= dear[1] - 0.02]
        if not rivals:
            continue
        best = min(rivals, key=lambda m: m[2])
        savings = (dear[2] - best[2]) * dear[3]
        out.append(
            Recommendation(
                "cheaper_model",
                f"task {task}: {best[0]} succeeded as often as {dear[0]} at a lower price",
                f"{best[0]}: {best[1]:.0%} success, ${best[2]:.6f}/answer; {dear[0]}: {dear[1]:.0%}, "
                f"${dear[2]:.6f}/answer — put {best[0]} first for {task} (routing.tasks) or use strategy: cost",
                savings,
                {"task": task, "cheaper": best[0], "dearer": dear[0], "dearer_answers": dear[3]},
            )
        )
    return out


def _failures(rows: Sequence[LedgerRow]) -> list[Recommendation]:
    """Models that fail often, and what hedges and retries cost."""
    by_dep: dict[str, list[LedgerRow]] = defaultdict(list)
    for r in rows:
        if r.status in ("ok", "error", "hedge_lost"):
            by_dep[r.deployment].append(r)
    out = []
    for dep, rs in sorted(by_dep.items()):
        errors = [r for r in rs if r.status == "error"]
        lost = [r for r in rs if r.status == "hedge_lost"]
        lost_cost = sum((r.cost or Decimal(0) for r in lost), Decimal(0))
        rate = len(errors) / len(rs)
        if len(rs) >= MIN_SAMPLES and rate >= 0.1:
            codes: dict[str, int] = defaultdict(int)
            for r in errors:
                codes[r.error_code or "unknown"] += 1
            out.append(
                Recommendation(
                    "failures",
                    f"{dep} failed {rate:.0%} of {len(rs)} calls",
                    "each failure costs a retry's latency and a fallback's price: check its limits and key, lower its "
                    f"place in routing.tasks, or let the breaker open sooner; errors: {dict(codes)}",
                    None,
                    {"deployment": dep, "calls": len(rs), "errors": len(errors), "codes": dict(codes)},
                )
            )
        if lost_cost > 0:
            out.append(
                Recommendation(
                    "failures",
                    f"hedging paid {len(lost)} losing calls on {dep}",
                    "a hedge's loser is still billed for its prompt: raise routing.hedge.delay_s or use delay_s: p95",
                    lost_cost,
                    {"deployment": dep, "lost_calls": len(lost)},
                )
            )
    return out


@dataclass(slots=True)
class ReplayResult:
    """Logged traffic priced as it was, and as another configuration would have priced it."""

    requests: int
    actual_usd: Decimal
    estimated_low_usd: Decimal
    estimated_usd: Decimal
    estimated_high_usd: Decimal
    unpriced_requests: int
    by_task: dict[str, dict[str, Any]]


def replay(rows: Sequence[LedgerRow], other: Settings) -> ReplayResult:
    """Re-price each answered request on the model ``other`` would have tried first for its task.

    The prompt tokens are the logged ones; the answer's length would differ on another model, so the estimate is
    a range: the logged completion tokens scaled by the shortest and longest mean answer length seen for that task
    across the logged models (the middle value keeps the logged length)."""
    answers = [r for r in rows if r.status == "ok"]
    actual = sum((r.cost or Decimal(0) for r in rows if r.status in ("ok", "hedge_lost")), Decimal(0))
    ratios = _length_ratios(answers)
    from llm_manager.costs.prices import deployment_price

    prices = {name: deployment_price(dep) for name, dep in other.models.items()}
    low = mid = high = Decimal(0)
    unpriced = 0
    by_task: dict[str, dict[str, Any]] = {}
    for r in answers:
        # A task the other config does not define has no model there to price it under.
        chain = other.chain(r.task) if r.task in other.task_names() else []
        target = chain[0] if chain else None
        price = prices.get(target) if target else None
        slot = by_task.setdefault(
            r.task, {"requests": 0, "actual_usd": Decimal(0), "estimated_usd": Decimal(0), "model": target}
        )
        slot["requests"] += 1
        slot["actual_usd"] += r.cost or Decimal(0)
        if price is None:
            unpriced += 1
            continue
        lo_ratio, hi_ratio = ratios.get(r.task, (1.0, 1.0))
        from llm_manager.costs.prices import cost_of

        def at(ratio: float, row: LedgerRow = r, p: ModelPrice = price) -> Decimal:
            return cost_of(p, row.prompt_tokens, round(row.completion_tokens * ratio), row.cached_tokens)

        low, mid, high = low + at(lo_ratio), mid + at(1.0), high + at(hi_ratio)
        slot["estimated_usd"] += at(1.0)
    return ReplayResult(len(answers), actual, low, mid, high, unpriced, by_task)


def _length_ratios(answers: Sequence[LedgerRow]) -> dict[str, tuple[float, float]]:
    """Per task: (shortest, longest) mean answer length across models, relative to the overall mean."""
    per: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in answers:
        per[r.task][r.deployment].append(r.completion_tokens)
    out = {}
    for task, deps in per.items():
        means = [sum(v) / len(v) for v in deps.values() if v]
        overall = sum(sum(v) for v in deps.values()) / max(1, sum(len(v) for v in deps.values()))
        if overall > 0 and means:
            out[task] = (min(means) / overall, max(means) / overall)
    return out
