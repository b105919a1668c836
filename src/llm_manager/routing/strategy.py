"""Strategies: the order in which a task's candidates are tried (``cost``, ``performance``, ``balanced``).

Each starts from the task table's order and moves a model up only on evidence:

* ``cost`` — by this request's estimated price, cheapest first; unknown prices last; equal prices keep the table's
  order. Prices are exact, so there is no noise to guard against.
* ``performance`` — by expected latency, fastest first. A model never called yet, with nothing known of its speed,
  is tried first once (explored), so it is measured instead of losing by default. Its expected latency is the
  measured mean once it has ``min_samples`` successful calls, else its prior (``expected_latency_ms`` in config; a
  simulated model's own ``simulate.latency_ms``), else what few measurements there are. A model whose calls all
  failed has no speed to show and goes last.
* ``balanced`` — the table's order, except that a model moves up past the one just above it when it is clearly
  cheaper *and* clearly faster, both measured over ``min_samples`` successful calls (no priors: the table is the
  user's judgement of quality, overridden on measurements only).

"Clearly" is relative and sticky (``routing.overtake``): to move up past a model, one must beat it by ``margin``
(0.2 = at least 20 % faster, and for ``balanced`` also 20 % cheaper); once ahead, it stays ahead while it still beats
it by ``hold_margin`` (0.1). Noise around a tie never reorders the table, and noise around the margin does not make
the order flap. A model moves up one place at a time, past each model directly above it that it beats (an insertion
sort): it does not jump a model it does not beat.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llm_manager.tokens import DEFAULT_OUTPUT_ESTIMATE

if TYPE_CHECKING:
    from llm_manager.config import OvertakeConfig
    from llm_manager.routing.planner import Deployment
    from llm_manager.routing.stats import LatencyStats
    from llm_manager.types import Request

__all__ = ["Standings", "order"]

Beats = Callable[[int, int, float], bool]
"""``beats(i, j, margin)``: candidate ``i`` is better than candidate ``j`` by at least ``margin``."""


class Standings:
    """Which deployment has moved up past which: the memory that makes ``hold_margin`` a hysteresis."""

    def __init__(self) -> None:
        self._ahead: set[tuple[str, str]] = set()

    def ahead(self, winner: str, loser: str) -> bool:
        """Whether ``winner`` was last placed above ``loser``, whom the task table prefers."""
        return (winner, loser) in self._ahead

    def record(self, table: Sequence[str], final: Sequence[str]) -> None:
        """Remember, for every pair the table orders one way, whether the final order reversed it."""
        place = {name: i for i, name in enumerate(final)}
        for i, better in enumerate(table):
            for worse in table[i + 1 :]:
                if place[worse] < place[better]:
                    self._ahead.add((worse, better))
                else:
                    self._ahead.discard((worse, better))


def order(
    deps: list[Deployment],
    request: Request,
    prompt_tokens: int,
    stats: LatencyStats,
    strategy: str,
    cfg: OvertakeConfig,
) -> list[Deployment]:
    """``deps`` (in the task table's order) in the order ``strategy`` tries them for ``request``."""
    if len(deps) < 2:
        return deps
    if strategy == "cost":
        return _by_cost(deps, request, prompt_tokens)
    lats = [_expected_latency(d, stats, cfg.min_samples) for d in deps]
    if strategy == "performance":
        unexplored = [i for i, d in enumerate(deps) if lats[i] is None and stats.get(d.name).calls == 0]
        speed = [math.inf if lat is None else lat for lat in lats]
        measured = [i for i in range(len(deps)) if i not in unexplored]
        ranked = _overtake(deps, measured, lambda i, j, m: _clearly_less(speed[i], speed[j], m), stats.standings, cfg)
        return [deps[i] for i in unexplored + ranked]
    costs = _costs(deps, request, prompt_tokens)
    sure = [_measured(d, stats, cfg.min_samples) for d in deps]

    def beats(i: int, j: int, margin: float) -> bool:
        ci, cj, li, lj = costs[i], costs[j], sure[i], sure[j]
        if ci is None or cj is None or li is None or lj is None:
            return False
        return _clearly_less(ci, cj, margin) and _clearly_less(li, lj, margin)

    return [deps[i] for i in _overtake(deps, list(range(len(deps))), beats, stats.standings, cfg)]


def _by_cost(deps: list[Deployment], request: Request, prompt_tokens: int) -> list[Deployment]:
    costs = _costs(deps, request, prompt_tokens)
    # Unknown prices sort last; ties keep the task order (sort is stable).
    ranked = sorted(range(len(deps)), key=lambda i: (costs[i] is None, costs[i] or 0.0))
    return [deps[i] for i in ranked]


def _costs(deps: list[Deployment], request: Request, prompt_tokens: int) -> list[float | None]:
    out = request.max_tokens or DEFAULT_OUTPUT_ESTIMATE
    costs = [d.estimate_cost(prompt_tokens, out) for d in deps]
    return [None if c is None else float(c) for c in costs]


def _measured(dep: Deployment, stats: LatencyStats, min_samples: int) -> float | None:
    """The measured mean latency, once there are enough successful calls to trust it."""
    st = stats.get(dep.name)
    return st.latency_ms if len(st.samples) >= min_samples else None


def _expected_latency(dep: Deployment, stats: LatencyStats, min_samples: int) -> float | None:
    """Enough measurements, else the prior, else the few measurements there are, else nothing (``None``)."""
    measured = _measured(dep, stats, min_samples)
    if measured is not None:
        return measured
    prior = dep.latency_prior_ms
    return prior if prior is not None else stats.get(dep.name).latency_ms


def _clearly_less(a: float, b: float, margin: float) -> bool:
    """``a`` is below ``b`` by at least ``margin`` of ``b`` (and below it at all: two zeros are a tie)."""
    return a < b and a <= (1.0 - margin) * b


def _overtake(
    deps: list[Deployment], table: list[int], beats: Beats, standings: Standings, cfg: OvertakeConfig
) -> list[int]:
    """Insertion sort from the table's order: each candidate moves up past each one directly above it that it beats
    by ``margin`` (``hold_margin`` if it was already ahead of it). Then the standings remember the result."""
    placed: list[int] = []
    for i in table:
        k = len(placed)
        while k > 0:
            j = placed[k - 1]
            held = standings.ahead(deps[i].name, deps[j].name)
            if not beats(i, j, cfg.hold_margin if held else cfg.margin):
                break
            k -= 1
        placed.insert(k, i)
    standings.record([deps[i].name for i in table], [deps[i].name for i in placed])
    return placed
