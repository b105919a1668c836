"""The OpenAI wire format: chat-completion bodies in, ``chat.completion`` objects and chunks out.

Pure functions over dicts and bytes (no HTTP here), so the app module stays a thin router.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from llm_manager import _json
from llm_manager.codecs.base import WireError
from llm_manager.codecs.openai_chat.ingress import decode_client_request
from llm_manager.codecs.openai_chat.tools import calls_to_wire
from llm_manager.config import DeploymentConfig, Settings
from llm_manager.server.dropped import dropped_headers
from llm_manager.tasks import known_tasks
from llm_manager.types import Message, PromptOptimization, Response, TokenLogprob, ToolCallDelta, label_problem

__all__ = [
    "BadBody",
    "ChunkWriter",
    "body_id",
    "client_prefs",
    "ParsedChat",
    "UnknownModel",
    "completion_body",
    "model_objects",
    "models_body",
    "parse_chat",
    "response_headers",
    "route",
    "prompt_headers",
    "steer",
    "typed",
]

PROMPT_BUDGET_HEADER = "x-llm-max-prompt-tokens"
"""Shrink the prompt to this many tokens (the request's ``max_prompt_tokens``)."""
T = TypeVar("T")


_TYPE_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "an object",
    list: "an array",
}
_JSON_NAMES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}


def typed(value: Any, kind: type[T], field: str) -> T | None:
    """``value`` when it is JSON of type ``kind`` (``float``: any number), ``None`` when absent or null; otherwise
    :class:`BadBody` naming ``field``. Nothing is coerced: ``"false"`` is not a boolean, ``true`` not a number."""
    if value is None:
        return None
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, int | float if kind is float else kind):
        got = _JSON_NAMES.get(type(value), "array")
        raise BadBody(f"{field} must be {_TYPE_NAMES[kind]}, not {got} {_json.dumps(value)[:40].decode()}", field)
    return cast(T, value)


BadBody = WireError
"""The body is not a valid request; ``param`` names the field (the gateway answers 400)."""


class UnknownModel(Exception):
    """``model`` names no deployment, alias or ``task:*`` pseudo-model."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model


@dataclass(slots=True)
class ParsedChat:
    """A chat-completion request turned into :class:`Request` preferences."""

    messages: list[Message]
    prefs: dict[str, Any]
    stream: bool
    include_usage: bool
    n: int = 1

    @property
    def count(self) -> int:
        return self.n

    def choices(self) -> list[list[Message]]:
        """The messages of each choice asked for (``n`` copies)."""
        return [self.messages] * self.n


def parse_chat(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedChat:
    """Decode an OpenAI chat body with the Chat Completions codec, plus the ``x-llm-*`` steering headers.

    Raises :class:`BadBody` or :class:`UnknownModel`; value ranges the wire model does not bound are left to
    ``LLMManager.request``, whose :class:`~llm_manager.errors.ConfigError` already names the field.
    """
    client = decode_client_request(body)
    messages, prefs = client_prefs(client, headers, settings)
    return ParsedChat(messages, prefs, client.stream, client.include_usage, client.n)


class DecodedClient(Protocol):
    """A client's chat request as an ingress codec decodes it (``ClientRequest`` of Chat Completions, Messages)."""

    model: str
    fields: dict[str, Any]
    user: str | None


def client_prefs(
    client: DecodedClient, headers: Mapping[str, str], settings: Settings
) -> tuple[list[Message], dict[str, Any]]:
    """A decoded client request's messages, and its other fields with the routing (:func:`route`) and the
    ``x-llm-*`` steering (:func:`steer`) as :class:`Request` preferences (every chat ingress reads them alike)."""
    prefs = route(client.model, headers, settings)
    steer(headers, client.user, prefs)
    fields = dict(client.fields)
    messages: list[Message] = fields.pop("messages")
    prefs.update(fields)
    return messages, prefs


def steer(headers: Mapping[str, str], user: Any, prefs: dict[str, Any]) -> None:
    """Who pays and whether a cached answer will do: the body's user, unless ``x-llm-user`` says otherwise, and
    ``x-llm-project`` / ``x-llm-cache: no-store | no-semantic`` (every ingress reads them the same way)."""
    header = headers.get("x-llm-user")
    user = header or user
    if user is not None:
        prefs["user"] = user
    if headers.get("x-llm-project"):
        prefs["project"] = headers["x-llm-project"]
    # Refused here rather than by the Request model, so that the 400 names the field or header the value came in.
    for param, value in (("x-llm-user" if header else "user", user), ("x-llm-project", prefs.get("project"))):
        problem = label_problem(param, value) if isinstance(value, str) else None
        if problem is not None:
            raise BadBody(problem, param)
    cache = headers.get("x-llm-cache", "").lower()
    if cache == "no-store":
        prefs["cache"] = False
    elif cache == "no-semantic":
        prefs["semantic_cache"] = False
    budget = headers.get(PROMPT_BUDGET_HEADER)
    if budget is not None:
        if not budget.strip().isdigit() or int(budget) < 1:
            raise BadBody(f"{PROMPT_BUDGET_HEADER} must be a whole number of tokens, 1 or more", PROMPT_BUDGET_HEADER)
        prefs["max_prompt_tokens"] = int(budget)


