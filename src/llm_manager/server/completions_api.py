"""``POST /v1/completions``, OpenAI's legacy text completions, answered by the chat models.

For the clients that still speak it (LangChain's ``OpenAI`` LLM, ``client.completions.create``, older tools): the
``prompt`` becomes one user turn and the request is routed, keyed, budgeted and booked exactly like a chat request
(the route is the chat route's :meth:`~llm_manager.server.app._Gateway._answer` with this wire format). The answer is
a ``text_completion`` object, or its stream of ``text_completion`` chunks ending with ``[DONE]``.

Translated: ``prompt`` (a string, or an array holding one string), ``max_tokens``, ``temperature``, ``top_p``,
``stop``, ``seed``, ``frequency_penalty``, ``presence_penalty``, ``user``, ``stream`` / ``stream_options``,
``echo`` (the prompt is put before the answer), ``logprobs`` (0–5: the answer's tokens with that many alternatives,
in the legacy ``tokens`` / ``token_logprobs`` / ``top_logprobs`` / ``text_offset`` shape) and ``logit_bias`` (passed
to OpenAI-protocol deployments as it is). What cannot be honoured is answered without it and named in
``x-llm-dropped-params``, never dropped without a word: ``best_of`` above 1 (one completion is made), ``suffix``
(chat models do not insert), ``logprobs`` on a stream (its chunks carry text only), whatever the answering
deployment could not take (``logit_bias`` on an Anthropic model …), and fields this protocol does not define.
Several prompts and ``n`` above 1 are answered whole, each choice a call of its own
(:mod:`~llm_manager.server.choices`; ``index`` ``i`` is prompt ``i // n``), a stream of several choices is a 400,
and so are token-id prompts (no tokenizer is shared with every model behind us).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.server.choices import MAX_CHOICES, merged
from llm_manager.server.dropped import dropped_headers
from llm_manager.server.errors import ErrorReply
from llm_manager.server.openai_api import BadBody, response_headers, route, steer, typed

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.server.app import _Gateway
    from llm_manager.server.asgi import Receive, Scope, Send
    from llm_manager.types import Request, Response, StreamEvent, TokenLogprob, ToolCallDelta

__all__ = ["CompletionsRoute", "ParsedCompletion", "parse_completion"]

_KNOWN = frozenset(
    {
        "model",
        "prompt",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "stream",
        "stream_options",
        "echo",
        "user",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "logit_bias",
        "best_of",
        "suffix",
    }
)
_MAX_LOGPROBS = 5
"""The legacy API's own limit on ``logprobs``."""
_DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class ParsedCompletion:
    """A legacy completion request as a chat request (``messages``, ``prefs``) plus what the answer's shape needs."""

    prompts: list[str]
    prefs: dict[str, Any]
    stream: bool
    include_usage: bool
    echo: bool
    logprobs: int | None
    n: int = 1
    dropped: list[str] = field(default_factory=list)
    """Fields not honoured whoever answers (the deployment's own come with its answer)."""

    @property
    def prompt(self) -> str:
        return self.prompts[0]

    @property
    def count(self) -> int:
        return self.n * len(self.prompts)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.prompt}]

    def choices(self) -> list[list[dict[str, Any]]]:
        """The messages of each choice asked for: every prompt, ``n`` times."""
        return [[{"role": "user", "content": p}] for p in self.prompts for _ in range(self.n)]


