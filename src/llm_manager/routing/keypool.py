"""Several API keys for one deployment: smooth weighted round-robin, 429 cooling, removal on auth failure.

A key that fails authentication (401 / 403) is taken out of the pool, but not for good: providers rotate keys and
proxies answer transient 401s, so after ``reprobe_s`` seconds it is back on probation — its next call decides: an
answer restores it, another authentication failure takes it out again for ``reprobe_s``. ``reprobe_s=None`` keeps a
removed key out for the life of the process.

Keys are only ever shown by fingerprint (the first 8 hex digits of their SHA-256), never in full.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["KeyEntry", "KeyPool", "fingerprint"]

log = logging.getLogger("llm_manager.keys")


def fingerprint(key: str) -> str:
    """A short, stable, non-reversible name for a key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(slots=True)
class KeyEntry:
    """One key and its health in this process."""

    key: str
    fp: str
    weight: int
    current: int = 0
    """Smooth weighted round-robin accumulator."""
    cooling_until: float = 0.0
    """After a 429: not picked before this time unless every key is cooling."""
    disabled: bool = False
    """After an authentication failure: out of the pool until :attr:`reprobe_at`."""
    reprobe_at: float = 0.0
    """When a removed key is tried again (``inf``: never)."""
    reason: str | None = None
    """Why the key was last removed (the provider's status and message, secrets masked)."""
    removals: int = 0
    uses: int = 0
    rate_limited: int = 0
    failures: int = 0

    def usable(self, now: float) -> bool:
        """In the pool: never removed, or removed and due for a re-probe."""
        return not self.disabled or now >= self.reprobe_at


class KeyPool:
    """The keys of one deployment. An empty pool (local servers) always yields ``None``.

    Args:
        deployment: the deployment's name (for logs).
        keys: the keys, in order.
        weights: relative shares of traffic (default: equal).
        reprobe_s: how long a key that failed authentication stays out before it is tried again (``None``: for
            the life of the process).
    """

    def __init__(
        self, deployment: str, keys: Sequence[str], weights: Sequence[int] = (), reprobe_s: float | None = 300.0
    ) -> None:
        self.deployment = deployment
        self.reprobe_s = reprobe_s
        ws = list(weights) or [1] * len(keys)
        self.entries = [KeyEntry(k, fingerprint(k), w) for k, w in zip(keys, ws, strict=True)]

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(self, now: float, exclude: frozenset[str] = frozenset()) -> list[KeyEntry]:
        """Usable keys in the order to try them: weighted round-robin first choice, then the rest.

        Cooling keys come last (a 429'd key is still better than failing outright); removed keys only once they
        are due for a re-probe. Calling this advances the round-robin by one step.
        """
        live = [e for e in self.entries if e.usable(now) and e.fp not in exclude]
        if not live:
            return []
        total = sum(e.weight for e in live)
        for e in live:
            e.current += e.weight
        first = max(live, key=lambda e: e.current)
        first.current -= total
        order = [first, *(e for e in live if e is not first)]
        return [e for e in order if e.cooling_until <= now] + [e for e in order if e.cooling_until > now]

    def cool(self, entry: KeyEntry, now: float, retry_after: float | None) -> None:
        """A 429 on this key: prefer the others for ``retry_after`` seconds (1 s when unknown)."""
        entry.rate_limited += 1
        entry.cooling_until = now + (retry_after if retry_after is not None else 1.0)

    def disable(self, entry: KeyEntry, reason: str, now: float) -> None:
        """An authentication failure: take the key out of the pool until it is due for a re-probe."""
        again = entry.disabled  # a re-probe that failed: out for another period, said once more
        entry.disabled = True
        entry.reason = reason
        entry.removals += 1
        entry.reprobe_at = now + self.reprobe_s if self.reprobe_s is not None else math.inf
        when = f"tried again in {self.reprobe_s:g}s" if self.reprobe_s is not None else "for the life of the process"
        verb = "still fails authentication" if again else "removed from the pool"
        log.warning("key %s of %s %s: %s (%s)", entry.fp, self.deployment, verb, reason, when)

    def restore(self, entry: KeyEntry) -> None:
        """A removed key's re-probe was answered: it is back in the pool."""
        if entry.disabled:
            entry.disabled = False
            entry.reprobe_at = 0.0
            log.warning("key %s of %s is back in the pool: its re-probe was answered", entry.fp, self.deployment)

    def next_reprobe_in(self, now: float) -> float:
        """Seconds until the soonest removed key may be tried again (``inf``: none will be)."""
        waits = [e.reprobe_at - now for e in self.entries if e.disabled]
        return max(0.0, min(waits)) if waits else 0.0

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Per-key health for status pages (fingerprints only): ``state`` is ``ok``, ``cooling`` (after a 429),
        ``disabled`` (removed after an authentication failure, with its ``reason`` and ``reprobe_in_s``) or
        ``probing`` (removed, and due: its next call decides)."""
        return [self._view(e, now) for e in self.entries]

    def _view(self, e: KeyEntry, now: float) -> dict[str, object]:
        state = "ok"
        if e.disabled:
            state = "probing" if now >= e.reprobe_at else "disabled"
        elif e.cooling_until > now:
            state = "cooling"
        view: dict[str, object] = {
            "key": e.fp,
            "weight": e.weight,
            "state": state,
            "cooling_left_s": round(max(0.0, e.cooling_until - now), 3),
            "uses": e.uses,
            "rate_limited": e.rate_limited,
            "failures": e.failures,
            "removals": e.removals,
        }
        if e.disabled:
            left = e.reprobe_at - now
            view["reason"] = e.reason
            view["reprobe_in_s"] = round(max(0.0, left), 3) if math.isfinite(left) else None
        return view