def route(
    model: Any, headers: Mapping[str, str], settings: Settings, tasks: Sequence[str] | None = None
) -> dict[str, Any]:
    """``model`` (deployment | alias | ``task:<type>``, ``<type>`` one of ``tasks``, by default the config's chat
    tasks, its own included) and ``x-llm-task`` as :class:`Request` preferences."""
    if not isinstance(model, str) or not model:
        raise BadBody("you must provide a model parameter", "model")
    prefs: dict[str, Any] = {}
    task = headers.get("x-llm-task")
    if model.startswith("task:"):
        # A task pseudo-model: that task's chain, no preferred deployment. The body names it, so it wins over the
        # x-llm-task header (which steers requests that name a concrete model).
        task = model[5:]
    else:
        name = settings.resolve_name(model)
        if name is None:
            raise UnknownModel(model)
        prefs["model"] = name
    if task is not None:
        if tasks is None:
            tasks = known_tasks(settings, "chat")
        if task not in tasks:
            where = "model" if model.startswith("task:") else "x-llm-task"
            raise BadBody(
                f"unknown task {task!r}: use one of {', '.join(tasks)} (tasks of your own are defined under "
                "routing.tasks in the config)",
                where,
            )
        prefs["task"] = task
    return prefs


def body_id(prefix: str, request_id: str) -> str:
    """The id of an answer object (``chatcmpl-…``, ``msg_…``): the request id's random part under the protocol's
    prefix, so a body's id and ``x-request-id`` name the same request."""
    return prefix + request_id.removeprefix("req_")


def _usage(resp: Response) -> dict[str, Any]:
    u = resp.usage
    out: dict[str, Any] = {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }
    if u.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    if u.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return out


def _logprobs(items: list[TokenLogprob] | None) -> dict[str, Any] | None:
    return {"content": [t.model_dump() for t in items]} if items is not None else None


