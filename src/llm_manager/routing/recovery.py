"""How long a deployment's rate limits and outages take to clear, learned from what the executor sees.

The ``adaptive`` backoff strategy asks :meth:`RecoveryLearner.wait` instead of following a fixed curve. For each
deployment and kind of trouble (``rate_limited``: 429; ``unavailable``: a 5xx answer) the learner keeps

* an **episode**: opened by the first such error after a success, closed by the next success of an attempt that
  *started* after that error. Its length (first error → start of the attempt that worked) is one sample of how
  long the trouble took to clear. It is an upper bound of the true time, a close one when traffic is steady (every
  new request probes the deployment); a lone client learns the time its own retry succeeded.
* a moving average of those samples (recent episodes weigh most, so a deployment whose limits change is followed),
  and a moving average of the Retry-After values the deployment sent, used until a clear time has been measured.

A retry in an open episode then waits for what is left of the expected clear time. Past it (this outage is longer
than usual) the learner has nothing to say and the exponential curve applies. State is per process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from llm_manager.errors import ModelUnavailableError, RateLimitError

__all__ = ["ALPHA", "STALE_S", "RecoveryLearner", "TroubleKind", "trouble_kind"]

TroubleKind = Literal["rate_limited", "unavailable"]

ALPHA = 0.5
"""Weight of the newest sample in the moving averages."""
STALE_S = 300.0
"""An episode with no attempt for this long says nothing about recovery: it is dropped."""
_KINDS: tuple[TroubleKind, ...] = ("rate_limited", "unavailable")


def trouble_kind(exc: BaseException) -> TroubleKind | None:
    """``rate_limited`` for a 429, ``unavailable`` for a 5xx answer, ``None`` for anything the learner ignores
    (timeouts and refused connections move on to the next candidate rather than waiting)."""
    if isinstance(exc, RateLimitError):
        return "rate_limited"
    if isinstance(exc, ModelUnavailableError) and exc.status_code is not None:
        return "unavailable"
    return None


@dataclass(slots=True)
class _Episode:
    started: float
    last: float


@dataclass(slots=True)
class _Learned:
    clear_s: float | None = None
    """Moving average of measured clear times."""
    retry_after_s: float | None = None
    """Moving average of the Retry-After values received."""
    samples: int = 0
    """Episodes measured."""


def _average(old: float | None, sample: float) -> float:
    return sample if old is None else ALPHA * sample + (1 - ALPHA) * old


class RecoveryLearner:
    """Per-deployment recovery times. ``clock`` is the executor's (monotonic, injectable)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._open: dict[tuple[str, TroubleKind], _Episode] = {}
        self._learned: dict[tuple[str, TroubleKind], _Learned] = {}

    def failed(self, deployment: str, exc: BaseException) -> None:
        """Note a failed attempt (only 429s and 5xx answers count)."""
        kind = trouble_kind(exc)
        if kind is None:
            return
        now = self.clock()
        key = (deployment, kind)
        episode = self._open.get(key)
        if episode is None or now - episode.last > STALE_S:
            self._open[key] = _Episode(now, now)
        else:
            episode.last = now
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after >= 0:
            learned = self._learned.setdefault(key, _Learned())
            learned.retry_after_s = _average(learned.retry_after_s, float(retry_after))

    def succeeded(self, deployment: str, started_at: float) -> None:
        """Note a success of an attempt that began at ``started_at`` (clock time): it closes open episodes that
        began before it, each giving one clear-time sample."""
        if not self._open:
            return  # the common case, on every answer's path
        for kind in _KINDS:
            key = (deployment, kind)
            episode = self._open.get(key)
            if episode is None or started_at < episode.started:
                continue  # this attempt was under way before the trouble began: it proves nothing
            del self._open[key]
            if started_at - episode.last > STALE_S:
                continue
            learned = self._learned.setdefault(key, _Learned())
            learned.clear_s = _average(learned.clear_s, started_at - episode.started)
            learned.samples += 1

    def wait(self, deployment: str, exc: BaseException) -> float | None:
        """Seconds until ``deployment`` is expected to have recovered from the trouble ``exc`` belongs to, or
        ``None`` when nothing is known or the usual clear time has already passed."""
        kind = trouble_kind(exc)
        if kind is None:
            return None
        learned = self._learned.get((deployment, kind))
        if learned is None:
            return None
        target = learned.clear_s if learned.clear_s is not None else learned.retry_after_s
        if target is None:
            return None
        episode = self._open.get((deployment, kind))
        elapsed = self.clock() - episode.started if episode is not None else 0.0
        remaining = target - elapsed
        return remaining if remaining > 0 else None

    def snapshot(self, deployment: str) -> dict[str, Any]:
        """What has been learned about ``deployment``, for ``status()``."""
        out: dict[str, Any] = {}
        for kind in _KINDS:
            learned = self._learned.get((deployment, kind))
            if learned is not None:
                out[kind] = {
                    "clear_s": None if learned.clear_s is None else round(learned.clear_s, 3),
                    "retry_after_s": None if learned.retry_after_s is None else round(learned.retry_after_s, 3),
                    "samples": learned.samples,
                    "open": (deployment, kind) in self._open,
                }
        return out
