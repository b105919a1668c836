"""The OpenAI Responses API's wire shapes (``POST /v1/responses``), as typed models.

The request models are strict (``"1"`` is not a number, an unknown field inside an item is an error) and are what
:mod:`.request` validates a client's body with; the top level allows unknown fields, which are passed through to
Responses deployments and reported as not sent to any other. The answer and stream models describe what
:mod:`.response` and :mod:`.stream` emit; they generate the gateway's OpenAPI document (:func:`openapi_schemas`)
and the contract tests hold the encoders to them and to the official SDK's types.

Only what the gateway serves is modelled: function tools (not OpenAI's hosted tools), text, image, file and audio
input, and message, function-call and reasoning output.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputMessage",
    "ReasoningItem",
    "ResponseObject",
    "ResponseStreamEvent",
    "ResponsesRequest",
    "openapi_schemas",
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Open(BaseModel):
    """An answer shape: clients must ignore fields they do not know, so the schema leaves room for more."""

    model_config = ConfigDict(extra="allow")


# -- request: input items ---------------------------------------------------------------------------------------


class InputText(_Strict):
    type: Literal["input_text"]
    text: str


class InputImage(_Strict):
    """An image by URL (``https:`` or a ``data:`` URL) or an uploaded file's id."""

    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] = "auto"


class InputFile(_Strict):
    """A document: inline (``file_data``, a ``data:`` URL or base64 with ``filename``), by URL or by file id."""

    type: Literal["input_file"]
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class AudioData(_Strict):
    data: str
    """Base64 audio."""
    format: Literal["wav", "mp3"]


class InputAudio(_Strict):
    type: Literal["input_audio"]
    input_audio: AudioData


class OutputTextPart(_Strict):
    """Text of an earlier assistant turn (as the API returned it)."""

    type: Literal["output_text"]
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] | None = None


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: str


InputPart = Annotated[InputText | InputImage | InputFile | InputAudio, Field(discriminator="type")]
MessagePart = Annotated[
    InputText | InputImage | InputFile | InputAudio | OutputTextPart | RefusalPart, Field(discriminator="type")
]


class InputMessage(_Strict):
    """A turn; ``type`` may be left out (OpenAI's "easy" input message)."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[MessagePart]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallItem(_Strict):
    """A function call the model made earlier (sent back with its output)."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallOutputItem(_Strict):
    """The result of a function call: text, or parts."""

    type: Literal["function_call_output"]
    call_id: str
    output: str | list[InputPart]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class SummaryText(_Strict):
    type: Literal["summary_text"]
    text: str


class ReasoningText(_Strict):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(_Strict):
    """The model's reasoning of an earlier turn (``encrypted_content`` carries a provider's signature back)."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


InputItem = InputMessage | FunctionCallItem | FunctionCallOutputItem | ReasoningItem


# -- request: the rest --------------------------------------------------------------------------------------------


class FunctionTool(_Strict):
    """A function the model may call (the Responses API's flat shape, not Chat Completions' nested one)."""

    type: Literal["function"]
    name: str
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class FunctionChoice(_Strict):
    type: Literal["function"]
    name: str


class TextFormatText(_Strict):
    type: Literal["text"]


class TextFormatJsonObject(_Strict):
    type: Literal["json_object"]


class TextFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextConfig(_Strict):
    format: Annotated[TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")] = (
        Field(default_factory=lambda: TextFormatText(type="text"))
    )
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(_Strict):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesRequest(BaseModel):
    """The body of ``POST /v1/responses``. Fields not listed here are passed through to deployments that speak the
    Responses API and named in ``x-llm-dropped-params`` by any other."""

    model_config = ConfigDict(strict=True, extra="allow")

    model: str
    """A deployment, an alias or ``task:<name>``."""
    input: str | list[InputItem] | None = None
    """A user message, or items (messages, function calls and their outputs, reasoning)."""
    instructions: str | None = None
    """A system message, placed before the input (and before the stored conversation)."""
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning: ReasoningConfig | None = None
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = None
    user: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    """Keep the response (default true) for ``GET /v1/responses/{id}`` and ``previous_response_id``."""
    previous_response_id: str | None = None
    """Continue a stored response: its input and output come before this request's input."""
    stream: bool | None = None


# -- the answer -----------------------------------------------------------------------------------------------------


class OutputText(_Open):
    type: Literal["output_text"]
    text: str
    annotations: list[Any]
    logprobs: list[Any] | None = None


class OutputMessage(_Open):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]


class OutputFunctionCall(_Open):
    id: str
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"]


class OutputSummary(_Open):
    type: Literal["summary_text"]
    text: str


class OutputReasoning(_Open):
    id: str
    type: Literal["reasoning"]
    summary: list[OutputSummary]
    encrypted_content: str | None = None


OutputItem = Annotated[OutputMessage | OutputFunctionCall | OutputReasoning, Field(discriminator="type")]


class InputTokensDetails(_Open):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(_Open):
    reasoning_tokens: int


class ResponseUsage(_Open):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(_Open):
    code: str
    message: str


class IncompleteDetails(_Open):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseObject(_Open):
    """A response (``object: response``): what ``POST`` answers, ``GET /v1/responses/{id}`` returns and stream events
    carry."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "in_progress", "failed"]
    model: str
    output: list[OutputItem]
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    parallel_tool_calls: bool
    previous_response_id: str | None
    temperature: float | None
    top_p: float | None
    tool_choice: Any
    tools: list[Any]
    text: Any
    reasoning: Any
    store: bool
    metadata: dict[str, str]
    user: str | None
    usage: ResponseUsage | None


class InputItemList(_Open):
    """``GET /v1/responses/{id}/input_items``: the input the response answered, newest first unless ``order=asc``."""

    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedResponse(_Open):
    id: str
    object: Literal["response.deleted"]
    deleted: Literal[True]


class ResponseStreamEvent(_Open):
    """One server-sent event of a streamed response (``event:`` names its ``type``). The sequence is
    ``response.created``, ``response.in_progress``, then per output item ``response.output_item.added`` … its
    deltas … ``response.output_item.done``, then ``response.completed`` (or ``response.incomplete``); a failure
    after the start is an ``error`` event followed by ``response.failed``."""

    type: str
    sequence_number: int
    response: ResponseObject | None = None
    item: dict[str, Any] | None = None
    output_index: int | None = None
    content_index: int | None = None
    item_id: str | None = None
    delta: str | None = None
    text: str | None = None
    arguments: str | None = None


def openapi_schemas() -> dict[str, Any]:
    """The JSON schemas of the request, the answers and the events (and what they refer to), for the gateway's
    OpenAPI document: generated from the models above, so the document cannot drift from what is decoded."""
    out: dict[str, Any] = {}
    models = (ResponsesRequest, ResponseObject, InputItemList, DeletedResponse, ResponseStreamEvent)
    for model in models:
        # The parts' plain names (InputText, FunctionTool …) are prefixed: other codecs' schemas share the document.
        schema = model.model_json_schema(ref_template="#/components/schemas/Responses{model}", by_alias=True)
        out.update({f"Responses{name}": sub for name, sub in schema.pop("$defs", {}).items()})
        out[model.__name__] = schema
    return out
