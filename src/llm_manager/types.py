"""Canonical request / response types shared by every part of llm-manager.

These are provider-neutral: adapters translate them to and from each wire format, and nothing here knows HTTP.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = [
    "LABEL_MAX_CHARS",
    "PRIORITIES",
    "TASK_TYPES",
    "Attempt",
    "FinishReason",
    "Message",
    "Priority",
    "Request",
    "Response",
    "ResponseFormat",
    "ResponseMetadata",
    "Role",
    "StreamEvent",
    "TaskType",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "Usage",
    "label_problem",
]

TaskType = Literal["analysis", "ui-generation", "config-management", "general", "embedding"]
TASK_TYPES: tuple[TaskType, ...] = ("analysis", "ui-generation", "config-management", "general")
"""The chat tasks. ``embedding`` is the task of ``embed()`` requests: it routes embedding models only."""
Priority = Literal["low", "medium", "high"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high")
Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "error"]

LABEL_MAX_CHARS = 256
"""The longest ``user`` and ``project`` (and request id) accepted. Each is a column of the spend ledger with an index
on it, and PostgreSQL refuses an index entry past ~2.7 kB: one request carrying a 5,000-character ``user`` used to
stop its replica's ledger. 256 characters leave room for any id, e-mail address or hash."""


def label_problem(name: str, value: str | None) -> str | None:
    """What is wrong with ``value`` as the ledger label ``name`` (``None``: nothing)."""
    if value is None or len(value) <= LABEL_MAX_CHARS:
        return None
    return (
        f"{name} is {len(value)} characters long; at most {LABEL_MAX_CHARS} are accepted (it is stored and indexed "
        "in the spend ledger): send a shorter id, such as a hash of it"
    )


_TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class ToolCall(BaseModel):
    """A function call the model asked for. ``arguments`` is the JSON text the model wrote (as OpenAI sends
    it): it may not parse, and the caller decides what to do with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    arguments: str = "{}"


class ToolCallDelta(BaseModel):
    """A piece of a streamed tool call: the first piece for an ``index`` carries ``id`` and ``name``, later
    pieces append to ``arguments``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Tool(BaseModel):
    """A function the model may call; ``parameters`` is the JSON Schema of its arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    """OpenAI strict function calling; ignored by providers without it."""


class ToolChoice(BaseModel):
    """Force one named tool (``tool_choice`` also takes ``"auto"``, ``"none"`` and ``"required"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_TOOL_NAME)


