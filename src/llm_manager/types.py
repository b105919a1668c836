"""Canonical request / response types shared by every part of llm-manager.

These are provider-neutral: adapters translate them to and from each wire format, and nothing here knows HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from llm_manager.content import (
    AudioPart,
    FilePart,
    ImagePart,
    Modality,
    Part,
    ReasoningPart,
    TextPart,
    modality_of,
    part_chars,
)

__all__ = [
    "confidence_of",
    "LABEL_MAX_CHARS",
    "TEXT_SEPARATOR",
    "AudioPart",
    "FilePart",
    "ImagePart",
    "Modality",
    "Part",
    "Passthrough",
    "Reasoning",
    "ReasoningEffort",
    "ReasoningPart",
    "TextPart",
    "TokenLogprob",
    "TopLogprob",
    "PRIORITIES",
    "TASK_NAME_PATTERN",
    "TASK_TYPES",
    "Attempt",
    "FinishReason",
    "Message",
    "Priority",
    "PromptOptimization",
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

TASK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TaskType = Annotated[str, StringConstraints(pattern=TASK_NAME_PATTERN)]
"""A task name: one of the built-in tasks, or any task the config defines under ``routing.tasks`` (letters,
digits, ``-``, ``_``, ``.``; up to 64). Whether the name is known is checked against the config when routing."""
TASK_TYPES: tuple[str, ...] = ("analysis", "ui-generation", "config-management", "general")
"""The built-in chat tasks (the seeds' table), always defined. ``embedding`` is the built-in task of ``embed()``
requests: it routes embedding models only."""
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
    cache_control: dict[str, Any] | None = None
    """A prompt-caching breakpoint after this tool (Anthropic's ``cache_control``)."""


class ToolChoice(BaseModel):
    """Force one named tool (``tool_choice`` also takes ``"auto"``, ``"none"`` and ``"required"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_TOOL_NAME)


TEXT_SEPARATOR = "\n\n"
"""Where the text of several parts must become one string (a provider taking only a string, token estimates), the
parts are kept apart as paragraphs: joined, words of two parts would run together."""

_USER_PARTS = frozenset({"text", "image", "audio", "file"})
_PARTS_OF: dict[str, frozenset[str]] = {
    "system": frozenset({"text"}),
    "user": _USER_PARTS,
    "assistant": frozenset({"text", "reasoning"}),
    "tool": frozenset({"text", "image", "file"}),
}


class Message(BaseModel):
    """One turn of a conversation. ``content`` is a string or a tuple of parts (:mod:`llm_manager.content`): text,
    images, audio and files on user turns, reasoning on assistant turns. An assistant turn may carry the tool calls
    it made; a ``tool`` turn answers one of them (``tool_call_id``) with the function's result as ``content``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str | tuple[Part, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_fields(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message needs tool_call_id, and only a tool message has one")
        if not isinstance(self.content, str):
            allowed = _PARTS_OF[self.role]
            for part in self.content:
                if part.type not in allowed:
                    raise ValueError(f"a {self.role} message cannot carry {part.type} parts")
        return self

    @property
    def text(self) -> str:
        """The text of the content (text parts kept apart by :data:`TEXT_SEPARATOR`; other parts left out)."""
        content = self.content
        if isinstance(content, str):
            return content
        return TEXT_SEPARATOR.join(p.text for p in content if isinstance(p, TextPart))

    @property
    def parts(self) -> tuple[Part, ...]:
        """The content as parts (a string is one text part)."""
        content = self.content
        if isinstance(content, str):
            return (TextPart(text=content),) if content else ()
        return content

    @property
    def reasoning(self) -> tuple[ReasoningPart, ...]:
        """The reasoning parts of an assistant turn."""
        content = self.content
        return () if isinstance(content, str) else tuple(p for p in content if isinstance(p, ReasoningPart))

    @property
    def modalities(self) -> frozenset[Modality]:
        """The input modalities this turn needs besides text."""
        content = self.content
        if isinstance(content, str):
            return frozenset()
        return frozenset(m for p in content if (m := modality_of(p)) is not None and m != "text")

    @property
    def chars(self) -> int:
        """Characters of content and tool-call arguments, parts counted as the text they weigh (for token
        estimates)."""
        content = self.content
        size = len(content) if isinstance(content, str) else sum(part_chars(p) for p in content)
        return size + sum(len(c.name) + len(c.arguments) for c in self.tool_calls)


class ResponseFormat(BaseModel):
    """Ask for JSON: matching a schema (``json_schema``), or any JSON object (``json_object``, OpenAI's JSON mode).
    Each adapter uses its provider's native mechanism where it has one (OpenAI ``response_format``, Anthropic forced
    tool use, Gemini ``responseJsonSchema`` / ``responseMimeType``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["json_schema", "json_object"] = "json_schema"
    name: str = Field(default="response", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Schema name (OpenAI's ``json_schema.name``, Anthropic's tool name)."""
    json_schema: dict[str, Any] = Field(default_factory=dict)
    """The schema (JSON Schema); empty in ``json_object`` mode."""
    strict: bool = True
    """OpenAI strict mode (the schema is adapted to its rules); ignored elsewhere."""

    @model_validator(mode="after")
    def _schema_for_schema_mode(self) -> ResponseFormat:
        if self.type == "json_schema" and not self.json_schema:
            raise ValueError("json_schema mode needs a schema (type json_object asks for any JSON object)")
        return self

    @property
    def schema_or_object(self) -> dict[str, Any]:
        """The schema, or an open object schema in ``json_object`` mode (for providers that need one)."""
        return self.json_schema if self.type == "json_schema" else {"type": "object"}


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]


class Reasoning(BaseModel):
    """How much the model may think before answering: an effort (OpenAI ``reasoning_effort``) or a token budget
    (Anthropic ``thinking.budget_tokens``, Gemini ``thinkingConfig.thinkingBudget``); each codec translates the one
    given into what its protocol takes (see ``codecs/params.py`` for the table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    effort: ReasoningEffort | None = None
    budget_tokens: int | None = Field(default=None, ge=0)
    """Tokens the model may spend thinking; 0 turns thinking off."""

    @model_validator(mode="after")
    def _one_given(self) -> Reasoning:
        if self.effort is None and self.budget_tokens is None:
            raise ValueError("give an effort or a budget_tokens")
        return self


class Passthrough(BaseModel):
    """Provider-specific fields of the client's request (``prediction``, ``verbosity``, ``cache_control`` on a system
    block, fields this version does not know yet …), as the client sent them in ``protocol``. A deployment speaking the
    same protocol receives them untouched; any other reports them as not sent (``metadata.dropped_params``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: str
    """The codec the fields belong to: ``openai_chat``, ``anthropic_messages``, ``gemini_generate`` …"""
    fields: dict[str, Any]


class TopLogprob(BaseModel):
    """One of the likeliest tokens at a position."""

    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    """The log probability of one answered token, with the likeliest alternatives when asked for."""

    top_logprobs: list[TopLogprob] = Field(default_factory=list)


def confidence_of(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """``exp(mean(logprob))`` over ``logprobs`` (see :mod:`llm_manager.confidence`); ``None`` without any, or with
    a NaN, which no provider means."""
    if not logprobs:
        return None
    values = [t.logprob for t in logprobs]
    if any(math.isnan(v) for v in values):
        return None
    mean = math.fsum(values) / len(values)
    return math.exp(min(0.0, mean))  # a log probability is at most 0; a provider's rounding may say 1e-7


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
    semantic_cache: bool = True
    """Whether an answer cached for another prompt that means the same is acceptable (the semantic cache, when it
    is enabled; ``cache=False`` turns it off too)."""
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
    seed: int | None = None
    """Sampling seed, for repeatable answers where the provider supports it."""
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    top_k: int | None = Field(default=None, gt=0)
    """Sample from the k likeliest tokens only (Anthropic, Gemini, local OpenAI-compatible servers)."""
    logprobs: bool | None = None
    """Return the log probability of each answered token (``Response.logprobs``)."""
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    """With ``logprobs``: this many likeliest alternatives per position."""
    reasoning: Reasoning | None = None
    """How much the model may think first (reasoning effort or thinking budget)."""
    service_tier: str | None = None
    """The provider's processing tier (OpenAI ``auto`` / ``default`` / ``flex`` / ``priority``, Anthropic ``auto`` /
    ``standard_only``)."""
    passthrough: Passthrough | None = None
    """Provider-specific fields, sent untouched to deployments speaking their protocol (the gateway fills it)."""
    max_prompt_tokens: int | None = Field(default=None, gt=0)
    """Shrink the prompt (messages and system prompt) to at most this many tokens before it is sent: tidied, then
    repeated lines and sentences dropped, then the longest texts cut to their head and tail (never inside code or
    JSON). A prompt already within it is sent as it is. ``metadata.prompt`` reports the counts."""

    @model_validator(mode="before")
    @classmethod
    def _prompt_to_messages(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt" in data:
            data = dict(data)  # never mutate the caller's dict
            prompt = data.pop("prompt")
            if prompt is not None:
                if not isinstance(prompt, str | list | tuple):
                    raise ValueError("prompt must be a string or a list of content parts")
                content = prompt if isinstance(prompt, str) else tuple(prompt)
                data["messages"] = [*(data.get("messages") or ()), {"role": "user", "content": content}]
        return data

    @model_validator(mode="after")
    def _hoist_system(self) -> Request:
        # One place for the system prompt: protocols disagree on where it goes, so keep it out of the turn list.
        if any(m.role == "system" for m in self.messages):
            parts = [self.system] if self.system else []
            parts += [m.text for m in self.messages if m.role == "system"]
            self.system = TEXT_SEPARATOR.join(parts)
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
    def modalities(self) -> frozenset[Modality]:
        """Input modalities besides text that the request needs (routing skips models without them)."""
        needed: frozenset[Modality] = frozenset()
        for m in self.messages:
            if not isinstance(m.content, str):
                needed |= m.modalities
        return needed

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
    """Prompt tokens read from the provider's prompt cache (part of ``prompt_tokens``), when reported."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the provider's prompt cache (part of ``prompt_tokens``; Anthropic bills them at
    their own rate)."""
    reasoning_tokens: int = 0
    """Completion tokens the model spent reasoning (part of ``completion_tokens``), when reported."""
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


class PromptOptimization(BaseModel):
    """What ``max_prompt_tokens`` did to a request's prompt (``metadata.prompt``)."""

    max_prompt_tokens: int
    tokens_before: int
    """Prompt tokens as asked: messages and system prompt, plus 4 tokens of framing per message."""
    tokens_after: int
    """Prompt tokens as sent, counted the same way."""
    tokenizer: str
    """The encoding that counted (``o200k_base``), or the estimate's name when no tokenizer is installed."""
    duplicates_removed: int = 0
    """Repeated lines and sentences dropped."""
    tokens_cut: int = 0
    """Tokens (about) cut from the middle of long texts."""
    cut: list[str] = Field(default_factory=list)
    """Which texts were cut: ``system``, ``messages[2]`` …"""


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
    cache_similarity: float | None = None
    """A semantic cache hit: the similarity of the cached prompt that answered (``None`` for any other answer)."""
    deduplicated: bool = False
    """Shared the provider call of an identical request that was already in flight."""
    hedged: bool = False
    """A hedge raced two candidates for this answer."""
    trimmed_messages: int = 0
    """Conversations: oldest messages left out of this request to fit the model's context window."""
    simulated: bool = False
    """True when a simulated (offline) model answered: the content is not from a real LLM."""
    prompt: PromptOptimization | None = None
    """With ``max_prompt_tokens``: the prompt's tokens before and after it was shrunk."""
    task: TaskType = "general"
    dropped_params: list[str] = Field(default_factory=list)
    """Parameters of the request the deployment that answered could not honour, so they were not sent (canonical
    names, or the client's own for provider-specific fields). Never dropped without a word: see ``warnings``."""
    warnings: list[str] = Field(default_factory=list)
    """What the caller should know about how the answer was obtained (each dropped parameter, and why)."""


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
    reasoning: str | None = None
    """The model's reasoning (thinking) before its answer, when the provider returns it."""
    reasoning_signature: str | None = None
    """The provider's signature of that reasoning (Anthropic, Gemini), needed to send it back in a later turn."""
    logprobs: list[TokenLogprob] | None = None
    """Per-token log probabilities, when the request asked for them and the provider returned them."""
    system_fingerprint: str | None = None
    """The provider's backend configuration id (OpenAI ``system_fingerprint``), when it sends one."""
    usage: Usage = Field(default_factory=Usage)
    metadata: ResponseMetadata

    @computed_field  # type: ignore[prop-decorator]
    @property
    def confidence(self) -> float | None:
        """How sure the model was of its answer, 0 to 1: ``exp(mean(logprob))`` over the answer's tokens (the
        geometric mean of their probabilities; :mod:`llm_manager.confidence`). ``None`` unless the provider
        returned log probabilities (ask for them with ``logprobs=True``)."""
        return confidence_of(self.logprobs)

    def message(self) -> Message:
        """The answer as an assistant turn, to continue the conversation with (reasoning kept, signed, first)."""
        reasoning = (
            (ReasoningPart(text=self.reasoning or "", signature=self.reasoning_signature),)
            if self.reasoning or self.reasoning_signature
            else ()
        )
        content: str | tuple[Part, ...] = (*reasoning, TextPart(text=self.content)) if reasoning else self.content
        return Message(role="assistant", content=content, tool_calls=tuple(self.tool_calls))

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
    reasoning: str = ""
    """A piece of the model's reasoning (thinking), streamed before its answer."""
    reasoning_signature: str = ""
    """A piece of the reasoning's signature (Anthropic's ``signature_delta``, Gemini's thought signature), which a
    client sends back with the reasoning to continue after a tool call."""
    logprobs: list[TokenLogprob] | None = None
    """Log probabilities of this delta's tokens, when asked for."""
    deployment: str
    model: str
    response: Response | None = None
    """On ``done``: the assembled response with usage, finish reason and metadata."""