def completion_document(resp: Response) -> dict[str, Any]:
    """A ``chat.completion`` object for a whole answer."""
    choice = {
        "index": 0,
        "message": _message(resp),
        "finish_reason": resp.finish_reason or "stop",
        "logprobs": _logprobs(resp.logprobs),
    }
    return {
        "id": body_id("chatcmpl-", resp.id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": resp.model,
        "system_fingerprint": resp.system_fingerprint,
        "choices": [choice],
        "usage": _usage(resp),
    }


def completion_body(resp: Response) -> bytes:
    return _json.dumps(completion_document(resp))


def _message(resp: Response) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": resp.content}
    if resp.tool_calls:
        out.update(content=resp.content or None, tool_calls=calls_to_wire(resp.tool_calls))
    if resp.reasoning:
        out["reasoning_content"] = resp.reasoning  # what DeepSeek, vLLM and LiteLLM call the model's reasoning
    return out


def response_headers(resp: Response) -> dict[str, str]:
    """The gateway's ``x-llm-*`` headers: who answered, at what cost, from where, after how many attempts, and what
    it could not honour."""
    meta = resp.metadata
    return {
        "x-request-id": resp.id,
        "x-llm-model": resp.deployment,
        "x-llm-cost": str(resp.usage.cost) if resp.usage.cost is not None else "unknown",
        **cache_headers(meta.cached, meta.cache_similarity, meta.deduplicated),
        "x-llm-attempts": str(sum(1 for a in meta.attempts if not a.skipped)),
        **prompt_headers(meta.prompt),
        **confidence_header(resp),
        **dropped_headers(meta.dropped_params),
    }


def cache_headers(cached: bool, similarity: float | None, shared: bool = False) -> dict[str, str]:
    """``x-llm-cache``: ``hit`` (the same request), ``semantic`` (a prompt that means the same, with
    ``x-llm-cache-similarity``), ``shared`` (an identical request's call) or ``miss``."""
    if similarity is not None:
        return {"x-llm-cache": "semantic", "x-llm-cache-similarity": f"{similarity:.4f}"}
    return {"x-llm-cache": "hit" if cached else "shared" if shared else "miss"}


def confidence_header(resp: Response) -> dict[str, str]:
    """``x-llm-confidence`` (4 decimals) when the answer carries log probabilities (the request asked for them)."""
    confidence = resp.confidence
    return {} if confidence is None else {"x-llm-confidence": f"{confidence:.4f}"}


def prompt_headers(report: PromptOptimization | None) -> dict[str, str]:
    """``x-llm-prompt-tokens-before`` / ``-after`` when the request set a prompt budget."""
    if report is None:
        return {}
    return {
        "x-llm-prompt-tokens-before": str(report.tokens_before),
        "x-llm-prompt-tokens-after": str(report.tokens_after),
    }


class ChunkWriter:
    """``chat.completion.chunk`` events from byte templates built once per stream.

    Only the delta is serialised per chunk: the envelope (id, created, model) never changes.
    """

    __slots__ = ("_head", "_tail", "_text_head")

    def __init__(self, request_id: str, model: str) -> None:
        envelope = (
            _json.dumps(body_id("chatcmpl-", request_id))
            + b',"object":"chat.completion.chunk","created":'
            + str(int(time.time())).encode()
        )
        self._head = b'data: {"id":' + envelope + b',"model":' + _json.dumps(model) + b',"choices":'
        self._tail = b"}\n\n"
        self._text_head = self._head + b'[{"index":0,"delta":{"content":'

    def role(self) -> bytes:
        """The opening chunk: the assistant role, no text yet."""
        return self._head + b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]' + self._tail

    def delta(self, text: str, logprobs: list[TokenLogprob] | None = None) -> bytes:
        """One piece of text (with its tokens' log probabilities, when asked for)."""
        if logprobs is None:  # nearly every chunk of every stream: two joins
            return self._text_head + _json.dumps_str(text) + _TEXT_TAIL
        extra = b',"logprobs":' + _json.dumps(_logprobs(logprobs))
        return self._text_head + _json.dumps(text) + b'},"finish_reason":null' + extra + b"}]" + self._tail

    def reasoning(self, text: str) -> bytes:
        """One piece of the model's reasoning (``reasoning_content``, as DeepSeek, vLLM and LiteLLM stream it)."""
        return (
            self._head
            + b'[{"index":0,"delta":{"reasoning_content":'
            + _json.dumps(text)
            + b'},"finish_reason":null}]'
            + self._tail
        )

    def tool_call(self, piece: ToolCallDelta) -> bytes:
        """One piece of a tool call, in OpenAI's shape (id, type and name on a call's first piece only)."""
        call: dict[str, Any] = {"index": piece.index}
        function: dict[str, Any] = {"arguments": piece.arguments}
        if piece.id is not None:
            call.update(id=piece.id, type="function")
        if piece.name is not None:
            function["name"] = piece.name
        call["function"] = function
        return (
            self._head
            + b'[{"index":0,"delta":{"tool_calls":['
            + _json.dumps(call)
            + b']},"finish_reason":null}]'
            + self._tail
        )

    def finish(self, reason: str) -> bytes:
        """The chunk carrying the finish reason."""
        return self._head + b'[{"index":0,"delta":{},"finish_reason":' + _json.dumps(reason) + b"}]" + self._tail

    def usage(self, resp: Response) -> bytes:
        """The ``include_usage`` chunk: empty choices, the whole request's usage."""
        return self._head + b'[],"usage":' + _json.dumps(_usage(resp)) + self._tail


_TEXT_TAIL = b'},"finish_reason":null}]}\n\n'
"""What follows a text delta's content, to the end of its event."""


def models_body(settings: Settings, created: int, allows: Callable[..., bool] | None = None) -> bytes:
    """``GET /v1/models``: deployments, aliases and ``task:*`` pseudo-models — only those ``allows(name, resolved)``
    accepts, when given (a gateway key restricted to some models sees just those)."""
    return _json.dumps({"object": "list", "data": model_objects(settings, created, allows)})


def model_objects(settings: Settings, created: int, allows: Callable[..., bool] | None = None) -> list[dict[str, Any]]:
    """The model objects ``GET /v1/models`` lists (and ``GET /v1/models/{id}`` picks one of)."""
    data = [_model(name, dep.preset or dep.provider, created, dep) for name, dep in settings.models.items()]
    for alias, target in settings.aliases().items():
        dep = settings.models.get(target)
        data.append(_model(alias, (dep.preset or dep.provider) if dep else "llm-manager", created, dep))
    data += [_model(f"task:{t}", "llm-manager", created) for t in known_tasks(settings, "chat")]
    data += [
        {**_model(f"task:{t}", "llm-manager", created), "kind": "embedding"}
        for t in known_tasks(settings, "embedding")
        if settings.chain(t)
    ]
    if allows is not None:
        data = [m for m in data if allows(m["id"], settings.resolve_name(m["id"]))]
    return data


def _model(model_id: str, owner: str, created: int, dep: DeploymentConfig | None = None) -> dict[str, Any]:
    """A model object; ``kind`` (``chat`` or ``embedding``, and an embedding model's ``dimensions``) is ours."""
    out: dict[str, Any] = {"id": model_id, "object": "model", "created": created, "owned_by": owner, "kind": "chat"}
    if dep is not None and dep.resolved_kind == "embedding":
        from llm_manager.embedding_profiles import embedding_spec

        spec = embedding_spec(dep)
        out.update(kind="embedding", dimensions=spec.dimensions if spec else None)
    return out
