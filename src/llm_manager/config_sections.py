"""The sections of the settings besides ``models:`` and ``routing:``: cache, state, store, budgets, ledger,
telemetry, gateway, Portkey and simulation — and :class:`_Strict`, the base every section of the configuration
derives from (:mod:`llm_manager.config` assembles them into :class:`~llm_manager.config.Settings`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from llm_manager.types import TaskType

__all__ = [
    "BudgetConfig",
    "CacheConfig",
    "GatewayConfig",
    "LedgerConfig",
    "PortkeyConfig",
    "SemanticCacheConfig",
    "SimulationConfig",
    "StateConfig",
    "StoreConfig",
    "TelemetryConfig",
]


class _Strict(BaseModel):
    # A misspelt key is an error that names the allowed ones (see config._explain), never a silently ignored setting.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SemanticCacheConfig(_Strict):
    """The semantic cache: a prompt that means the same as a cached one, in the same scope, answers from the cache
    (docs/caching.md)."""

    enabled: bool = False
    embedder: str = "builtin"
    """``builtin``: the offline model that ships in the ``semantic`` extra (wordllama, 256 dimensions); or the name
    of an embedding deployment in ``models``."""
    threshold: float = Field(default=0.8, gt=0, le=1)
    """Cosine similarity a cached prompt needs to answer (the lexical guard must find no difference too)."""
    thresholds: dict[TaskType, Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=dict)
    """Per task type, overriding ``threshold`` (e.g. ``{analysis: 0.9}``)."""
    word_threshold: float = Field(default=0.6, gt=0, le=1)
    """How similar a word must be to one in the other prompt to count as its synonym (the lexical guard)."""
    ttl_s: float | None = Field(default=None, gt=0)
    """Lifetime of an entry (default: ``cache.ttl_s``)."""
    max_entries: int | None = Field(default=None, ge=1)
    """Entries kept, oldest evicted first (default: ``cache.max_entries``)."""
    max_prompt_chars: int = Field(default=4000, ge=1)
    """Longer prompts are left to the exact cache: comparing long documents by one averaged vector is unreliable."""

    def threshold_for(self, task: str) -> float:
        return self.thresholds.get(task, self.threshold)


class CacheConfig(_Strict):
    """Exact-match response cache (and in-flight de-duplication of identical requests)."""

    enabled: bool = True
    ttl_s: float = Field(default=300.0, gt=0)
    max_entries: int = Field(default=1000, ge=1)
    dedupe: bool = True
    """Identical requests in flight at once share one provider call."""
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)


class StateConfig(_Strict):
    """Where breaker states, rate-limit budgets and the cache live."""

    redis_url: str | None = None
    """``None``: in this process. ``redis://host:6379/0``: shared by every process using the same URL and prefix."""
    prefix: str = "llm-manager"
    on_unavailable: Literal["fail_closed", "fail_open"] = "fail_closed"
    """What a replica does while Redis does not answer. ``fail_closed``: refuse requests with 503 (``retry-after``,
    ``x-should-retry: true``) and report not ready, so a load balancer sends them elsewhere. ``fail_open``: go on
    with state of its own, each limit and budget divided by the replicas last seen alive, reconciled with Redis
    when it is back (docs/operations.md)."""
    timeout_s: float = Field(default=1.0, gt=0, le=30)
    """How long a Redis operation may wait (a free pooled connection included) before Redis is probed; a probe
    that gets no answer within it makes Redis unavailable and cuts what waits on it, so a hung server stalls
    requests for about 2.5 times this, once."""
    heartbeat_s: float = Field(default=1.0, gt=0, le=60)
    """How often a replica announces itself in Redis (live replicas are those heard from in the last three beats),
    and how often it probes Redis while it is unavailable."""
    budget_lease_margin_s: float = Field(default=60.0, gt=0, le=86400)
    """A budget reservation lapses this long after its request's deadline (``timeout_s``, or
    ``routing.deadline_s``) if it was never settled — a replica killed with requests in flight — so the holds of a
    dead process stop counting against the limit within minutes, not at the end of the period."""