def parse_completion(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedCompletion:
    """Validate a legacy completion body plus the ``x-llm-*`` steering headers; raises :class:`BadBody` or
    ``UnknownModel`` (a 404)."""
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    prefs: dict[str, Any] = route(body.get("model"), headers, settings)
    prompts = _prompts(body.get("prompt"))
    n = typed(body.get("n"), int, "n")
    n = 1 if n is None else n
    if not 1 <= n * len(prompts) <= MAX_CHOICES:
        raise BadBody(f"n times the number of prompts must be 1 to {MAX_CHOICES}", "n" if n != 1 else "prompt")
    max_tokens = typed(body.get("max_tokens"), int, "max_tokens")
    if max_tokens is not None:
        prefs["max_tokens"] = max_tokens
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
        if (number := typed(body.get(name), float, name)) is not None:
            prefs[name] = number
    if (seed := typed(body.get("seed"), int, "seed")) is not None:
        prefs["seed"] = seed
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadBody("stop must be a string or an array of strings", "stop")
        if stops:
            prefs["stop"] = stops
    bias = typed(body.get("logit_bias"), dict, "logit_bias")
    if bias:  # token ids of OpenAI's tokenizers: meaningful to OpenAI-protocol deployments only
        prefs["passthrough"] = {"protocol": "openai_chat", "fields": {"logit_bias": bias}}
    steer(headers, typed(body.get("user"), str, "user"), prefs)
    stream = bool(typed(body.get("stream"), bool, "stream"))
    options = typed(body.get("stream_options"), dict, "stream_options") or {}
    include_usage = bool(typed(options.get("include_usage"), bool, "stream_options.include_usage"))
    if stream and n * len(prompts) > 1:
        why = "several choices are answered whole: send stream: false, or one streaming request each"
        raise BadBody(why, "n" if n > 1 else "prompt")
    parsed = ParsedCompletion(
        prompts=prompts,
        prefs=prefs,
        stream=stream,
        include_usage=include_usage,
        echo=bool(typed(body.get("echo"), bool, "echo")),
        logprobs=_logprobs(body.get("logprobs"), stream, prefs),
        n=n,
    )
    if (best_of := typed(body.get("best_of"), int, "best_of")) is not None and best_of > 1:
        parsed.dropped.append("best_of")
    if typed(body.get("suffix"), str, "suffix"):
        parsed.dropped.append("suffix")
    if stream and parsed.logprobs is not None:
        parsed.dropped.append("logprobs")
    parsed.dropped += [name for name in body if name not in _KNOWN]
    return parsed


def _prompts(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(p, str) for p in raw):
        return raw
    if isinstance(raw, list) and raw and all(isinstance(t, int | list) for t in raw):
        raise BadBody("prompt: token ids are not supported; send the prompt as text", "prompt")
    raise BadBody("prompt must be a string or an array of strings", "prompt")


def _logprobs(raw: Any, stream: bool, prefs: dict[str, Any]) -> int | None:
    count = typed(raw, int, "logprobs")
    if count is None:
        return None
    if not 0 <= count <= _MAX_LOGPROBS:
        raise BadBody(f"logprobs must be between 0 and {_MAX_LOGPROBS}", "logprobs")
    if not stream:  # a stream's chunks carry text only: reported as dropped rather than asked for and lost
        prefs.update(logprobs=True, top_logprobs=count)
    return count


def completion_id(request_id: str) -> str:
    """The ``cmpl-…`` id of an answer (OpenAI's prefix; the gateway's request id after it)."""
    return "cmpl-" + request_id.removeprefix("req_")


def _usage(resp: Response) -> dict[str, int]:
    u = resp.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens}


