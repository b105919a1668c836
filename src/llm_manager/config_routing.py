"""The ``routing:`` section: how candidates are chosen and ordered, and how one request is retried, hedged and
cut off — backoff, circuit breaker, hedging and the overtake rule of the ``performance`` / ``balanced`` strategies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llm_manager.config_sections import _Strict
from llm_manager.types import TaskType

__all__ = [
    "BackoffConfig",
    "BackoffStrategy",
    "CircuitBreakerConfig",
    "HedgeConfig",
    "OvertakeConfig",
    "RoutingConfig",
    "Strategy",
]

Strategy = Literal["cost", "performance", "balanced"]
BackoffStrategy = Literal["exponential", "linear", "fibonacci", "adaptive"]


class BackoffConfig(_Strict):
    """How long to wait between retries of one deployment when the server sent no Retry-After.

    ``exponential``: ``base_s × multiplier^n``; ``linear``: ``base_s × (n + 1)``; ``fibonacci``: ``base_s`` × 1, 1, 2,
    3, 5 …; each capped at ``max_s``. ``adaptive``: wait as long as this deployment's 429s / 5xx took to clear
    before (learned from what it has seen, and the Retry-After values it sent), the exponential curve until it
    has learned something. A server's Retry-After always wins."""

    strategy: BackoffStrategy = "exponential"
    base_s: float = Field(default=0.5, ge=0)
    max_s: float = Field(default=8.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    """The growth factor of ``exponential`` (and of ``adaptive`` before it has learned)."""
    jitter: bool = True
    """Equal jitter on the curves (half the delay fixed, half random); a learned wait is used as it is."""


class OvertakeConfig(_Strict):
    """How clearly a model must beat the one above it in the task table before ``performance`` or ``balanced``
    move it up (see ``llm_manager.routing.strategy``)."""

    margin: float = Field(default=0.2, gt=0, lt=1)
    """Relative advantage needed to move up: 0.2 = at least 20 % faster (``balanced``: and 20 % cheaper)."""
    hold_margin: float = Field(default=0.1, ge=0, lt=1)
    """The advantage a model that moved up must keep to stay there (at most ``margin``): the gap between the two is
    the hysteresis that keeps noise near the margin from flipping the order back and forth."""
    min_samples: int = Field(default=5, ge=1)
    """Successful calls before a measured latency counts (``balanced`` needs them; ``performance`` uses the prior
    until then)."""


class CircuitBreakerConfig(_Strict):
    """Per deployment and key: stop calling what is failing, probe it again after a cooldown."""

    enabled: bool = True
    failure_threshold: int = Field(default=5, ge=0)
    """Open after this many failures within ``window_s`` (0 disables the count rule)."""
    failure_rate: float | None = Field(default=None, gt=0, le=1)
    """Also open when the failure share within ``window_s`` reaches this, after ``min_calls`` calls."""
    min_calls: int = Field(default=10, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=60.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)
    """Probe requests let through at once while half-open."""
    half_open_successes: int = Field(default=2, ge=1)
    """Successful probes needed to close again."""
    slow_call_s: float | None = Field(default=None, gt=0)
    """A successful call slower than this counts as a failure for the breaker (it is still returned)."""


class HedgeConfig(_Strict):
    """Hedged requests: if the first candidate is silent for ``delay_s``, also ask the next one; first answer wins."""

    tasks: list[TaskType] = Field(default_factory=list)
    """Task types whose requests are hedged."""
    delay_s: float | Literal["p95"] = 1.0
    """Fixed delay, or ``p95``: the first candidate's observed 95th-percentile latency (``p95_fallback_s`` until
    it has 20 samples)."""
    p95_fallback_s: float = Field(default=1.0, gt=0)


# Defined after its parts: a part defined later would stay a forward reference in RoutingConfig.model_fields, and
# the explanation of an unknown key (config._model_at) could not name the keys allowed there.
class RoutingConfig(_Strict):
    """How candidates are chosen, ordered and retried."""

    strategy: Strategy = "balanced"
    tasks: dict[TaskType, list[str]] = Field(default_factory=dict)
    """Task → deployments in preference order (the rest are fallbacks). The built-in tasks (analysis,
    ui-generation, config-management, general) not listed use the seeds' table; any other name defines a task of
    your own (``summarization: [gpt-4o-mini, claude-haiku]``), which routes embedding requests when its models are
    embedding models, chat requests otherwise."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Extra names for deployments (``fast: gpt-4o-mini``)."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """Retries of one deployment on a retryable error, before moving to the next candidate."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Per-attempt timeout."""
    deadline_s: float = Field(default=120.0, gt=0)
    """Overall deadline of one request, all attempts together."""
    first_chunk_timeout_s: float = Field(default=15.0, gt=0)
    """Streams: time allowed to the first chunk; past it the next candidate is tried."""
    stream_idle_timeout_s: float = Field(default=30.0, gt=0)
    """Streams: longest silence allowed between chunks once text is flowing."""
    retry_after_cap_s: float = Field(default=20.0, ge=0)
    """Longest Retry-After honoured on the same deployment; a longer one moves on to the next candidate."""
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    queue_timeout_s: float = Field(default=10.0, ge=0)
    """When every candidate is at its rate limit or ``max_concurrent``: how long a request may wait for room (high
    priority first)."""
    hedge: HedgeConfig = Field(default_factory=HedgeConfig)
    key_reprobe_s: float | None = Field(default=300.0, gt=0)
    """A pool key that failed authentication (401 / 403) is out of its pool this long, then tried again (keys are
    rotated, proxies answer transient 401s); ``null``: out for the life of the process."""
    overtake: OvertakeConfig = Field(default_factory=OvertakeConfig)