class BudgetConfig(_Strict):
    """A spending limit. Periods follow the UTC calendar: a day from 00:00 UTC, an ISO week from Monday, a month
    from the 1st; ``total`` never resets."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    scope: Literal["global", "user", "project", "key", "model"] = "global"
    """What is counted: everything, or each user / project / gateway key / model (deployment) separately."""
    match: str | None = None
    """Only this user / project / key / model (default: every one of them gets its own counter)."""
    period: Literal["daily", "weekly", "monthly", "total"] = "daily"
    limit_usd: Decimal = Field(gt=0)
    """Hard limit: a request that would pass it is rejected before any provider is called."""
    soft_limit_pct: float | None = Field(default=80.0, gt=0, le=100)
    """Past this share of the limit, requests are steered to the cheapest capable models (``None``: never)."""


class LedgerConfig(_Strict):
    """The spend ledger: a row per provider call in the store."""

    enabled: bool = True
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    """Rows are written in batches at this interval (a crash loses at most this much)."""
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    """A batch is also written as soon as this many rows are waiting."""
    durability: Literal["batched", "strict"] = "batched"
    """``batched``: a ``kill -9`` loses at most the rows of the last ``flush_interval_s``. ``strict``: each row is
    appended to a local spool file and ``fsync``'d (one ``fsync`` shared by concurrent requests) before its answer
    is released, and replayed at the next start: a crash loses no acknowledged row (docs/budgets.md)."""
    spool_dir: str | None = None
    """Where the ``strict`` spool lives (a local directory; each process takes a slot in it). Default: the user's
    data directory, one subdirectory per store."""


class StoreConfig(_Strict):
    """Where conversations (and later the spend ledger) are kept."""

    url: str | None = None
    """``None``: a SQLite file in the user's data directory. ``sqlite:///path.db`` or ``postgresql://…``."""


_ORIGIN = re.compile(r"https?://[^/\s?#]+")
"""A web origin as browsers send it in ``Origin``: scheme and authority, nothing after."""


class GatewayConfig(_Strict):
    """``llm-manager serve``: deadlines and shutdown of the HTTP gateway (the library ignores this section)."""

    request_timeout_s: float | None = Field(default=None, gt=0)
    """Deadline of a gateway request when the client sends no ``x-llm-timeout`` (``None``: ``routing.deadline_s``)."""
    max_request_timeout_s: float = Field(default=600.0, gt=0)
    """The longest deadline a client may ask for with ``x-llm-timeout``; longer ones are cut to this."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """A request body must arrive within this, from the end of its headers (a request that declares a body and
    sends none included); a slower one gets 408 and its connection is closed."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """``serve``: a request line and headers must arrive within this, from the connection's opening (or the next
    request's first byte); a slower client gets 408 and its connection is closed."""
    max_connections_per_client: int | None = Field(default=None, ge=1)
    """``serve``: open connections allowed from one client address; past it a connection is answered 429 and
    closed. Off by default: behind a load balancer every connection comes from one address."""
    drain_timeout_s: float = Field(default=30.0, ge=0)
    """On SIGTERM / SIGINT: how long in-flight requests and streams may run on before they are cut."""
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])
    """While the gateway has no API keys (open), it answers only requests whose ``Host`` is one of these names —
    so a web page cannot reach a local gateway through DNS rebinding. ``.example.com`` also allows its subdomains;
    ``*`` allows any host. Ignored once keys exist (then every request needs one)."""
    cors_origins: list[str] | None = None
    """Web pages allowed to call the gateway from a browser (CORS): origins such as ``https://app.example.com``, or
    ``"*"`` for any page. Off (``None``) by default: browsers then refuse cross-origin calls, as they should for a
    gateway holding provider keys."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):  # `cors_origins: "*"`, or one origin written without a list
            value = [value]
        if not isinstance(value, list):
            return value  # None, or a wrong type pydantic itself names
        for i, origin in enumerate(value):
            if origin != "*" and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
                raise ValueError(
                    f"entry {i} ({origin!r}) is not an origin: write scheme://host[:port] with no path or trailing "
                    'slash (https://app.example.com), or "*" for any page'
                )
        return value


class PortkeyConfig(_Strict):
    """The Portkey gateway as a transport."""

    api_key: SecretStr | None = None
    base_url: str = "http://localhost:8787/v1"
    route_all: bool = False
    """Send every OpenAI / Anthropic / Gemini deployment's traffic through Portkey."""
    config: str | None = None


class SimulationConfig(_Strict):
    """Global settings of the simulated provider."""

    seed: int = 0


class TelemetryConfig(_Strict):
    """The ``telemetry:`` section of the settings (used by :mod:`llm_manager.telemetry`)."""

    otlp_endpoint: str | None = None
    """OTLP/HTTP collector, e.g. ``http://localhost:4318`` (``/v1/traces`` is appended unless the URL already ends
    with it). When set, spans are batched and exported there; needs ``pip install 'llm-manager[otel]'``. Headers
    (auth) come from the standard ``OTEL_EXPORTER_OTLP_HEADERS`` environment variable. Unset: no tracing."""
    service_name: str = "llm-manager"
    """``service.name`` of the exported spans."""
    metrics: bool = True
    """Keep Prometheus metrics (served by the gateway's ``/metrics``)."""
    log_prompts: bool = False
    """Record prompt and completion text in spans and request logs. Off by default: they may hold personal data."""
    log_format: Literal["text", "json"] = "text"
    """Format of the log handler built by :func:`~llm_manager.telemetry.logs.make_handler` (CLI / gateway)."""