def _legacy_logprobs(tokens: list[TokenLogprob], offset: int) -> dict[str, Any]:
    """Chat log probabilities in the legacy shape (``text_offset``: where each token starts in ``text``)."""
    offsets: list[int] = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t.token)
    return {
        "tokens": [t.token for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "top_logprobs": [{a.token: a.logprob for a in t.top_logprobs} for t in tokens],
        "text_offset": offsets,
    }


class _Format:
    """The legacy wire format for the gateway's shared answering path, one instance per request: the answer echoes
    the prompt and names the fields not honoured, which only the parsed request knows."""

    def __init__(self, unsupported: Callable[[str, Request], list[str]]) -> None:
        self._unsupported = unsupported
        """What a deployment cannot honour of a request (for a stream, whose headers go before its answer)."""
        self.parsed: ParsedCompletion | None = None
        self._stream_dropped: list[str] = []

    def parse(self, body: Any, headers: Mapping[str, str], settings: Settings, /) -> ParsedCompletion:
        self.parsed = parse_completion(body, headers, settings)
        return self.parsed

    def _echo(self, prompt: str | None = None) -> str:
        if self.parsed is None or not self.parsed.echo:
            return ""
        return self.parsed.prompt if prompt is None else prompt

    def _dropped(self, answered: list[str]) -> list[str]:
        own = self.parsed.dropped if self.parsed is not None else []
        return list(dict.fromkeys([*own, *answered]))

    def _document(self, resp: Response, prompt: str | None = None) -> dict[str, Any]:
        echo = self._echo(prompt)
        logprobs = (
            _legacy_logprobs(resp.logprobs, len(echo))
            if resp.logprobs is not None and self.parsed is not None and self.parsed.logprobs is not None
            else None
        )
        choice = {"text": echo + resp.content, "index": 0, "logprobs": logprobs, "finish_reason": _finish(resp)}
        return {
            "id": completion_id(resp.id),
            "object": "text_completion",
            "created": int(time.time()),
            "model": resp.model,
            "choices": [choice],
            "usage": _usage(resp),
        }

    def body(self, resp: Response, /) -> bytes:
        return _json.dumps(self._document(resp))

    def body_many(self, resps: list[Response], /) -> bytes:
        """Several choices: choice ``i`` answers prompt ``i // n`` (and echoes that one)."""
        assert self.parsed is not None
        prompts, n = self.parsed.prompts, self.parsed.n
        return merged([self._document(resp, prompts[i // n]) for i, resp in enumerate(resps)])

    def headers(self, resp: Response, /) -> dict[str, str]:
        return {**response_headers(resp), **dropped_headers(self._dropped(resp.metadata.dropped_params))}

    def events(self, rid: str, first: StreamEvent, _parsed: Any, request: Request, /) -> TextEvents:
        # Called before stream_headers: the headers name what the answering deployment leaves out.
        self._stream_dropped = self._dropped(self._unsupported(first.deployment, request))
        include_usage = self.parsed.include_usage if self.parsed is not None else False
        return TextEvents(rid, first.model, self._echo(), include_usage)

    def stream_headers(self, _rid: str, /) -> dict[str, str]:
        return dropped_headers(self._stream_dropped)

    @staticmethod
    def error_body(reply: ErrorReply, _rid: str, /) -> bytes:
        return _json.dumps(reply.body)

    @staticmethod
    def error_headers(reply: ErrorReply, rid: str, /) -> dict[str, str]:
        return {"x-request-id": rid, **reply.headers}


def _finish(resp: Response | None) -> str:
    reason = resp.finish_reason if resp is not None else None
    return reason if reason in ("length", "content_filter") else "stop"


class TextEvents:
    """``text_completion`` chunks from byte templates (only the text is serialised per chunk); the stream ends with
    ``[DONE]``, which a failure never sends."""

    __slots__ = ("_echo", "_head", "_include_usage")

    def __init__(self, request_id: str, model: str, echo: str, include_usage: bool) -> None:
        envelope = _json.dumps(completion_id(request_id)) + b',"object":"text_completion","created":'
        envelope += str(int(time.time())).encode() + b',"model":' + _json.dumps(model)
        self._head = b'data: {"id":' + envelope + b',"choices":'
        self._echo = echo
        self._include_usage = include_usage

    def _choice(self, text: str, finish: str | None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return self._head + b"[" + _json.dumps(choice) + b"]}\n\n"

    def opening(self) -> bytes:
        return self._choice(self._echo, None) if self._echo else b""

    def reasoning(self, _text: str, _signature: str) -> bytes:
        return b""  # a text completion has no place for the model's reasoning

    def delta(self, text: str, _logprobs: object = None) -> bytes:
        return self._choice(text, None)

    def tool_call(self, piece: ToolCallDelta) -> bytes:  # noqa: ARG002 - a text completion offers no tools
        return b""

    def closing(self, resp: Response | None) -> bytes:
        end = self._choice("", _finish(resp))
        if self._include_usage and resp is not None:
            end += self._head + b'[],"usage":' + _json.dumps(_usage(resp)) + b"}\n\n"
        return end + _DONE

    def failure(self, reply: ErrorReply) -> bytes:
        return b"data: " + _json.dumps(reply.body) + b"\n\n"


class CompletionsRoute:
    """The handler (plain ASGI, like the chat routes), over the gateway's shared answering path."""

    def __init__(self, gateway: _Gateway) -> None:
        self.gw = gateway

    def _unsupported(self, deployment: str, request: Request) -> list[str]:
        dropped = self.gw.llm.adapter(deployment).unsupported(request)
        return dropped.names if dropped is not None else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gw._answer(scope, receive, send, _Format(self._unsupported))
