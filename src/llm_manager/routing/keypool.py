"""Several API keys for one deployment: smooth weighted round-robin, 429 cooling, removal on auth failure.

Keys are only ever shown by fingerprint (the first 8 hex digits of their SHA-256), never in full.
"""

from __future__ import annotations

import hashlib
import logging
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
    """After an authentication failure: never picked again."""
    uses: int = 0
    rate_limited: int = 0
    failures: int = 0


class KeyPool:
    """The keys of one deployment. An empty pool (local servers) always yields ``None``."""

    def __init__(self, deployment: str, keys: Sequence[str], weights: Sequence[int] = ()) -> None:
        self.deployment = deployment
        ws = list(weights) or [1] * len(keys)
        self.entries = [KeyEntry(k, fingerprint(k), w) for k, w in zip(keys, ws, strict=True)]

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(self, now: float, exclude: frozenset[str] = frozenset()) -> list[KeyEntry]:
        """Usable keys in the order to try them: weighted round-robin first choice, then the rest.

        Cooling keys come last (a 429'd key is still better than failing outright); disabled keys never.
        Calling this advances the round-robin by one step.
        """
        live = [e for e in self.entries if not e.disabled and e.fp not in exclude]
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

    def disable(self, entry: KeyEntry, reason: str) -> None:
        """An authentication failure: take the key out of the pool for good (this process)."""
        if not entry.disabled:
            entry.disabled = True
            log.warning("key %s of %s removed from the pool: %s", entry.fp, self.deployment, reason)

    @property
    def exhausted(self) -> bool:
        """True when the pool had keys and every one was removed."""
        return bool(self.entries) and all(e.disabled for e in self.entries)

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Per-key health for status pages (fingerprints only)."""
        return [
            {
                "key": e.fp,
                "weight": e.weight,
                "state": "disabled" if e.disabled else ("cooling" if e.cooling_until > now else "ok"),
                "cooling_left_s": round(max(0.0, e.cooling_until - now), 3),
                "uses": e.uses,
                "rate_limited": e.rate_limited,
                "failures": e.failures,
            }
            for e in self.entries
        ]
