"""Typed configuration: one YAML file (or dict, or the environment) → validated :class:`Settings`.

Every problem is reported with the field's path and the fix, all at once, before anything runs.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from llm_manager.embedding_profiles import check_embedding_config, check_task_kinds, embedding_profile_for
from llm_manager.errors import ConfigError
from llm_manager.profiles import Family, Modality, family_for
from llm_manager.tasks import check_tasks
from llm_manager.types import TaskType

__all__ = [
    "DEFAULT_FAMILY_CHAINS",
    "BackoffConfig",
    "BackoffStrategy",
    "BudgetConfig",
    "CacheConfig",
    "SemanticCacheConfig",
    "CircuitBreakerConfig",
    "DeploymentConfig",
    "GatewayConfig",
    "HedgeConfig",
    "LedgerConfig",
    "OvertakeConfig",
    "PortkeyConfig",
    "PortkeyRoute",
    "RoutingConfig",
    "Settings",
    "SimulatedBehaviour",
    "StateConfig",
    "StoreConfig",
    "load_settings",
]

Strategy = Literal["cost", "performance", "balanced"]
ProviderName = Literal["openai", "anthropic", "gemini", "openai-compatible", "portkey", "simulated"]
PresetName = Literal["groq", "openrouter", "lmstudio", "ollama", "vllm", "llamacpp"]

# The seeds' routing table, by model family: the first family present answers, the rest are its fallbacks.
DEFAULT_FAMILY_CHAINS: dict[TaskType, tuple[Family, ...]] = {
    "analysis": ("claude", "gpt", "gemini", "llama"),
    "ui-generation": ("gpt", "claude", "gemini", "llama"),
    "config-management": ("llama", "gpt", "claude", "gemini"),
    "general": ("gpt", "claude", "gemini", "llama"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SimulatedBehaviour(_Strict):
    """How a simulated model behaves. Deterministic under ``simulation.seed``."""

    latency_ms: float = Field(default=40.0, ge=0)
    """Time to a whole (non-streamed) answer."""
    first_token_ms: float = Field(default=20.0, ge=0)
    """Time to the first streamed chunk."""
    tokens_per_s: float = Field(default=400.0, gt=0)
    """Streaming speed after the first chunk."""
    error_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of calls answered with a 500."""
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of calls answered with a 429."""
    retry_after_s: float = Field(default=1.0, ge=0)
    """Retry-After sent with simulated 429s."""
    script: list[str] = Field(default_factory=list)
    """Outcomes of the next calls, in order, before the rates apply: ``ok``, ``500``, ``503``, ``429``,
    ``429:0.5`` (Retry-After 0.5 s), ``401``, ``400``, ``context``, ``filter``, ``timeout`` (never answers),
    ``reset``, ``slow:2.5`` (first token after 2.5 s), ``cut:3`` (stream breaks after 3 chunks)."""
    reply: str | None = None
    """Fixed answer text (default: a deterministic sentence derived from the prompt)."""
    replies: list[str] = Field(default_factory=list)
    """Answers for the next successful calls, in order (then ``reply`` or the default applies). Tests script a
    model that answers wrong, then right, this way."""
    max_reply_tokens: int = Field(default=60, gt=0)


class PortkeyRoute(_Strict):
    """Per-deployment Portkey settings."""

    virtual_key: SecretStr | None = None
    provider: str | None = None
    """Portkey provider slug (``openai``, ``anthropic``, ``google`` …) when no virtual key is used."""
    api_key: SecretStr | None = None
    config: str | None = None
    """A Portkey config id or JSON, sent as ``x-portkey-config``."""


class DeploymentConfig(_Strict):
    """One model the router can choose (``models.<name>`` in config)."""

    provider: ProviderName
    model: str | None = None
    """Model id on the wire; defaults to the deployment name."""
    preset: PresetName | None = None
    """For ``openai-compatible``: a known server whose URL and key variable to use."""
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_keys: list[SecretStr] = Field(default_factory=list)
    """Several keys for one provider (a comma-separated string is accepted): a pool, used round-robin."""
    key_weights: list[int] = Field(default_factory=list)
    """Relative share of traffic per key of the pool, in the order of ``keys`` (default: equal)."""
    rpm: int | None = Field(default=None, gt=0)
    """Requests per minute allowed to this deployment (shared by all processes when ``state.redis_url`` is set)."""
    tpm: int | None = Field(default=None, gt=0)
    """Tokens (prompt + completion) per minute allowed to this deployment."""
    max_concurrent: int | None = Field(default=None, ge=1)
    """Calls (answers and open streams) in flight to this deployment at once, per process; a request beyond it
    waits in the admission queue (priority first, up to ``routing.queue_timeout_s``) or goes to another candidate.
    Default: no limit (the HTTP pool itself never caps connections)."""
    hedge: bool | None = None
    """Hedge requests whose first candidate is this deployment (see ``routing.hedge``)."""
    headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    family: Family | None = None
    """claude / gpt / gemini / llama: places the model in the default task table (guessed from the id)."""
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    default_max_tokens: int = Field(default=1024, gt=0)
    input_price_per_mtok: Decimal | None = Field(default=None, ge=0)
    """USD per million input tokens; overrides the price table."""
    output_price_per_mtok: Decimal | None = Field(default=None, ge=0)
    cached_input_price_per_mtok: Decimal | None = Field(default=None, ge=0)
    """USD per million prompt tokens served from the provider's prompt cache (default: the table's, else input)."""
    cache_write_price_per_mtok: Decimal | None = Field(default=None, ge=0)
    """USD per million prompt tokens written to the provider's prompt cache (default: the table's, else input)."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Per-attempt timeout for this deployment (overrides ``routing.timeout_s``)."""
    expected_latency_ms: float | None = Field(default=None, ge=0)
    """Typical latency of an answer: what the ``performance`` strategy assumes until the model has been measured
    (``routing.overtake.min_samples`` calls). Default: a simulated model's ``simulate.latency_ms``; otherwise an
    unmeasured model is tried first once, to measure it."""
    backoff: BackoffConfig | None = None
    """Retry waits of this deployment: the fields given here override ``routing.backoff``'s."""
    warmup: Literal["off", "connect", "request"] = "connect"
    """What ``warmup()`` does here: open a connection (``connect``), also send a one-token request that is paid
    for and recorded like any other (``request``), or nothing (``off``)."""
    stream_usage: bool | None = None
    structured_output: Literal["json_schema", "json_object", "prompt"] | None = None
    """How this server takes a JSON schema: ``json_schema`` (native, OpenAI style), ``json_object`` (JSON mode,
    schema in the prompt) or ``prompt`` (instructions only). Default: what the provider or preset supports."""
    modalities: list[Modality] | None = None
    """Input the model accepts (``text``, ``image``, ``audio``, ``file``). Default: the built-in profile of its model
    id, else text only; requests with other content skip this deployment."""
    reasoning: bool | None = None
    """Whether the model takes a reasoning effort / thinking budget (default: the built-in profile)."""
    api: Literal["chat", "responses"] | None = None
    """Which OpenAI API the adapter speaks: ``chat`` (Chat Completions, the default) or ``responses`` (the Responses
    API, for models served only there). OpenAI and openai-compatible deployments only."""
    portkey: PortkeyRoute | None = None
    simulate: SimulatedBehaviour | None = None
    aliases: list[str] = Field(default_factory=list)
    kind: Literal["chat", "embedding"] | None = None
    """``embedding`` for a model that returns vectors (default: what its built-in profile says, else ``chat``).
    Chat routing never picks an embedding model, and ``embed()`` never picks a chat model."""
    dimensions: int | None = Field(default=None, gt=0)
    """Embedding models: the size of their vectors (default: the profile's; required for unknown models). A model
    that can shorten its vectors (``text-embedding-3-*``, ``gemini-embedding-001``) is asked for this size."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @property
    def model_name(self) -> str:
        """The wire model id (filled in from the deployment name by :func:`load_settings`)."""
        return self.model or ""

    @property
    def keys(self) -> list[str]:
        """All configured API keys, in order, without duplicates."""
        out: list[str] = []
        for k in ([self.api_key] if self.api_key else []) + self.api_keys:
            v = k.get_secret_value()
            if v and v not in out:
                out.append(v)
        return out

    @property
    def resolved_kind(self) -> Literal["chat", "embedding"]:
        """Configured kind, else ``embedding`` when the model id is a known embedding model, else ``chat``."""
        if self.kind is not None:
            return self.kind
        return "embedding" if embedding_profile_for(self.model_name) is not None else "chat"

    @property
    def resolved_family(self) -> Family | None:
        """Configured family, else guessed from the model id, else ``llama`` for local servers."""
        if self.family:
            return self.family
        guess = family_for(self.model_name)
        if guess:
            return guess
        if self.provider == "anthropic":
            return "claude"
        if self.provider == "gemini":
            return "gemini"
        if self.provider == "openai":
            return "gpt"
        if self.preset in ("lmstudio", "ollama", "vllm", "llamacpp"):
            return "llama"
        return None


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
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=lambda: CircuitBreakerConfig())
    queue_timeout_s: float = Field(default=10.0, ge=0)
    """When every candidate is at its rate limit or ``max_concurrent``: how long a request may wait for room (high
    priority first)."""
    hedge: HedgeConfig = Field(default_factory=lambda: HedgeConfig())
    key_reprobe_s: float | None = Field(default=300.0, gt=0)
    """A pool key that failed authentication (401 / 403) is out of its pool this long, then tried again (keys are
    rotated, proxies answer transient 401s); ``null``: out for the life of the process."""
    overtake: OvertakeConfig = Field(default_factory=lambda: OvertakeConfig())


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


class Settings(_Strict):
    """The whole configuration."""

    models: dict[str, DeploymentConfig] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    portkey: PortkeyConfig | None = None
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    source: str = Field(default="defaults", exclude=True)
    """Where the settings came from (a path, ``dict``, ``environment`` or ``simulated``)."""

    def chain(self, task: str) -> list[str]:
        """The configured or default deployment order for ``task`` (for ``embedding``: the embedding models); a task
        the config does not define is a :class:`ConfigError` listing the known ones."""
        chain = self._chains.get(task)
        if chain is None:
            from llm_manager.tasks import unknown_task

            raise unknown_task(self, task)
        return list(chain)

    def task_names(self) -> list[str]:
        """Every task this config routes: the built-in ones, then its own, then ``embedding``."""
        from llm_manager.tasks import known_tasks

        return known_tasks(self)

    @cached_property
    def _chains(self) -> dict[str, tuple[str, ...]]:
        # Computed once: it is on every request's path, and settings do not change after loading. A cached
        # property lives in the instance's __dict__, so reading it skips pydantic's private-attribute lookup
        # (a few microseconds per request).
        return {task: tuple(self._compute_chain(task)) for task in self.task_names()}

    def _compute_chain(self, task: str) -> list[str]:
        configured = self.routing.tasks.get(task)
        if configured:
            return list(dict.fromkeys(self.resolve_name(n) or n for n in configured))  # aliases may repeat a model
        if task == "embedding":
            return [name for name, dep in self.models.items() if dep.resolved_kind == "embedding"]
        by_family: dict[str, list[str]] = {}
        others: list[str] = []
        for name, dep in self.models.items():
            if dep.resolved_kind == "embedding":
                continue  # vectors, not answers: only embed() routes to it
            fam = dep.resolved_family
            (by_family.setdefault(fam, []) if fam else others).append(name)
        chain = [n for fam in DEFAULT_FAMILY_CHAINS.get(task, ()) for n in by_family.get(fam, [])]
        return chain + others

    def aliases(self) -> dict[str, str]:
        """Every alias → deployment name."""
        out = dict(self.routing.aliases)
        for name, dep in self.models.items():
            for alias in dep.aliases:
                out[alias] = name
        return out

    def resolve_name(self, ref: str) -> str | None:
        """The one place a model reference is resolved: a deployment name, an alias, or a wire model id."""
        if ref in self.models:
            return ref
        alias = self.aliases().get(ref)
        if alias:
            return alias
        for name, dep in self.models.items():
            if dep.model_name == ref:
                return name
        return None


def load_settings(source: str | os.PathLike[str] | Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Load, interpolate and validate settings from a YAML path or a dict; raise :class:`ConfigError` on problems."""
    from llm_manager._interpolate import interpolate

    env = os.environ if env is None else env
    if isinstance(source, Mapping):
        raw: Any = dict(source)
        origin = "dict"
    else:
        raw, origin = _read_yaml(Path(source)), str(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping (models:, routing:, …), got {type(raw).__name__}")
    problems: list[str] = []  # every problem of the file, reported in one run
    raw = interpolate(raw, env, problems=problems)
    try:
        settings = _validated(raw)
    except ValidationError as exc:
        from llm_manager.config_problems import problems_after_schema_errors

        problems += [_explain(err) for err in exc.errors()]
        problems += problems_after_schema_errors(raw, exc, _validated, lambda s: _cross_check(s, env))
        raise ConfigError(_bullet(origin, problems)) from None
    settings.source = origin
    problems += _cross_check(settings, env)
    if problems:
        raise ConfigError(_bullet(origin, problems))
    return settings


def _validated(raw: dict[str, Any]) -> Settings:
    settings = Settings.model_validate(raw)
    for name, dep in settings.models.items():
        if not dep.model:
            dep.model = name
    return settings


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path}. Fix: check the path, or run without --config "
            "to use the environment / the simulated models."
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def _bullet(origin: str, problems: list[str]) -> str:
    head = f"invalid configuration ({origin}), {len(problems)} problem{'s' if len(problems) > 1 else ''}:"
    return head + "".join(f"\n  - {p}" for p in problems)


