"""Chat Completions wire shapes as typed models: what a client sends (strict: nothing is coerced) and what the
gateway answers. The gateway validates bodies with them and its OpenAPI document is generated from them.

Unknown fields are allowed and kept (``model_extra``): they are the client's provider-specific fields, passed
through to deployments that speak this protocol.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from llm_manager.codecs._validate import TOOL_NAME, AnswerObject, ClientObject

__all__ = [
    "AssistantMessage",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionEvent",
    "ChatCompletionRequest",
    "ChatMessage",
    "ContentPart",
    "Error",
    "FunctionMessage",
    "SystemMessage",
    "ToolMessage",
    "UserMessage",
]

_In = ClientObject
_Out = AnswerObject


# -- content parts -------------------------------------------------------------------------------------------------


class TextContent(_In):
    type: Literal["text"]
    text: str


class ImageURL(_In):
    url: str = Field(description="an http(s) URL, or the image inline as a data: URL (data:image/png;base64,…)")
    detail: Literal["auto", "low", "high"] | None = None


class ImageContent(_In):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_In):
    data: str = Field(description="the recording, base64")
    format: Literal["wav", "mp3"]


class AudioContent(_In):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileData(_In):
    file_data: str | None = Field(default=None, description="the file inline as a data: URL (or bare base64 PDF)")
    file_id: str | None = Field(default=None, description="an uploaded file's id (OpenAI deployments only)")
    filename: str | None = None


class FileContent(_In):
    type: Literal["file"]
    file: FileData


class RefusalContent(_In):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextContent | ImageContent | AudioContent | FileContent, Field(discriminator="type")]
"""A part of a user turn."""
_AssistantPart = Annotated[TextContent | RefusalContent, Field(discriminator="type")]


# -- messages ------------------------------------------------------------------------------------------------------


class FunctionCall(_In):
    name: str
    arguments: str


class ToolCallIn(_In):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_In):
    role: Literal["system", "developer"]
    content: str | list[TextContent]
    name: str | None = None


class UserMessage(_In):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(_In):
    role: Literal["assistant"]
    content: str | list[_AssistantPart] | None = None
    tool_calls: list[ToolCallIn] | None = None
    function_call: FunctionCall | None = Field(default=None, description="legacy: a call to one of functions")
    refusal: str | None = None
    name: str | None = None


class ToolMessage(_In):
    role: Literal["tool"]
    content: str | list[TextContent]
    tool_call_id: str


class FunctionMessage(_In):
    """Legacy: the result of a ``function_call``."""

    role: Literal["function"]
    name: str
    content: str | None = None


ChatMessage = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage, Field(discriminator="role")
]


# -- tools and formats ---------------------------------------------------------------------------------------------


class FunctionDef(_In):
    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="a JSON Schema")
    strict: bool | None = None


class ChatTool(_In):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_In):
    name: str


class NamedToolChoice(_In):
    type: Literal["function"]
    function: NamedFunction


class TextFormat(_In):
    type: Literal["text"]


class JsonObjectFormat(_In):
    type: Literal["json_object"]


class JsonSchemaSpec(_In):
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema", description="a JSON Schema the answer must match")
    strict: bool | None = None


class JsonSchemaFormat(_In):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class StreamOptions(_In):
    include_usage: bool | None = None


# -- the request ---------------------------------------------------------------------------------------------------


class ChatCompletionRequest(_In):
    """The body of ``POST /v1/chat/completions``. Fields not listed here are passed untouched to deployments that
    speak Chat Completions, and named in ``x-llm-dropped-params`` by any other that answers."""

    model: str = Field(
        min_length=1, description="a deployment name, an alias, or task:<type> (GET /v1/models lists them)"
    )
    messages: list[ChatMessage] = Field(min_length=1, description="the conversation, oldest first")
    stream: bool | None = Field(default=None, description="answer as server-sent events")
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1, description="not OpenAI's; local servers (vLLM …) take it")
    n: int | None = Field(default=None, ge=1, le=128, description="choices: each one a call of its own")
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    response_format: ResponseFormat | None = None
    tools: list[ChatTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDef] | None = Field(default=None, description="legacy: tools")
    function_call: Literal["none", "auto"] | NamedFunction | None = Field(
        default=None, description="legacy: tool_choice"
    )
    user: str | None = Field(default=None, description="who the request is for (cost attribution)")
    service_tier: str | None = None
    # OpenAI-only fields, passed through to OpenAI-protocol deployments (listed for the document).
    logit_bias: dict[str, float] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    prediction: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None


PASSTHROUGH = ("logit_bias", "metadata", "store", "prediction", "verbosity", "modalities", "audio")
"""Known fields with no canonical counterpart: sent untouched to Chat Completions deployments, reported by others."""


# -- answers -------------------------------------------------------------------------------------------------------


class ToolCallOut(_Out):
    id: str
    type: Literal["function"]
    function: FunctionCall


class TopLogprob(_Out):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(_Out):
    content: list[TokenLogprob] | None


class AnswerMessage(_Out):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCallOut] | None = None
    reasoning_content: str | None = Field(default=None, description="the model's reasoning, when it returned it")


class Choice(_Out):
    index: int
    message: AnswerMessage
    finish_reason: str
    logprobs: ChoiceLogprobs | None


class PromptTokensDetails(_Out):
    cached_tokens: int


class CompletionTokensDetails(_Out):
    reasoning_tokens: int


class Usage(_Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatCompletion(_Out):
    """A whole answer."""

    id: str = Field(pattern=r"^chatcmpl-")
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[Choice]
    usage: Usage


class ChunkDelta(_Out):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(_Out):
    index: int
    delta: ChunkDelta
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(_Out):
    """One piece of a streamed answer (the ``data`` of a :class:`ChatCompletionEvent`)."""

    id: str = Field(pattern=r"^chatcmpl-")
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ChatCompletionEvent(BaseModel):
    """One server-sent event of a streamed chat completion: a ChatCompletionChunk per piece, one with the finish
    reason, with stream_options.include_usage one with empty choices and the usage, then [DONE]. A stream that fails
    after it started (an upstream break, its deadline, the gateway shutting down) ends with an Error instead, and no
    [DONE]."""

    data: str = Field(
        pattern=r"^(\[DONE\]|\{.*\})$", description="a ChatCompletionChunk or an Error, as JSON; or [DONE]"
    )


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error", "api_error"])
    param: str | None
    code: str | None = Field(examples=["model_not_found", "timeout"])


class Error(BaseModel):
    """OpenAI's error shape; a stream that fails after it started sends it as its last event."""

    error: ErrorDetail