class Message(BaseModel):
    """One turn of a conversation. An assistant turn may carry the tool calls it made; a ``tool`` turn answers
    one of them (``tool_call_id``) with the function's result as ``content``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_fields(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message needs tool_call_id, and only a tool message has one")
        return self

    @property
    def chars(self) -> int:
        """Characters of content and tool-call arguments (for token estimates)."""
        return len(self.content) + sum(len(c.name) + len(c.arguments) for c in self.tool_calls)


class ResponseFormat(BaseModel):
    """Ask for JSON matching a schema. Each adapter uses its provider's native mechanism where it has one
    (OpenAI ``response_format`` JSON schema, Anthropic forced tool use, Gemini ``responseJsonSchema``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="response", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Schema name (OpenAI's ``json_schema.name``, Anthropic's tool name)."""
    json_schema: dict[str, Any]
    strict: bool = True
    """OpenAI strict mode (the schema is adapted to its rules); ignored elsewhere."""


class Request(BaseModel):
    """What the caller asks for. Give ``prompt`` or ``messages`` (or both: the prompt is appended as a user turn)."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1)
    """The conversation, oldest first. A ``system`` message here is merged into :attr:`system`."""
    system: str | None = None
    """System prompt; adapters place it where each protocol wants it."""
    task: TaskType = "general"
    """Task type: picks the routing chain."""
    model: str | None = None
    """Preferred deployment (name or alias); tried first."""
    fallback: bool = True
    """With ``model`` set: whether the task chain may answer when that deployment fails."""
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: list[str] | None = None
    priority: Priority = "medium"
    user: str | None = None
    """Who the request is for (cost attribution)."""
    project: str | None = None
    """Which project pays (cost attribution)."""
    gateway_key: str | None = None
    """Id of the gateway key the request came through (set by the gateway; budgets and the ledger use it)."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Free-form tags carried into logs and the ledger."""

    @field_validator("user", "project")
    @classmethod
    def _bounded_label(cls, value: str | None, info: ValidationInfo) -> str | None:
        problem = label_problem(info.field_name or "label", value)
        if problem is not None:
            raise ValueError(problem)
        return value

    cache: bool = True
    """Whether a cached or de-duplicated answer is acceptable."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Overall deadline for this request (all attempts together); defaults to ``routing.deadline_s``."""
    response_format: ResponseFormat | None = None
    """Structured output: usually set by ``query_with_schema`` rather than by hand."""
    tools: list[Tool] | None = None
    """Functions the model may call; each adapter translates them to its provider's tool format."""
    tool_choice: Literal["auto", "none", "required"] | ToolChoice | None = None
    """Whether the model may (``auto``), must (``required``, or a named tool) or must not call a tool."""
    parallel_tool_calls: bool | None = None
    """``False`` asks for at most one tool call per answer."""

    @model_validator(mode="before")
    @classmethod
    def _prompt_to_messages(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt" in data:
            data = dict(data)  # never mutate the caller's dict
            prompt = data.pop("prompt")
            if prompt is not None:
                if not isinstance(prompt, str):
                    raise ValueError("prompt must be a string")
                data["messages"] = [*(data.get("messages") or ()), {"role": "user", "content": prompt}]
        return data

    @model_validator(mode="after")
    def _hoist_system(self) -> Request:
        # One place for the system prompt: protocols disagree on where it goes, so keep it out of the turn list.
        if any(m.role == "system" for m in self.messages):
            parts = [self.system] if self.system else []
            parts += [m.content for m in self.messages if m.role == "system"]
            self.system = "\n\n".join(parts)
            self.messages = [m for m in self.messages if m.role != "system"]
            if not self.messages:
                raise ValueError("messages must contain at least one user or assistant turn")
        if self.tool_choice is not None and not self.tools and self.tool_choice != "none":
            raise ValueError("tool_choice needs tools")
        if isinstance(self.tool_choice, ToolChoice) and self.tools:
            if self.tool_choice.name not in {t.name for t in self.tools}:
                raise ValueError(f"tool_choice names {self.tool_choice.name!r}, which is not among the tools")
        return self

    @property
    def prompt_chars(self) -> int:
        """Characters of input, for cheap token estimates."""
        tools = sum(len(t.name) + len(t.description or "") + len(str(t.parameters)) for t in self.tools or ())
        return sum(m.chars for m in self.messages) + len(self.system or "") + tools


class Usage(BaseModel):
    """Token counts (as reported by the provider, or estimated and flagged)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from the provider's prompt cache, when reported."""
    cost: Decimal | None = None
    """Price of this call in USD when known; ``None`` means unknown, never free."""
    estimated: bool = False
    """True when the provider reported no usage and the counts are estimates."""


class Attempt(BaseModel):
    """One try at one deployment, successful or not."""

    deployment: str
    provider: str
    model: str
    ok: bool
    error_code: str | None = None
    error: str | None = None
    status_code: int | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    waited_ms: float = 0.0
    """Backoff slept before this attempt."""
    skipped: bool = False
    """True when the deployment was not called at all (context window too small, circuit open, at its limit)."""
    key: str | None = None
    """Fingerprint of the API key used (never the key)."""
    hedge: bool = False
    """True for the attempts of a hedged race."""
    cost: Decimal | None = None
    """Cost of this attempt when it was paid for but did not answer (a hedge's loser: its prompt, estimated)."""


class ResponseMetadata(BaseModel):
    """How the answer was obtained."""

    request_id: str
    latency_ms: float
    """Wall time from the call to the full answer, including retries and fallbacks."""
    time_to_first_chunk_ms: float | None = None
    retries: int = 0
    """Attempts beyond the first (same or other deployment)."""
    attempts: list[Attempt] = Field(default_factory=list)
    """Every candidate tried, in order, with its error."""
    cached: bool = False
    """Served from the response cache (no provider call)."""
    deduplicated: bool = False
    """Shared the provider call of an identical request that was already in flight."""
    hedged: bool = False
    """A hedge raced two candidates for this answer."""
    trimmed_messages: int = 0
    """Conversations: oldest messages left out of this request to fit the model's context window."""
    simulated: bool = False
    """True when a simulated (offline) model answered: the content is not from a real LLM."""
    task: TaskType = "general"


class Response(BaseModel):
    """The answer."""

    id: str
    content: str
    model: str
    """The model that answered, as the provider names it."""
    deployment: str
    """The configured deployment that answered."""
    provider: str
    finish_reason: FinishReason | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Functions the model asked to call (``finish_reason`` is then ``tool_calls``)."""
    usage: Usage = Field(default_factory=Usage)
    metadata: ResponseMetadata

    @property
    def fallback_used(self) -> bool:
        """Whether someone other than the first candidate answered."""
        return (
            any(not a.ok and not a.skipped for a in self.metadata.attempts)
            and len({a.deployment for a in self.metadata.attempts}) > 1
        )


class StreamEvent(BaseModel):
    """One event of a stream: ``delta`` events carry text (or a piece of a tool call); the final ``done`` event
    carries the full response."""

    type: Literal["delta", "done"]
    delta: str = ""
    tool_call: ToolCallDelta | None = None
    deployment: str
    model: str
    response: Response | None = None
    """On ``done``: the assembled response with usage, finish reason and metadata."""
