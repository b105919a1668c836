"""``max_prompt_tokens`` on a request: its messages and system prompt shrunk to the budget, as little as needed.

A prompt within the budget is sent as it is. Otherwise every text is tidied and its repeated lines and sentences
dropped; if that is not enough, the longest texts are cut to their head and tail, one after the other, the system
prompt last (it usually holds the instructions). Tool calls and the framing of each message are counted but never
changed. A prompt that cannot be brought within the budget (its code blocks and JSON alone are too long) is an
error naming the field, not a silently larger request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from llm_manager.errors import ConfigError
from llm_manager.prompts.optimizer import PromptOptimizer
from llm_manager.types import PromptOptimization, TextPart

if TYPE_CHECKING:
    from llm_manager.types import Request

__all__ = ["FRAMING_TOKENS", "shrink_request"]

FRAMING_TOKENS = 4
"""Tokens counted per message for its role and separators (what chat formats add around each turn)."""
_MIN_KEEP = 32
"""A text is never cut below this many tokens (its marker alone takes about 12)."""


@lru_cache(maxsize=1)
def _default() -> PromptOptimizer:
    return PromptOptimizer()


def shrink_request(
    request: Request, optimizer: PromptOptimizer | None = None
) -> tuple[Request, PromptOptimization | None]:
    """``request`` with its prompt within ``request.max_prompt_tokens``, and what was done (``None`` when the
    request sets no budget). Raises :class:`~llm_manager.errors.ConfigError` when the budget cannot be met."""
    budget = request.max_prompt_tokens
    if budget is None:
        return request, None
    opt = optimizer or _default()
    texts = _texts(request)
    fixed = FRAMING_TOKENS * (len(request.messages) + (1 if request.system else 0)) + sum(
        opt.count(c.name) + opt.count(c.arguments) for m in request.messages for c in m.tool_calls
    )
    counts = {k: opt.count(v) for k, v in texts.items()}
    before = fixed + sum(counts.values())
    report = PromptOptimization(
        max_prompt_tokens=budget, tokens_before=before, tokens_after=before, tokenizer=opt.counter.name
    )
    if before <= budget:
        return request, report
    for name, text in texts.items():
        texts[name], dropped = opt.tidy(text)
        counts[name] = opt.count(texts[name])
        report.duplicates_removed += dropped
    total = fixed + sum(counts.values())
    for name in sorted(texts, key=lambda k: (k == "system", -counts[k])):
        if total <= budget:
            break
        if counts[name] <= _MIN_KEEP:
            continue
        shorter = opt.shorten(texts[name], max(counts[name] - (total - budget), _MIN_KEEP))
        if shorter.tokens_after < counts[name]:
            total -= counts[name] - shorter.tokens_after
            texts[name], counts[name] = shorter.text, shorter.tokens_after
            report.cut.append(name)
            report.tokens_cut += shorter.tokens_cut
    if total > budget:
        raise ConfigError(
            f"max_prompt_tokens={budget}: the prompt ({before} tokens) cannot be shrunk below {total} tokens — code "
            f"blocks and JSON are kept whole, and {fixed} tokens are message framing and tool calls. Fix: raise "
            f"max_prompt_tokens to at least {total}, or shorten the prompt."
        )
    report.tokens_after = total
    return _rebuilt(request, texts), report


def _texts(request: Request) -> dict[str, str]:
    """The texts that may be shrunk, by name: ``system``, ``messages[i]`` (string content) and
    ``messages[i].content[j]`` (text parts; images, audio and files are sent as they are, and not counted)."""
    out = {"system": request.system} if request.system else {}
    for i, m in enumerate(request.messages):
        if isinstance(m.content, str):
            if m.content:
                out[f"messages[{i}]"] = m.content
            continue
        for j, part in enumerate(m.content):
            if isinstance(part, TextPart) and part.text:
                out[f"messages[{i}].content[{j}]"] = part.text
    return out


def _rebuilt(request: Request, texts: dict[str, str]) -> Request:
    messages = []
    for i, m in enumerate(request.messages):
        if isinstance(m.content, str):
            name = f"messages[{i}]"
            messages.append(m.model_copy(update={"content": texts[name]}) if name in texts else m)
            continue
        parts = tuple(
            p.model_copy(update={"text": texts[f"messages[{i}].content[{j}]"]})
            if isinstance(p, TextPart) and f"messages[{i}].content[{j}]" in texts
            else p
            for j, p in enumerate(m.content)
        )
        messages.append(m.model_copy(update={"content": parts}))
    return request.model_copy(update={"system": texts.get("system", request.system), "messages": messages})
