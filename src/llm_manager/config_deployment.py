"""One deployment, a ``models.<name>`` entry of the settings: its provider, keys, limits, prices, timeouts and
capabilities, with what a simulated model does (:class:`SimulatedBehaviour`) and its Portkey route.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from llm_manager.config_routing import BackoffConfig
from llm_manager.config_sections import _Strict
from llm_manager.embedding_profiles import embedding_profile_for
from llm_manager.profiles import Family, Modality, family_for

__all__ = ["DeploymentConfig", "PortkeyRoute", "PresetName", "ProviderName", "SimulatedBehaviour"]

ProviderName = Literal["openai", "anthropic", "gemini", "openai-compatible", "portkey", "simulated"]
PresetName = Literal["groq", "openrouter", "lmstudio", "ollama", "vllm", "llamacpp"]


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
