"""Shrink a prompt to a token budget while keeping what matters.

Three steps, each only as far as needed for :meth:`PromptOptimizer.optimize`'s ``max_tokens``:

1. **Tidy**: runs of spaces collapse to one, trailing spaces go, at most one blank line in a row; JSON loses the
   whitespace outside its strings. Code blocks are left byte for byte.
2. **Redundancy** (``remove_redundancy``): a line (of three words or more) or a sentence (of four words or more)
   that already appeared earlier in the text is dropped. Code and JSON are never deduplicated.
3. **Head and tail**: a text still over budget keeps its beginning and its end, and the middle is replaced by a
   marker saying how much was cut (``[… 120 lines (~3,400 tokens) cut …]``). Cuts fall between lines (or, in a
   long paragraph, between sentences): never inside a code block or a JSON value, which are kept or cut whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from llm_manager.prompts.blocks import compact_json, split_blocks, tidy_prose
from llm_manager.prompts.counter import Encoding, TokenCounter, token_counter

__all__ = ["OptimizedPrompt", "PromptOptimizer"]

_LINE_WORDS = 3
_SENTENCE_WORDS = 4
_SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)")
_BLANK_RUNS = re.compile(r"\n{3,}")
_LONG_LINE = 400
"""Characters: a longer line is cut between sentences (and a longer sentence between words)."""
_WORDS_PER_PIECE = 60
_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class OptimizedPrompt:
    """The result of :meth:`PromptOptimizer.optimize`; ``str()`` of it is the text."""

    text: str
    tokens_before: int
    tokens_after: int
    tokenizer: str
    """The encoding that counted (``o200k_base`` …), or the estimate's name when no tokenizer is installed."""
    max_tokens: int | None
    duplicates_removed: int = 0
    """Repeated lines and sentences dropped."""
    tokens_cut: int = 0
    """Tokens (about) of the middle cut out to reach ``max_tokens``."""
    fits: bool = True
    """Whether ``tokens_after <= max_tokens``: false when code blocks and JSON alone are over the budget."""

    def __str__(self) -> str:
        return self.text


class PromptOptimizer:
    """Shrinks prompts; see the module docs for what it does.

    Args:
        encoding: the tokenizer that counts (``o200k_base``, the current OpenAI models'; ``cl100k_base``, GPT-4's
            and GPT-3.5's; or ``estimate``). Loaded on first use (~0.4–1 s, once per process).
    """

    def __init__(self, encoding: Encoding = "o200k_base") -> None:
        self.encoding = encoding

    @cached_property
    def counter(self) -> TokenCounter:
        """The token counter in use."""
        return token_counter(self.encoding)

    def count(self, text: str) -> int:
        """Tokens in ``text``."""
        return self.counter.count(text)

    def optimize(self, text: str, max_tokens: int | None = None, remove_redundancy: bool = True) -> OptimizedPrompt:
        """Tidy ``text``, drop repeated lines and sentences (``remove_redundancy``), and when ``max_tokens`` is
        given and still exceeded, keep the head and the tail with a marker of what was cut."""
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        before = self.count(text)
        tidied, removed = self.tidy(text, remove_redundancy)
        return self._fit(tidied, before, max_tokens, removed)

    def tidy(self, text: str, remove_redundancy: bool = True) -> tuple[str, int]:
        """Steps 1 and 2 only: the tidied text and how many repeated lines and sentences were dropped."""
        seen: set[str] = set()
        removed = 0
        out: list[str] = []
        for block in split_blocks(text):
            if block.kind == "code":
                out.append(block.text)
            elif block.kind == "json":
                out.append(compact_json(block.text))
            else:
                prose = tidy_prose(block.text)
                if remove_redundancy:
                    prose, dropped = _dedupe(prose, seen)
                    removed += dropped
                out.append(prose)
        return "".join(out).strip("\n").rstrip(), removed

    def shorten(self, text: str, max_tokens: int) -> OptimizedPrompt:
        """Step 3 only: ``text`` as it is if it fits, else its head and tail around a marker."""
        return self._fit(text, self.count(text), max_tokens, 0)

    def _fit(self, text: str, before: int, max_tokens: int | None, removed: int) -> OptimizedPrompt:
        tokens = self.count(text)
        result = OptimizedPrompt(text, before, tokens, self.counter.name, max_tokens, removed)
        if max_tokens is None or tokens <= max_tokens:
            return result
        units = [(u, self.count(u)) for u in _units(text)]
        room = max_tokens - self.count(_marker(len(text), tokens))
        best = None
        for _ in range(_ATTEMPTS):
            if room <= 0:
                break
            cut_out = _cut_middle(units, room)
            if cut_out is None:
                break  # nothing of the text would be left but the marker: that is no answer
            candidate, cut = cut_out
            count = self.count(candidate)
            best = OptimizedPrompt(candidate, before, count, self.counter.name, max_tokens, removed, cut, False)
            if count <= max_tokens:
                return OptimizedPrompt(candidate, before, count, self.counter.name, max_tokens, removed, cut, True)
            room -= count - max_tokens  # unit counts do not add up exactly at their seams
        return best or OptimizedPrompt(text, before, tokens, self.counter.name, max_tokens, removed, 0, False)


