"""Retry policy as pure functions: what is worth retrying, where, and after how long.

"Retryable?" is answered here and nowhere else, so the executor, hedging and the gateway can never disagree about
whether an error is worth another try. An explicit ``x-should-retry`` header from the server wins over the table,
as the OpenAI SDK does.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from llm_manager.config import BackoffConfig
from llm_manager.errors import (
    ContentFilterError,
    ContextTooLargeError,
    ModelUnavailableError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)

__all__ = ["Decision", "backoff_delay", "curve_delay", "decide", "is_reroutable", "is_retryable"]


class Decision(Enum):
    """What the executor does after a failed attempt."""

    RETRY_SAME = "retry_same"
    """Wait, then try the same deployment again."""
    NEXT = "next"
    """Move on to the next candidate now."""
    NEXT_LARGER = "next_larger"
    """Move on, but only to candidates with a larger context window."""
    RAISE = "raise"
    """Surface the error at once: another attempt cannot help (bad key, invalid request)."""


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt (here or elsewhere) could succeed: 429, 5xx, timeouts, resets."""
    if isinstance(exc, ProviderError):
        hint = exc.headers.get("x-should-retry")
        if hint == "true":
            return True
        if hint == "false":
            return False
    return isinstance(exc, RateLimitError | ModelUnavailableError | ProviderTimeoutError | TimeoutError)


def is_reroutable(exc: BaseException) -> bool:
    """Whether another candidate could succeed where this one refused the request itself (window, filter)."""
    return isinstance(exc, ContextTooLargeError | ContentFilterError)


def decide(exc: BaseException, *, retries_left: int, retry_after_cap_s: float) -> Decision:
    """Choose the next step after ``exc``.

    Rate limits and 5xx answers are retried on the same deployment (up to ``retries_left``) unless the server
    asks for a wait longer than ``retry_after_cap_s``. Timeouts and connection failures move straight on: a hung
    or unreachable deployment rarely recovers within one request, and the next candidate is the faster answer.
    """
    if isinstance(exc, ContextTooLargeError):
        return Decision.NEXT_LARGER
    if isinstance(exc, ContentFilterError):
        return Decision.NEXT
    transient = isinstance(exc, RateLimitError | ModelUnavailableError | ProviderTimeoutError | TimeoutError)
    if not is_retryable(exc):
        # x-should-retry: false on a 429 / 5xx forbids hammering that endpoint, not asking another one.
        return Decision.NEXT if transient else Decision.RAISE
    if isinstance(exc, ProviderTimeoutError | TimeoutError):
        return Decision.NEXT
    if isinstance(exc, ModelUnavailableError) and exc.status_code is None and not isinstance(exc, RateLimitError):
        return Decision.NEXT
    if retries_left <= 0:
        return Decision.NEXT
    retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
    if retry_after is not None and retry_after > retry_after_cap_s:
        return Decision.NEXT
    return Decision.RETRY_SAME


def curve_delay(retry_index: int, policy: BackoffConfig) -> float:
    """The strategy's curve (before jitter) for retry number ``retry_index`` (0-based), capped at ``max_s``.

    ``linear``: ``base_s``, 2×, 3× …; ``fibonacci``: ``base_s`` × 1, 1, 2, 3, 5 …; ``exponential`` (and
    ``adaptive``, until it has learned): ``base_s × multiplier^n``.
    """
    n = max(retry_index, 0)
    if policy.strategy == "linear":
        factor = float(n + 1)
    elif policy.strategy == "fibonacci":
        a, b = 1, 1
        for _ in range(n):
            a, b = b, a + b
        factor = float(a)
    else:
        factor = policy.multiplier**n
    return min(policy.max_s, policy.base_s * factor)


def backoff_delay(
    retry_index: int,
    exc: BaseException,
    policy: BackoffConfig,
    rand: Callable[[], float],
    cap_s: float,
    learned_s: float | None = None,
) -> float:
    """Seconds to wait before retry number ``retry_index`` (0-based).

    The server's Retry-After (already parsed from ``retry-after-ms`` / ``retry-after``) wins, capped at
    ``cap_s``. Then, for the ``adaptive`` strategy, ``learned_s``: what is left of the time this deployment's
    trouble usually takes to clear (see :mod:`llm_manager.routing.recovery`), used as it is. Otherwise the
    strategy's curve with "equal jitter" (half fixed, half random) so that a herd of clients spreads out without
    any of them retrying instantly.
    """
    retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap_s)
    if learned_s is not None and policy.strategy == "adaptive":
        return max(learned_s, 0.0)
    delay = curve_delay(retry_index, policy)
    if policy.jitter:
        delay = delay / 2 + rand() * delay / 2
    return delay
