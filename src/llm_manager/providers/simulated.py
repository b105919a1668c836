"""The simulated provider: offline models with their own prices, speeds, context windows and failures.

It is the embedded default (no key, no network) and the demo's engine. Every answer starts with
``[simulated <deployment>]`` and carries ``metadata.simulated = True``, so it can never pass for a real model.
Behaviour is deterministic under ``simulation.seed``: the same calls in the same order give the same outcomes.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections import deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, ClassVar

from llm_manager.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextTooLargeError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderError,
    RateLimitError,
    StreamInterruptedError,
)
from llm_manager.providers.base import Chunk, Completion, Endpoint, ProviderAdapter
from llm_manager.tokens import estimate_prompt_tokens
from llm_manager.types import TokenLogprob, ToolCall, ToolCallDelta, TopLogprob

if TYPE_CHECKING:
    from llm_manager._http import HttpClient
    from llm_manager.types import Request, Tool

__all__ = ["SimulatedAdapter"]

_WORDS = (
    "latency anomaly trace span service error budget cache routing model token window signal pattern spike "
    "baseline metric deploy rollout config replica region queue retry request response gateway fallback "
    "cluster shard index schema layout component button panel theme grid chart insight cause effect"
).split()


class SimulatedAdapter(ProviderAdapter):
    """An offline model. Its behaviour comes from ``models.<name>.simulate`` in config."""

    kind: ClassVar[str] = "simulated"
    simulated: ClassVar[bool] = True

    def __init__(self, endpoint: Endpoint, http: HttpClient) -> None:
        super().__init__(endpoint, http)
        from llm_manager.config import SimulatedBehaviour

        # A copy: scripts and replies are consumed, and the config's behaviour must stay as configured.
        self.behaviour = (endpoint.simulate or SimulatedBehaviour()).model_copy(deep=True)
        self.script: deque[str] = deque(self.behaviour.script)
        self.replies: deque[str] = deque(self.behaviour.replies)
        self.requests: deque[Request] = deque(maxlen=100)
        """The most recent requests received (tests inspect what a re-ask or a trimmed history sent)."""
        self._rng = random.Random(f"{endpoint.seed}:{endpoint.name}")
        self.calls = 0

    def reply_with(self, *texts: str) -> None:
        """Queue exact answers for the next successful calls (tests script a wrong, then a right, answer)."""
        self.replies.extend(texts)

    def push(self, *outcomes: str) -> None:
        """Queue outcomes for the next calls (tests and the demo inject failures this way)."""
        self.script.extend(outcomes)

    def _next_outcome(self) -> str:
        self.calls += 1
        if self.script:
            return self.script.popleft()
        roll = self._rng.random()
        b = self.behaviour
        if roll < b.error_rate:
            return "500"
        if roll < b.error_rate + b.rate_limit_rate:
            return "429"
        return "ok"

    def _fail(self, outcome: str) -> ProviderError | None:
        code, _, arg = outcome.partition(":")
        name = self.endpoint.name
        if code == "429":
            wait = float(arg) if arg else self.behaviour.retry_after_s
            return RateLimitError(
                f"simulated rate limit on {name}",
                status_code=429,
                retry_after=wait,
                headers={"retry-after": f"{wait:g}"},
            )
        if code in ("500", "502", "503", "529"):
            return ModelUnavailableError(f"simulated outage on {name}", status_code=int(code))
        if code == "401":
            return AuthenticationError(f"simulated bad key for {name}", status_code=401)
        if code == "400":
            return InvalidRequestError(f"simulated invalid request on {name}", status_code=400)
        if code == "context":
            return ContextTooLargeError(
                f"simulated context overflow on {name}", status_code=400, max_tokens=self.endpoint.context_window
            )
        if code == "filter":
            return ContentFilterError(f"simulated content filter on {name}", status_code=400)
        if code == "reset":
            return ModelUnavailableError(f"simulated connection reset on {name}")
        return None

    def _check_window(self, request: Request) -> tuple[int, int]:
        prompt_tokens = estimate_prompt_tokens(request)
        wanted = request.max_tokens or self.behaviour.max_reply_tokens
        window = self.endpoint.context_window
        if prompt_tokens + min(wanted, self.behaviour.max_reply_tokens) > window:
            raise ContextTooLargeError(
                f"simulated: {prompt_tokens} prompt tokens exceed {self.endpoint.name}'s {window}-token window",
                status_code=400,
                token_count=prompt_tokens,
                max_tokens=window,
            )
        return prompt_tokens, wanted

    def _reply(self, request: Request, wanted: int) -> tuple[list[str], bool, int]:
        """The answer as pieces that concatenate to its text, whether it was cut at ``max_tokens``, and its
        token count (a word is ~1 token; JSON is counted at ~4 characters per token)."""
        if self.replies:
            pieces = _split_words(self.replies.popleft())
            return pieces, False, len(pieces)
        if request.response_format is not None:
            # Structured output: pure JSON valid against the schema (native modes return no prose either);
            # only the caller's max_tokens can cut it, which is how truncated JSON can be simulated.
            from llm_manager import _json

            seed = f"{self.endpoint.name}:{self.calls}"
            value = self._fake(request.response_format.schema_or_object, seed, "response_format.json_schema")
            text = _json.dumps(value).decode()
            cut = request.max_tokens is not None and len(text) > request.max_tokens * 4
            if cut and request.max_tokens is not None:
                text = text[: request.max_tokens * 4]
            return [text[k : k + 8] for k in range(0, len(text), 8)] or [""], cut, max(1, len(text) // 4)
        if self.behaviour.reply is not None:
            body = self.behaviour.reply.split(" ")
        else:
            last = request.messages[-1].text
            digest = hashlib.sha256(f"{self.endpoint.name}\0{last}".encode()).digest()
            n = 8 + digest[0] % 24
            body = [_WORDS[digest[(i % 31) + 1] % len(_WORDS)] for i in range(n)]
            body[-1] += "."
        limit = min(wanted, self.behaviour.max_reply_tokens)
        cut = len(body) + 2 > limit
        words = [f"[simulated {self.endpoint.name}]", *body][: max(1, limit)]
        return [words[0], *(" " + w for w in words[1:])], cut, len(words)

    def _tool_calls(self, request: Request) -> list[ToolCall]:
        """The calls a simulated model makes: a forced tool always; with ``auto``, a tool the last user turn names.
        Arguments are valid against the tool's schema. After a tool result it answers in text."""
        choice, tools = request.tool_choice, request.tools or []
        last = request.messages[-1]
        if not tools or choice == "none" or last.role == "tool":
            return []
        tool: Tool | None
        if choice is not None and not isinstance(choice, str):
            tool = next(t for t in tools if t.name == choice.name)
        else:
            tool = next((t for t in tools if t.name in last.text), None)
            if tool is None and choice == "required":
                tool = tools[0]
        if tool is None:
            return []
        from llm_manager import _json

        args = self._fake(tool.parameters, f"{self.endpoint.name}:{self.calls}:{tool.name}", f"tools.{tool.name}")
        return [ToolCall(id=f"call_sim{self.calls}", name=tool.name, arguments=_json.dumps(args).decode())]

    def _fake(self, schema: dict[str, Any], seed: str, field: str) -> Any:
        """A value valid against ``schema``; a schema no finite value satisfies is the caller's error (a 400)."""
        from llm_manager.providers._fake_json import UnsatisfiableSchemaError, fake_from_schema

        try:
            return fake_from_schema(schema, seed)
        except UnsatisfiableSchemaError as exc:
            raise InvalidRequestError(
                f"{field}: the schema cannot be satisfied: {exc}",
                status_code=400,
                provider="simulated",
                model=self.endpoint.model,
            ) from None

    async def _sleep(self, ms: float) -> None:
        if ms > 0:
            await asyncio.sleep(ms / 1000.0)

    async def _start(self, request: Request) -> tuple[str, list[str], bool, int, int, list[ToolCall]]:
        self.requests.append(request)
        outcome = self._next_outcome()
        if outcome == "timeout":
            await asyncio.sleep(3600)  # the caller's deadline ends this
        err = self._fail(outcome)
        if err is not None:
            await self._sleep(self.behaviour.first_token_ms)  # an error answer takes as long as a first byte
            raise err
        prompt_tokens, wanted = self._check_window(request)
        calls = self._tool_calls(request)
        if calls:
            return outcome, [], False, prompt_tokens, max(1, sum(len(c.arguments) for c in calls) // 4), calls
        pieces, cut, tokens = self._reply(request, wanted)
        return outcome, pieces, cut, prompt_tokens, tokens, []

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:  # noqa: ARG002
        """Answer after ``latency_ms`` (or fail as scripted)."""
        outcome, pieces, cut, prompt_tokens, tokens, calls = await self._start(request)
        delay = float(outcome.partition(":")[2]) * 1000 if outcome.startswith("slow:") else self.behaviour.latency_ms
        await self._sleep(delay)
        text = "".join(pieces)
        return Completion(
            text=text,
            logprobs=[self._logprob(p, request.top_logprobs) for p in pieces if p] if request.logprobs else None,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "length" if cut else "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens,
            model=self.endpoint.model,
            id=f"sim-{self.calls}",
            reasoning=_reasoning(request),
        )

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:  # noqa: ARG002
        """Stream piece by piece: the first after ``first_token_ms``, then at ``tokens_per_s``."""
        outcome, pieces, cut, prompt_tokens, tokens, calls = await self._start(request)
        first = (
            float(outcome.partition(":")[2]) * 1000 if outcome.startswith("slow:") else self.behaviour.first_token_ms
        )
        cut_after = int(outcome.partition(":")[2]) if outcome.startswith("cut:") else None
        gap_ms = 1000.0 / self.behaviour.tokens_per_s
        await self._sleep(first)
        if reasoning := _reasoning(request):
            yield Chunk(reasoning=reasoning, model=self.endpoint.model)
        for i, piece in enumerate(pieces):
            if cut_after is not None and i >= cut_after:
                raise StreamInterruptedError(f"simulated stream cut on {self.endpoint.name} after {i} chunks")
            if i:
                await self._sleep(gap_ms)
            if piece:
                logprobs = [self._logprob(piece, request.top_logprobs)] if request.logprobs else None
                yield Chunk(text=piece, model=self.endpoint.model, logprobs=logprobs)
        for i, call in enumerate(calls):
            # OpenAI's streaming shape: id and name first, then the arguments in pieces.
            yield Chunk(tool_calls=[ToolCallDelta(index=i, id=call.id, name=call.name)], model=self.endpoint.model)
            for k in range(0, len(call.arguments), 16):
                await self._sleep(gap_ms)
                piece_delta = ToolCallDelta(index=i, arguments=call.arguments[k : k + 16])
                yield Chunk(tool_calls=[piece_delta], model=self.endpoint.model)
        yield Chunk(
            finish_reason="tool_calls" if calls else "length" if cut else "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens,
        )

    def _logprob(self, piece: str, top: int | None) -> TokenLogprob:
        """A deterministic log probability for one piece of the answer (a word is a token here): a probability
        between 0.55 and 1 drawn from a hash of the deployment and the piece, so the same answer always has the
        same confidence and two models differ. ``top`` alternatives share what is left, likeliest first."""
        digest = hashlib.sha256(f"{self.endpoint.name}\0{piece}".encode()).digest()
        p = 0.55 + 0.45 * int.from_bytes(digest[:2]) / 65536
        alternatives = []
        if top:
            rest = 1.0 - p
            for k in range(top):
                rest /= 2
                word = " " + _WORDS[digest[2 + k % 28] % len(_WORDS)]
                alternatives.append(TopLogprob(token=word, logprob=math.log(rest)))
            alternatives.insert(0, TopLogprob(token=piece, logprob=math.log(p)))
            alternatives = alternatives[:top]
        return TokenLogprob(token=piece, logprob=math.log(p), top_logprobs=alternatives)

    async def probe(self, *, api_key: str | None) -> None:  # noqa: ARG002
        """Always reachable: it lives in this process."""
        return None


def _reasoning(request: Request) -> str:
    """What a simulated model "thinks" when asked to reason: a labelled line, so reasoning paths can be tried offline."""
    reasoning = request.reasoning
    if reasoning is None or reasoning.effort == "none" or reasoning.budget_tokens == 0:
        return ""
    return f"[simulated reasoning, {reasoning.effort or f'{reasoning.budget_tokens} tokens'}] considered the question."


def _split_words(text: str) -> list[str]:
    """Pieces that concatenate back to ``text`` exactly (a word with its leading space each)."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])]