def _dedupe(text: str, seen: set[str]) -> tuple[str, int]:
    """``text`` without lines and sentences already in ``seen`` (which it extends)."""
    removed = 0
    kept: list[str] = []
    for line in text.split("\n"):
        if _repeated(line, _LINE_WORDS, seen):
            removed += 1
            continue
        parts = _SENTENCE_END.split(line)  # sentence, separator, sentence, …
        if len(parts) > 1:
            line, dropped = _dedupe_sentences(parts, seen)
            removed += dropped
            if dropped and not line.strip():
                continue
        kept.append(line)
    return _BLANK_RUNS.sub("\n\n", "\n".join(kept)), removed


def _dedupe_sentences(parts: list[str], seen: set[str]) -> tuple[str, int]:
    out: list[str] = []
    removed = 0
    for i in range(0, len(parts), 2):
        sentence, sep = parts[i], parts[i + 1] if i + 1 < len(parts) else ""
        if _repeated(sentence, _SENTENCE_WORDS, seen):
            removed += 1
            continue
        out.append(sentence + sep)
    return "".join(out).rstrip(" ") if removed else "".join(parts), removed


def _repeated(text: str, min_words: int, seen: set[str]) -> bool:
    """Whether ``text`` (whitespace aside) is in ``seen``; one of at least ``min_words`` words is remembered.
    Shorter ones never count: they are as likely to be structure ("Ok.", "---") as repetition."""
    key = " ".join(text.split())
    if len(key.split()) < min_words:
        return False
    if key in seen:
        return True
    seen.add(key)
    return False


def _units(text: str) -> Iterator[str]:
    """Whole pieces the cut may fall between: code and JSON blocks, lines, and pieces of overlong lines."""
    for block in split_blocks(text):
        if block.kind != "text":
            yield block.text
            continue
        for line in block.text.splitlines(keepends=True):
            if len(line) <= _LONG_LINE:
                yield line
                continue
            for sentence in re.split(r"(?<=[.!?]\s)", line):
                if len(sentence) <= _LONG_LINE:
                    yield sentence
                else:
                    words = re.findall(r"\S+\s*", sentence)
                    for i in range(0, len(words), _WORDS_PER_PIECE):
                        yield "".join(words[i : i + _WORDS_PER_PIECE])


def _cut_middle(units: list[tuple[str, int]], room: int) -> tuple[str, int] | None:
    """Keep as many units from the start (up to half of ``room`` first) and from the end as fit; the text with a
    marker where the middle was, and the tokens cut (``None`` when no unit would be kept)."""
    head_n, head_t = _take(units, room // 2)
    tail_n, tail_t = _take(units[head_n:][::-1], room - head_t)
    more, more_t = _take(units[head_n : len(units) - tail_n], room - head_t - tail_t)
    head_n, head_t = head_n + more, head_t + more_t
    if not any(u.strip() for u, _ in units[:head_n]) and not any(u.strip() for u, _ in units[len(units) - tail_n :]):
        return None
    cut = units[head_n : len(units) - tail_n]
    head = "".join(u for u, _ in units[:head_n])
    tail = "".join(u for u, _ in units[len(units) - tail_n :])
    cut_text = "".join(u for u, _ in cut)
    cut_tokens = sum(t for _, t in cut)
    marker = _marker(cut_text.count("\n"), cut_tokens)
    if not head or head.endswith("\n"):
        return f"{head}{marker}\n{tail}".rstrip(), cut_tokens
    return f"{head.rstrip()} {marker} {tail.lstrip()}", cut_tokens


def _take(units: list[tuple[str, int]], room: int) -> tuple[int, int]:
    """How many leading units fit in ``room`` tokens, and their tokens."""
    n = total = 0
    for _, tokens in units:
        if total + tokens > room:
            break
        n, total = n + 1, total + tokens
    return n, total


def _marker(lines: int, tokens: int) -> str:
    if lines:
        return f"[… {lines:,} line{'s' if lines != 1 else ''} (~{tokens:,} tokens) cut …]"
    return f"[… ~{tokens:,} tokens cut …]"
