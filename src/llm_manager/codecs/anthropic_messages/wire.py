"""Messages API wire shapes as typed models: what a client sends (strict: nothing is coerced) and what the gateway
answers. The gateway validates bodies with them and its OpenAPI document is generated from them.

Unknown fields are allowed and kept (``model_extra``): they are the client's Anthropic-specific fields, passed
through to deployments that speak this protocol.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from llm_manager.codecs._validate import TOOL_NAME, AnswerObject, ClientObject

__all__ = [
    "AnthropicError",
    "Block",
    "Message",
    "MessageEvent",
    "MessagesRequest",
    "SystemBlock",
]

_In = ClientObject
_Out = AnswerObject


# -- sources and blocks --------------------------------------------------------------------------------------------


class Base64Source(_In):
    type: Literal["base64"]
    media_type: str = Field(examples=["image/png", "application/pdf"])
    data: str


class URLSource(_In):
    type: Literal["url"]
    url: str


class TextSource(_In):
    type: Literal["text"]
    media_type: Literal["text/plain"] = "text/plain"
    data: str


ImageSource = Annotated[Base64Source | URLSource, Field(discriminator="type")]
DocumentSource = Annotated[Base64Source | URLSource | TextSource, Field(discriminator="type")]


class TextBlock(_In):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None


class ImageBlock(_In):
    type: Literal["image"]
    source: ImageSource
    cache_control: dict[str, Any] | None = None


class DocumentBlock(_In):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None
    cache_control: dict[str, Any] | None = None


class ThinkingBlock(_In):
    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(_In):
    type: Literal["redacted_thinking"]
    data: str


class ToolUseBlock(_In):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


_ResultPart = Annotated[TextBlock | ImageBlock | DocumentBlock, Field(discriminator="type")]


class ToolResultBlock(_In):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[_ResultPart] = ""
    is_error: bool | None = None
    cache_control: dict[str, Any] | None = None


Block = Annotated[
    TextBlock | ImageBlock | DocumentBlock | ThinkingBlock | RedactedThinkingBlock | ToolUseBlock | ToolResultBlock,
    Field(discriminator="type"),
]
SystemBlock = TextBlock


class Turn(_In):
    role: Literal["user", "assistant"]
    content: str | list[Block]


# -- tools and options ---------------------------------------------------------------------------------------------


class MessagesTool(_In):
    """A client tool (server tools, such as web search, are not routed)."""

    type: Literal["custom"] | None = None
    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    input_schema: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class _Choice(_In):
    disable_parallel_tool_use: bool | None = None


class AutoChoice(_Choice):
    type: Literal["auto"]


class AnyChoice(_Choice):
    type: Literal["any"]


class NoneChoice(_In):
    type: Literal["none"]


class ToolChoiceNamed(_Choice):
    type: Literal["tool"]
    name: str


ToolChoice = Annotated[AutoChoice | AnyChoice | NoneChoice | ToolChoiceNamed, Field(discriminator="type")]


class ThinkingEnabled(_In):
    type: Literal["enabled"]
    budget_tokens: int = Field(ge=0)


class ThinkingDisabled(_In):
    type: Literal["disabled"]


Thinking = Annotated[ThinkingEnabled | ThinkingDisabled, Field(discriminator="type")]


class Metadata(_In):
    user_id: str | None = None


class OutputFormat(_In):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_In):
    format: OutputFormat | None = None


# -- the request ---------------------------------------------------------------------------------------------------


class MessagesRequest(_In):
    """The body of ``POST /v1/messages``. Fields not listed here are passed untouched to deployments that speak the
    Messages API, and named in ``x-llm-dropped-params`` by any other that answers."""

    model: str = Field(min_length=1, description="a deployment name, an alias, or task:<type>")
    max_tokens: int = Field(ge=1)
    messages: list[Turn] = Field(min_length=1)
    system: str | list[SystemBlock] | None = None
    stream: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    stop_sequences: list[str] | None = None
    metadata: Metadata | None = None
    tools: list[MessagesTool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = Field(default=None, description="extended thinking (a reasoning budget)")
    service_tier: Literal["auto", "standard_only"] | None = None
    output_config: OutputConfig | None = None


# -- answers -------------------------------------------------------------------------------------------------------


class MessagesUsage(_Out):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class Message(_Out):
    """A whole answer."""

    id: str = Field(pattern=r"^msg_")
    type: Literal["message"]
    role: Literal["assistant"]
    content: list[dict[str, Any]] = Field(description="thinking, text and tool_use blocks")
    model: str
    stop_reason: str | None
    stop_sequence: str | None
    usage: MessagesUsage


class MessageEvent(BaseModel):
    """One server-sent event of a streamed message; a stream that fails after it started ends with an error event
    and no message_stop."""

    event: Literal[
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "error",
    ]
    data: str = Field(pattern=r"^\{.*\}$", description="the event's object, as JSON")


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicError(BaseModel):
    """Anthropic's error shape."""

    type: Literal["error"]
    error: AnthropicErrorDetail
    request_id: str | None = None