def _explain(err: Any) -> str:
    loc = [str(x) for x in err["loc"] if not str(x).startswith("function-") and str(x) != "[key]"]
    path = ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = sorted(k for k, f in parent.model_fields.items() if not f.exclude) if parent else []
        near = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        return f"{path}: unknown key.{hint} Allowed here: {', '.join(allowed)}."
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"{path}: {err['input']!r} is not allowed. Fix: use one of {expected}."
    if kind == "missing":
        return f"{path}: required. Fix: add `{loc[-1]}:` here."
    return f"{path}: {err['msg']} (got {err.get('input')!r})."


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    i = 0
    while i < len(loc):
        field = model.model_fields.get(loc[i])
        if field is None:
            return None
        ann = field.annotation
        if loc[i] == "models":
            model, i = DeploymentConfig, i + 2
            continue
        sub = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if sub is None:
            return None
        model, i = sub, i + 1
    return model


def _cross_check(s: Settings, env: Mapping[str, str]) -> list[str]:

    problems: list[str] = []
    names = list(s.models)
    for task, chain in s.routing.tasks.items():
        for i, ref in enumerate(chain):
            if s.resolve_name(ref) is None:
                near = difflib.get_close_matches(ref, names + list(s.aliases()), n=1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                problems.append(
                    f"routing.tasks.{task}[{i}]: unknown model {ref!r}.{hint} "
                    f"Defined models: {', '.join(names) or '(none)'}."
                )
        problems += check_task_kinds(s, task, chain)
    problems += check_tasks(s)
    overtake = s.routing.overtake
    if overtake.hold_margin > overtake.margin:
        problems.append(
            f"routing.overtake.hold_margin: {overtake.hold_margin:g} is above margin {overtake.margin:g}. Fix: at most "
            "margin (a model that moved up must not need more to stay there than it needed to get there)."
        )
    for alias, target in s.routing.aliases.items():
        if target not in s.models:
            problems.append(
                f"routing.aliases.{alias}: points at unknown model {target!r}. Fix: use one of {', '.join(names) or '(none)'}."
            )
    for name, dep in s.models.items():
        problems += _check_model(s, name, dep, env)
        problems += check_embedding_config(f"models.{name}", dep)
    return problems


def _check_model(s: Settings, name: str, dep: DeploymentConfig, env: Mapping[str, str]) -> list[str]:
    from llm_manager.vendors import PRESETS, portkey_key_problems

    problems: list[str] = []
    path = f"models.{name}"
    if dep.provider == "openai-compatible" and not (dep.base_url or dep.preset):
        problems.append(
            f"{path}: openai-compatible needs `base_url:` (e.g. http://localhost:1234/v1) "
            f"or `preset:` (groq, openrouter, lmstudio, ollama, vllm, llamacpp)."
        )
    if dep.preset and dep.provider != "openai-compatible":
        problems.append(f"{path}.preset: only valid with provider: openai-compatible.")
    if dep.key_weights and len(dep.key_weights) != len(dep.keys):
        problems.append(
            f"{path}.key_weights: {len(dep.key_weights)} weights for {len(dep.keys)} keys. "
            "Fix: give one weight per key, in the order of api_key then api_keys."
        )
    if any(w <= 0 for w in dep.key_weights):
        problems.append(f"{path}.key_weights: weights must be positive integers.")
    if dep.api is not None and dep.provider not in ("openai", "openai-compatible"):
        problems.append(
            f"{path}.api: only OpenAI and openai-compatible deployments choose their API "
            f"(provider {dep.provider} has one). Fix: remove `api:`."
        )
    elif dep.api == "responses" and s.portkey is not None and s.portkey.route_all:
        problems.append(
            f"{path}.api: responses cannot go through Portkey (portkey.route_all sends the Chat Completions "
            "format). Fix: remove `api: responses`, or route this deployment directly."
        )
    if dep.simulate and dep.provider != "simulated":
        problems.append(f"{path}.simulate: only valid with provider: simulated.")
    preset = PRESETS[dep.preset or dep.provider]
    if not dep.keys and dep.provider != "portkey" and preset.needs_key:
        # A pool variable (OPENAI_API_KEYS) wins over the single key (OPENAI_API_KEY).
        found = next((env[n] for v in preset.key_env for n in (v + "S", v) if env.get(n)), None)
        if found:
            dep.api_keys = [SecretStr(k.strip()) for k in found.split(",") if k.strip()]
        elif not (s.portkey and s.portkey.route_all and dep.provider in ("openai", "anthropic", "gemini")):
            var = preset.key_env[0] if preset.key_env else "the provider's key"
            problems.append(
                f"{path}: no API key. Fix: export {var}=..., or set `api_key: ${{{var}}}` "
                f"(several keys: `api_keys: a,b`)."
            )
    problems += portkey_key_problems(s, name, dep)
    return problems
