"""The OpenAI wire format: chat-completion bodies in, ``chat.completion`` objects and chunks out.

Pure functions over dicts and bytes (no HTTP here), so the app module stays a thin router.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from llm_manager import _json
from llm_manager.codecs.openai_chat.tools import calls_from_wire, calls_to_wire, choice_from_wire, tools_from_wire
from llm_manager.config import DeploymentConfig, Settings
from llm_manager.tasks import known_tasks
from llm_manager.types import PromptOptimization, Response, ResponseFormat, ToolCallDelta, label_problem

__all__ = [
    "BadBody",
    "ChunkWriter",
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

_ROLES = ("system", "developer", "user", "assistant", "tool")
PROMPT_BUDGET_HEADER = "x-llm-max-prompt-tokens"
"""Shrink the prompt to this many tokens (the request's ``max_prompt_tokens``)."""
T = TypeVar("T")


class BadBody(Exception):
    """The body is not a valid chat-completion request; ``param`` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


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


class UnknownModel(Exception):
    """``model`` names no deployment, alias or ``task:*`` pseudo-model."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model


@dataclass(slots=True)
class ParsedChat:
    """A chat-completion request turned into :class:`Request` preferences."""

    messages: list[dict[str, Any]]
    prefs: dict[str, Any]
    stream: bool
    include_usage: bool


def parse_chat(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedChat:
    """Validate an OpenAI chat body plus the ``x-llm-*`` steering headers.

    Raises :class:`BadBody` or :class:`UnknownModel`; value ranges (temperature …) are left to
    ``LLMManager.request``, whose :class:`~llm_manager.errors.ConfigError` already names the field.
    """
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    prefs: dict[str, Any] = route(body.get("model"), headers, settings)
    messages = _messages(body.get("messages"))
    if typed(body.get("n"), int, "n") not in (None, 1):
        # One answer per request is what routing, caching and the ledger account for: say so rather than
        # silently returning fewer choices than asked.
        raise BadBody("n must be 1: this gateway returns one choice per request; send n requests instead", "n")
    _sampling(body, prefs)
    steer(headers, typed(body.get("user"), str, "user"), prefs)
    fmt = _response_format(body.get("response_format"))
    if fmt is not None:
        prefs["response_format"] = fmt
    prefs.update(_tools(body))
    options = typed(body.get("stream_options"), dict, "stream_options") or {}
    include_usage = typed(options.get("include_usage"), bool, "stream_options.include_usage")
    return ParsedChat(messages, prefs, bool(typed(body.get("stream"), bool, "stream")), bool(include_usage))


def _sampling(body: dict[str, Any], prefs: dict[str, Any]) -> None:
    """``max_tokens`` (or ``max_completion_tokens``), ``temperature``, ``top_p`` and ``stop``, strictly typed: a
    client's ``true`` must not become a one-token answer, nor ``"0.5"`` a temperature."""
    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = typed(body.get(field), int, field)
    if max_tokens is not None:
        prefs["max_tokens"] = max_tokens
    for key in ("temperature", "top_p"):
        value = typed(body.get(key), float, key)
        if value is not None:
            prefs[key] = value
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadBody("stop must be a string or an array of strings", "stop")
        prefs["stop"] = stops


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


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise BadBody("messages must be a non-empty array", "messages")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise BadBody(f"messages[{i}].role must be one of {', '.join(_ROLES)}", f"messages[{i}].role")
        role = "system" if m["role"] == "developer" else m["role"]  # o-series clients send developer
        message: dict[str, Any] = {"role": role, "content": _content(m.get("content"), i)}
        if role == "assistant" and m.get("tool_calls") is not None:
            message["tool_calls"] = calls_from_wire(_calls(m["tool_calls"], f"messages[{i}].tool_calls"))
        if role == "tool":
            if not isinstance(m.get("tool_call_id"), str):
                raise BadBody(
                    f"messages[{i}].tool_call_id is required for a tool message", f"messages[{i}].tool_call_id"
                )
            message["tool_call_id"] = m["tool_call_id"]
        out.append(message)
    return out


def _calls(raw: Any, where: str) -> list[Any]:
    """An assistant message's ``tool_calls``, each ``{id, type: function, function: {name, arguments}}``."""
    calls = typed(raw, list, where) or []
    for j, call in enumerate(calls):
        at = f"{where}[{j}]"
        if not isinstance(call, dict):
            raise BadBody(f"{at} must be an object: {{id, type: function, function: {{name, arguments}}}}", at)
        typed(call.get("id"), str, f"{at}.id")
        if call.get("type", "function") != "function":
            raise BadBody(f"{at}.type must be function", f"{at}.type")
        function = typed(call.get("function"), dict, f"{at}.function")
        if function is None or typed(function.get("name"), str, f"{at}.function.name") is None:
            raise BadBody(f"{at}.function.name is required", f"{at}.function.name")
        typed(function.get("arguments"), str, f"{at}.function.arguments")
    return calls


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        tools = tools_from_wire(body.get("tools"))
        choice = choice_from_wire(body.get("tool_choice"))
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise BadBody(str(exc), field) from None
    if tools:
        out["tools"] = tools
    if choice is not None and (tools or choice == "none"):
        out["tool_choice"] = choice
    elif choice is not None and choice != "auto":
        raise BadBody("tool_choice is set but no tools were given", "tool_choice")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise BadBody("parallel_tool_calls must be a boolean", "parallel_tool_calls")
        out["parallel_tool_calls"] = parallel
    return out


def _content(content: Any, i: int) -> str:
    if content is None:
        return ""  # an assistant turn that only called tools
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise BadBody(
                    f"messages[{i}].content[{j}]: only text parts are supported, got {kind!r}",
                    f"messages[{i}].content[{j}]",
                )
            texts.append(part["text"])
        return "".join(texts)
    raise BadBody(f"messages[{i}].content must be a string or an array of text parts", f"messages[{i}].content")


def _response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("text", "json_object"):
        return None  # nothing to enforce beyond the prompt: the model is asked for JSON by the caller's words
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise BadBody("response_format.json_schema.schema must be an object", "response_format.json_schema")
        name = typed(spec.get("name"), str, "response_format.json_schema.name") or "response"
        strict = typed(spec.get("strict"), bool, "response_format.json_schema.strict")
        try:
            return ResponseFormat(name=name, json_schema=spec["schema"], strict=strict is not False)
        except ValueError as exc:
            raise BadBody(f"invalid response_format.json_schema: {exc}", "response_format.json_schema") from None
    raise BadBody("response_format.type must be text, json_object or json_schema", "response_format.type")


def _usage(resp: Response) -> dict[str, int]:
    u = resp.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens}


def completion_body(resp: Response) -> bytes:
    """A ``chat.completion`` object for a whole answer."""
    return _json.dumps(
        {
            "id": resp.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": resp.model,
            "choices": [{"index": 0, "message": _message(resp), "finish_reason": resp.finish_reason or "stop"}],
            "usage": _usage(resp),
        }
    )


def _message(resp: Response) -> dict[str, Any]:
    if not resp.tool_calls:
        return {"role": "assistant", "content": resp.content}
    return {"role": "assistant", "content": resp.content or None, "tool_calls": calls_to_wire(resp.tool_calls)}


def response_headers(resp: Response) -> dict[str, str]:
    """The gateway's ``x-llm-*`` headers: who answered, at what cost, from where, after how many attempts."""
    meta = resp.metadata
    return {
        "x-request-id": resp.id,
        "x-llm-model": resp.deployment,
        "x-llm-cost": str(resp.usage.cost) if resp.usage.cost is not None else "unknown",
        **cache_headers(meta.cached, meta.cache_similarity, meta.deduplicated),
        "x-llm-attempts": str(sum(1 for a in meta.attempts if not a.skipped)),
        **prompt_headers(meta.prompt),
        **confidence_header(resp),
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

    Only the delta text is serialised per chunk: the envelope (id, created, model) never changes.
    """

    __slots__ = ("_head", "_tail")

    def __init__(self, request_id: str, model: str) -> None:
        envelope = (
            _json.dumps(request_id) + b',"object":"chat.completion.chunk","created":' + str(int(time.time())).encode()
        )
        self._head = b'data: {"id":' + envelope + b',"model":' + _json.dumps(model) + b',"choices":'
        self._tail = b"}\n\n"

    def role(self) -> bytes:
        """The opening chunk: the assistant role, no text yet."""
        return self._head + b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]' + self._tail

    def delta(self, text: str) -> bytes:
        """One piece of text."""
        return (
            self._head
            + b'[{"index":0,"delta":{"content":'
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
